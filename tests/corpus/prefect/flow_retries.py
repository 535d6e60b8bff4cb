# Source: PrefectHQ/prefect, flows/flow_retries.py
#   at commit d42c2ac6002baea9fcc14515f3bd10f426a62c6d
#   https://github.com/PrefectHQ/prefect/blob/d42c2ac6002baea9fcc14515f3bd10f426a62c6d/flows/flow_retries.py
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import flow, task

flow_run_count = 0
task_run_count = 0


@task
def happy_task():
    global task_run_count
    task_run_count += 1
    return 1


@flow(retries=10)
def hello():
    global flow_run_count
    flow_run_count += 1

    first = happy_task()
    if flow_run_count < 3:
        raise ValueError("Retry me please!")

    return first + 1


if __name__ == "__main__":
    result = hello()
    assert result == 2, f"Got {result}"
    assert flow_run_count == 3, f"Got {flow_run_count}"
    assert task_run_count == 1, f"Got {task_run_count}"
