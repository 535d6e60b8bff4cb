# Source: PrefectHQ/prefect, flows/hello_tasks.py
#   at commit 80db237181ef96ce16d927c7caddfac2846fd822
#   https://github.com/PrefectHQ/prefect/blob/80db237181ef96ce16d927c7caddfac2846fd822/flows/hello_tasks.py
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import flow, get_run_logger, task


@task
def say_hello(name: str):
    get_run_logger().info(f"Hello {name}!")


@flow
def hello(name: str = "world", count: int = 1):
    futures = say_hello.map(f"{name}-{i}" for i in range(count))
    for future in futures:
        future.wait()


if __name__ == "__main__":
    hello(count=3)
