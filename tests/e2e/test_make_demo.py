"""`make demo PORT=…`, as the README's quick start runs it: a real make, a real serve process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.docker_support import http_status
from tests.helpers import REPO, dockyard_env, free_port, wait_for

pytestmark = pytest.mark.slow


def test_make_demo_serves_the_examples_on_the_port_given(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    venv = Path(sys.executable).parent.parent
    port = free_port()
    env = dockyard_env(DOCKYARD_STATE=str(tmp_path / "state.db"))
    env.pop("DOCKYARD_PORT")  # the port comes from make's PORT only
    # -o: the virtualenv counts as made (`make install` made it); this test runs the demo.
    command = [make, "-s", "-o", f"{venv}/bin/dockyard", "demo", f"PORT={port}", f"VENV={venv}"]
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        # A session of its own, so the SIGINT below reaches make and dockyard, as Ctrl+C does.
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        health = f"http://127.0.0.1:{port}/health"
        wait_for(lambda: http_status(health) == 200 or process.poll() is not None, 90, "/health")
        assert process.poll() is None, log.read_text()
        runs = f"http://127.0.0.1:{port}/api/deployments"
        assert http_status(runs) == 200
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    output = log.read_text()
    assert "stopped" in output, output[-2000:]
    assert http_status(health) is None  # nothing listens on the port any more
