"""dockyard: serve Python workflows from long-lived containers.

Prefect-compatible API: ``from dockyard import flow, serve`` in place of
``from prefect import flow, serve``.
"""

from dockyard._version import __version__
from dockyard.deployments import CatchupPolicy, Deployment, OverlapPolicy
from dockyard.flows import Flow, flow
from dockyard.schedules import Cron, CronSchedule, Interval, IntervalSchedule, RRule, RRuleSchedule
from dockyard.serving import serve
from dockyard.states import RunState

RunnerDeployment = Deployment
"""Prefect's name for what ``to_deployment`` returns."""

__all__ = [
    "CatchupPolicy",
    "Cron",
    "CronSchedule",
    "Deployment",
    "Flow",
    "Interval",
    "IntervalSchedule",
    "OverlapPolicy",
    "RRule",
    "RRuleSchedule",
    "RunState",
    "RunnerDeployment",
    "__version__",
    "flow",
    "serve",
]
