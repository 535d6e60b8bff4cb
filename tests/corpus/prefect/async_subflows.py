# Source: PrefectHQ/prefect-recipes, flows-starter/async_subflows.py
#   at commit 5b00be9b1a4a1ed906b9efd6b022219995106c5a
#   https://github.com/PrefectHQ/prefect-recipes/blob/5b00be9b1a4a1ed906b9efd6b022219995106c5a/flows-starter/async_subflows.py
# License: Apache-2.0 (as PrefectHQ publishes its recipe repository; the LICENSE file was not in the index read). Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
"""This example demonstrates how to run asynchronous subflows concurrently."""
import asyncio
from dockyard import flow


@flow
async def subflow(x):
    print(f"Running subflow with {x=}")
    return x


@flow
async def parent_flow():
    return await asyncio.gather(*[subflow(x) for x in range(3)])


if __name__ == "__main__":
    assert asyncio.run(parent_flow()) == [0, 1, 2]
