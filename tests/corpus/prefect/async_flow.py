# Source: PrefectHQ/prefect, docs/v3/develop/write-flows.mdx, code block: Asynchronous functions
#   at commit 259e8686b7c37f8ac02e3d6c8c520b290e08560a
#   https://github.com/PrefectHQ/prefect/blob/259e8686b7c37f8ac02e3d6c8c520b290e08560a/docs/v3/develop/write-flows.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
import asyncio
from dockyard import task, flow


@task
async def print_values(values):
    for value in values:
        await asyncio.sleep(1)
        print(value, end=" ")


@flow
async def async_flow():
    print("Hello, I'm an async flow")

    # runs immediately
    await print_values([1, 2])

    # runs concurrently
    coros = [print_values("abcd"), print_values("6789")]
    await asyncio.gather(*coros)


if __name__ == "__main__":
    asyncio.run(async_flow())
