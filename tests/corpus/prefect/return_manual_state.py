# Source: PrefectHQ/prefect, docs/v3/develop/write-flows.mdx, code block: Return a manual state
#   at commit 259e8686b7c37f8ac02e3d6c8c520b290e08560a
#   https://github.com/PrefectHQ/prefect/blob/259e8686b7c37f8ac02e3d6c8c520b290e08560a/docs/v3/develop/write-flows.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import task, flow
from dockyard.states import Completed, Failed


@task
def always_fails_task():
    raise ValueError("I fail successfully")


@task
def always_succeeds_task():
    print("I'm fail safe!")
    return "success"


@flow
def always_succeeds_flow():
    x = always_fails_task.submit()
    y = always_succeeds_task.submit()
    if y.result() == "success":
        return Completed(message="I am happy with this result")
    else:
        return Failed(message="How did this happen!?")


if __name__ == "__main__":
    always_succeeds_flow()
