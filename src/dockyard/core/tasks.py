"""``TaskDefinition``: a function with the options of a task (pure: no clock, no I/O).

The public ``dockyard.Task`` (``dockyard.tasks``) adds calling, ``submit`` and ``map``,
which the engine (``dockyard.engine``) runs inside a flow run. Options follow Prefect's
``@task``: names, tags, retries with per-attempt delays, jitter and a retry condition, a
timeout, ``log_prints``, a run-name template, caching and hooks.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Generic, ParamSpec, Self, TypeVar

from dockyard.core.options import check_delay, check_hooks, check_retries, check_timeout
from dockyard.errors import UnsupportedFeature, UsageError

P = ParamSpec("P")
R = TypeVar("R")

TASK_HOOK_KINDS = ("completion", "failure")
IGNORED_OPTIONS = (
    "result_storage", "result_serializer", "result_storage_key", "cache_result_in_memory",
    "viz_return_value", "asset_deps",
)  # fmt: skip
"""Prefect options accepted and stored; results stay in memory or in the cache store."""
OPTION_NAMES = (
    "name", "description", "tags", "version", "retries", "retry_delay_seconds",
    "retry_jitter_factor", "retry_condition_fn", "timeout_seconds", "log_prints",
    "task_run_name", "cache_key_fn", "cache_expiration", "cache_policy", "persist_result",
    "refresh_cache", "on_completion", "on_failure", *IGNORED_OPTIONS,
)  # fmt: skip


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """``retry_delay_seconds=exponential_backoff(10)``: 10, 20, 40, ... seconds."""
    if not isinstance(backoff_factor, (int, float)) or backoff_factor < 0:
        raise UsageError(f"backoff_factor={backoff_factor!r} is not allowed: use seconds >= 0")

    def delays(retries: int) -> list[float]:
        return [float(backoff_factor) * 2**attempt for attempt in range(retries)]

    return delays


def check_task_options(where: str, options: Mapping[str, Any]) -> None:
    for key in options:
        if key in ("on_commit", "on_rollback"):
            raise UnsupportedFeature(
                f"{where}: {key} hooks belong to transactions, which dockyard does not "
                "support; use on_completion/on_failure"
            )
        if key not in OPTION_NAMES:
            raise TypeError(f"{where}() got an unexpected keyword argument {key!r}")


def _check_tags(tags: Any) -> frozenset[str]:
    if tags is None:
        return frozenset()
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise TypeError("tags must be a list of strings: tags=['etl']")
    checked = frozenset(tags)
    if not all(isinstance(tag, str) for tag in checked):
        raise TypeError("tags must be a list of strings: tags=['etl']")
    return checked


def _check_delay(value: Any) -> Any:
    return value if callable(value) else check_delay(value)


def _check_jitter(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UsageError(f"retry_jitter_factor={value!r} is not allowed: use a number >= 0")
    return float(value)


def _check_callable(option: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{option} must be a callable, got {type(value).__name__}")
    return value


def _check_run_name(value: Any) -> Any:
    if value is not None and not isinstance(value, str) and not callable(value):
        raise TypeError(f"task_run_name must be a str or a callable, got {type(value).__name__}")
    return value


def _check_expiration(value: Any) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    raise TypeError(f"cache_expiration must be a timedelta, got {type(value).__name__}")


class TaskDefinition(Generic[P, R]):
    """A task: a function plus how to run it inside a flow (see ``dockyard.task``)."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | Sequence[float] | Callable[[int], Any] | None = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: timedelta | None = None,
        cache_policy: Any = None,
        persist_result: bool | None = None,
        refresh_cache: bool | None = None,
        on_completion: Sequence[Callable[..., Any]] | None = None,
        on_failure: Sequence[Callable[..., Any]] | None = None,
        **ignored: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError("'fn' must be callable")
        check_task_options("task", ignored)
        self.fn: Callable[..., Any] = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        self.name: str = name if name is not None else getattr(fn, "__name__", "task")
        if not isinstance(self.name, str) or not self.name.strip():
            raise UsageError(f"task name {self.name!r} is not allowed: use a non-empty string")
        self.description = description if description is not None else inspect.getdoc(fn)
        self.tags = _check_tags(tags)
        self.version = version
        self.retries = check_retries(retries)
        self.retry_delay_seconds = _check_delay(retry_delay_seconds)
        self.retry_jitter_factor = _check_jitter(retry_jitter_factor)
        self.retry_condition_fn = _check_callable("retry_condition_fn", retry_condition_fn)
        self.timeout_seconds = check_timeout(timeout_seconds)
        self.log_prints = log_prints
        self.task_run_name = _check_run_name(task_run_name)
        self.cache_key_fn = _check_callable("cache_key_fn", cache_key_fn)
        self.cache_expiration = _check_expiration(cache_expiration)
        self.cache_policy = cache_policy
        self.persist_result = persist_result
        self.refresh_cache = bool(refresh_cache)
        self.on_completion_hooks = check_hooks("completion", on_completion)
        self.on_failure_hooks = check_hooks("failure", on_failure)
        self.ignored = dict(ignored)

    @property
    def isasync(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def task_key(self) -> str:
        """What identifies the task within its code: its module, qualname and name."""
        module = getattr(self.fn, "__module__", "") or ""
        qualname = getattr(self.fn, "__qualname__", self.name)
        return f"{module}.{qualname}:{self.name}"

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"

    def options(self) -> dict[str, Any]:
        """The options this task was made with (what ``with_options`` starts from)."""
        names = [n for n in OPTION_NAMES if n not in IGNORED_OPTIONS]
        current = {n: getattr(self, n) for n in names if n not in ("on_completion", "on_failure")}
        current.update(on_completion=self.on_completion_hooks, on_failure=self.on_failure_hooks)
        return {**current, **self.ignored}

    def with_options(self, **options: Any) -> Self:
        """A copy with the given options replaced (None keeps the current value)."""
        check_task_options("with_options", options)
        current = self.options()
        current.update({k: v for k, v in options.items() if v is not None})
        return type(self)(self.fn, **current)

    def retry_delay_for(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first), before jitter."""
        value = self.retry_delay_seconds
        if callable(value):
            value = check_delay(list(value(self.retries)))
        if isinstance(value, list):
            return float(value[min(retry, len(value)) - 1]) if value else 0.0
        return float(value)

    def hooks_for(self, kind: str) -> list[Callable[..., Any]]:
        if kind not in TASK_HOOK_KINDS:
            raise ValueError(f"unknown task hook kind {kind!r}; use completion or failure")
        hooks: list[Callable[..., Any]] = getattr(self, f"on_{kind}_hooks")
        return hooks

    def on_completion(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator form: ``@my_task.on_completion``."""
        self.on_completion_hooks.append(fn)
        return fn

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator form: ``@my_task.on_failure``."""
        self.on_failure_hooks.append(fn)
        return fn

    def render_run_name(self, parameters: Mapping[str, Any], number: int) -> str:
        """The task run's name: ``task_run_name`` rendered, else ``<name>-<number>``."""
        template = self.task_run_name
        if template is None:
            return f"{self.name}-{number}"
        if callable(template):
            takes = bool(inspect.signature(template).parameters)
            result = template(dict(parameters)) if takes else template()
            if not isinstance(result, str):
                raise TypeError(f"task_run_name callable returned {type(result).__name__}")
            return result
        try:
            return str(template.format(**parameters))
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise UsageError(f"task_run_name {template!r} cannot be rendered: {exc}") from None
