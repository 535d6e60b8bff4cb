# Source: PrefectHQ/prefect, docs/v3/develop/write-flows.mdx, code block: Specify flow parameters (what_day_is_it)
#   at commit 259e8686b7c37f8ac02e3d6c8c520b290e08560a
#   https://github.com/PrefectHQ/prefect/blob/259e8686b7c37f8ac02e3d6c8c520b290e08560a/docs/v3/develop/write-flows.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from datetime import (
    datetime,
    timezone,
)
from typing import Optional

from dockyard import flow


@flow
def what_day_is_it(date: Optional[datetime] = None):
    if date is None:
        date = datetime.now(timezone.utc)
    print(f"It was {date.strftime('%A')} on {date.isoformat()}")


if __name__ == "__main__":
    what_day_is_it("2021-01-01T02:00:19.180906")
