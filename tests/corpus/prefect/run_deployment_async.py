# Source: PrefectHQ/prefect, docs/v3/how-to-guides/deployments/run-deployments.mdx, code block: Async usage
#   at commit 00bcf2381067bdee768ed287327795376ee74145
#   https://github.com/PrefectHQ/prefect/blob/00bcf2381067bdee768ed287327795376ee74145/docs/v3/how-to-guides/deployments/run-deployments.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
import asyncio
from dockyard.deployments import run_deployment

async def trigger_deployment():
    flow_run = await run_deployment(
        name="my-flow/my-deployment",
        parameters={"my_param": 42}
    )
    return flow_run

# Run it
flow_run = asyncio.run(trigger_deployment())
