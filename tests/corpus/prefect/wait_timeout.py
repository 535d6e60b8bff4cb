# Source: PrefectHQ/prefect, examples/reproduce_18956_future_wait_timeout.py
#   at commit c21f9018d96d5266be91eadd80f185628b58bc17
#   https://github.com/PrefectHQ/prefect/blob/c21f9018d96d5266be91eadd80f185628b58bc17/examples/reproduce_18956_future_wait_timeout.py
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
import time

from dockyard import flow, task
from dockyard.futures import wait


@task
def sleep_task(seconds):
    time.sleep(seconds)
    return 42


@flow
def flow():
    futures = sleep_task.map(range(10))
    done, not_done = wait(futures, timeout=5)
    print(f"Done: {len(done)}")
    print(f"Not Done: {len(not_done)}")


if __name__ == "__main__":
    flow()
