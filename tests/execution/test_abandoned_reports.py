"""Recovery finds an attempt's report even when its serve process died before storing the
attempt's identity: in a run directory beside the new process's that no live process holds.

Real run processes and real run directories; the dead one is made by a process that
creates it and is killed with SIGKILL, as a serve process would be.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

from dockyard.core.states import RunState
from dockyard.execution.process import SubprocessExecutor
from dockyard.execution.workdir import WorkDir
from tests.execution.test_run_task_runs import ran
from tests.execution.test_run_task_runs import spec as task_reports_spec

DIES_HOLDING_A_RUN_DIRECTORY = """
import os, sys
from pathlib import Path
from dockyard.execution.workdir import WorkDir
print(WorkDir.create(Path(sys.argv[1]), clean=False).path, flush=True)
os.kill(os.getpid(), 9)
"""


def dead_run_directory(parent: Path) -> Path:
    """A run directory whose serve process was killed (its lock died with it)."""
    done = subprocess.run(
        [sys.executable, "-c", DIES_HOLDING_A_RUN_DIRECTORY, str(parent)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    return Path(done.stdout.strip())


def test_a_report_without_a_stored_identity_is_found_in_a_dead_run_directory(
    tmp_path: Path,
) -> None:
    dead = dead_run_directory(tmp_path)
    run = task_reports_spec("reports", attempt=2, count=2)
    handle, outcome = ran(run, dead)  # what the killed serve process had started there
    assert outcome.result is not None and outcome.result.state is RunState.COMPLETED

    mine = WorkDir.create(tmp_path, clean=False)  # the next start's own directory
    try:
        executor = SubprocessExecutor(mine.path)
        found = executor.reported(None, run.run_id, 2)
        assert found is not None and found.state is RunState.COMPLETED
        assert [t.name for t in executor.reported_task_runs(None, run.run_id, 2)] == [
            "say-0", "say-1",
        ]  # fmt: skip
        assert executor.reported(None, run.run_id, 1) is None  # another attempt reported nothing
        assert executor.reported(None, uuid.uuid4().hex, 2) is None
    finally:
        mine.close()
    assert handle.files.result.exists()  # read, not removed: removal is clean_stale's


def test_a_live_processes_run_directory_is_never_read(tmp_path: Path) -> None:
    alive = WorkDir.create(tmp_path, clean=False)  # a live serve process holds it
    try:
        run = task_reports_spec("reports", count=1)
        _handle, outcome = ran(run, alive.path)
        assert outcome.result is not None
        mine = WorkDir.create(tmp_path, clean=False)
        try:
            assert SubprocessExecutor(mine.path).reported(None, run.run_id, 1) is None
        finally:
            mine.close()
    finally:
        alive.close()
