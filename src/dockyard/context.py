"""Run contexts: ``from dockyard.context import get_run_context`` (``prefect.context``)."""

from dockyard.engine.context import (
    FlowRunContext,
    TaskRunContext,
    get_run_context,
    tags,
)

__all__ = ["FlowRunContext", "TaskRunContext", "get_run_context", "tags"]
