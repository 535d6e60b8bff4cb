"""Schedules with parameters in the serve process: which runs a tick makes, and their keys.

A real SQLite store in ``tmp_path``, real run subprocesses and a fake clock: ``on_tick(now)``
is called by hand, as in ``test_lifecycle``. Every wait has a deadline (``eventually``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard.api import Flow
from dockyard.core.deployments import Deployment
from dockyard.core.policies import Trigger
from dockyard.core.records import RunRecord, slot_key
from dockyard.core.schedules import Cron, Interval
from dockyard.core.states import TERMINAL, RunState
from dockyard.execution.loading import load_flow
from dockyard.service.lifecycle import ServeService
from dockyard.settings import Settings, load_settings
from dockyard.store.aio import AsyncStore
from dockyard.web import views
from tests.helpers import FLOWS
from tests.service.test_lifecycle import eventually

T = TypeVar("T")
T0 = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
SLOT = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
"""The first minute slot after ``T0``."""
NAME = "hello/d"

EU = Interval(60, parameters={"name": "eu"}, slug="eu")
US = Interval(60, parameters={"name": "us", "count": 2}, slug="us")
OFF = Interval(30, parameters={"name": "never"}, active=False, slug="off")
SCHEDULES = [
    EU,
    Cron("* * * * *", parameters={"name": "eu"}),  # EU's parameters: the same runs
    US,
    Interval(60),  # no parameters: the deployment's
    Cron("* * * * *"),  # the same instants, no parameters: no more runs
    OFF,
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCKYARD_* of the developer's shell; load_flow's sys.path edits are undone."""
    for key in [k for k in os.environ if k.startswith("DOCKYARD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def hello() -> Flow:
    flow = load_flow("behaviours.py:hello", FLOWS)  # hello(name: str = "world", count: int = 1)
    assert isinstance(flow, Flow)
    return flow


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"state": str(tmp_path / "state.db"), "webserver": False})


def all_finished(store: AsyncStore, name: str, count: int) -> Callable[[], Awaitable[Any]]:
    async def check() -> list[RunRecord] | None:
        found = await store.list_runs(deployment=name)
        done = len(found) == count and all(r.state in TERMINAL for r in found)
        return found if done else None

    return check


def by_name(runs: list[RunRecord]) -> dict[str, RunRecord]:
    return {str(r.parameters["name"]): r for r in runs}


def serve_ticks(
    deployments: list[Deployment],
    settings: Settings,
    body: Callable[[ServeService, AsyncStore], Awaitable[T]],
) -> T:
    """Start a service under a fake clock at ``T0``, run ``body``, shut it down."""
    service = ServeService(deployments, settings, clock=lambda: T0, handle_signals=False)

    async def go() -> T:
        await service.startup()
        assert service.store is not None
        try:
            return await body(service, service.store)
        finally:
            await service.shutdown()

    result = asyncio.run(go())
    assert service.status.exit_code == 0
    return result


def test_each_parameter_set_is_one_run_of_the_slot_with_its_own_parameters_and_key(
    hello: Flow, settings: Settings
) -> None:
    deployment = hello.to_deployment("d", parameters={"name": "base"}, schedules=SCHEDULES)

    async def body(service: ServeService, store: AsyncStore) -> list[RunRecord]:
        await service.on_tick(T0)  # the cursor starts at T0
        await service.on_tick(SLOT + timedelta(seconds=1))
        runs = await eventually(all_finished(store, NAME, 3), "the slot's three runs to end")
        # The same instant again (a later tick, the cursor already past it): nothing new.
        await service.on_tick(SLOT + timedelta(seconds=2))
        assert await store.count_runs() == 3
        return runs

    runs = by_name(serve_ticks([deployment], settings, body))

    assert {name: run.parameters for name, run in runs.items()} == {
        "base": {"name": "base"},
        "eu": {"name": "eu"},  # the schedule's name over the deployment's
        "us": {"name": "us", "count": 2},
    }
    assert {name: run.slot_key for name, run in runs.items()} == {
        "base": slot_key(NAME, SLOT),  # the key of schedules without parameters: as before
        "eu": slot_key(NAME, SLOT, EU.slot_variant),
        "us": slot_key(NAME, SLOT, US.slot_variant),
    }
    assert {run.scheduled_at for run in runs.values()} == {SLOT}
    assert {run.trigger for run in runs.values()} == {"schedule"}
    assert {run.state for run in runs.values()} == {RunState.COMPLETED}


def test_a_slot_an_earlier_version_claimed_is_not_run_again(
    hello: Flow, settings: Settings
) -> None:
    deployment = hello.to_deployment("d", parameters={"name": "base"}, schedules=SCHEDULES)

    async def body(service: ServeService, store: AsyncStore) -> list[RunRecord]:
        await service.on_tick(T0)
        # What a version without schedule parameters stored for this slot: the plain key.
        earlier = deployment.new_run({"name": "base"}, SLOT, Trigger.SCHEDULE, RunState.COMPLETED)
        assert await store.claim_slot(earlier) is not None
        await service.on_tick(SLOT + timedelta(seconds=1))
        return await eventually(all_finished(store, NAME, 3), "the two new runs to end")

    runs = by_name(serve_ticks([deployment], settings, body))

    assert sorted(runs) == ["base", "eu", "us"]
    assert runs["base"].attempt == 1 and runs["base"].started_at is None  # never started


def test_an_inactive_schedule_never_fires_and_is_shown_with_its_options(
    hello: Flow, settings: Settings
) -> None:
    deployment = hello.to_deployment("d", schedules=[OFF, Interval(120, slug="slow")])

    async def body(service: ServeService, store: AsyncStore) -> dict[str, Any]:
        await service.on_tick(T0)
        for seconds in range(30, 121, 30):  # OFF's slots at :30, :00, :30; the other at 12:02
            await service.on_tick(T0.replace(second=0) + timedelta(seconds=seconds))
        runs = await eventually(all_finished(store, NAME, 1), "the one run to end")
        assert [r.parameters for r in runs] == [{}]
        shown = views.deployment_detail(await service.ops.deployment(NAME))
        return shown.model_dump(mode="json")

    detail = serve_ticks([deployment], settings, body)

    assert [(s["slug"], s["active"], s["parameters"]) for s in detail["schedules"]] == [
        ("off", False, {"name": "never"}),
        ("slow", True, {}),
    ]
    # Next runs come from the active schedule only (every 2 minutes, not every 30 s).
    times = [datetime.fromisoformat(t) for t in detail["next_runs"]]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [timedelta(minutes=2)] * 4


def test_a_schedule_parameter_that_escaped_the_load_checks_fails_only_its_run(
    hello: Flow, settings: Settings
) -> None:
    good = hello.to_deployment("good", interval=60)
    spec = hello.to_deployment("bad", interval=60).to_spec()
    spec["schedules"][0]["parameters"] = {"count": "many"}  # not an int; from_spec cannot tell
    bad = Deployment.from_spec(spec)

    async def body(service: ServeService, store: AsyncStore) -> list[RunRecord]:
        await service.on_tick(T0)
        await service.on_tick(SLOT + timedelta(seconds=1))
        await eventually(all_finished(store, "hello/good", 1), "the good run to end")
        return await eventually(all_finished(store, "hello/bad", 1), "the bad run to end")

    [run] = serve_ticks([bad, good], settings, body)

    assert run.state is RunState.FAILED
    assert run.parameters == {"count": "many"}
    assert "count" in (run.error or run.state_message or "")
