"""The deployment `my-flow/my-deployment` that Prefect's run_deployment snippet names.

dockyard's own code, served by tests/e2e/test_prefect_corpus.py for the corpus script
run_deployment_async.py: ``dockyard serve my_flow.py:my_flow --name my-deployment``.
"""

from dockyard import flow


@flow(log_prints=True)
def my_flow(my_param: int = 0) -> int:
    print(f"my_param={my_param}")
    return my_param
