# Source: PrefectHQ/examples, flows/update_flow_run_tags.py
#   at commit 3f64f734e1f6b9f0e062bf0816b2fc5f59065672
#   https://github.com/PrefectHQ/examples/blob/3f64f734e1f6b9f0e062bf0816b2fc5f59065672/flows/update_flow_run_tags.py
# License: Apache-2.0 (as PrefectHQ publishes its example repositories; the LICENSE file was not in the index read). Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
# /// script
# dependencies = ["prefect"]
# ///

"""
Demonstrates using the client to update flow run tags.
"""

from dockyard import flow, get_client, get_run_logger, tags
from dockyard.context import get_run_context


@flow
def hello(name: str = "Marvin"):
    logger = get_run_logger()

    # Log metadata about the flow run
    ctx = get_run_context()
    logger.info(f"Flow run has ID '{ctx.flow_run.id}'")
    logger.info(f"Flow run has tags {ctx.flow_run.tags}")

    # Update the flow run tags
    with get_client(sync_client=True) as client:
        client.update_flow_run(
            flow_run_id=get_run_context().flow_run.id,
            tags=[
                # Keep existing tags
                *ctx.flow_run.tags,
                f"name:{name}",
            ],
        )

    # Log a message
    logger.info(f"Hello, {name}!")


if __name__ == "__main__":
    # Add the tag "local" to show that update_flow_run doesn't overwrite
    with tags("local"):
        hello("Arthur")
