# Source: PrefectHQ/examples, flows/access_run_context.py
#   at commit 3f64f734e1f6b9f0e062bf0816b2fc5f59065672
#   https://github.com/PrefectHQ/examples/blob/3f64f734e1f6b9f0e062bf0816b2fc5f59065672/flows/access_run_context.py
# License: Apache-2.0 (as PrefectHQ publishes its example repositories; the LICENSE file was not in the index read). Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
# /// script
# dependencies = ["prefect"]
# ///

"""
Examples of accessing Prefect's runtime context to get information about the current flow run:
- List the fields in the context
- Access a few specific fields
- Get the URL for the flow run
"""

import dockyard.runtime.flow_run, dockyard as prefect
import dockyard.runtime.task_run, dockyard as prefect
from dockyard import flow, task


@flow(log_prints=True)
def example_flow():
    # let's see what's available in the flow run runtime context
    for field in prefect.runtime.flow_run.__all__:
        print(f"{field}: {getattr(prefect.runtime.flow_run, field)}")

    # The runtime module supports dot notation for accessing attributes
    # for example, let's grab the flow run id
    print(f"\nThis flow run has id '{prefect.runtime.flow_run.id}'")

    # We can also get the dashboard URL for the flow run
    print(f"\n See this flow run in the UI: '{prefect.runtime.flow_run.ui_url}'")


@task(log_prints=True)
def example_task():
    # let's see what's available in the task run runtime context
    for field in prefect.runtime.task_run.__all__:
        print(f"{field}: {getattr(prefect.runtime.task_run, field)}")


if __name__ == "__main__":
    # Run the example flow from above
    example_flow()

    # Run the example task from above
    example_task()

    # Outside of a run context, `prefect.runtime` will return empty values
    assert prefect.runtime.flow_run.id is None
    assert prefect.runtime.task_run.id is None
