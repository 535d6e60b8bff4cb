"""The current flow run: ``id``, ``name``, ``parameters``, ``tags``, ``scheduled_start_time``,
``flow_name``, ``deployment_id``, ``deployment_name``, ``run_count``, ``api_url``."""

from __future__ import annotations

from typing import Any

from dockyard.engine.context import flow_run_context

__all__ = [  # noqa: F822 (module attributes made by __getattr__)
    "api_url", "deployment_id", "deployment_name", "flow_name", "id", "job_variables", "name",
    "parameters", "parent_deployment_id", "parent_flow_run_id", "root_flow_run_id",
    "run_count", "scheduled_start_time", "tags", "ui_url",
]  # fmt: skip
_EMPTY: dict[str, Any] = {"tags": [], "parameters": {}, "job_variables": {}}


def _value(attribute: str) -> Any:
    ctx = flow_run_context()
    if ctx is None:
        return _EMPTY.get(attribute)
    run, deployment = ctx.flow_run, ctx.root.flow_run.deployment
    top = ctx.parent is None  # a subflow run has no deployment of its own
    values: dict[str, Any] = {
        "id": run.id, "name": run.name, "parameters": dict(run.parameters),
        "tags": sorted(set(ctx.root.flow_run.tags)), "scheduled_start_time": run.scheduled_at,
        "flow_name": ctx.flow.name, "run_count": run.attempt,
        "deployment_id": deployment if top else None,
        "deployment_name": deployment.split("/", 1)[-1] if deployment and top else None,
        "parent_flow_run_id": ctx.parent.flow_run.id if ctx.parent is not None else None,
        "api_url": ctx.root.api.url if ctx.root.api is not None else None,
        "ui_url": None, "job_variables": {}, "parent_deployment_id": None,
        "root_flow_run_id": ctx.root.flow_run.id,
    }  # fmt: skip
    return values[attribute]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"dockyard.runtime.flow_run has no attribute {name!r}")
    return _value(name)
