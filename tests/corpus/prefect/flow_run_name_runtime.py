# Source: PrefectHQ/prefect, docs/v3/develop/write-flows.mdx, code block: Flow settings (flow_run_name function reading prefect.runtime.flow_run)
#   at commit 259e8686b7c37f8ac02e3d6c8c520b290e08560a
#   https://github.com/PrefectHQ/prefect/blob/259e8686b7c37f8ac02e3d6c8c520b290e08560a/docs/v3/develop/write-flows.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import flow
from dockyard.runtime import flow_run


def generate_flow_run_name():
    flow_name = flow_run.flow_name

    parameters = flow_run.parameters
    name = parameters["name"]
    limit = parameters["limit"]

    return f"{flow_name}-with-{name}-and-{limit}"


@flow(flow_run_name=generate_flow_run_name)
def my_flow(name: str, limit: int = 100):
    pass


# creates a flow run named 'my-flow-with-marvin-and-100'
if __name__ == "__main__":
    my_flow(name="marvin")
