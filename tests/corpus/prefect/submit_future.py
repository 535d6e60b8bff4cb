# Source: PrefectHQ/prefect, docs/v3/develop/task-runners.mdx, code block: Submit tasks to a task runner
#   at commit 22df360e7dabb73e1679671f14314c5ba73d1b2b
#   https://github.com/PrefectHQ/prefect/blob/22df360e7dabb73e1679671f14314c5ba73d1b2b/docs/v3/develop/task-runners.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import flow, task

@task
def say_hello(name):
    return f"Hello {name}!"

@task
def print_result(result):
    print(type(result))
    print(result)

@flow(name="hello-flow")
def hello_world():
    future = say_hello.submit("Marvin")
    print_result.submit(future).wait()

hello_world()
