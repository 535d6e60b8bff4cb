# Source: PrefectHQ/prefect, docs/v3/how-to-guides/workflows/run-work-concurrently.mdx, code block: Using asyncio
#   at commit 266d4e8f1d5110997c70692a06f31582d1bc5007
#   https://github.com/PrefectHQ/prefect/blob/266d4e8f1d5110997c70692a06f31582d1bc5007/docs/v3/how-to-guides/workflows/run-work-concurrently.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
import asyncio

from dockyard import flow, task

@task
async def stop_at_floor(floor: int):
    print(f"elevator moving to floor {floor}")
    await asyncio.sleep(floor)
    print(f"elevator stops on floor {floor}")

@flow
async def elevator():
    floors = list(range(10, 0, -1))
    await asyncio.gather(*[stop_at_floor(floor) for floor in floors])


if __name__ == "__main__":
    asyncio.run(elevator())
