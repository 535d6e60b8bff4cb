"""Running a flow in this process: hooks, print capture, arguments and retries.

``Flow.__call__`` runs here: validate, then attempt after attempt with the hooks around each.
The serve process runs each attempt in a subprocess instead (``dockyard.execution.child``),
which uses the same ``print_capture``, ``run_hooks`` and ``call_fn``.
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
from dataclasses import replace
from typing import Any

from dockyard.core import parameters as _params
from dockyard.core.flows import FlowDefinition
from dockyard.core.states import FlowRun, RunState, State

logger = logging.getLogger("dockyard.flows")
hook_logger = logging.getLogger("dockyard.hooks")
print_logger = logging.getLogger("dockyard.flow_runs")


@contextlib.contextmanager
def print_capture(flow: FlowDefinition[..., Any]) -> Iterator[None]:
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


def run_hooks(flow: FlowDefinition[..., Any], kind: str, flow_run: FlowRun, state: State) -> None:
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


def call_fn(flow: FlowDefinition[..., Any], parameters: Mapping[str, Any]) -> Any:
    """Call the flow's function once with (validated) parameters; run a coroutine to the end."""
    result = invoke(flow.fn, parameters)
    return asyncio.run(result) if inspect.iscoroutine(result) else result


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
    flow: FlowDefinition[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
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


def new_run(flow: FlowDefinition[..., Any], parameters: dict[str, Any]) -> FlowRun:
    """A ``FlowRun`` with validated parameters and its rendered name."""
    validated = flow.validate_parameters(parameters)
    name = flow.render_flow_run_name(validated)
    return FlowRun(id=uuid.uuid4().hex, name=name, deployment=None, parameters=validated)


# ── attempts and retries ───────────────────────────────────────────────────────────


def run_sync(flow: FlowDefinition[..., Any], flow_run: FlowRun) -> Any:
    """Attempt the run until it succeeds or the retries run out; return or raise."""
    for attempt in range(1, flow.retries + 2):
        flow_run = _start_attempt(flow, flow_run, attempt)
        try:
            with print_capture(flow):
                result = call_fn(flow, flow_run.parameters)
        except Exception as exc:
            time.sleep(_after_failure(flow, flow_run, exc))
            continue
        return _after_success(flow, flow_run, result)
    raise AssertionError("unreachable")  # pragma: no cover


async def run_async(flow: FlowDefinition[..., Any], flow_run: FlowRun) -> Any:
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


def _start_attempt(flow: FlowDefinition[..., Any], flow_run: FlowRun, attempt: int) -> FlowRun:
    flow_run = replace(flow_run, attempt=attempt)
    run_hooks(flow, "running", flow_run, State(RunState.RUNNING))
    return flow_run


def _after_failure(flow: FlowDefinition[..., Any], flow_run: FlowRun, exc: Exception) -> float:
    """The delay before the next attempt; re-raise ``exc`` when none is left."""
    if flow_run.attempt <= flow.retries:
        logger.info("flow %r attempt %d failed: %r; retrying", flow.name, flow_run.attempt, exc)
        return flow.retry_delay_for(flow_run.attempt)
    message = f"{type(exc).__name__}: {exc}"
    run_hooks(flow, "failure", flow_run, State(RunState.FAILED, message, exc))
    raise exc


def _after_success(flow: FlowDefinition[..., Any], flow_run: FlowRun, result: Any) -> Any:
    run_hooks(flow, "completion", flow_run, State(RunState.COMPLETED, None, result))
    return result
