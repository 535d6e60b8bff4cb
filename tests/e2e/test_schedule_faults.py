"""Schedules that passed validation and then hung or broke `dockyard serve`, run for real.

Refused ones exit 2 with one line and no traceback; the dense rule that used to block the
first tick for half a minute now answers /health and stops on SIGTERM. Deadlines are
generous (20 s) and bound waits only; no assertion measures time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import dockyard_env, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow
DEADLINE = 20.0


def serve(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dockyard", "serve", *args, "--state", "s.db"]
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=60, env=dockyard_env()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rrule", "FREQ=DAILY;INTERVAL=0"], "INTERVAL must be a whole number of at least 1"),
        (["--rrule", "FREQ=HOURLY;INTERVAL=-1"], "INTERVAL must be a whole number of at least 1"),
        (["--rrule", "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30"], "BYMONTHDAY=30 never occurs"),
        (["--rrule", "FREQ=DAILY;INTERVAL=7;BYDAY=TU"], "never fires within 30 years"),
        (["--interval", "0.5"], "interval: must be at least 1s, got 0.5s"),
    ],
)
def test_bad_schedules_exit_2_with_one_line(project, args, message):
    result = serve(project, "flows/behaviours.py:noop", *args, "--no-webserver")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_huge_catchup_window_in_dockyard_yaml_exits_2(project):
    (project / "dockyard.yaml").write_text(
        "deployments:\n"
        "  - entrypoint: flows/behaviours.py:noop\n"
        "    schedules: [{interval: 60}]\n"
        "    catchup_window: 1e15\n"
    )
    result = serve(project, "--config", "dockyard.yaml", "--no-webserver")
    assert result.returncode == 2, result.stderr
    assert "catchup_window: must be more than 0 and at most 31622400" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dense_rrule_from_an_old_start_neither_blocks_health_nor_sigterm(project, tmp_path):
    # From its 2020 start this walked ~200 million seconds on the event loop per question.
    args = ["flows/behaviours.py:noop", "--rrule", "FREQ=SECONDLY;INTERVAL=30"]
    with serve_process(args, project) as served:
        url = webserver_url(served)

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, DEADLINE, what="/health to answer 200")
        ready = httpx.get(f"{url}/ready", timeout=5).json()
        assert ready["status"] == "ready" and ready["failing"] == {}
        served.signal(signal.SIGTERM)
        assert served.wait_exit(timeout=DEADLINE) == 0
