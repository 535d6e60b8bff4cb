"""Task runs and tags of a real `dockyard serve`: over HTTP, in metrics, in the CLI, and
after a kill -9 of the serve process. Real processes and sockets; every wait has a deadline.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest

from dockyard.core.states import RunState
from dockyard.store import open_store
from tests.cli.test_same_output import cli
from tests.helpers import metric, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow


def ended(client: httpx.Client, run_id: str) -> dict[str, Any] | None:
    run = client.get(f"/api/runs/{run_id}").json()
    return run if run["state"] not in ("Scheduled", "Pending", "Running") else None


def test_real_task_runs_and_tags_over_http_metrics_and_the_cli(project):
    args = ["flows/task_reports.py:tasks", "--interval", "3600", "--tag", "etl"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            created = client.post("/api/deployments/tasks/tasks/runs", json={"tags": ["adhoc"]})
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            assert created.json()["tags"] == ["etl", "adhoc"]
            run = wait_for(lambda: ended(client, run_id), what="the run to end")
            assert run["state"] == "Completed", run
            tasks = run["task_runs"]
            assert [(t["task_key"], t["state"]) for t in tasks] == [
                ("say", "Completed"),
                ("say", "Completed"),
                ("shout", "Failed"),
            ]
            shout = tasks[2]
            assert shout["name"] == "shout-hey" and "too loud: hey" in shout["error"]
            assert all(t["duration_seconds"] >= 0 for t in tasks)
            assert len({t["id"] for t in tasks}) == 3

            patched = client.patch(f"/api/runs/{run_id}", json={"tags": ["reviewed"]})
            assert (patched.status_code, patched.json()["tags"]) == (200, ["reviewed"])
            listed = client.get("/api/runs").json()["runs"]
            assert [r["tags"] for r in listed] == [["reviewed"]]

            metrics = client.get("/metrics").text
            total = "dockyard_task_runs_total"
            assert metric(metrics, total, deployment="tasks/tasks", state="Completed") == 2.0
            assert metric(metrics, total, deployment="tasks/tasks", state="Failed") == 1.0
            assert run_id not in metrics

        shown = cli("run", "inspect", run_id[:8], "--url", url)
        lines = shown.splitlines()
        assert "tags        reviewed" in lines
        header = lines.index("task runs")
        assert lines[header + 1].split() == [
            "NAME",
            "STATE",
            "ATTEMPTS",
            "DURATION",
            "CACHED",
            "ERROR",
        ]
        rows = [line.split() for line in lines[header + 2 : header + 5]]
        assert [(r[1], r[2], r[4]) for r in rows] == [
            ("Completed", "1", "no"),
            ("Completed", "1", "no"),
            ("Failed", "1", "no"),
        ]
        assert lines[header + 4].strip().startswith("shout-hey")
        assert "too loud: hey" in lines[header + 4]
        as_json = json.loads(cli("run", "inspect", run_id, "--url", url, "--json"))
        assert as_json["task_runs"] == tasks and as_json["tags"] == ["reviewed"]
        local = json.loads(
            cli("run", "inspect", run_id, "--state", str(served.state_path), "--json")
        )
        assert local == as_json
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0


def test_a_kill_9_of_serve_leaves_task_runs_that_the_next_start_records_crashed(project):
    marker = project / "reported"
    args = ["flows/task_reports.py:waits_in_a_task", "--interval", "3600"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            params = {"seconds": 120, "marker": str(marker)}
            created = client.post(
                "/api/deployments/waits-in-a-task/waits-in-a-task/runs", json={"parameters": params}
            )
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            wait_for(marker.exists, what="the task run to be reported")
        served.signal(signal.SIGKILL)
        served.wait_exit()
    with open_store(served.state_path) as store:
        assert store.get_run(run_id).state is RunState.RUNNING  # what a kill -9 leaves
        assert store.task_runs(run_id) == []  # stored only when an attempt ends
    with serve_process(args, project, state=served.state_path, name="again") as again:
        crashed = wait_for(lambda: again.runs(states=[RunState.CRASHED]), what="crashed run")
        assert crashed[0].id == run_id
        with open_store(again.state_path) as store:
            [task_run] = store.task_runs(run_id)
        assert (task_run.id, task_run.state) == ("waiting", "Crashed")
        assert "the flow run's process ended before this task run finished" in task_run.error
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0
