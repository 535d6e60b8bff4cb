"""The shipped alert rules and Grafana dashboard against a real Prometheus that scrapes a
real serve process.

The serve process serves deployments from a git repository (a bare repository in
tmp_path) chosen so that every series the dashboard shows exists: runs that complete
with task runs, runs that fail, a run slower than its interval whose slots are skipped
(missed, reason overlap), lateness of scheduled runs, pulls, and a pushed revision that
does not load (refused). Prometheus (Debian's /usr/bin/prometheus) loads
docker/prometheus/alerts.yml and evaluates it every second.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_prometheus import (
    answers,
    prometheus_server,
    require_prometheus,
    series,
    target_up,
)
from tests.git_project import Api, GitProject
from tests.helpers import dockyard_env, serve_process, webserver_url
from tests.test_monitoring_files import ALERTS, alert_rules, dashboard_queries

pytestmark = pytest.mark.slow

FLOWS = """\
import time

from dockyard import flow, task


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(a: int, b: int) -> int:
    return a + b


@flow
def works(x: int = 1) -> int:
    return add(double(x), double(x + 1))


@flow
def fails() -> None:
    raise RuntimeError("this flow always fails")


@flow
def slow(seconds: float = 4.0) -> None:
    time.sleep(seconds)
"""
CONFIG = """\
deployments:
  - entrypoint: flows/monitored.py:works
    name: often
    schedules: [{interval: 2}]
  - entrypoint: flows/monitored.py:fails
    name: often
    schedules: [{interval: 3}]
  - entrypoint: flows/monitored.py:slow
    name: overlapping
    schedules: [{interval: 1}]
    overlap: skip
"""
SCENARIO = {
    # What the deployments above must have produced, beyond series existing at 0.
    'dockyard_flow_runs_total{deployment="works/often", state="Completed"}': "completed runs",
    'dockyard_flow_runs_total{deployment="fails/often", state="Failed"}': "failed runs",
    'dockyard_task_runs_total{deployment="works/often", state="Completed"}': "task runs",
    'dockyard_scheduled_runs_missed_total{deployment="slow/overlapping", reason="overlap"}': (
        "slots skipped for overlap"
    ),
    "dockyard_schedule_lateness_seconds_count": "lateness observations",
    "dockyard_code_load_failures_total": "a refused revision",
    "dockyard_code_sync_last_success_timestamp_seconds": "a successful pull",
    "dockyard_code_revision_info": "the serving revision",
}
DEADLINE = 90.0
"""For the whole check after Prometheus is up: each query gets what is left of it."""


def values(client: httpx.Client, query: str) -> list[float]:
    return [float(s["value"][1]) for s in series(client, query)]


def rule_health(client: httpx.Client) -> dict[str, tuple[str, str]]:
    """Alert name → (health, lastError) of every loaded rule."""
    data = answers(client, "/api/v1/rules") or {}
    return {
        rule["name"]: (rule["health"], rule.get("lastError", ""))
        for group in data.get("groups", [])
        for rule in group["rules"]
    }


def poll(check: Any, deadline: float) -> Any:
    """``check()`` until truthy or the deadline (monotonic) passes; the last value."""
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_rules_load_and_every_dashboard_query_returns_data(tmp_path: Path) -> None:
    prometheus_binary = require_prometheus()
    project = GitProject(tmp_path)
    good = project.commit({"flows/monitored.py": FLOWS, "dockyard.yaml": CONFIG}, "flows")
    home = tmp_path / "home"
    home.mkdir()
    env = dockyard_env(HOME=str(home), DOCKYARD_SOURCE_DIR=str(tmp_path / "checkouts"))
    args = ["--source", project.url, "--config", "dockyard.yaml", "--source-pull-interval", "2"]
    with serve_process(args, tmp_path, env=env) as served:
        api = Api(served)
        with api.client:
            api.wait_revision(good, timeout=60)
            target = webserver_url(served).removeprefix("http://")
            with (
                prometheus_server(prometheus_binary, target, tmp_path, [ALERTS]) as prom_url,
                httpx.Client(base_url=prom_url, timeout=5) as client,
            ):
                check_monitoring(client, target, project, api)
        assert served.process.poll() is None


def check_monitoring(client: httpx.Client, target: str, project: GitProject, api: Api) -> None:
    deadline = time.monotonic() + DEADLINE
    up = poll(lambda: target_up(client, target), deadline)
    assert up, "Prometheus never scraped the serve process"
    assert up["labels"]["job"] == "dockyard"

    # A revision that does not load, pushed while Prometheus watches: refused.
    broken = project.commit({"flows/monitored.py": FLOWS + "\ndef broken(:\n"}, "bad")
    api.sync()
    api.wait_source("the broken revision refused", 60, refused_revision=broken)

    # Every rule of alerts.yml loaded and evaluated without an error.
    names = {rule["alert"] for rule in alert_rules()}

    def all_healthy() -> dict[str, tuple[str, str]] | None:
        health = rule_health(client)
        ok = health.keys() >= names and all(h == "ok" for h, _ in health.values())
        return health if ok else None

    healthy = poll(all_healthy, deadline)
    assert healthy, f"rules not all healthy: {rule_health(client)}"
    assert set(healthy) == names

    # The scenario produced what the dashboard is there to show.
    for query, what in SCENARIO.items():
        found = poll(lambda q=query: [v for v in values(client, q) if v > 0], deadline)
        assert found, f"no {what}: {query} {series(client, query)}"

    # Every query of every panel, as Grafana would send it, returns numbers.
    empty = []
    for panel, query in dashboard_queries():
        found = poll(lambda q=query: [v for v in values(client, q) if math.isfinite(v)], deadline)
        if not found:
            empty.append(f"{panel}: {query} -> {series(client, query)}")
    assert empty == [], "\n".join(empty)

    # The readiness gauge is current from scraping alone (the test never asks /ready).
    assert values(client, "dockyard_ready") == [1.0]
