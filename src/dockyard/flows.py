"""``Flow`` and ``@flow``: a Prefect-compatible workflow definition.

A flow wraps a function with a name, a version, retries, hooks and a parameter schema.
Calling it runs it in this process; ``serve``/``to_deployment`` hand it to dockyard's
serve process, which runs each flow run in its own subprocess (and enforces
``timeout_seconds`` there; in-process calls do not).
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import copy
import functools
import hashlib
import inspect
import logging
import os
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from dockyard import parameters as _params
from dockyard.errors import ParameterError, UsageError
from dockyard.states import RunState

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("dockyard.flows")
hook_logger = logging.getLogger("dockyard.hooks")
print_logger = logging.getLogger("dockyard.flow_runs")

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
_BANNED_NAME_CHARS = "/%?#\\"
_logged_ignored: set[str] = set()


@dataclass
class FlowRun:
    """The run a hook is called for (Prefect's ``flow_run`` argument)."""

    id: str
    name: str | None
    deployment: str | None
    parameters: dict[str, Any]
    attempt: int = 1
    scheduled_at: datetime | None = None


@dataclass
class State:
    """The state a hook is called with (Prefect's ``state`` argument)."""

    type: RunState
    message: str | None = None
    result: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.type.value

    def is_running(self) -> bool:
        return self.type is RunState.RUNNING

    def is_completed(self) -> bool:
        return self.type is RunState.COMPLETED

    def is_failed(self) -> bool:
        return self.type is RunState.FAILED

    def is_cancelled(self) -> bool:
        return self.type is RunState.CANCELLED

    def is_crashed(self) -> bool:
        return self.type is RunState.CRASHED


def _hook_decorator(kind: str) -> Callable[[Any, Callable[..., Any]], Callable[..., Any]]:
    def register(self: Flow[..., Any], fn: Callable[..., Any]) -> Callable[..., Any]:
        self.hooks_for(kind).append(fn)
        return fn

    register.__name__ = f"on_{kind}"
    return register


class Flow(Generic[P, R]):
    """A workflow: a function plus the options dockyard needs to run and serve it.

    Args:
        fn: The function (sync or async) defining the workflow.
        name: Defaults to the function name with ``_`` replaced by ``-``. It must be
            usable in a URL path segment (no ``/ % ? # \\``, control characters or
            surrounding whitespace).
        version: Defaults to an md5 hash of the file defining ``fn`` (None without one).
        flow_run_name: A ``str.format`` template over the parameters (``"etl-{day}"``),
            or a callable taking no argument or the parameters dict.
        retries: Extra attempts after a failure (default 0).
        retry_delay_seconds: Seconds between attempts, or a list giving the delay
            before each retry (the last entry repeats).
        description: Defaults to the function's docstring.
        timeout_seconds: None or > 0; enforced by the subprocess runner only.
        validate_parameters: Validate/coerce parameters with pydantic (default True).
        log_prints: Route ``print`` into the ``dockyard.flow_runs`` logger.
        on_completion, on_failure, on_cancellation, on_crashed, on_running: Lists of
            hooks called as ``hook(flow, flow_run, state)``; a hook's exception is logged,
            never raised.
        task_runner, persist_result, result_storage, result_serializer,
        cache_result_in_memory: Prefect-only; accepted and ignored.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[..., str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | Sequence[float] | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        log_prints: bool | None = None,
        on_completion: Sequence[Callable[..., Any]] | None = None,
        on_failure: Sequence[Callable[..., Any]] | None = None,
        on_cancellation: Sequence[Callable[..., Any]] | None = None,
        on_crashed: Sequence[Callable[..., Any]] | None = None,
        on_running: Sequence[Callable[..., Any]] | None = None,
        task_runner: Any = None,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        cache_result_in_memory: bool = True,
    ) -> None:
        if not callable(fn):
            raise TypeError("'fn' must be callable")
        self.fn: Callable[..., Any] = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        self.bound_instance: Any = None
        self.source: str | None = None
        self.entrypoint: str | None = None
        self.name = check_flow_name(_default_name(fn) if name is None else name)
        self.version = version if version is not None else _file_hash(fn)
        self.description = description if description is not None else inspect.getdoc(fn)
        self.flow_run_name = _check_flow_run_name(flow_run_name)
        self.retries = _check_retries(retries)
        self.retry_delay_seconds = _check_delay(retry_delay_seconds)
        self.timeout_seconds = _check_timeout(timeout_seconds)
        self.should_validate_parameters = bool(validate_parameters)
        self.log_prints = log_prints
        hooks = (on_running, on_completion, on_failure, on_cancellation, on_crashed)
        for kind, given in zip(HOOK_KINDS, hooks, strict=True):
            setattr(self, f"on_{kind}_hooks", _check_hooks(kind, given))
        ignored = dict(
            task_runner=task_runner, persist_result=persist_result, result_storage=result_storage,
            result_serializer=result_serializer, cache_result_in_memory=cache_result_in_memory,
        )  # fmt: skip
        self.__dict__.update(ignored)
        _log_ignored(ignored)

    # ── identity ───────────────────────────────────────────────────────────────────

    @property
    def isasync(self) -> bool:
        return inspect.iscoroutinefunction(self.unbound_fn)

    @property
    def ismethod(self) -> bool:
        return self.bound_instance is not None

    @property
    def unbound_fn(self) -> Callable[..., Any]:
        """The decorated function itself (``fn`` is a bound method on bound flows)."""
        return getattr(self.fn, "__func__", self.fn) if self.ismethod else self.fn

    @property
    def source_file(self) -> str | None:
        """Absolute path of the file that defines the function, if it has one."""
        return _source_file(self.unbound_fn)

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the flow's parameters (without ``self`` on bound flows)."""
        return _params.parameter_schema(self.fn)

    def __get__(self, instance: Any, owner: type | None = None) -> Flow[P, R]:
        if instance is None:
            return self
        bound = copy.copy(self)
        bound.fn = types.MethodType(self.unbound_fn, instance)
        bound.bound_instance = instance
        return bound

    def __repr__(self) -> str:
        qualname = getattr(self.unbound_fn, "__qualname__", repr(self.unbound_fn))
        bound = f", bound to {type(self.bound_instance).__name__}" if self.ismethod else ""
        return f"Flow(name={self.name!r}, fn={qualname}{bound})"

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy with the given options replaced (None keeps the current value)."""
        _check_option_names("with_options", options)
        current = {key: getattr(self, key) for key in PREFECT_ONLY_OPTIONS}
        current.update(
            name=self.name, version=self.version, flow_run_name=self.flow_run_name,
            retries=self.retries, retry_delay_seconds=self.retry_delay_seconds,
            description=self.description, timeout_seconds=self.timeout_seconds,
            validate_parameters=self.should_validate_parameters, log_prints=self.log_prints,
        )  # fmt: skip
        current.update({f"on_{kind}": list(self.hooks_for(kind)) for kind in HOOK_KINDS})
        current.update({k: v for k, v in options.items() if v is not None})
        new = Flow(self.unbound_fn, **current)
        new.source, new.entrypoint = self.source, self.entrypoint
        return new.__get__(self.bound_instance) if self.ismethod else new

    # ── parameters and names ───────────────────────────────────────────────────────

    def validate_parameters(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Validated (coerced) parameters, or ``ParameterError`` naming every bad field."""
        if self.should_validate_parameters:
            return _params.validate_parameters(self.fn, parameters, flow_name=self.name)
        if not _params.accepts_var_keyword(self.fn):
            known = {p.name for p in _params.signature_parameters(self.fn)}
            unknown = sorted(set(parameters) - known)
            if unknown:
                errors = [{"loc": [k], "msg": "unknown parameter", "type": "extra_forbidden"}
                          for k in unknown]  # fmt: skip
                raise ParameterError(
                    f"invalid parameters for flow {self.name!r}: "
                    + "; ".join(f"{k}: unknown parameter" for k in unknown),
                    errors,
                )
        return dict(parameters)

    def render_flow_run_name(self, parameters: Mapping[str, Any]) -> str | None:
        """The run name from ``flow_run_name``, or None when the flow has none."""
        template = self.flow_run_name
        if template is None:
            return None
        if callable(template):
            result = template(dict(parameters)) if _takes_argument(template) else template()
            if not isinstance(result, str):
                raise UsageError(
                    f"flow_run_name callable of flow {self.name!r} returned "
                    f"{type(result).__name__}; it must return a str"
                )
            return result
        try:
            return template.format(**parameters)
        except KeyError as exc:
            raise UsageError(
                f"flow_run_name {template!r} names parameter {exc.args[0]!r}, "
                f"which flow {self.name!r} does not have"
            ) from None
        except (IndexError, ValueError, AttributeError) as exc:
            raise UsageError(f"flow_run_name {template!r} cannot be rendered: {exc}") from None

    def retry_delay_for(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        delay = self.retry_delay_seconds
        if isinstance(delay, list):
            return float(delay[min(max(attempt, 1), len(delay)) - 1]) if delay else 0.0
        return float(delay)

    # ── hooks ──────────────────────────────────────────────────────────────────────

    def hooks_for(self, kind: str) -> list[Callable[..., Any]]:
        """The hooks of one kind: running, completion, failure, cancellation or crashed."""
        if kind not in HOOK_KINDS:
            raise ValueError(f"unknown hook kind {kind!r}; use one of: {', '.join(HOOK_KINDS)}")
        hooks: list[Callable[..., Any]] = getattr(self, f"on_{kind}_hooks")
        return hooks

    def run_hooks(self, kind: str, flow_run: FlowRun, state: State) -> None:
        """Call each hook as ``hook(flow, flow_run, state)``; log, never raise, its errors."""
        for hook in self.hooks_for(kind):
            try:
                result = hook(self, flow_run, state)
                if inspect.isawaitable(result):
                    _run_coroutine_sync(result)
            except Exception:
                hook_logger.exception(
                    "on_%s hook %s of flow %r failed (run %s)",
                    kind, getattr(hook, "__qualname__", hook), self.name, flow_run.id,
                )  # fmt: skip

    # Decorator forms, as in Prefect: ``@my_flow.on_completion``.
    on_completion = _hook_decorator("completion")
    on_failure = _hook_decorator("failure")
    on_cancellation = _hook_decorator("cancellation")
    on_crashed = _hook_decorator("crashed")
    on_running = _hook_decorator("running")

    # ── running in this process ────────────────────────────────────────────────────

    def call_fn(self, parameters: Mapping[str, Any]) -> Any:
        """Call the function once with (validated) parameters; run a coroutine to the end."""
        result = self._invoke(parameters)
        return asyncio.run(result) if inspect.iscoroutine(result) else result

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow here: validate, hooks, retries; return the result or raise.

        For an async flow this returns a coroutine doing the same.
        """
        flow_run = self._new_run(self._bind(args, kwargs))
        if self.isasync:
            return self._run_async(flow_run)  # type: ignore[return-value]
        for attempt in range(1, self.retries + 2):
            flow_run = self._start_attempt(flow_run, attempt)
            try:
                with print_capture(self):
                    result = self.call_fn(flow_run.parameters)
            except Exception as exc:
                time.sleep(self._after_failure(flow_run, exc))
                continue
            return self._after_success(flow_run, result)  # type: ignore[no-any-return]
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run_async(self, flow_run: FlowRun) -> Any:
        for attempt in range(1, self.retries + 2):
            flow_run = self._start_attempt(flow_run, attempt)
            try:
                with print_capture(self):
                    result = await self._invoke(flow_run.parameters)
            except Exception as exc:
                await asyncio.sleep(self._after_failure(flow_run, exc))
                continue
            return self._after_success(flow_run, result)
        raise AssertionError("unreachable")  # pragma: no cover

    def _invoke(self, parameters: Mapping[str, Any]) -> Any:
        args, kwargs = [], {}
        names = set()
        for param in _params.signature_parameters(self.fn):
            names.add(param.name)
            if param.name not in parameters:
                continue
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(parameters[param.name])
            else:
                kwargs[param.name] = parameters[param.name]
        extra = {k: v for k, v in parameters.items() if k not in names}  # **kwargs
        return self.fn(*args, **kwargs, **extra)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = inspect.signature(self.fn).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"flow {self.name!r}: {exc}") from None
        params: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = bound.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise TypeError(f"flow {self.name!r} does not support *{name} arguments")
            elif kind is inspect.Parameter.VAR_KEYWORD:
                params.update(value)
            else:
                params[name] = value
        return params

    def _new_run(self, parameters: dict[str, Any]) -> FlowRun:
        validated = self.validate_parameters(parameters)
        name = self.render_flow_run_name(validated)
        return FlowRun(id=uuid.uuid4().hex, name=name, deployment=None, parameters=validated)

    def _start_attempt(self, flow_run: FlowRun, attempt: int) -> FlowRun:
        flow_run = replace(flow_run, attempt=attempt)
        self.run_hooks("running", flow_run, State(RunState.RUNNING))
        return flow_run

    def _after_failure(self, flow_run: FlowRun, exc: Exception) -> float:
        """The delay before the next attempt; re-raise ``exc`` when none is left."""
        if flow_run.attempt <= self.retries:
            logger.info("flow %r attempt %d failed: %r; retrying", self.name, flow_run.attempt, exc)
            return self.retry_delay_for(flow_run.attempt)
        message = f"{type(exc).__name__}: {exc}"
        self.run_hooks("failure", flow_run, State(RunState.FAILED, message, exc))
        raise exc

    def _after_success(self, flow_run: FlowRun, result: Any) -> Any:
        self.run_hooks("completion", flow_run, State(RunState.COMPLETED, None, result))
        return result

    # ── serving ────────────────────────────────────────────────────────────────────

    def to_deployment(
        self,
        name: str | None = None,
        interval: Any = None,
        cron: Any = None,
        rrule: Any = None,
        paused: bool | None = None,
        schedules: Any = None,
        concurrency_limit: int | None = None,
        parameters: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        version: str | None = None,
        enforce_parameter_schema: bool = True,
        **kwargs: Any,
    ) -> Any:
        """A ``dockyard.deployments.Deployment`` of this flow, to pass to ``serve``."""
        from dockyard.deployments import Deployment

        return Deployment.from_flow(
            self, name=name, interval=interval, cron=cron, rrule=rrule, paused=paused,
            schedules=schedules, concurrency_limit=concurrency_limit, parameters=parameters,
            description=description, tags=tags, version=version,
            enforce_parameter_schema=enforce_parameter_schema, **kwargs,
        )  # fmt: skip

    def serve(
        self,
        name: str | None = None,
        interval: Any = None,
        cron: Any = None,
        rrule: Any = None,
        paused: bool | None = None,
        schedules: Any = None,
        global_limit: int | None = None,
        parameters: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        version: str | None = None,
        enforce_parameter_schema: bool = True,
        pause_on_shutdown: bool = True,
        print_starting_message: bool = True,
        limit: int | None = None,
        webserver: bool = False,
        **kwargs: Any,
    ) -> None:
        """Serve this flow (blocks): schedules, ad-hoc runs, one subprocess per run.

        ``global_limit`` caps this deployment's concurrent runs; ``limit`` caps the whole
        serve process (None = dockyard's finite default, 0 = no limit).
        """
        from dockyard.serving import serve

        deployment = self.to_deployment(
            name=name, interval=interval, cron=cron, rrule=rrule, paused=paused,
            schedules=schedules, concurrency_limit=global_limit, parameters=parameters,
            description=description, tags=tags, version=version,
            enforce_parameter_schema=enforce_parameter_schema, **kwargs,
        )  # fmt: skip
        serve(
            deployment, limit=limit, pause_on_shutdown=pause_on_shutdown,
            webserver=webserver, print_starting_message=print_starting_message,
        )  # fmt: skip

    @classmethod
    def from_source(cls, source: Any, entrypoint: str) -> Flow[..., Any]:
        """Load a flow from a local directory (``source``) and ``path/file.py:flow``."""
        if isinstance(source, (str, os.PathLike)) and not _looks_remote(str(source)):
            return _load_local(Path(source), entrypoint)
        return _load_remote(source, entrypoint)


def flow(__fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a ``Flow``: ``@flow``, ``@flow()`` or ``@flow(name=..., ...)``.

    Takes the keyword options of ``Flow`` (see its docstring); any other is a TypeError.
    """
    _check_option_names("flow", options)
    if __fn is not None:
        return Flow(__fn, **options)
    return functools.partial(Flow, **options)


flow.from_source = Flow.from_source  # type: ignore[attr-defined]


@contextlib.contextmanager
def print_capture(flow: Flow[..., Any]) -> Iterator[None]:
    """While active, and if ``flow.log_prints``, route ``print`` to ``dockyard.flow_runs``.

    Prints to a file other than stdout are untouched; with no logging configured at
    all, prints go to stdout as usual so nothing is lost.
    """
    if not flow.log_prints:
        yield
        return
    original = builtins.print

    def logging_print(*args: Any, sep: str | None = " ", file: Any = None, **kw: Any) -> None:
        if (file not in (None, sys.stdout)) or not print_logger.hasHandlers():
            original(*args, sep=sep, file=file, **kw)
            return
        print_logger.info((sep if sep is not None else " ").join(map(str, args)))

    builtins.print = logging_print
    try:
        yield
    finally:
        builtins.print = original


def check_flow_name(name: Any) -> str:
    """Return ``name`` if it can appear in a URL path segment, else raise UsageError."""
    if not isinstance(name, str):
        hint = " (did you mean to call it?)" if callable(name) else ""
        raise TypeError(f"flow name must be a str, got {type(name).__name__}{hint}")
    problem = _name_problem(name)
    if problem:
        raise UsageError(f"flow name {name!r} is not allowed: {problem}")
    return name


# ── helpers ────────────────────────────────────────────────────────────────────────


def _name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if name != name.strip():
        return "remove the leading/trailing whitespace"
    bad = [c for c in name if c in _BANNED_NAME_CHARS or ord(c) < 32 or ord(c) == 127]
    if bad:
        return f"it contains {bad[0]!r}; do not use / % ? # \\ or control characters"
    return None


def _default_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name.replace("_", "-").replace("<lambda>", "unknown-lambda")


def _source_file(fn: Callable[..., Any]) -> str | None:
    try:
        path = inspect.getsourcefile(inspect.unwrap(fn))
    except (TypeError, OSError):
        return None
    return str(Path(path).resolve()) if path and Path(path).is_file() else None


def _file_hash(fn: Callable[..., Any]) -> str | None:
    path = _source_file(fn)
    if path is None:
        return None
    return hashlib.md5(Path(path).read_bytes(), usedforsecurity=False).hexdigest()


def _check_option_names(where: str, options: Mapping[str, Any]) -> None:
    for key in options:
        if key not in OPTION_NAMES and key not in PREFECT_ONLY_OPTIONS:
            raise TypeError(f"{where}() got an unexpected keyword argument {key!r}")


def _check_flow_run_name(value: Any) -> Any:
    if value is not None and not isinstance(value, str) and not callable(value):
        raise TypeError(f"flow_run_name must be a str or a callable, got {type(value).__name__}")
    return value


def _check_retries(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"retries={value!r} is not allowed: use a whole number >= 0")
    return value


def _check_delay(value: Any) -> float | list[float]:
    items = list(value) if isinstance(value, (list, tuple)) else [0 if value is None else value]
    if not all(_is_number(item) and item >= 0 for item in items):
        raise UsageError(
            f"retry_delay_seconds={value!r} is not allowed: use seconds >= 0 or a list of them"
        )
    return items if isinstance(value, (list, tuple)) else items[0]


def _check_timeout(value: Any) -> float | None:
    if value is not None and not (_is_number(value) and value > 0):
        raise UsageError(f"timeout_seconds={value!r} is not allowed: use None or seconds > 0")
    return None if value is None else float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_hooks(kind: str, hooks: Any) -> list[Callable[..., Any]]:
    if hooks is None:
        return []
    try:
        hooks = list(hooks)
    except TypeError:
        raise TypeError(f"on_{kind} must be a list of callables: on_{kind}=[hook]") from None
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"on_{kind} must contain callables, got {type(hook).__name__}")
    return hooks


def _log_ignored(options: Mapping[str, Any]) -> None:
    for key, value in options.items():
        default = True if key == "cache_result_in_memory" else None
        if value != default and key not in _logged_ignored:
            _logged_ignored.add(key)
            logger.debug("flow option %s is accepted for Prefect compatibility and ignored", key)


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)


def _run_coroutine_sync(awaitable: Any) -> Any:
    """Run an async hook to completion, even from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(awaitable)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, awaitable).result()


def _looks_remote(source: str) -> bool:
    return "://" in source or source.startswith("git@") or source.endswith(".git")


def _load_local(directory: Path, entrypoint: str) -> Flow[..., Any]:
    from dockyard.entrypoints import load_flow

    if not directory.is_dir():
        raise UsageError(f"source directory {str(directory)!r} not found")
    loaded = load_flow(entrypoint, base_dir=directory)
    loaded.source, loaded.entrypoint = str(directory.resolve()), entrypoint
    return loaded


def _load_remote(source: Any, entrypoint: str) -> Flow[..., Any]:
    url = getattr(source, "url", source)
    raise UsageError(
        f"git sources are not supported yet: {url!s} ({entrypoint}); "
        "clone it and pass the local directory as source"
    )
