"""Tasks inside flows run in this process (a script calling a flow), real threads."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from dockyard import flow, get_run_logger, tags, task
from dockyard.cache_policies import INPUTS, NONE
from dockyard.context import FlowRunContext, TaskRunContext, get_run_context
from dockyard.exceptions import MissingContextError, UpstreamTaskError
from dockyard.futures import as_completed, wait
from dockyard.states import Completed, Failed, StateType
from dockyard.task_runners import ThreadPoolTaskRunner
from dockyard.tasks import exponential_backoff, task_input_hash
from dockyard.utilities.annotations import allow_failure, unmapped


@pytest.fixture(autouse=True)
def _state_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A script's cached results live beside its state file: keep both in tmp_path."""
    monkeypatch.setenv("DOCKYARD_STATE", str(tmp_path / "state.db"))


def test_outside_a_flow_a_task_is_just_its_function():
    @task(retries=3)
    def double(x: int) -> int:
        return x * 2

    assert double(4) == 8
    assert double.fn(5) == 10


def test_fails_twice_then_succeeds_with_three_attempts():
    attempts: list[int] = []

    @task(retries=2)
    def flaky() -> str:
        attempts.append(get_run_context().task_run.run_count)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    @flow
    def pipeline() -> str:
        return flaky()

    assert pipeline() == "ok"
    assert attempts == [1, 2, 3]


def test_an_exception_after_the_last_retry_propagates_as_in_plain_python():
    @task(retries=1)
    def broken() -> None:
        raise KeyError("missing")

    @flow
    def pipeline() -> str:
        try:
            broken()
        except KeyError as exc:
            return f"caught {exc}"
        return "not raised"

    assert pipeline() == "caught 'missing'"


def test_retry_condition_fn_stops_retries():
    calls: list[str] = []

    def only_timeouts(task, task_run, state) -> bool:
        with pytest.raises(ValueError):
            state.result()
        return False

    @task(retries=5, retry_condition_fn=only_timeouts)
    def fails() -> None:
        calls.append("x")
        raise ValueError("permanent")

    @flow
    def pipeline() -> bool:
        return fails(return_state=True).is_failed()

    assert pipeline() is True
    assert len(calls) == 1


def test_retry_delays_per_attempt_and_exponential_backoff():
    assert exponential_backoff(10)(3) == [10, 20, 40]

    @task(retries=3, retry_delay_seconds=[0, 0.01, 0.02])
    def t() -> None: ...

    assert [t.retry_delay_for(n) for n in (1, 2, 3, 4)] == [0, 0.01, 0.02, 0.02]
    backoff = t.with_options(retry_delay_seconds=exponential_backoff(1))
    assert [backoff.retry_delay_for(n) for n in (1, 2, 3)] == [1, 2, 4]
    assert backoff.retries == 3 and backoff.name == "t"


def test_a_timeout_fails_the_task_and_the_flow_sees_the_error():
    stopped = threading.Event()

    @task(timeout_seconds=0.2)
    def slow() -> None:
        try:
            while True:
                time.sleep(0.01)
        finally:
            stopped.set()  # the task's thread is stopped, not left running

    @flow
    def pipeline() -> str:
        try:
            slow()
        except TimeoutError as exc:
            return str(exc)
        return "no timeout"

    assert pipeline() == "Task run exceeded timeout of 0.2 second(s)"
    assert stopped.wait(10)


def test_map_over_100_items_with_4_workers_never_runs_more_than_4_at_once():
    lock = threading.Lock()
    running = {"now": 0, "max": 0}
    together = threading.Barrier(4, timeout=30)  # breaks unless 4 runs are in at once

    @task
    def work(item: int, factor: int) -> int:
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        together.wait()  # every run waits for three others: four at once, in 25 rounds
        with lock:
            running["now"] -= 1
        return item * factor

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def pipeline() -> list[int]:
        return work.map(range(100), unmapped(3)).result()

    assert pipeline() == [i * 3 for i in range(100)]
    assert running["max"] == 4


def test_map_errors_name_the_problem():
    @task
    def pair(a: int, b: int) -> int:
        return a + b

    @flow
    def different_lengths():
        pair.map([1, 2], [1, 2, 3])

    @flow
    def nothing_to_map():
        pair.map(1, 2)

    with pytest.raises(ValueError, match="different lengths"):
        different_lengths()
    with pytest.raises(TypeError, match="no iterable argument"):
        nothing_to_map()


def test_futures_chain_through_arguments_and_wait_for():
    order: list[str] = []

    @task
    def first() -> int:
        time.sleep(0.05)
        order.append("first")
        return 1

    @task
    def side_effect() -> None:
        order.append("side")

    @task
    def second(x: int) -> int:
        order.append("second")
        return x + 1

    @flow
    def pipeline() -> int:
        a = first.submit()
        s = side_effect.submit(wait_for=[a])
        b = second.submit(a, wait_for=[s])
        return b.result()

    assert pipeline() == 2
    assert order == ["first", "side", "second"]


def test_an_upstream_failure_leaves_the_downstream_not_ready_unless_allowed():
    @task
    def fails() -> int:
        raise RuntimeError("upstream broke")

    @task
    def downstream(x: object) -> str:
        return f"got {type(x).__name__}"

    @flow
    def pipeline():
        bad = fails.submit()
        blocked = downstream.submit(bad)
        allowed = downstream.submit(allow_failure(bad))
        blocked.wait()  # its state is final only once the upstream failed
        return blocked.state, allowed.result()

    blocked, allowed = pipeline()
    assert blocked.name == "NotReady" and blocked.type is StateType.PENDING
    with pytest.raises(UpstreamTaskError):
        blocked.result()
    assert allowed == "got RuntimeError"


def test_wait_and_as_completed():
    @task
    def sleepy(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def pipeline():
        futures = [sleepy.submit(s) for s in (0.2, 0.0)]
        finished = [f.result() for f in as_completed(futures)]
        done = wait(futures, timeout=10)
        return finished, len(done.done), len(done.not_done)

    assert pipeline() == ([0.0, 0.2], 2, 0)


def test_return_state_and_the_final_state_rule():
    @task
    def ok() -> int:
        return 1

    @task
    def bad() -> int:
        raise ValueError("no")

    @flow
    def swallowed() -> str:
        bad.submit().wait()
        return "returned normally"

    @flow
    def returns_futures():
        return [ok.submit(), bad.submit()]

    @flow
    def returns_a_state():
        return Completed(message="fine", data=42)

    @flow
    def returns_failed():
        return Failed(message="decided to fail")

    assert swallowed(return_state=True).is_completed()  # tasks failed, the flow returned
    state = returns_futures(return_state=True)
    assert state.is_failed() and state.message == "1/2 states failed."
    assert returns_a_state() == 42
    assert returns_failed(return_state=True).message == "decided to fail"
    state = ok.__wrapped__  # the function itself is kept
    assert state() == 1


def test_a_cached_task_is_not_rerun_within_its_expiration():
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(hours=1))
    def expensive(x: int) -> int:
        calls.append(x)
        return x * 10

    @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=-1))
    def expired(x: int) -> int:
        calls.append(-x)
        return x

    @task(cache_policy=NONE)
    def never(x: int) -> int:
        calls.append(100 + x)
        return x

    @flow
    def pipeline(x: int) -> list[object]:
        return [expensive(x), expired(x), never(x), expensive(x, return_state=True).name]

    assert pipeline(1) == [10, 1, 1, "Cached"]
    assert pipeline(1) == [10, 1, 1, "Cached"]  # a second flow run hits the cache too
    assert pipeline(2)[0] == 20
    assert calls == [1, -1, 101, -1, 101, 2, -2, 102]


def test_run_logger_names_the_run_and_is_missing_outside_one(capfd):
    @task(task_run_name="load-{table}")
    def load(table: str) -> None:
        get_run_logger().warning("loading %s", table)

    @flow(flow_run_name="nightly")
    def pipeline() -> None:
        get_run_logger().info("starting")
        load("users")

    pipeline()
    err = capfd.readouterr().err
    assert "| INFO    | Flow run 'nightly' - starting" in err
    assert "| WARNING | Task run 'load-users' - loading users" in err
    with pytest.raises(MissingContextError):
        get_run_logger()


def test_tags_and_runtime_inside_flows_and_tasks():
    from dockyard import runtime

    @task(tags=["io"])
    def inspect_run() -> tuple[object, ...]:
        ctx = TaskRunContext.get()
        assert ctx is not None and ctx.flow_run is not None
        assert ctx.flow_run.name == FlowRunContext.get().flow_run.name  # type: ignore[union-attr]
        return (runtime.task_run.name, sorted(runtime.task_run.tags), runtime.flow_run.name)

    @flow(flow_run_name="with-tags")
    def pipeline(x: int = 1) -> tuple[object, ...]:
        with tags("etl"):
            inner = inspect_run()
        return (*inner, runtime.flow_run.parameters, runtime.deployment.id)

    assert pipeline() == ("inspect_run-0", ["etl", "io"], "with-tags", {"x": 1}, None)
    assert runtime.flow_run.id is None and runtime.task_run.tags == []
    assert FlowRunContext.get() is None and TaskRunContext.get() is None


def test_async_tasks_in_an_async_flow():
    @task(retries=1)
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    @flow
    async def pipeline() -> list[int]:
        direct = await fetch(1)
        gathered = await asyncio.gather(fetch(2), fetch(3))
        submitted = fetch.submit(4).result()
        return [direct, *gathered, submitted]

    assert asyncio.run(pipeline()) == [2, 3, 4, 5]


def test_task_hooks_and_log_prints(capfd):
    seen: list[str] = []

    @task(log_prints=True, on_completion=[lambda t, run, state: seen.append(state.name)])
    def talk() -> int:
        print("hello from a task")
        return 1

    @talk.on_failure
    def never_called(t, run, state) -> None:
        seen.append("failure")

    @flow
    def pipeline() -> int:
        return talk()

    assert pipeline() == 1
    assert seen == ["Completed"]
    captured = capfd.readouterr()
    assert "Task run 'talk-0' - hello from a task" in captured.err
    assert "hello from a task" not in captured.out


def test_awaited_async_tasks_run_in_the_flows_event_loop():
    limit = {"now": 0, "max": 0}

    @task
    async def fetch(n: int, gate: asyncio.Semaphore) -> int:
        async with gate:  # created by the flow: only usable in the flow's own loop
            limit["now"] += 1
            limit["max"] = max(limit["max"], limit["now"])
            await asyncio.sleep(0.01)
            limit["now"] -= 1
        return n

    @flow
    async def pipeline() -> list[int]:
        gate = asyncio.Semaphore(3)
        return await asyncio.gather(*(fetch(n, gate) for n in range(12)))

    assert asyncio.run(pipeline()) == list(range(12))
    assert limit["max"] == 3  # all twelve started at once; the semaphore held them to 3
