# Source: PrefectHQ/prefect-recipes, flows-starter/check-if-flow-run-adhoc-or-scheduled.py
#   at commit 26f891392520ac6cd812df554b2673a9d72d1687
#   https://github.com/PrefectHQ/prefect-recipes/blob/26f891392520ac6cd812df554b2673a9d72d1687/flows-starter/check-if-flow-run-adhoc-or-scheduled.py
# License: Apache-2.0 (as PrefectHQ publishes its recipe repository; the LICENSE file was not in the index read). Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
"""
Discourse:
https://discourse.prefect.io/t/how-can-i-determine-whether-a-flow-run-has-been-executed-ad-hoc-or-was-running-on-schedule/120
"""

import dockyard as prefect
from dockyard import task, flow


@task
def print_task_context():
    pass


@flow(name="autoscheduled_test")
def main_flow():
    print_task_context()
    print("Flow run scheduled through a deployment?")
    print(prefect.context.get_run_context().flow_run.auto_scheduled)


if __name__ == "__main__":
    main_flow()
