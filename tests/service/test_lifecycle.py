"""The serve lifecycle driven directly: ticks under a fake clock, exit requests by call.

A real SQLite store in ``tmp_path`` and real run subprocesses; nothing of ours is mocked.
The clock is the only thing the test controls: ``on_tick(now)`` is called by hand instead
of from ``main_loop``, and ``handle_exit`` instead of a signal.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from dockyard.api import Flow
from dockyard.core.deployments import Deployment
from dockyard.core.policies import Trigger
from dockyard.core.records import RunRecord
from dockyard.core.states import TERMINAL, RunState
from dockyard.execution.loading import load_flow
from dockyard.service.lifecycle import ServeService
from dockyard.settings import Settings, load_settings
from dockyard.store import open_store
from dockyard.store.aio import AsyncStore
from tests.helpers import FLOWS, metric

T = TypeVar("T")
T0 = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
SLOT = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
"""The first 60 s slot after ``T0`` (interval schedules are anchored at midnight)."""
NAME = "noop/d"
DEADLINE_SECONDS = 60.0
RUNNING_OR_DONE = TERMINAL | {RunState.RUNNING}


class FakeClock:
    """What the service reads as "now"; the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCKYARD_* of the developer's shell; load_flow's sys.path edits are undone."""
    for key in [k for k in os.environ if k.startswith("DOCKYARD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def deployment() -> Deployment:
    flow = load_flow("behaviours.py:noop", FLOWS)  # the test process may import user code
    assert isinstance(flow, Flow)
    return flow.to_deployment("d", interval=60)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"state": str(tmp_path / "state.db"), "webserver": False})


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Await ``check`` until it returns something truthy; fail after ``DEADLINE_SECONDS``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {DEADLINE_SECONDS}s waiting for {what}")
        await asyncio.sleep(0.05)  # polling interval; the deadline above bounds the wait


async def finished(store: AsyncStore, run_id: str) -> RunRecord | None:
    run = await store.get_run(run_id)
    return run if run.state in TERMINAL else None


def test_first_tick_sets_the_cursor_then_the_due_slot_is_claimed_pending_and_started(
    deployment: Deployment, settings: Settings, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    service = ServeService([deployment], settings, clock=clock, handle_signals=False)

    async def go() -> RunRecord:
        await service.startup()
        store = service.store
        assert store is not None
        try:
            # First tick: nothing has run yet, the cursor starts at now, no slot is due.
            assert await service.on_tick(T0) == SLOT
            record = await store.get_deployment(NAME)
            assert record is not None and record.cursor == T0
            assert await store.count_runs() == 0

            # Past the slot: exactly that slot is claimed and handed to the supervisor.
            clock.now = SLOT + timedelta(seconds=1)
            assert await service.on_tick(clock.now) == SLOT + timedelta(seconds=60)
            runs = await store.list_runs(deployment=NAME)
            assert len(runs) == 1
            run = runs[0]
            assert (run.trigger, run.scheduled_at, run.attempt) == ("schedule", SLOT, 1)

            async def started() -> RunRecord | None:
                current = await store.get_run(run.id)
                return current if current.state is not RunState.PENDING else None

            assert (await eventually(started, "the run to start")).state in RUNNING_OR_DONE
            # Wait for the end too: shutdown() outside serve() cannot drain a run in flight
            # (its drain loop waits on the wake-up event that only serve() creates).
            await eventually(lambda: finished(store, run.id), "the run to finish")
            history = await store.state_history(run.id)
            # Claimed Pending in one write: no Scheduled event before it.
            assert [event.state for event in history] == [
                RunState.PENDING,
                RunState.RUNNING,
                RunState.COMPLETED,
            ]
            return run
        finally:
            await service.shutdown()

    run = asyncio.run(go())
    assert service.status.exit_code == 0
    with open_store(tmp_path / "state.db") as store:
        assert store.count_runs() == 1
        assert store.get_run(run.id).state is RunState.COMPLETED


def test_first_exit_request_drains_and_the_second_forces_exit_code_1(
    deployment: Deployment, settings: Settings
) -> None:
    service = ServeService([deployment], settings, clock=FakeClock(T0), handle_signals=False)

    async def go() -> None:
        await service.startup()
        try:
            assert service.status.ready
            service.handle_exit()
            status = service.status
            assert (status.should_exit, status.draining, status.force_exit) == (True, True, False)
            service.handle_exit()
            assert (status.should_exit, status.draining, status.force_exit) == (True, True, True)
        finally:
            await service.shutdown()

    asyncio.run(go())
    assert service.status.exit_code == 1
    assert not service.status.ready


def test_one_exit_request_is_a_clean_exit(deployment: Deployment, settings: Settings) -> None:
    service = ServeService([deployment], settings, clock=FakeClock(T0), handle_signals=False)

    async def go() -> None:
        await service.startup()
        service.handle_exit()
        await service.shutdown()

    asyncio.run(go())
    assert not service.status.force_exit
    assert service.status.exit_code == 0


def test_give_up_exits_with_code_1(deployment: Deployment, settings: Settings) -> None:
    service = ServeService([deployment], settings, clock=FakeClock(T0), handle_signals=False)
    service.give_up()
    status = service.status
    assert status.exit_code == 1
    assert (status.should_exit, status.draining, status.force_exit) == (True, True, False)
    asyncio.run(service.shutdown())  # never started: nothing to drain, the code stays
    assert service.status.exit_code == 1


def test_ready_only_once_the_scheduler_has_ticked_so_health_answers_200_too(
    deployment: Deployment, settings: Settings
) -> None:
    """A probe that saw /ready 200 must not see /health 503 "starting" right after."""
    service = ServeService([deployment], settings, clock=FakeClock(T0), handle_signals=False)

    async def go() -> None:
        await service.startup()
        try:
            assert service.ops.health().status == "starting"
            ready = await service.ops.readiness()
            assert (ready.status, ready.reason) == ("starting", "the scheduler has not ticked yet")
            await service._guarded_tick(T0)
            assert service.ops.health().status == "ok"
            assert (await service.ops.readiness()).status == "ready"
        finally:
            await service.shutdown()

    asyncio.run(go())
    assert service.status.exit_code == 0


def test_a_scheduled_run_waiting_for_the_limit_is_counted_missed_once(
    settings: Settings, tmp_path: Path
) -> None:
    flow = load_flow("behaviours.py:sleeper", FLOWS)
    assert isinstance(flow, Flow)
    sleeper = flow.to_deployment("d", interval=3600)
    limited = load_settings({"state": str(tmp_path / "state.db"), "webserver": False, "limit": 1})
    service = ServeService([sleeper], limited, clock=FakeClock(T0), handle_signals=False)

    async def waited() -> float | None:
        text = (await service.ops.metrics_text()).decode()
        labels = {"deployment": "sleeper/d", "reason": "limit"}
        return metric(text, "dockyard_scheduled_runs_missed_total", **labels)

    async def go() -> None:
        await service.startup()
        store = service.store
        assert store is not None
        try:
            first, second = [
                await store.create_run(
                    sleeper.new_run({"seconds": 30}, T0 + timedelta(seconds=i), Trigger.SCHEDULE)
                )
                for i in range(2)
            ]
            await service.on_tick(T0)
            await service.on_tick(T0)  # still waiting: not counted again
            assert (await store.get_run(first.id)).state is RunState.RUNNING
            assert (await store.get_run(second.id)).state is RunState.PENDING
            assert await waited() == 1
            for run in (first, second):
                await service.supervisor.cancel_run(run.id, "test over")
            await eventually(lambda: finished(store, first.id), "the first run to stop")
        finally:
            await service.shutdown()

    asyncio.run(go())
