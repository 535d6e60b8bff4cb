"""Running a flow in this process: ``FlowRun``, ``State``, hooks, print capture and retries.

``Flow.__call__`` runs here: validate, then attempt after attempt with the hooks around each.
The serve process runs each attempt in a subprocess instead (``dockyard.execution.child``),
which uses the same ``FlowRun``, ``State``, ``print_capture`` and ``Flow.run_hooks``.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import inspect
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dockyard.core import parameters as _params
from dockyard.core.states import RunState

if TYPE_CHECKING:
    from dockyard.core.flows import Flow

logger = logging.getLogger("dockyard.flows")
hook_logger = logging.getLogger("dockyard.hooks")
print_logger = logging.getLogger("dockyard.flow_runs")


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


# ── hooks ──────────────────────────────────────────────────────────────────────────


def run_hooks(flow: Flow[..., Any], kind: str, flow_run: FlowRun, state: State) -> None:
    """Call each hook as ``hook(flow, flow_run, state)``; log, never raise, its errors."""
    for hook in flow.hooks_for(kind):
        try:
            result = hook(flow, flow_run, state)
            if inspect.isawaitable(result):
                _run_coroutine_sync(result)
        except Exception:
            hook_logger.exception(
                "on_%s hook %s of flow %r failed (run %s)",
                kind, getattr(hook, "__qualname__", hook), flow.name, flow_run.id,
            )  # fmt: skip


def _run_coroutine_sync(awaitable: Any) -> Any:
    """Run an async hook to completion, even from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(awaitable)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, awaitable).result()


# ── arguments ──────────────────────────────────────────────────────────────────────


def invoke(fn: Callable[..., Any], parameters: Mapping[str, Any]) -> Any:
    """Call ``fn`` with a parameters dict: positional-only ones by position, extras as kwargs."""
    args, kwargs = [], {}
    names = set()
    for param in _params.signature_parameters(fn):
        names.add(param.name)
        if param.name not in parameters:
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(parameters[param.name])
        else:
            kwargs[param.name] = parameters[param.name]
    extra = {k: v for k, v in parameters.items() if k not in names}  # **kwargs
    return fn(*args, **kwargs, **extra)


def bind_arguments(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The parameters dict of a call ``flow(*args, **kwargs)``."""
    try:
        bound = inspect.signature(flow.fn).bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"flow {flow.name!r}: {exc}") from None
    params: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise TypeError(f"flow {flow.name!r} does not support *{name} arguments")
        elif kind is inspect.Parameter.VAR_KEYWORD:
            params.update(value)
        else:
            params[name] = value
    return params


def new_run(flow: Flow[..., Any], parameters: dict[str, Any]) -> FlowRun:
    """A ``FlowRun`` with validated parameters and its rendered name."""
    validated = flow.validate_parameters(parameters)
    name = flow.render_flow_run_name(validated)
    return FlowRun(id=uuid.uuid4().hex, name=name, deployment=None, parameters=validated)


# ── attempts and retries ───────────────────────────────────────────────────────────


def run_sync(flow: Flow[..., Any], flow_run: FlowRun) -> Any:
    """Attempt the run until it succeeds or the retries run out; return or raise."""
    for attempt in range(1, flow.retries + 2):
        flow_run = _start_attempt(flow, flow_run, attempt)
        try:
            with print_capture(flow):
                result = flow.call_fn(flow_run.parameters)
        except Exception as exc:
            time.sleep(_after_failure(flow, flow_run, exc))
            continue
        return _after_success(flow, flow_run, result)
    raise AssertionError("unreachable")  # pragma: no cover


async def run_async(flow: Flow[..., Any], flow_run: FlowRun) -> Any:
    """``run_sync`` for an async flow: awaits each attempt and sleeps without blocking."""
    for attempt in range(1, flow.retries + 2):
        flow_run = _start_attempt(flow, flow_run, attempt)
        try:
            with print_capture(flow):
                result = await invoke(flow.fn, flow_run.parameters)
        except Exception as exc:
            await asyncio.sleep(_after_failure(flow, flow_run, exc))
            continue
        return _after_success(flow, flow_run, result)
    raise AssertionError("unreachable")  # pragma: no cover


def _start_attempt(flow: Flow[..., Any], flow_run: FlowRun, attempt: int) -> FlowRun:
    flow_run = replace(flow_run, attempt=attempt)
    flow.run_hooks("running", flow_run, State(RunState.RUNNING))
    return flow_run


def _after_failure(flow: Flow[..., Any], flow_run: FlowRun, exc: Exception) -> float:
    """The delay before the next attempt; re-raise ``exc`` when none is left."""
    if flow_run.attempt <= flow.retries:
        logger.info("flow %r attempt %d failed: %r; retrying", flow.name, flow_run.attempt, exc)
        return flow.retry_delay_for(flow_run.attempt)
    message = f"{type(exc).__name__}: {exc}"
    flow.run_hooks("failure", flow_run, State(RunState.FAILED, message, exc))
    raise exc


def _after_success(flow: Flow[..., Any], flow_run: FlowRun, result: Any) -> Any:
    flow.run_hooks("completion", flow_run, State(RunState.COMPLETED, None, result))
    return result
