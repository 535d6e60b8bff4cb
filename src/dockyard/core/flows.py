"""``Flow`` and ``@flow``: a Prefect-compatible workflow definition.

A flow wraps a function with a name, a version, retries, hooks and a parameter schema.
Calling it runs it in this process (``dockyard.flow_runs``); ``serve``/``to_deployment``
hand it to dockyard's serve process, which runs each flow run in its own subprocess (and
enforces ``timeout_seconds`` there; in-process calls do not). Option checks live in
``dockyard.flow_options``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import os
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar, Unpack

from dockyard.core import options as _opts
from dockyard.core import parameters as _params
from dockyard.core.options import (
    HOOK_KINDS,
    OPTION_NAMES,
    PREFECT_ONLY_OPTIONS,
    DeploymentOptions,
    check_flow_name,
)
from dockyard.errors import ParameterError, UsageError
from dockyard.execution import inprocess as _runs
from dockyard.execution.inprocess import (
    FlowRun,
    State,
    hook_logger,
    logger,
    print_capture,
    print_logger,
)

__all__ = [
    "HOOK_KINDS",
    "OPTION_NAMES",
    "PREFECT_ONLY_OPTIONS",
    "DeploymentOptions",
    "Flow",
    "FlowRun",
    "State",
    "check_flow_name",
    "flow",
    "hook_logger",
    "logger",
    "print_capture",
    "print_logger",
]

P = ParamSpec("P")
R = TypeVar("R")


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
        self.name = check_flow_name(_opts.default_name(fn) if name is None else name)
        self.version = version if version is not None else _opts.file_hash(fn)
        self.description = description if description is not None else inspect.getdoc(fn)
        self.flow_run_name = _opts.check_flow_run_name(flow_run_name)
        self.retries = _opts.check_retries(retries)
        self.retry_delay_seconds = _opts.check_delay(retry_delay_seconds)
        self.timeout_seconds = _opts.check_timeout(timeout_seconds)
        self.should_validate_parameters = bool(validate_parameters)
        self.log_prints = log_prints
        hooks = (on_running, on_completion, on_failure, on_cancellation, on_crashed)
        for kind, given in zip(HOOK_KINDS, hooks, strict=True):
            setattr(self, f"on_{kind}_hooks", _opts.check_hooks(kind, given))
        ignored = dict(
            task_runner=task_runner, persist_result=persist_result, result_storage=result_storage,
            result_serializer=result_serializer, cache_result_in_memory=cache_result_in_memory,
        )  # fmt: skip
        self.__dict__.update(ignored)
        _opts.log_ignored(ignored)

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
        return _opts.source_file(self.unbound_fn)

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
        _opts.check_option_names("with_options", options)
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
            result = template(dict(parameters)) if _opts.takes_argument(template) else template()
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
        _runs.run_hooks(self, kind, flow_run, state)

    # Decorator forms, as in Prefect: ``@my_flow.on_completion``.
    on_completion = _hook_decorator("completion")
    on_failure = _hook_decorator("failure")
    on_cancellation = _hook_decorator("cancellation")
    on_crashed = _hook_decorator("crashed")
    on_running = _hook_decorator("running")

    # ── running in this process ────────────────────────────────────────────────────

    def call_fn(self, parameters: Mapping[str, Any]) -> Any:
        """Call the function once with (validated) parameters; run a coroutine to the end."""
        result = _runs.invoke(self.fn, parameters)
        return asyncio.run(result) if inspect.iscoroutine(result) else result

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow here: validate, hooks, retries; return the result or raise.

        For an async flow this returns a coroutine doing the same.
        """
        flow_run = _runs.new_run(self, _runs.bind_arguments(self, args, kwargs))
        if self.isasync:
            return _runs.run_async(self, flow_run)  # type: ignore[no-any-return]
        return _runs.run_sync(self, flow_run)  # type: ignore[no-any-return]

    # ── serving ────────────────────────────────────────────────────────────────────

    def to_deployment(self, name: str | None = None, **options: Unpack[DeploymentOptions]) -> Any:
        """A ``dockyard.deployments.Deployment`` of this flow, to pass to ``serve``.

        ``options`` are keyword-only: ``interval``, ``cron``, ``rrule``, ``paused``,
        ``schedules``, ``concurrency_limit``, ``parameters``, ``description``, ``tags``,
        ``version``, ``enforce_parameter_schema`` (default True) and the rest of
        ``DeploymentOptions``.
        """
        from dockyard.core.deployments import Deployment

        return Deployment.from_flow(self, name=name, **options)

    def serve(
        self,
        name: str | None = None,
        *,
        global_limit: int | None = None,
        pause_on_shutdown: bool = True,
        print_starting_message: bool = True,
        limit: int | None = None,
        webserver: bool = False,
        **options: Unpack[DeploymentOptions],
    ) -> None:
        """Serve this flow (blocks): schedules, ad-hoc runs, one subprocess per run.

        ``options`` are those of ``to_deployment`` (``interval=``, ``cron=``, ``tags=``, ...).
        ``global_limit`` caps this deployment's concurrent runs; ``limit`` caps the whole
        serve process (None = dockyard's finite default, 0 = no limit).
        """
        from dockyard.service.serving import serve

        deployment = self.to_deployment(name, concurrency_limit=global_limit, **options)
        serve(
            deployment, limit=limit, pause_on_shutdown=pause_on_shutdown,
            webserver=webserver, print_starting_message=print_starting_message,
        )  # fmt: skip

    def deploy(
        self,
        name: str,
        *,
        image: str,
        build: bool = True,
        push: bool = False,
        **options: Any,
    ) -> Any:
        """Build (and optionally push) an image serving this flow as deployment ``name``.

        ``options`` are the deployment options of ``to_deployment`` (``interval=``,
        ``cron=``, ``parameters=``, ...) and the build options of
        ``dockyard.build.build_image`` (``base_image=``, ``project=``, ``requirements=``,
        ``offline=``, ``platform=``, ...). With ``build=False`` the image must exist and
        is only pushed (when ``push=True``). Returns ``dockyard.build.BuiltImage`` (or
        None when nothing was built).
        """
        from dockyard import build as _build

        build_opts = {k: options.pop(k) for k in list(options) if k in _build.BUILD_OPTIONS}
        if not build:
            if push:
                _build.push_image(image, progress=build_opts.get("progress"))
            return None
        deployment = self.to_deployment(name, **options)
        build_opts.setdefault("project", deployment.base_dir)
        return _build.build_image(image, deployments=[deployment], push=push, **build_opts)

    @classmethod
    def from_source(cls, source: Any, entrypoint: str) -> Flow[..., Any]:
        """Load a flow from ``source`` and an entrypoint ``path/file.py:flow``.

        ``source`` is a local directory, a git URL (https, ssh, file:// or a path to a
        repository), or a ``GitRepository``. Served git flows are pulled every
        ``DOCKYARD_PULL_INTERVAL`` seconds (60) and new runs use the new code.
        """
        if isinstance(source, (str, os.PathLike)) and not _looks_remote(str(source)):
            return _load_local(Path(source), entrypoint)
        return _load_remote(source, entrypoint)


def flow(__fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a ``Flow``: ``@flow``, ``@flow()`` or ``@flow(name=..., ...)``.

    Takes the keyword options of ``Flow`` (see its docstring); any other is a TypeError.
    """
    _opts.check_option_names("flow", options)
    if __fn is not None:
        return Flow(__fn, **options)
    return functools.partial(Flow, **options)


flow.from_source = Flow.from_source  # type: ignore[attr-defined]


# ── helpers ────────────────────────────────────────────────────────────────────────


def _looks_remote(source: str) -> bool:
    return "://" in source or source.startswith("git@") or source.endswith(".git")


def _load_local(directory: Path, entrypoint: str) -> Flow[..., Any]:
    from dockyard.execution.loading import load_flow

    if not directory.is_dir():
        raise UsageError(f"source directory {str(directory)!r} not found")
    loaded = load_flow(entrypoint, base_dir=directory)
    loaded.source, loaded.entrypoint = str(directory.resolve()), entrypoint
    return loaded


def _load_remote(source: Any, entrypoint: str) -> Flow[..., Any]:
    from dockyard.service.sourcing import load_remote_flow

    return load_remote_flow(source, entrypoint)
