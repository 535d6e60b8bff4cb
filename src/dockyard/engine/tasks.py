"""Running tasks inside a flow run: calls, ``submit`` and ``map``.

A task run resolves its upstream futures (``wait_for`` and futures among its arguments),
checks the cache, then makes attempts: each attempt runs the function (with its timeout),
and a failure is retried after its delay while retries remain and ``retry_condition_fn``
agrees. Every change of a task run is recorded for the serve process. A task called
outside any flow run runs the same way on its own (nothing is recorded).
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import inspect
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from dockyard.core.outcomes import (
    Cached,
    Completed,
    Failed,
    NotReady,
    Pending,
    Running,
    State,
    StateType,
    TimedOut,
    describe,
    state_message,
)
from dockyard.core.records import TaskRunRecord
from dockyard.core.tasks import TaskDefinition
from dockyard.engine import caching, results
from dockyard.engine.annotations import BaseAnnotation, allow_failure, quote, unmapped
from dockyard.engine.context import (
    FlowRunContext,
    TaskRun,
    TaskRunContext,
    current_tags,
    flow_run_context,
    in_task_run,
    task_run_context,
)
from dockyard.engine.futures import PrefectFuture, PrefectFutureList, visit
from dockyard.engine.logs import prints_logged, run_logger_for, show_run_logs
from dockyard.engine.runners import ThreadPoolTaskRunner
from dockyard.errors import UpstreamTaskError

logger = logging.getLogger("dockyard.task_runs")
_fallback_runner: ThreadPoolTaskRunner | None = None
_fallback_lock = threading.Lock()


def _no_results() -> results.ResultStore | None:
    return None


standalone_results: Callable[[], results.ResultStore | None] = _no_results
"""Where a task called outside any flow run caches (the face points it at the script's)."""


class TaskTimedOut(BaseException):
    """Raised inside a sync task's thread once its timeout has passed (stops its work)."""


# ── binding arguments ──────────────────────────────────────────────────────────────


def bind(
    task: TaskDefinition[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The task's parameters dict for a call (defaults applied)."""
    try:
        bound = inspect.signature(task.fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"task {task.name!r}: {exc}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def call_with(fn: Callable[..., Any], parameters: Mapping[str, Any]) -> Any:
    """Call ``fn`` with a parameters dict made by ``bind``."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name not in parameters:
            continue
        value = parameters[param.name]
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        elif param.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    return fn(*args, **kwargs)


# ── the public verbs ───────────────────────────────────────────────────────────────


def call(
    task: TaskDefinition[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    return_state: bool = False,
    wait_for: Iterable[Any] | None = None,
) -> Any:
    """``task(...)``: run now in this thread; the result (or the state) — or a coroutine."""
    flow_ctx = flow_run_context()
    if flow_ctx is None:
        show_run_logs()  # a task called on its own logs like one in a flow
    parameters = bind(task, args, kwargs)
    run = _new_run(task, parameters, flow_ctx)
    if task.isasync:
        return _awaitable(task, run, parameters, wait_for, flow_ctx, return_state)
    state = run_task(task, run, parameters, wait_for, flow_ctx)
    return state if return_state else state.result()


async def _awaitable(
    task: TaskDefinition[..., Any],
    run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: FlowRunContext | None,
    return_state: bool,
) -> Any:
    # In the caller's event loop, as in Prefect: the task may share its asyncio objects
    # (locks, semaphores, clients), and gathered tasks all run at once.
    state = await run_task_async(task, run, parameters, wait_for, flow_ctx)
    return state if return_state else state.result()


def submit(
    task: TaskDefinition[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    return_state: bool = False,
    wait_for: Iterable[Any] | None = None,
) -> Any:
    """``task.submit(...)``: a ``PrefectFuture`` of a run on the flow's task runner."""
    parameters = bind(task, args, kwargs)
    future = _submit(task, parameters, wait_for)
    if not return_state:
        return future
    future.wait()
    return future.state


def _submit(
    task: TaskDefinition[..., Any], parameters: dict[str, Any], wait_for: Any
) -> PrefectFuture:
    flow_ctx = flow_run_context()
    run = _new_run(task, parameters, flow_ctx)
    live = _LiveState()
    runner = flow_ctx.task_runner if flow_ctx is not None else _fallback()
    inner = runner.submit(lambda: run_task(task, run, parameters, wait_for, flow_ctx, live))
    return PrefectFuture(run.id, inner, live.get)


def map_runs(
    task: TaskDefinition[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    return_state: bool = False,
    wait_for: Iterable[Any] | None = None,
) -> Any:
    """``task.map(...)``: one submitted run per item of the iterable arguments."""
    parameters = bind(task, args, kwargs)
    calls = _mapped_parameters(task, parameters)
    futures = PrefectFutureList(_submit(task, p, wait_for) for p in calls)
    if return_state:
        futures.wait()
        return [f.state for f in futures]
    return futures


def _mapped_parameters(
    task: TaskDefinition[..., Any], parameters: dict[str, Any]
) -> list[dict[str, Any]]:
    static: dict[str, Any] = {}
    mapped: dict[str, list[Any]] = {}
    for name, value in parameters.items():
        if isinstance(value, PrefectFuture):
            value = value.result()  # a future of a list maps over the list
        if isinstance(value, (unmapped, quote)) or not _iterable(value):
            static[name] = value
        else:
            mapped[name] = list(value)
    if not mapped:
        raise TypeError(f"task {task.name!r}.map() got no iterable argument to map over")
    lengths = {name: len(items) for name, items in mapped.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"task {task.name!r}.map() got iterables of different lengths: {lengths}")
    count = next(iter(lengths.values()))
    return [{**static, **{n: items[i] for n, items in mapped.items()}} for i in range(count)]


def _iterable(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray)) or hasattr(value, "read"):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _fallback() -> ThreadPoolTaskRunner:
    """The runner of tasks submitted outside any flow run."""
    global _fallback_runner
    with _fallback_lock:
        if _fallback_runner is None:
            _fallback_runner = ThreadPoolTaskRunner().__enter__()
        return _fallback_runner


class _LiveState:
    def __init__(self) -> None:
        self.state: State | None = None

    def get(self) -> State:
        return self.state or Pending()


# ── one task run ───────────────────────────────────────────────────────────────────


def _new_run(
    task: TaskDefinition[..., Any], parameters: dict[str, Any], flow_ctx: FlowRunContext | None
) -> TaskRun:
    number = flow_ctx.next_number(task.task_key) if flow_ctx is not None else 0
    parent = task_run_context()
    tags = task.tags | current_tags() | (parent.task_run.tags if parent else frozenset())
    if flow_ctx is not None:
        tags |= frozenset(flow_ctx.root.flow_run.tags)
    try:
        name = task.render_run_name(_plain(parameters), number)
    except Exception as exc:  # a bad template must not stop the flow
        logger.warning("task_run_name of task %r could not be rendered: %s", task.name, exc)
        name = f"{task.name}-{number}"
    flow_run_id = flow_ctx.root.flow_run.id if flow_ctx is not None else None
    return TaskRun(uuid.uuid4().hex, name, task.name, parameters, tags, flow_run_id)


def _plain(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.unwrap() if isinstance(v, BaseAnnotation) else v for k, v in parameters.items()}


def run_task(
    task: TaskDefinition[..., Any],
    run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: FlowRunContext | None,
    live: _LiveState | None = None,
) -> State:
    """Run one task run to its final state (never raises an ``Exception`` of the task)."""
    report, ctx = _prepare(task, run, parameters, wait_for, flow_ctx, live)
    if isinstance(ctx, State):
        return ctx
    with in_task_run(ctx), prints_logged(ctx, task.log_prints):
        steps = _steps(task, ctx, report)
        try:
            step = next(steps)
            while True:
                if step is None:
                    step = steps.send(_one_attempt(task, ctx))
                else:
                    time.sleep(step)
                    step = steps.send(None)
        except StopIteration as done:
            return done.value


async def run_task_async(
    task: TaskDefinition[..., Any],
    run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: FlowRunContext | None,
) -> State:
    """``run_task`` for an async task awaited in an event loop: attempts run in that loop."""
    report, ctx = _prepare(task, run, parameters, wait_for, flow_ctx, None)
    if isinstance(ctx, State):
        return ctx
    with in_task_run(ctx), prints_logged(ctx, task.log_prints):
        steps = _steps(task, ctx, report)
        try:
            step = next(steps)
            while True:
                if step is None:
                    step = steps.send(await _one_attempt_async(task, ctx))
                else:
                    await asyncio.sleep(step)
                    step = steps.send(None)
        except StopIteration as done:
            return done.value


def _prepare(
    task: TaskDefinition[..., Any],
    run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: FlowRunContext | None,
    live: _LiveState | None,
) -> tuple[_Reporter, TaskRunContext | State]:
    """The reporter and the task run's context, or the NotReady state of a blocked run."""
    report = _Reporter(run, flow_ctx, live or _LiveState())
    upstream = _resolve_upstream(parameters, wait_for)
    if isinstance(upstream, State):
        return report, report.final(upstream, attempts=0)
    run.parameters = upstream
    return report, TaskRunContext(task, run, upstream, flow_ctx)


def _resolve_upstream(parameters: dict[str, Any], wait_for: Any) -> dict[str, Any] | State:
    """The arguments with futures replaced by results, or NotReady if one did not complete."""
    failed: list[str] = []

    def resolve(value: Any) -> Any:
        if isinstance(value, allow_failure):
            inner = value.unwrap()
            return (
                inner.result(raise_on_failure=False) if isinstance(inner, PrefectFuture) else inner
            )
        if isinstance(value, PrefectFuture):
            value.wait()
            state = value.state
            if not state.is_completed():
                failed.append(value.task_run_id)
                return None
            return state.result()
        return value

    for item in wait_for or ():
        resolve(item)
    resolved = {}
    for name, value in parameters.items():
        if isinstance(value, quote):
            resolved[name] = value.unwrap()
        elif isinstance(value, unmapped):
            resolved[name] = visit(value.unwrap(), resolve)
        else:
            resolved[name] = visit(value, resolve)
    if failed:
        message = f"upstream task run {failed[0]} did not reach a Completed state"
        return NotReady(message, data=UpstreamTaskError(message))
    return resolved


def _steps(
    task: TaskDefinition[..., Any], ctx: TaskRunContext, report: _Reporter
) -> Generator[float | None, State | None, State]:
    """The attempts of one task run, whoever drives them: it yields None for "run an
    attempt and send me its state", or seconds to sleep; it returns the final state."""
    run_log = run_logger_for(ctx)
    key = _cache_key(caching.policy_of(task), ctx)
    store = (
        ctx.flow_run_context.root.results
        if ctx.flow_run_context is not None
        else standalone_results()
    )
    if key is not None and store is not None and not task.refresh_cache:
        value = store.get(key)
        if value is not results.MISS:
            run_log.info("Finished in state Cached()")
            return report.final(Cached(data=value), attempts=0, cache_hit=True)
    attempt = 0
    while True:
        attempt += 1
        ctx.task_run.run_count = attempt
        report.running(attempt)
        state = yield None
        assert state is not None
        if state.is_completed() or not _should_retry(task, ctx, state, attempt):
            break
        delay = _jittered(task.retry_delay_for(attempt), task.retry_jitter_factor)
        run_log.warning(
            "Encountered exception during execution: %s. "
            "Retry %d/%d will start %g second(s) from now",
            state_message(state), attempt, task.retries, delay,
        )  # fmt: skip
        yield delay
    if state.is_completed():
        if key is not None and store is not None:
            store.put(key, state.data, task.cache_expiration)
        run_log.info("Finished in state %s", describe(state))
        _hooks(task, "completion", ctx, state)
    else:
        exc = state.data if isinstance(state.data, BaseException) else None
        run_log.error("Finished in state %s", describe(state), exc_info=exc)
        _hooks(task, "failure", ctx, state)
    return report.final(state, attempts=attempt)


def _cache_key(policy: caching.CachePolicy | None, ctx: TaskRunContext) -> str | None:
    if policy is None:
        return None
    flow_params = ctx.flow_run_context.flow_run.parameters if ctx.flow_run_context else {}
    try:
        key = policy.compute_key(ctx, ctx.parameters, flow_params)
    except Exception as exc:
        run_logger_for(ctx).warning("cache key could not be computed (%s); not cached", exc)
        return None
    return key


def _should_retry(
    task: TaskDefinition[..., Any], ctx: TaskRunContext, state: State, attempt: int
) -> bool:
    if attempt > task.retries:
        return False
    condition = task.retry_condition_fn
    if condition is None:
        return True
    try:
        return bool(condition(task, ctx.task_run, state))
    except Exception as exc:
        run_logger_for(ctx).error("retry_condition_fn raised %r: not retrying", exc)
        return False


def _jittered(delay: float, factor: float | None) -> float:
    if not factor or delay <= 0:
        return delay
    return max(0.0, delay * random.uniform(1 - min(factor, 1.0), 1 + factor))


def _one_attempt(task: TaskDefinition[..., Any], ctx: TaskRunContext) -> State:
    try:
        value = _invoke(task, ctx.parameters)
    except TaskTimedOut:
        return _timed_out(task)
    except Exception as exc:
        return Failed(f"Task run encountered an exception {type(exc).__name__}: {exc}", data=exc)
    return value if isinstance(value, State) else Completed(data=value)


async def _one_attempt_async(task: TaskDefinition[..., Any], ctx: TaskRunContext) -> State:
    try:
        value = await asyncio.wait_for(call_with(task.fn, ctx.parameters), task.timeout_seconds)
    except TimeoutError as exc:
        if task.timeout_seconds is None:
            return Failed(f"Task run encountered an exception TimeoutError: {exc}", data=exc)
        return _timed_out(task)
    except Exception as exc:
        return Failed(f"Task run encountered an exception {type(exc).__name__}: {exc}", data=exc)
    return value if isinstance(value, State) else Completed(data=value)


def _timed_out(task: TaskDefinition[..., Any]) -> State:
    message = f"Task run exceeded timeout of {task.timeout_seconds:g} second(s)"
    return TimedOut(message, data=TimeoutError(message))


def _invoke(task: TaskDefinition[..., Any], parameters: Mapping[str, Any]) -> Any:
    timeout = task.timeout_seconds
    if task.isasync:
        coroutine = call_with(task.fn, parameters)
        try:
            return asyncio.run(asyncio.wait_for(coroutine, timeout))
        except TimeoutError:
            if timeout is None:
                raise
            raise TaskTimedOut() from None
    if timeout is None:
        return call_with(task.fn, parameters)
    return _with_timeout(task.fn, parameters, timeout)


def _with_timeout(fn: Callable[..., Any], parameters: Mapping[str, Any], timeout: float) -> Any:
    """Run ``fn`` on its own thread; past ``timeout`` stop that thread's work and raise."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def body() -> None:
        try:
            outcome["value"] = context.run(call_with, fn, parameters)
        except TaskTimedOut:
            pass  # stopped by us: its result is not wanted any more
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    worker = threading.Thread(target=body, name="dockyard-task-timeout", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _raise_in(worker, TaskTimedOut)
        raise TaskTimedOut()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _raise_in(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Make ``thread`` raise ``exc_type`` at its next bytecode (a blocking C call first returns)."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
        )


def _hooks(task: TaskDefinition[..., Any], kind: str, ctx: TaskRunContext, state: State) -> None:
    for hook in task.hooks_for(kind):
        try:
            result = hook(task, ctx.task_run, state)
            if inspect.isawaitable(result):
                _complete(result)
        except Exception:
            logger.exception(
                "on_%s hook %s of task %r failed",
                kind,
                getattr(hook, "__qualname__", hook),
                task.name,
            )


def _complete(awaitable: Any) -> None:
    """Run an async hook to its end, also from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(awaitable)
        return
    worker = threading.Thread(target=asyncio.run, args=(awaitable,), name="dockyard-hook")
    worker.start()
    worker.join()


# ── reporting ──────────────────────────────────────────────────────────────────────


_RECORDED_NAMES = {"Cached": "Cached", "NotReady": "NotReady", "TimedOut": "Failed"}


class _Reporter:
    """Keeps the live state for the future and records each change for the serve process."""

    def __init__(self, run: TaskRun, flow_ctx: FlowRunContext | None, live: _LiveState) -> None:
        self.run, self.flow_ctx, self.live = run, flow_ctx, live

    def running(self, attempt: int) -> None:
        now = datetime.now(UTC)
        if self.run.start_time is None:
            self.run.start_time = now
        self.live.state = Running(timestamp=now)
        self._record("Running", attempt, None)

    def final(self, state: State, *, attempts: int, cache_hit: bool = False) -> State:
        state.timestamp = self.run.end_time = datetime.now(UTC)
        details = state.state_details
        details.task_run_id, details.flow_run_id = self.run.id, self.run.flow_run_id
        self.live.state = state
        name = _RECORDED_NAMES.get(state.name) or state.type.value.title()
        error = None if state.type is StateType.COMPLETED else state_message(state)
        self._record(name, max(attempts, 1) if attempts else 0, error, cache_hit=cache_hit)
        return state

    def _record(
        self, state: str, attempts: int, error: str | None, *, cache_hit: bool = False
    ) -> None:
        if self.flow_ctx is None:
            return
        root = self.flow_ctx.root
        record = TaskRunRecord(
            id=self.run.id, run_id=root.flow_run.id, name=self.run.name, task_key=self.run.task_key,
            state=state, attempts=attempts, started_at=self.run.start_time,
            ended_at=self.run.end_time if state not in ("Running", "Pending") else None,
            error=error, cache_hit=cache_hit, flow_attempt=root.flow_run.attempt,
        )  # fmt: skip
        try:
            root.recorder.record(record)
        except OSError as exc:  # a full disk must not fail the task
            logger.warning("task run %s not recorded: %s", self.run.name, exc)
