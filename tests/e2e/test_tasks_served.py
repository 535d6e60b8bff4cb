"""Tasks inside served runs: task runs recorded, cache across runs, run logs, runtime,
cancelling a run in the middle of a mapped task."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.helpers import serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow
CONFIG = """deployments:
  - {entrypoint: "flows/tasking.py:cached", name: d}
  - {entrypoint: "flows/tasking.py:talkative", name: d}
  - {entrypoint: "flows/tasking.py:long_map", name: d}
"""


def _final(client: httpx.Client, run_id: str, timeout: float = 90) -> dict[str, object]:
    def done() -> dict[str, object] | None:
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["state"] in ("Completed", "Failed", "Cancelled", "Crashed") else None

    return wait_for(done, timeout, what=f"run {run_id} to end")


def _start(client: httpx.Client, deployment: str, parameters: dict[str, object]) -> str:
    created = client.post(f"/api/deployments/{deployment}/runs", json={"parameters": parameters})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.fixture
def served(project: Path):
    (project / "dockyard.yaml").write_text(CONFIG)
    with serve_process(["--config", "dockyard.yaml"], project) as process:
        url = webserver_url(process)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            yield client, process


def test_a_cached_task_is_not_rerun_across_two_served_runs(served, project: Path):
    client, _ = served
    params = {"x": 4, "marker_dir": str(project)}
    first = _final(client, _start(client, "cached/d", params))
    second = _final(client, _start(client, "cached/d", params))
    assert (first["state"], second["state"]) == ("Completed", "Completed")
    assert first["result"] == second["result"] == 40
    assert (project / "expensive.calls").read_text() == "4\n"  # the body ran once


def test_task_runs_logs_and_runtime_of_a_served_run(served):
    client, _ = served
    run_id = _start(client, "talkative/d", {})
    run = _final(client, run_id)
    assert run["state"] == "Completed", run
    result = run["result"]
    assert isinstance(result, dict) and result["id"] == run_id
    assert result["name"] == run["name"]  # runtime.flow_run.name is the API's name
    lines = [entry["line"] for entry in client.get(f"/api/runs/{run_id}/logs").json()["lines"]]
    assert any(
        f"| INFO    | Flow run '{run['name']}' - run logger line from {run['name']}" in line
        for line in lines
    )
    assert any(
        "| WARNING | Task run 'announce-0' - announcing third time lucky" in line for line in lines
    )
    tasks = {t["name"]: t for t in run["task_runs"]}
    assert tasks["flaky-0"]["state"] == "Completed" and tasks["flaky-0"]["attempts"] == 3
    assert tasks["announce-0"]["state"] == "Completed"


def test_cancelling_a_run_in_the_middle_of_a_mapped_task_stops_every_thread(served, project: Path):
    client, _ = served
    run_id = _start(client, "long-map/d", {"marker_dir": str(project)})
    wait_for(lambda: len(list(project.glob("busy-*.beat"))) >= 4, what="mapped tasks to run")
    pid = int((project / "busy-0.beat").read_text().split()[0])
    assert client.post(f"/api/runs/{run_id}/cancel").status_code in (200, 202)
    run = _final(client, run_id)
    assert run["state"] == "Cancelled"

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, what="the run's process (and with it every task thread) to end")
