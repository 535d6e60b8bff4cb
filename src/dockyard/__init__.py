"""dockyard: serve Python workflows from long-lived containers.

Prefect-compatible API: ``from dockyard import flow, serve`` in place of
``from prefect import flow, serve``. Names are imported on first use, so a flow-run
subprocess that only needs ``flow`` does not pay for the scheduler and the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dockyard import _aliases
from dockyard._version import __version__

if TYPE_CHECKING:
    from dockyard.api import Flow, flow, serve
    from dockyard.core.deployments import Deployment
    from dockyard.core.outcomes import State
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
    from dockyard.engine.annotations import allow_failure, unmapped
    from dockyard.engine.context import tags
    from dockyard.engine.logs import get_run_logger
    from dockyard.sources.repository import GitRepository
    from dockyard.tasks import Task, task

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
    "State": "dockyard.core.outcomes",
    "Task": "dockyard.tasks",
    "task": "dockyard.tasks",
    "get_run_logger": "dockyard.engine.logs",
    "tags": "dockyard.engine.context",
    "unmapped": "dockyard.engine.annotations",
    "allow_failure": "dockyard.engine.annotations",
    "get_client": "dockyard.client.orchestration",
    "runtime": "dockyard.runtime:",
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
    "State",
    "Task",
    "__version__",
    "allow_failure",
    "flow",
    "get_client",
    "get_run_logger",
    "runtime",
    "serve",
    "tags",
    "task",
    "unmapped",
]


_SUBMODULES = frozenset(
    {
        "cache_policies", "client", "context", "deployments", "exceptions", "flows", "futures",
        "logging", "schedules", "states", "task_runners", "tasks",
    }
)  # fmt: skip
"""The Prefect-compatible modules, reachable as attributes of the package too."""

_aliases.install()


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None and name in _SUBMODULES:  # ``import dockyard; dockyard.context.…``
        target = f"dockyard.{name}:"
    if target is None and name in _aliases.UNSUPPORTED_NAMES:
        from dockyard.errors import UnsupportedFeature

        raise UnsupportedFeature(
            _aliases.unsupported_message(_aliases.UNSUPPORTED_NAMES[name], name)
        )
    if target is None:
        raise AttributeError(f"module 'dockyard' has no attribute {name!r}")
    module_name, module_only, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = module if module_only and not attr else getattr(module, attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
