"""The current task run: ``id``, ``name``, ``task_name``, ``parameters``, ``tags``,
``run_count``."""

from __future__ import annotations

from typing import Any

from dockyard.engine.context import task_run_context

__all__ = ["id", "name", "parameters", "run_count", "tags", "task_name"]  # noqa: F822


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"dockyard.runtime.task_run has no attribute {name!r}")
    ctx = task_run_context()
    if ctx is None:
        return [] if name == "tags" else {} if name == "parameters" else None
    run = ctx.task_run
    values: dict[str, Any] = {
        "id": run.id, "name": run.name, "task_name": ctx.task.name,
        "parameters": dict(ctx.parameters), "tags": sorted(run.tags), "run_count": run.run_count,
    }  # fmt: skip
    return values[name]
