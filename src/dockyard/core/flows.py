"""``FlowDefinition``: a workflow function with its name, version, retries, hooks and
parameter schema (pure: no clock, no I/O).

The public ``dockyard.Flow`` (``dockyard.api``) adds what a user calls on a flow: calling it
in this process, ``serve``, ``to_deployment``, ``deploy`` and ``from_source``. Option checks
live in ``dockyard.core.options``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, Self, TypeVar

from dockyard.core import options as _opts
from dockyard.core import parameters as _params
from dockyard.core.options import HOOK_KINDS, PREFECT_ONLY_OPTIONS, check_flow_name
from dockyard.core.policies import retry_delay
from dockyard.errors import ParameterError, UsageError

P = ParamSpec("P")
R = TypeVar("R")


def _hook_decorator(kind: str) -> Callable[[Any, Callable[..., Any]], Callable[..., Any]]:
    def register(self: FlowDefinition[..., Any], fn: Callable[..., Any]) -> Callable[..., Any]:
        self.hooks_for(kind).append(fn)
        return fn

    register.__name__ = f"on_{kind}"
    return register


def _check_task_runner(runner: Any) -> Any:
    """A task runner instance; Prefect accepts the class too. Any other runner is kept but
    tasks run on a ``ThreadPoolTaskRunner`` (dockyard has no Dask or Ray runner)."""
    return runner() if isinstance(runner, type) else runner


class FlowDefinition(Generic[P, R]):
    """A workflow: a function plus the options dockyard needs to run and serve it.

    Args:
        fn: The function (sync or async) defining the workflow.
        name: Defaults to the function name with ``_`` replaced by ``-``. It must be
            usable in a URL path segment (no ``/ % ? # \\``, control characters or
            surrounding whitespace).
        version: A label for the code (``dockyard.Flow`` defaults it to a hash of the file).
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
        task_runner: Where submitted tasks run (``ThreadPoolTaskRunner(max_workers=)``, the
            default; the class itself is accepted too).
        persist_result, result_storage, result_serializer, cache_result_in_memory:
            Prefect-only; accepted and ignored.
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
        self.source: Any = None
        """Where the code came from: a directory, or a GitRepository (``from_source``)."""
        self.entrypoint: str | None = None
        self.name = check_flow_name(_opts.default_name(fn) if name is None else name)
        self.version = version
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
        self.task_runner = _check_task_runner(task_runner)
        ignored = dict(
            persist_result=persist_result, result_storage=result_storage,
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
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the flow's parameters (without ``self`` on bound flows)."""
        return _params.parameter_schema(self.fn)

    def __get__(self, instance: Any, owner: type | None = None) -> Self:
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

    def with_options(self, **options: Any) -> Self:
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
        new = type(self)(self.unbound_fn, **current)
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
                errors: list[dict[str, object]] = [
                    {"loc": [k], "msg": "unknown parameter", "type": "extra_forbidden"}
                    for k in unknown
                ]
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
            return str(template.format(**parameters))
        except KeyError as exc:
            raise UsageError(
                f"flow_run_name {template!r} names parameter {exc.args[0]!r}, "
                f"which flow {self.name!r} does not have"
            ) from None
        except (IndexError, ValueError, AttributeError) as exc:
            raise UsageError(f"flow_run_name {template!r} cannot be rendered: {exc}") from None

    def retry_delay_for(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        return retry_delay(self.retry_delay_seconds, attempt)

    # ── hooks ──────────────────────────────────────────────────────────────────────

    def hooks_for(self, kind: str) -> list[Callable[..., Any]]:
        """The hooks of one kind: running, completion, failure, cancellation or crashed."""
        if kind not in HOOK_KINDS:
            raise ValueError(f"unknown hook kind {kind!r}; use one of: {', '.join(HOOK_KINDS)}")
        hooks: list[Callable[..., Any]] = getattr(self, f"on_{kind}_hooks")
        return hooks

    # Decorator forms, as in Prefect: ``@my_flow.on_completion``.
    on_completion = _hook_decorator("completion")
    on_failure = _hook_decorator("failure")
    on_cancellation = _hook_decorator("cancellation")
    on_crashed = _hook_decorator("crashed")
    on_running = _hook_decorator("running")
