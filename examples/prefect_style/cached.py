"""A slow task whose results are cached by input for ten minutes.

python examples/prefect_style/cached.py      # computes 2 of 3 calls, then reuses
dockyard serve examples/prefect_style/cached.py:cached
"""

from __future__ import annotations

import time
from datetime import timedelta

from dockyard import flow, task
from dockyard.tasks import task_input_hash


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(minutes=10), log_prints=True)
def slow_square(x: int) -> int:
    print(f"computing {x}² the slow way")
    time.sleep(0.5)
    return x * x


@flow(log_prints=True)
def cached(values: list[int] | None = None) -> int:
    """Square each value; a repeated value comes from the cache, not from the task."""
    values = values or [3, 4, 3]
    total = sum(slow_square(x) for x in values)
    print(f"sum of squares of {values}: {total}")
    return total


if __name__ == "__main__":
    cached()
