"""``dockyard_ready`` follows readiness at every scrape, and the series alerts rely on
exist at 0 before anything has happened.

The serve lifecycle driven directly (as in ``test_lifecycle``: a real SQLite store, a
fake clock), with the real app in front of it; only ``/metrics`` is requested, never
``/ready``, so the gauge is current because of the scrape alone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dockyard.api import Flow
from dockyard.core.deployments import Deployment
from dockyard.execution.loading import load_flow
from dockyard.metrics import Metrics
from dockyard.service.lifecycle import ServeService
from dockyard.settings import Settings, load_settings
from dockyard.web.app import create_app
from dockyard.web.auth import TokenGuard
from tests.helpers import FLOWS, metric
from tests.service.test_lifecycle import T0, FakeClock, _isolated  # noqa: F401 (autouse fixture)

NAME = "noop/d"


@pytest.fixture
def deployment() -> Deployment:
    flow = load_flow("behaviours.py:noop", FLOWS)
    assert isinstance(flow, Flow)
    return flow.to_deployment("d", interval=60)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"state": str(tmp_path / "state.db"), "webserver": False})


def test_a_scrape_shows_ready_0_while_starting_1_when_ready_and_0_while_draining(
    deployment: Deployment, settings: Settings
) -> None:
    service = ServeService([deployment], settings, clock=FakeClock(T0), handle_signals=False)
    app = create_app(service.ops, TokenGuard(token=None, token_file=None, host="127.0.0.1"))
    seen: list[tuple[str, float | None]] = []

    async def scrape(client: httpx.AsyncClient, moment: str) -> None:
        answer = await client.get("/metrics")
        assert answer.status_code == 200, answer.text
        seen.append((moment, metric(answer.text, "dockyard_ready")))

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await scrape(client, "before startup")
            await service.startup()
            try:
                await scrape(client, "started, no tick yet")
                await service._guarded_tick(T0)
                await scrape(client, "ticked")
                await scrape(client, "ticked, scraped again")
                service.handle_exit()  # what SIGTERM does: drain
                await scrape(client, "draining")
            finally:
                await service.shutdown()
            await scrape(client, "shut down")

    asyncio.run(go())
    assert seen == [
        ("before startup", 0.0),
        ("started, no tick yet", 0.0),
        ("ticked", 1.0),
        ("ticked, scraped again", 1.0),
        ("draining", 0.0),
        ("shut down", 0.0),
    ]


def test_ready_follows_a_failing_tick_without_a_call_to_ready(
    deployment: Deployment, settings: Settings
) -> None:
    service = ServeService([deployment], settings, clock=FakeClock(T0), handle_signals=False)

    async def ready_value() -> float | None:
        return metric((await service.ops.metrics_text()).decode(), "dockyard_ready")

    async def go() -> list[float | None]:
        await service.startup()
        try:
            await service._guarded_tick(T0)
            values = [await ready_value()]
            service.status.tick_error = "StateStoreError: database is locked"
            values.append(await ready_value())  # /ready would answer 503 "unavailable"
            assert (await service.ops.readiness()).status == "unavailable"
            service.status.tick_error = None
            values.append(await ready_value())
            return values
        finally:
            await service.shutdown()

    assert asyncio.run(go()) == [1.0, 0.0, 1.0]


def test_run_and_source_counters_exist_at_0_before_their_first_increment() -> None:
    """``increase()`` of a series that appears at 1 is 0: the first failed run, refused
    revision or failed pull would never alert. So they are there at 0 beforehand."""
    metrics = Metrics()
    metrics.add_deployment(NAME)
    text = metrics.render().decode()
    for state in ("Completed", "Failed", "Crashed", "Cancelled"):
        assert metric(text, "dockyard_flow_runs_total", deployment=NAME, state=state) == 0
    assert metric(text, "dockyard_code_load_failures_total") is None  # no source yet

    # A first pull as the source manager reports it: its duration, then its result.
    metrics.code_sync_duration("repo", 0.2)
    metrics.code_sync("repo", "success", "a" * 40, datetime.now(UTC))
    text = metrics.render().decode()
    assert metric(text, "dockyard_code_load_failures_total", source="repo") == 0
    results = {
        r: metric(text, "dockyard_code_sync_total", source="repo", result=r)
        for r in ("success", "noop", "error", "refused")
    }
    assert results == {"success": 1, "noop": 0, "error": 0, "refused": 0}

    metrics.code_load_failure("repo")  # a refused revision: counted from 0
    metrics.code_sync("repo", "refused", None, None)
    text = metrics.render().decode()
    assert metric(text, "dockyard_code_load_failures_total", source="repo") == 1
    assert metric(text, "dockyard_code_sync_total", source="repo", result="refused") == 1

    metrics.code_serving("other", "b" * 40)  # a restart serving the last good revision
    text = metrics.render().decode()
    assert metric(text, "dockyard_code_load_failures_total", source="other") == 0
    assert metric(text, "dockyard_code_sync_total", source="other", result="error") == 0


def test_the_ready_gauge_has_no_labels_and_starts_at_0() -> None:
    text = Metrics().render().decode()
    lines = [line for line in text.splitlines() if line.startswith("dockyard_ready")]
    assert lines == ["dockyard_ready 0.0"]
