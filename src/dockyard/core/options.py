"""Checking a ``Flow``'s options and name (the validation behind ``Flow(...)`` and ``@flow``).

Every check returns the normalised value or raises: ``TypeError`` for a wrong kind of value
(a programming error), ``UsageError`` for a value of the right kind that is not allowed.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypedDict

from dockyard.core.names import check_name
from dockyard.errors import UsageError

logger = logging.getLogger("dockyard.flows")

HOOK_KINDS = ("running", "completion", "failure", "cancellation", "crashed")
OPTION_NAMES = (
    "name", "version", "flow_run_name", "retries", "retry_delay_seconds", "description",
    "timeout_seconds", "validate_parameters", "log_prints",
    *(f"on_{kind}" for kind in HOOK_KINDS),
)  # fmt: skip
PREFECT_ONLY_OPTIONS = (
    "task_runner", "persist_result", "result_storage", "result_serializer",
    "cache_result_in_memory",
)  # fmt: skip
"""Prefect options dockyard accepts and stores but does not use."""
_logged_ignored: set[str] = set()


class DeploymentOptions(TypedDict, total=False):
    """Keyword options ``Flow.to_deployment`` and ``Flow.serve`` share (see ``Deployment``).

    Prefect-only options (``triggers``, ``work_pool_name``, ...) and dockyard's own
    (``timezone``, ``overlap``, ``catchup``, ...) pass through to ``Deployment.from_flow`` too.
    Give at most one of ``interval``, ``cron``, ``rrule``, ``schedule`` (one schedule object,
    such as ``Cron("0 * * * *", parameters={...})``) and ``schedules`` (a list of them).
    """

    interval: Any
    cron: Any
    rrule: Any
    paused: bool | None
    schedule: Any
    schedules: Any
    concurrency_limit: int | None
    parameters: Mapping[str, Any] | None
    description: str | None
    tags: list[str] | None
    version: str | None
    enforce_parameter_schema: bool
    timezone: str | None
    anchor_date: datetime | str | None
    overlap: str | None
    on_shutdown: str | None
    catchup: str | None
    catchup_window: float | None
    catchup_max: int | None


def check_flow_name(name: Any) -> str:
    """Return ``name`` if it can appear in a URL path segment, else raise UsageError."""
    return check_name("flow", name)


def default_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name.replace("_", "-").replace("<lambda>", "unknown-lambda")


def check_option_names(where: str, options: Mapping[str, Any]) -> None:
    for key in options:
        if key not in OPTION_NAMES and key not in PREFECT_ONLY_OPTIONS:
            raise TypeError(f"{where}() got an unexpected keyword argument {key!r}")


def check_flow_run_name(value: Any) -> Any:
    if value is not None and not isinstance(value, str) and not callable(value):
        raise TypeError(f"flow_run_name must be a str or a callable, got {type(value).__name__}")
    return value


def check_retries(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"retries={value!r} is not allowed: use a whole number >= 0")
    return value


def check_delay(value: Any) -> float | list[float]:
    items = list(value) if isinstance(value, (list, tuple)) else [0 if value is None else value]
    if not all(_is_number(item) and item >= 0 for item in items):
        raise UsageError(
            f"retry_delay_seconds={value!r} is not allowed: use seconds >= 0 or a list of them"
        )
    return items if isinstance(value, (list, tuple)) else items[0]


def check_timeout(value: Any) -> float | None:
    if value is not None and not (_is_number(value) and value > 0):
        raise UsageError(f"timeout_seconds={value!r} is not allowed: use None or seconds > 0")
    return None if value is None else float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_hooks(kind: str, hooks: Any) -> list[Callable[..., Any]]:
    if hooks is None:
        return []
    try:
        checked: list[Callable[..., Any]] = list(hooks)
    except TypeError:
        raise TypeError(f"on_{kind} must be a list of callables: on_{kind}=[hook]") from None
    for hook in checked:
        if not callable(hook):
            raise TypeError(f"on_{kind} must contain callables, got {type(hook).__name__}")
    return checked


def log_ignored(options: Mapping[str, Any]) -> None:
    """Log (once per option, at debug) the Prefect-only options given a non-default value."""
    for key, value in options.items():
        default = True if key == "cache_result_in_memory" else None
        if value != default and key not in _logged_ignored:
            _logged_ignored.add(key)
            logger.debug("flow option %s is accepted for Prefect compatibility and ignored", key)


def takes_argument(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called with one positional argument."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
