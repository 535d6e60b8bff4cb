"""Running a flow in this process: hooks, arguments, attempts and retries.

``Flow.__call__`` runs here: validate, then attempt after attempt, each in a flow run scope
(``engine.flows``: tasks, futures, run logs) with the hooks around it; the attempt's state
is what the flow returned under the final-state rule. The serve process runs each attempt
in a subprocess instead (``dockyard.execution.child``), which uses the same pieces.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from dockyard.core import parameters as _params
from dockyard.core.flows import FlowDefinition
from dockyard.core.names import friendly_run_name
from dockyard.core.outcomes import Failed, Running, State, describe, state_message
from dockyard.core.states import FlowRun
from dockyard.engine.flows import flow_run_scope, render_run_name, state_of
from dockyard.engine.logs import flow_run_logger, show_run_logs
from dockyard.engine.results import ResultStore, results_dir

logger = logging.getLogger("dockyard.flows")
hook_logger = logging.getLogger("dockyard.hooks")


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
    flow_run = FlowRun(id=uuid.uuid4().hex, name=None, deployment=None, parameters=validated)
    flow_run.name = render_run_name(flow, flow_run) or friendly_run_name(flow_run.id)
    return flow_run


# ── attempts and retries ───────────────────────────────────────────────────────────


def script_results() -> ResultStore:
    """Where a flow called in a plain script caches task results: beside its state file."""
    from dockyard.settings import load_state_setting, state_path

    return ResultStore(lambda: results_dir(state_path(load_state_setting(None))))


def run_sync(flow: FlowDefinition[..., Any], flow_run: FlowRun, return_state: bool = False) -> Any:
    """Attempt the run until it succeeds or the retries run out; return or raise."""
    show_run_logs()
    for attempt in range(1, flow.retries + 2):
        flow_run = _start_attempt(flow, flow_run, attempt)
        with _attempt_state() as outcome:
            with flow_run_scope(flow, flow_run, results=script_results()):
                outcome.returned(call_fn(flow, flow_run.parameters))
        if _done(flow, flow_run, outcome.state):
            break
        time.sleep(flow.retry_delay_for(flow_run.attempt))
    outcome.state.state_details.flow_run_id = flow_run.id
    return outcome.state if return_state else outcome.result()


async def run_async(
    flow: FlowDefinition[..., Any], flow_run: FlowRun, return_state: bool = False
) -> Any:
    """``run_sync`` for an async flow: awaits each attempt and sleeps without blocking."""
    show_run_logs()
    for attempt in range(1, flow.retries + 2):
        flow_run = _start_attempt(flow, flow_run, attempt)
        with _attempt_state() as outcome:
            with flow_run_scope(flow, flow_run, results=script_results()):
                outcome.returned(await invoke(flow.fn, flow_run.parameters))
        if _done(flow, flow_run, outcome.state):
            break
        await asyncio.sleep(flow.retry_delay_for(flow_run.attempt))
    outcome.state.state_details.flow_run_id = flow_run.id
    return outcome.state if return_state else outcome.result()


class _Outcome:
    """How an attempt ended: the state, and what the flow returned (if it returned)."""

    state: State
    value: Any = None
    from_value = False

    def returned(self, value: Any) -> None:
        self.state = state_of(value)
        self.value, self.from_value = value, not isinstance(value, State)

    def result(self) -> Any:
        """What calling the flow gives: what it returned, unless that was a State or it
        raised (then the state's result, which raises a failure), as in Prefect 3."""
        return self.value if self.from_value else self.state.result()


@contextlib.contextmanager
def _attempt_state() -> Iterator[_Outcome]:
    """An attempt's state: what the flow returned, or Failed holding what it raised."""
    outcome = _Outcome()
    try:
        yield outcome
    except Exception as exc:
        outcome.state = Failed(
            f"Flow run encountered an exception: {type(exc).__name__}: {exc}", data=exc
        )


def _start_attempt(flow: FlowDefinition[..., Any], flow_run: FlowRun, attempt: int) -> FlowRun:
    flow_run = replace(flow_run, attempt=attempt)
    if attempt == 1:
        flow_run_logger(flow, flow_run).info(
            "Beginning flow run %r for flow %r", flow_run.name, flow.name
        )
    run_hooks(flow, "running", flow_run, Running())
    return flow_run


def _done(flow: FlowDefinition[..., Any], flow_run: FlowRun, state: State) -> bool:
    """Run the hooks of a final attempt; False when the attempt failed and may be retried."""
    final = not state.is_failed() or flow_run.attempt > flow.retries
    if final:
        flow_run_logger(flow, flow_run).info("Finished in state %s", describe(state))
    if not state.is_failed():
        if state.is_completed():
            run_hooks(flow, "completion", flow_run, state)
        return True
    if flow_run.attempt <= flow.retries:
        logger.info(
            "flow %r attempt %d failed: %s; retrying",
            flow.name,
            flow_run.attempt,
            state_message(state),
        )
        return False
    run_hooks(flow, "failure", flow_run, state)
    return True
