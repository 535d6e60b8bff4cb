"""The fault loops of bench/faults.py, small: kill -9 cycles over one state file (with a
second serve process on it now and then) and concurrent ad-hoc POSTs. No attempt may run
while another attempt of its run is alive, no slot may run twice, no run may start again
once an attempt reported Completed, no request may answer 5xx, and every run posted must
execute exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, dockyard_env

pytestmark = pytest.mark.slow
CYCLES, POSTS = 10, 60


def test_kill_9_cycles_and_concurrent_posts_run_everything_once(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    argv = [sys.executable, str(REPO / "bench" / "faults.py"), "--cycles", str(CYCLES),
            "--posts", str(POSTS), "--out", str(out)]  # fmt: skip
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=900, env=dockyard_env(), cwd=REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    loop, posts = figures["kill_loop"], figures["concurrent_posts"]
    assert loop["cycles"] == CYCLES
    assert loop["runs"] >= CYCLES  # a slot a second, each process alive 2-6 s
    assert loop["attempts"] >= loop["runs"]
    assert (loop["duplicates"], loop["slots_run_twice"]) == (0, 0)
    # A run whose attempt reported Completed never starts again
    assert loop["runs_started_after_reporting"] == 0
    # (A kill between the report and the hook leaves a Completed run without its line.)
    assert 0 < loop["reported"] <= loop["states"].get("Completed", 0)
    assert set(loop["states"]) <= {"Completed", "Crashed"}  # nothing left Running or queued
    assert posts["answers"] == {"201": POSTS}
    assert (posts["5xx"], posts["runs"]) == (0, POSTS)
    assert (posts["runs_executed_twice"], posts["runs_not_executed"]) == (0, 0)
