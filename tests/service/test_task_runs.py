"""Task runs and tags through a started serve service: real SQLite, real run processes.

The flows are tests/e2e/flows/task_reports.py. The scheduler loop is driven by calling
``on_tick`` (no ``serve()``); every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.api import Flow
from dockyard.core.records import RunRecord, TaskRunRecord
from dockyard.core.states import TERMINAL, RunState
from dockyard.execution.loading import load_flow
from dockyard.service.lifecycle import ServeService
from dockyard.service.supervisor import Verdict, settle_task_runs
from dockyard.settings import Settings, load_settings
from tests.helpers import FLOWS
from tests.service.test_lifecycle import eventually

T0 = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCKYARD_* of the developer's shell; load_flow's sys.path edits are undone."""
    for key in [k for k in os.environ if k.startswith("DOCKYARD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"state": str(tmp_path / "state.db"), "webserver": False})


def service_of(settings: Settings, flow: str, **options: Any) -> ServeService:
    loaded = load_flow(f"task_reports.py:{flow}", FLOWS)  # the test process may import it
    assert isinstance(loaded, Flow)
    deployment = loaded.to_deployment("d", **options)
    return ServeService([deployment], settings, handle_signals=False, starting_message=False)


async def run_to_end(service: ServeService, run: RunRecord) -> RunRecord:
    """Tick the scheduler (which starts the Pending run) until the run has ended."""
    store = service.store
    assert store is not None

    async def ended() -> RunRecord | None:
        await service.on_tick(datetime.now(UTC))
        current = await store.get_run(run.id)
        return current if current.state in TERMINAL else None

    return await eventually(ended, f"run {run.id[:8]} to end")


def counted(service: ServeService, deployment: str, state: str) -> float | None:
    labels = {"deployment": deployment, "state": state}
    return service.metrics.registry.get_sample_value("dockyard_task_runs_total", labels)


# -- the rule for task runs an attempt left unfinished -----------------------------------------

TASK = TaskRunRecord("t", "r", "say-0", "say", "Running", started_at=T0)
LATER = T0 + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("reported", "verdict", "expected"),
    [
        (
            TASK,
            Verdict(RunState.CRASHED, "process killed by SIGKILL"),
            ("Crashed", LATER, "the flow run's process ended before this task run finished "
             "(process killed by SIGKILL)"),
        ),
        (
            TaskRunRecord("t", "r", "say-0", "say", "Pending"),
            Verdict(RunState.COMPLETED, None),
            ("Crashed", LATER, "the flow run's process ended before this task run finished"),
        ),
        (
            TASK,
            Verdict(RunState.FAILED, "timed out after 5s and was killed"),
            ("Crashed", LATER, "the flow run's process ended before this task run finished "
             "(timed out after 5s and was killed)"),
        ),
        (
            TASK,
            Verdict(RunState.CANCELLED, "cancelled through the API"),
            ("Cancelled", LATER, "cancelled with its flow run"),
        ),
        (
            TaskRunRecord("t", "r", "say-0", "say", "Running", ended_at=T0, error="its own"),
            Verdict(RunState.CRASHED, "x"),
            ("Crashed", T0, "its own"),
        ),
    ]
    + [
        (
            TaskRunRecord("t", "r", "say-0", "say", state, ended_at=T0),
            Verdict(verdict, "x"),
            (state, T0, None),
        )
        for state in ("Completed", "Cached", "Failed", "NotReady", "Cancelled", "Crashed")
        for verdict in (RunState.CRASHED, RunState.CANCELLED)
    ],
)  # fmt: skip
def test_a_task_run_left_unfinished_ends_with_its_attempt(
    reported: TaskRunRecord, verdict: Verdict, expected: tuple[str, datetime, str | None]
) -> None:
    [settled] = settle_task_runs([reported], verdict, LATER)

    assert (settled.state, settled.ended_at, settled.error) == expected
    assert (settled.id, settled.name, settled.started_at) == (
        reported.id,
        reported.name,
        reported.started_at,
    )


# -- through the service -------------------------------------------------------------------------


def test_an_ad_hoc_run_has_the_deployment_tags_and_its_own_and_its_flow_sees_them(
    settings: Settings,
) -> None:
    service = service_of(settings, "shows_tags", tags=["etl", "team"])

    async def go() -> tuple[RunRecord, RunRecord, list[str]]:
        await service.startup()
        try:
            created = await service.ops.trigger_run("shows-tags/d", {}, ["adhoc", "etl"])
            ended = await run_to_end(service, created)
            assert service.store is not None
            lines = [line.line for line in await service.store.get_logs(created.id)]
            return created, ended, lines
        finally:
            await service.shutdown()

    created, ended, lines = asyncio.run(go())
    assert created.tags == ("etl", "team", "adhoc")
    assert (ended.state, ended.tags) == (RunState.COMPLETED, ("etl", "team", "adhoc"))
    assert "tags: adhoc,etl,team" in lines


def test_a_scheduled_run_has_the_deployment_tags(settings: Settings) -> None:
    slot = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
    loaded = load_flow("task_reports.py:shows_tags", FLOWS)
    assert isinstance(loaded, Flow)
    deployment = loaded.to_deployment("d", interval=60, tags=["nightly"])
    clock = [T0]
    service = ServeService(
        [deployment], settings, clock=lambda: clock[0], handle_signals=False,
        starting_message=False,
    )  # fmt: skip

    async def go() -> list[RunRecord]:
        await service.startup()
        store = service.store
        assert store is not None
        try:
            await service.on_tick(T0)
            clock[0] = slot + timedelta(seconds=1)
            await service.on_tick(clock[0])
            runs = await store.list_runs()

            async def ended() -> RunRecord | None:
                run = await store.get_run(runs[0].id)
                return run if run.state in TERMINAL else None

            await eventually(ended, "the scheduled run to end")
            return runs
        finally:
            await service.shutdown()

    [run] = asyncio.run(go())
    assert (run.trigger, run.scheduled_at, run.tags) == ("schedule", slot, ("nightly",))


def test_the_task_runs_are_stored_with_the_run_and_counted(settings: Settings) -> None:
    service = service_of(settings, "reports")

    async def go() -> tuple[RunRecord, list[TaskRunRecord]]:
        await service.startup()
        try:
            created = await service.ops.trigger_run("reports/d", {"count": 2})
            ended = await run_to_end(service, created)
            return ended, await service.ops.run_task_runs(created.id)
        finally:
            await service.shutdown()

    run, task_runs = asyncio.run(go())
    assert run.state is RunState.COMPLETED
    assert [(t.name, t.state, t.cache_hit, t.run_id) for t in task_runs] == [
        ("say-0", "Completed", False, run.id),
        ("say-1", "Completed", True, run.id),
    ]
    assert counted(service, "reports/d", "Completed") == 2
    assert counted(service, "reports/d", "Crashed") == 0  # present from the start, at 0


def test_the_task_runs_of_a_crashed_attempt_end_crashed(settings: Settings) -> None:
    service = service_of(settings, "dies_in_a_task")

    async def go() -> tuple[RunRecord, list[TaskRunRecord]]:
        await service.startup()
        try:
            created = await service.ops.trigger_run("dies-in-a-task/d", {})
            ended = await run_to_end(service, created)
            return ended, await service.ops.run_task_runs(created.id)
        finally:
            await service.shutdown()

    run, task_runs = asyncio.run(go())
    assert (run.state, run.error) == (RunState.CRASHED, "process killed by SIGKILL")
    by_id = {t.id: t for t in task_runs}
    assert {i: t.state for i, t in by_id.items()} == {
        "done": "Completed",
        "left": "Crashed",
        "queued": "Crashed",
    }
    assert by_id["left"].error == (
        "the flow run's process ended before this task run finished (process killed by SIGKILL)"
    )
    assert by_id["done"].error is None
    assert run.ended_at is not None
    assert by_id["left"].ended_at is not None and by_id["left"].ended_at <= run.ended_at
    assert counted(service, "dies-in-a-task/d", "Crashed") == 2
    assert counted(service, "dies-in-a-task/d", "Completed") == 1


def test_the_task_runs_of_a_cancelled_run_end_cancelled(settings: Settings, tmp_path: Path) -> None:
    service = service_of(settings, "waits_in_a_task")
    marker = tmp_path / "reported"

    async def go() -> tuple[RunRecord, list[TaskRunRecord]]:
        await service.startup()
        try:
            params = {"seconds": 60, "marker": str(marker)}
            created = await service.ops.trigger_run("waits-in-a-task/d", params)

            async def reported() -> bool:
                await service.on_tick(datetime.now(UTC))
                return marker.exists()

            await eventually(reported, "the task run to be reported")
            await service.ops.cancel_run(created.id, "cancelled by the test")
            ended = await run_to_end(service, created)
            return ended, await service.ops.run_task_runs(created.id)
        finally:
            await service.shutdown()

    run, task_runs = asyncio.run(go())
    assert run.state is RunState.CANCELLED
    assert [(t.id, t.state, t.error) for t in task_runs] == [
        ("waiting", "Cancelled", "cancelled with its flow run")
    ]
    assert counted(service, "waits-in-a-task/d", "Cancelled") == 1


def test_set_run_tags_replaces_them_and_the_next_attempt_gets_them(settings: Settings) -> None:
    service = service_of(settings, "shows_tags", tags=["etl"])

    async def go() -> tuple[RunRecord, RunRecord, list[str]]:
        await service.startup()
        store = service.store
        assert store is not None
        try:
            created = await service.ops.trigger_run("shows-tags/d", {})
            retagged = await service.ops.set_run_tags(created.id[:8], ["replaced"])
            ended = await run_to_end(service, created)
            lines = [line.line for line in await store.get_logs(created.id)]
            return retagged, ended, lines
        finally:
            await service.shutdown()

    retagged, ended, lines = asyncio.run(go())
    assert retagged.tags == ("replaced",)
    assert ended.tags == ("replaced",)
    assert "tags: replaced" in lines
