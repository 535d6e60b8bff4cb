# Source: PrefectHQ/prefect, flows/task_retries.py
#   at commit 324bf1fd3a490b94b885a12c828ab75d9e9bff21
#   https://github.com/PrefectHQ/prefect/blob/324bf1fd3a490b94b885a12c828ab75d9e9bff21/flows/task_retries.py
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import flow, task

run_count = 0


@task(retries=10)
def sad_task():
    global run_count
    run_count += 1
    if run_count < 3:
        raise ValueError()
    return 1


@flow
def hello():
    return sad_task()


if __name__ == "__main__":
    result = hello()
    assert result == 1, f"Got {result}"
    assert run_count == 3, f"Got {run_count}"
