# Source: PrefectHQ/prefect, docs/v3/develop/manage-states.mdx, code block: Pass kwargs to state change hooks
#   at commit 1de8be37191be11fed39321eafec136e14addd33
#   https://github.com/PrefectHQ/prefect/blob/1de8be37191be11fed39321eafec136e14addd33/docs/v3/develop/manage-states.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from functools import partial
from dockyard import flow, task

data = {}

def my_hook(task, task_run, state, **kwargs):
    data.update(state=state, **kwargs)

@task
def bad_task():
    raise ValueError("meh")

@flow
def ok_with_failure_flow(x: str = "foo", y: int = 42):
    bad_task_with_a_hook = bad_task.with_options(
        on_failure=[partial(my_hook, **dict(x=x, y=y))]
    )
    # return a tuple of "bar" and the task run state
    # to avoid raising the task's exception
    return "bar", bad_task_with_a_hook(return_state=True)

_, task_run_state = ok_with_failure_flow()

assert data == {"x": "foo", "y": 42, "state": task_run_state}
