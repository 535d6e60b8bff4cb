# Source: PrefectHQ/prefect, docs/v3/develop/manage-states.mdx, code block: Execute code on state changes
#   at commit 1de8be37191be11fed39321eafec136e14addd33
#   https://github.com/PrefectHQ/prefect/blob/1de8be37191be11fed39321eafec136e14addd33/docs/v3/develop/manage-states.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import task, flow

# for type hints only
from dockyard import Task
from dockyard.client.schemas.objects import TaskRun
from dockyard.states import State


def first_task_hook(tsk: Task, run: TaskRun, state: State) -> None:
    if not state.name == 'Cached':
        print('I run anytime this task executes successfully')
    else:
        print('and can condition my behavior on details of this run')


@task(log_prints=True, on_completion=[first_task_hook])
def nice_task(name: str):
    print(f"Hello {name}!")


# alternatively hooks can be specified via decorator
@nice_task.on_completion
def second_hook(tsk: Task, run: TaskRun, state: State) -> None:
    print('another hook')

nice_task(name='Marvin')
