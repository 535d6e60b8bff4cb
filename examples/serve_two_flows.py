"""Two flows served by one process, each on its own schedule.

    python examples/serve_two_flows.py
"""

import time

from dockyard import flow, serve


@flow
def slow_flow(sleep: int = 60):
    "Sleeps for the given number of seconds."
    time.sleep(sleep)


@flow
def fast_flow():
    "Returns at once."
    return


if __name__ == "__main__":
    slow_deploy = slow_flow.to_deployment(name="sleeper", interval=45)
    fast_deploy = fast_flow.to_deployment(name="fast")
    serve(slow_deploy, fast_deploy)
