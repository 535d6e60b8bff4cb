"""dockyard as PID 1 (as in a container without tini), in a fresh PID namespace."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.core.states import RunState
from tests.helpers import Served, dockyard_env, queue_run, wait_for, zombie_children

pytestmark = pytest.mark.slow
FLOWS = Path(__file__).parent / "flows"


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


@pytest.mark.skipif(not _namespaces_work(), reason="cannot create PID namespaces here")
def test_as_pid_1_it_reaps_orphans_and_drains_on_sigterm(tmp_path):
    shutil.copytree(FLOWS, tmp_path / "flows")
    state = tmp_path / "state.db"
    out_path = tmp_path / "out.log"
    command = [
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        sys.executable,
        "-m",
        "dockyard",
        "serve",
        "flows/behaviours.py:double_fork",
        "--interval",
        "3600",
        "--state",
        str(state),
    ]
    with open(out_path, "wb") as out:
        wrapper = subprocess.Popen(
            command, cwd=tmp_path, env=dockyard_env(), stdout=out, stderr=subprocess.STDOUT
        )
    served = Served(wrapper, out_path, state)
    try:
        dockyard_pid = wait_for(lambda: _children(wrapper.pid), what="PID 1 to start")[0]
        wait_for(lambda: "serving 1 deployment" in served.output(), what="startup")
        queue_run(state, "double-fork/double-fork", {"pid_file": str(tmp_path / "orphan.pid")})
        wait_for(lambda: served.completed(), what="the run to complete")
        # The orphan the flow left behind was re-parented to PID 1 (us) and reaped.
        wait_for(lambda: not zombie_children(dockyard_pid), timeout=15, what="zombies reaped")
        # PID 1 ignores signals it has no handler for; dockyard handles SIGTERM itself.
        subprocess.run(["kill", "-TERM", str(dockyard_pid)], check=True)
        assert wrapper.wait(timeout=30) == 0
    finally:
        if wrapper.poll() is None:
            wrapper.send_signal(signal.SIGKILL)
            wrapper.wait()
    assert served.runs()[0].state is RunState.COMPLETED
    assert "stopped" in served.output()
