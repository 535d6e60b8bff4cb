"""The warm executor: runs forked from a fork server look, from inside and outside, like
runs started in a fresh interpreter, and a fork server that dies takes only its runs."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from dockyard.core.states import RunState
from tests.helpers import (
    dockyard_env,
    pid_alive,
    serve_process,
    stored_logs,
    wait_for,
    webserver_url,
)

pytestmark = pytest.mark.slow

FORKED_FROM = re.compile(r"runs are forked from process (\d+)")
TOKEN = "warm-test-token"


def fork_servers(output: str) -> list[int]:
    return [int(pid) for pid in FORKED_FROM.findall(output)]


def trigger(url: str, deployment: str, parameters: dict[str, object]) -> str:
    response = httpx.post(
        f"{url}/api/deployments/{deployment}/runs",
        json={"parameters": parameters},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ready(served) -> str:
    url = webserver_url(served)
    wait_for(lambda: "serving 1 deployment" in served.output(), what="serving")
    return url


def ended(served, run_id: str):
    runs = [r for r in served.runs() if r.id == run_id and r.ended_at is not None]
    return runs[0] if runs else None


@pytest.mark.parametrize("executor", ["warm", "fresh"])
def test_a_run_process_is_the_same_forked_or_fresh(project: Path, executor: str) -> None:
    env = dockyard_env(DOCKYARD_EXECUTOR=executor, DOCKYARD_API_TOKEN=TOKEN)
    with serve_process(["flows/forked.py:where"], project, env=env) as served:
        url = ready(served)
        out = project / "where.json"
        run_id = trigger(url, "where/where", {"out": str(out)})
        run = wait_for(lambda: ended(served, run_id), what="the run to end")
        assert run.state is RunState.COMPLETED, stored_logs(served.state_path, run_id)
        report = json.loads(out.read_text())
        servers = fork_servers(served.output())
        if executor == "warm":
            assert len(servers) == 1
            assert report["ppid"] == servers[0]  # forked by the fork server
        else:
            assert servers == []
            assert report["ppid"] == served.process.pid
        # Its own session and process group, as a fresh interpreter started by exec.
        assert report["sid"] == report["pgid"] == report["pid"] == run.pid
        assert report["cwd"] == str(project)
        assert report["path0"] == str(project)
        assert report["argv1"].endswith(".spec.json")
        assert report["stdin"] == "/dev/null"
        assert report["secret"] is None  # dockyard's secrets never reach flow code
        # What leftovers.py looks for: the run named in /proc/PID/environ.
        assert report["run_id"] == run_id
        assert report["proc_environ"] == [f"DOCKYARD_RUN_ID={run_id}"]
        assert f"reported from {report['pid']}" in "\n".join(stored_logs(served.state_path, run_id))


def test_a_fork_server_that_dies_crashes_its_runs_and_is_started_again(project: Path) -> None:
    env = dockyard_env(DOCKYARD_API_TOKEN=TOKEN)
    with serve_process(
        ["flows/forked.py:hang", "--limit", "2", "--shutdown-grace", "1"], project, env=env
    ) as served:
        url = ready(served)
        first_pid = project / "first.pid"
        run_id = trigger(url, "hang/hang", {"pid_file": str(first_pid)})
        run_pid = int(wait_for(lambda: first_pid.exists() and first_pid.read_text(), what="pid"))
        (server,) = fork_servers(served.output())
        os.kill(server, signal.SIGKILL)
        run = wait_for(lambda: ended(served, run_id), what="the run to end with its server")
        assert run.state is RunState.CRASHED
        assert "SIGKILL" in (run.error or "")
        assert not pid_alive(run_pid)
        # The next run gets a new fork server and runs as before; serve keeps serving.
        second_pid = project / "second.pid"
        trigger(url, "hang/hang", {"pid_file": str(second_pid)})
        wait_for(second_pid.exists, what="the next run to start")
        output = served.output()
        assert "the fork server exited; starting a new one" in output
        servers = fork_servers(output)
        assert len(servers) == 2 and servers[1] != server
        assert Path(f"/proc/{int(second_pid.read_text())}").exists()
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        served.signal(signal.SIGTERM)
        assert served.wait_exit(60) == 0
    assert not pid_alive(servers[1])  # the fork server goes with its serve process
