"""A real Prometheus server scrapes a real serve process's /metrics.

Prometheus comes from Debian (`apt-get install prometheus`, done by .ci/run). The test
starts its own `/usr/bin/prometheus` with its own config, a temporary TSDB and a free
loopback port, so it never depends on (or disturbs) a system Prometheus service.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    dockyard_env,
    free_port,
    require_prometheus_tool,
    serve_process,
    wait_for,
    webserver_url,
)

pytestmark = pytest.mark.slow
FLOWS = Path(__file__).parent / "flows"
PROMETHEUS = Path("/usr/bin/prometheus")
DEPLOYMENT = "noop/noop"


def require_prometheus() -> Path:
    """/usr/bin/prometheus; the test is skipped without it, or fails under CI=true."""
    return require_prometheus_tool(PROMETHEUS)


@pytest.fixture
def prometheus_binary() -> Path:
    return require_prometheus()


@contextlib.contextmanager
def prometheus_server(
    binary: Path, target: str, workdir: Path, rule_files: Sequence[Path] = ()
) -> Iterator[str]:
    """Run Prometheus scraping ``target`` (host:port) every second, evaluating the rules
    of ``rule_files`` every second; yield its base URL."""
    config = workdir / "prometheus.yml"
    rules = "".join(f"  - {json.dumps(str(path))}\n" for path in rule_files)
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + "scrape_configs:\n"
        "  - job_name: dockyard\n"
        "    scrape_timeout: 1s\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    except Exception as exc:
        exc.add_note(f"--- prometheus log ---\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        process.kill()
        process.wait(timeout=30)


def answers(client: httpx.Client, path: str, **params: Any) -> Any:
    """The `data` of a Prometheus API answer, or None while it cannot answer yet."""
    try:
        response = client.get(path, params=params)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    body = response.json()
    return body["data"] if body.get("status") == "success" else None


def target_up(client: httpx.Client, target: str) -> dict[str, Any] | None:
    data = answers(client, "/api/v1/targets")
    for active in (data or {}).get("activeTargets", []):
        if active["labels"].get("instance") == target and active["health"] == "up":
            return active
    return None


def series(client: httpx.Client, query: str) -> list[dict[str, Any]]:
    data = answers(client, "/api/v1/query", query=query)
    return (data or {}).get("result", [])


def completed_runs(client: httpx.Client) -> list[dict[str, Any]]:
    query = f'dockyard_flow_runs_total{{deployment="{DEPLOYMENT}",state="Completed"}}'
    return [s for s in series(client, query) if float(s["value"][1]) >= 1]


def test_prometheus_scrapes_flow_run_metrics(tmp_path, prometheus_binary):
    shutil.copytree(FLOWS, tmp_path / "flows")
    args = ["flows/behaviours.py:noop", "--interval", "1"]
    with serve_process(args, tmp_path, env=dockyard_env()) as served:
        target = webserver_url(served).removeprefix("http://")
        with (
            prometheus_server(prometheus_binary, target, tmp_path) as prom_url,
            httpx.Client(base_url=prom_url, timeout=5) as client,
        ):
            up = wait_for(lambda: target_up(client, target), 60, what="the target to be up")
            assert up["scrapeUrl"] == f"http://{target}/metrics"
            assert up["lastError"] == ""

            found = wait_for(lambda: completed_runs(client), 60, what="a Completed run series")
            assert found[0]["metric"]["__name__"] == "dockyard_flow_runs_total"
            assert found[0]["metric"]["job"] == "dockyard"

            for name in (
                "dockyard_runner_limit",
                "dockyard_scheduler_last_tick_timestamp_seconds",
                "dockyard_info",
                "dockyard_build_info",
            ):
                assert wait_for(lambda n=name: series(client, n), 30, what=f"series {name}")
            info = series(client, "dockyard_info")[0]
            assert info["metric"]["version"] and float(info["value"][1]) == 1
            assert float(series(client, "dockyard_runner_limit")[0]["value"][1]) == 5  # default
            assert series(client, "dockyard_flow_runs_created") == []  # OpenMetrics, no _created
