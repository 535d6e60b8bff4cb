"""dockyard: serve Python workflows from long-lived containers.

Prefect-compatible API: ``from dockyard import flow, serve`` in place of
``from prefect import flow, serve``. Names are imported on first use, so a flow-run
subprocess that only needs ``flow`` does not pay for the scheduler and the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dockyard._version import __version__

if TYPE_CHECKING:
    from dockyard.api import Flow, flow, serve
    from dockyard.core.deployments import Deployment
    from dockyard.core.policies import CatchupPolicy, OverlapPolicy
    from dockyard.core.schedules import (
        Cron,
        CronSchedule,
        Interval,
        IntervalSchedule,
        RRule,
        RRuleSchedule,
    )
    from dockyard.core.states import RunState
    from dockyard.sources.repository import GitRepository

    RunnerDeployment = Deployment

_LAZY = {
    "CatchupPolicy": "dockyard.core.policies",
    "Deployment": "dockyard.core.deployments",
    "OverlapPolicy": "dockyard.core.policies",
    "RunnerDeployment": "dockyard.core.deployments:Deployment",
    "Flow": "dockyard.api",
    "GitRepository": "dockyard.sources.repository",
    "flow": "dockyard.api",
    "Cron": "dockyard.core.schedules",
    "CronSchedule": "dockyard.core.schedules",
    "Interval": "dockyard.core.schedules",
    "IntervalSchedule": "dockyard.core.schedules",
    "RRule": "dockyard.core.schedules",
    "RRuleSchedule": "dockyard.core.schedules",
    "serve": "dockyard.api",
    "RunState": "dockyard.core.states",
}

__all__ = [
    "CatchupPolicy",
    "Cron",
    "CronSchedule",
    "Deployment",
    "Flow",
    "GitRepository",
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


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'dockyard' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
