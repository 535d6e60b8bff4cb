"""The scheduler plans what is due or changed: pauses through this process's API, another
process's writes and new code revisions reach it. Ticks under a fake clock, a real SQLite
store, nothing of ours mocked (as in test_lifecycle)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.api import Flow
from dockyard.core.deployments import Deployment
from dockyard.execution.loading import load_flow
from dockyard.service.lifecycle import ServeService
from dockyard.settings import Settings, load_settings
from dockyard.store import open_store
from tests.helpers import FLOWS, metric
from tests.service.test_lifecycle import FakeClock, _isolated  # noqa: F401  (autouse fixture)

T0 = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
SLOT = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
"""The first 60 s slot after ``T0``."""
NAME = "noop/d"
SECOND = timedelta(seconds=1)


def noop(interval: float = 60) -> Deployment:
    flow = load_flow("behaviours.py:noop", FLOWS)
    assert isinstance(flow, Flow)
    return flow.to_deployment("d", interval=interval)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"state": str(tmp_path / "state.db"), "webserver": False})


def gauges(service: ServeService) -> tuple[float | None, float | None]:
    """This deployment's paused and next-fire gauges."""
    text = service.metrics.render().decode()
    return (
        metric(text, "dockyard_deployment_paused", deployment=NAME),
        metric(text, "dockyard_schedule_next_fire_timestamp_seconds", deployment=NAME),
    )


def missed_paused(service: ServeService) -> float | None:
    text = service.metrics.render().decode()
    labels = {"deployment": NAME, "reason": "paused"}
    return metric(text, "dockyard_scheduled_runs_missed_total", **labels)


def served(service: ServeService, clock: FakeClock, body: Callable[[], Awaitable[None]]) -> None:
    async def go() -> None:
        await service.startup()
        try:
            await body()
        finally:
            await service.shutdown()

    asyncio.run(go())


def test_a_pause_through_the_api_wakes_the_loop_and_counts_at_the_next_tick(
    settings: Settings,
) -> None:
    clock = FakeClock(T0)
    service = ServeService([noop()], settings, clock=clock, handle_signals=False)

    async def body() -> None:
        assert service.store is not None
        assert await service.on_tick(T0) == SLOT
        assert gauges(service) == (0, SLOT.timestamp())
        service._wake.clear()
        await service.ops.set_paused(NAME, True)
        assert service._wake.is_set()  # the loop ticks at once
        clock.now = T0 + SECOND  # well within a heartbeat
        await service.on_tick(clock.now)
        assert gauges(service) == (1, None)
        clock.now = SLOT + SECOND
        await service.on_tick(clock.now)
        assert await service.store.count_runs() == 0
        assert missed_paused(service) == 1
        await service.ops.set_paused(NAME, False)
        clock.now = SLOT + 2 * SECOND
        assert await service.on_tick(clock.now) == SLOT + 60 * SECOND
        assert gauges(service) == (0, (SLOT + 60 * SECOND).timestamp())

    served(service, clock, body)


def test_another_process_pausing_counts_at_the_slot_and_its_resume_within_a_heartbeat(
    settings: Settings, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    service = ServeService([noop()], settings, clock=clock, handle_signals=False)
    other = open_store(tmp_path / "state.db")  # what `dockyard deployment pause` writes

    async def body() -> None:
        assert service.store is not None
        await service.on_tick(T0)
        clock.now = SLOT - 2 * SECOND
        await service.on_tick(clock.now)  # reads every deployment (a heartbeat since T0)
        other.set_paused(NAME, True, now=clock.now)
        clock.now = SLOT + SECOND  # the slot, less than a heartbeat after that read
        assert (clock.now - (SLOT - 2 * SECOND)).total_seconds() < settings.heartbeat
        await service.on_tick(clock.now)
        assert await service.store.count_runs() == 0  # read right before it was planned
        assert missed_paused(service) == 1
        assert gauges(service)[0] == 1
        other.set_paused(NAME, False, now=clock.now)
        clock.now += timedelta(seconds=settings.heartbeat)
        await service.on_tick(clock.now)
        assert gauges(service) == (0, (SLOT + 60 * SECOND).timestamp())

    try:
        served(service, clock, body)
    finally:
        other.close()


def test_a_new_revision_of_a_deployment_is_planned_with_its_new_schedule(
    settings: Settings,
) -> None:
    clock = FakeClock(T0)
    service = ServeService([noop(interval=3600)], settings, clock=clock, handle_signals=False)

    async def body() -> None:
        assert service.registry is not None
        assert await service.on_tick(T0) == datetime(2024, 5, 1, 13, tzinfo=UTC)
        await service.registry.adopt([noop(interval=60)], T0)  # as a code pull does
        clock.now = T0 + SECOND
        assert await service.on_tick(clock.now) == SLOT
        assert gauges(service) == (0, SLOT.timestamp())

    served(service, clock, body)
