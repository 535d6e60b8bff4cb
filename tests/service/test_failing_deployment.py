"""One deployment whose schedule raises at tick time: the others go on being scheduled.

The serve lifecycle driven directly (as in ``test_lifecycle``): a real SQLite store, real
run subprocesses, a fake clock. The one fault injected is a schedule whose maths raise, the
way an overflowing or buggy schedule did before it stopped every deployment of the process.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.api import Flow
from dockyard.core.deployments import Deployment
from dockyard.core.schedule_base import Schedule
from dockyard.execution.loading import load_flow
from dockyard.service.lifecycle import ServeService
from dockyard.settings import Settings, load_settings
from tests.helpers import FLOWS
from tests.service.test_lifecycle import FakeClock, _isolated  # noqa: F401 (autouse fixture)

T0 = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
SLOT = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
GOOD, BAD = "noop/good", "noop/bad"


class Broken(Schedule):
    """Stored like an interval; raises whenever it is asked for a fire time."""

    def next_after(self, dt: datetime) -> datetime | None:
        raise OverflowError("date value out of range")

    def latest_at_or_before(self, dt: datetime) -> datetime | None:
        raise OverflowError("date value out of range")

    def to_dict(self) -> dict[str, object]:
        return {"interval": 60.0}

    def describe(self) -> str:
        return "broken"


@pytest.fixture
def deployments() -> list[Deployment]:
    flow = load_flow("behaviours.py:noop", FLOWS)
    assert isinstance(flow, Flow)
    good = flow.to_deployment("good", interval=60)
    bad = flow.to_deployment("bad", interval=60).with_options(schedules=(Broken(),))
    return [bad, good]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"state": str(tmp_path / "state.db"), "webserver": False})


def test_a_failing_schedule_is_reported_and_the_other_deployment_still_runs(
    deployments: list[Deployment], settings: Settings
) -> None:
    clock = FakeClock(T0)
    service = ServeService(deployments, settings, clock=clock, handle_signals=False)

    async def go() -> None:
        await service.startup()
        store = service.store
        assert store is not None
        try:
            assert await service.on_tick(T0) == SLOT  # first tick: cursors start at now
            clock.now = SLOT + timedelta(seconds=1)
            await service._guarded_tick(clock.now)

            assert service.status.tick_error is None  # the tick as a whole worked
            runs = await store.list_runs()
            assert [(r.deployment, r.scheduled_at) for r in runs] == [(GOOD, SLOT)]

            ready = await service.ops.readiness()
            assert ready.status == "ready"
            assert ready.failing == {BAD: "OverflowError: date value out of range"}
            assert ready.reason is not None and BAD in ready.reason

            bad_view = await service.ops.deployment(BAD)
            assert bad_view.error == "OverflowError: date value out of range"
            assert bad_view.next_runs == []
            assert (await service.ops.deployment(GOOD)).error is None

            metrics = (await service.ops.metrics_text()).decode()
            assert f'dockyard_deployment_failing{{deployment="{BAD}"}} 1.0' in metrics
            assert f'dockyard_deployment_failing{{deployment="{GOOD}"}} 0.0' in metrics
            # Let the good run finish, so shutdown has nothing in flight to drain.
            assert service.supervisor is not None
            await service.supervisor.wait_all()
        finally:
            await service.shutdown()

    asyncio.run(go())
    assert service.status.exit_code == 0
