# Source: PrefectHQ/examples, flows/conditionally_retry_with_delay.py
#   at commit 24a3efc34d67c63262681adaa634c0cdd3ef3547
#   https://github.com/PrefectHQ/examples/blob/24a3efc34d67c63262681adaa634c0cdd3ef3547/flows/conditionally_retry_with_delay.py
# License: Apache-2.0 (as PrefectHQ publishes its example repositories; the LICENSE file was not in the index read). Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed (offline HTTP answers: tests/corpus/offline).
# /// script
# dependencies = ["prefect", "httpx"]
# ///

"""
Demonstrates using built-in retry functionality to retry a task after a delay
when specific HTTP status codes are encountered.
"""

from typing import Any

import httpx
from dockyard import Task, task
from dockyard.client.schemas.objects import TaskRun
from dockyard.states import State


def retry_on_503(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    try:
        state.result()
    except Exception as e:
        if isinstance(e, httpx.HTTPStatusError) and e.response.status_code == 503:
            return True
    return False


@task(
    retries=2,
    retry_delay_seconds=[3, 9],
    retry_condition_fn=retry_on_503,
)
def make_api_call():
    response = httpx.get("https://httpbin.org/status/503")
    response.raise_for_status()
    return response.text


if __name__ == "__main__":
    make_api_call()
