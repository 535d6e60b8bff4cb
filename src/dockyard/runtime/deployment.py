"""The deployment of the current flow run: ``id`` and ``name`` ("flow/deployment" and
"deployment"), ``parameters`` (its defaults), ``flow_run_id``."""

from __future__ import annotations

from typing import Any

from dockyard.engine.context import flow_run_context

__all__ = ["flow_run_id", "id", "name", "parameters", "version"]  # noqa: F822


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"dockyard.runtime.deployment has no attribute {name!r}")
    ctx = flow_run_context()
    root = ctx.root if ctx is not None else None
    deployment = root.flow_run.deployment if root is not None else None
    if root is None or deployment is None:
        return {} if name == "parameters" else None
    values: dict[str, Any] = {
        "id": deployment, "name": deployment.split("/", 1)[-1],
        "parameters": dict(root.deployment_parameters), "flow_run_id": root.flow_run.id,
        "version": None,
    }  # fmt: skip
    return values[name]
