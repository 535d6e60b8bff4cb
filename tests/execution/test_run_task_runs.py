"""A real run's child reports task runs; ``RunProcess.wait`` and recovery read them.

The flows (tests/e2e/flows/task_reports.py) write the lines the task engine writes, to the
path the executor put in their envelope. Real subprocesses; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockyard.core.states import RunState
from dockyard.execution.process import RunProcess, SubprocessExecutor, start_run
from dockyard.execution.spec import RunOutcome, RunSpec
from dockyard.execution.workdir import PREFIX
from tests.helpers import FLOWS

WAIT_SECONDS = 60.0
RUN_ID = uuid.uuid4().hex
"""Unique per test session: ending a run kills every process marked with its id, and
parallel test sessions must not kill each other's runs."""


def spec(flow: str, attempt: int = 1, **parameters: Any) -> RunSpec:
    return RunSpec(
        run_id=RUN_ID,
        deployment=f"{flow}/d",
        entrypoint=f"task_reports.py:{flow}",
        base_dir=str(FLOWS),
        parameters=parameters,
        attempt=attempt,
    )


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / f"{PREFIX}test"  # recovery reads only files in a run directory
    path.mkdir(mode=0o700)
    return path


def ran(run: RunSpec, work_dir: Path) -> tuple[RunProcess, RunOutcome]:
    """Start ``run``, wait for its end (with a deadline); the handle is not cleaned up."""
    lines: list[str] = []

    async def go() -> tuple[RunProcess, RunOutcome]:
        handle = await start_run(run, work_dir=work_dir, sink=lambda _s, line: lines.append(line))
        mode = stat.S_IMODE(handle.files.task_runs.stat().st_mode)
        assert mode == 0o600, oct(mode)  # private before the child writes anything
        try:
            return handle, await asyncio.wait_for(handle.wait(), WAIT_SECONDS)
        except BaseException:
            handle.kill()
            raise

    try:
        return asyncio.run(go())
    except BaseException:
        print("\n".join(lines))  # what the run printed, shown with the failure
        raise


def test_wait_reads_the_task_runs_of_the_attempt(
    work_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dockyard"):
        handle, outcome = ran(spec("reports", attempt=2, count=3, garbage=True), work_dir)

    assert outcome.result is not None and outcome.result.state is RunState.COMPLETED
    assert [(t.id, t.name, t.task_key, t.state) for t in outcome.task_runs] == [
        ("t0", "say-0", "say", "Completed"),
        ("t1", "say-1", "say", "Completed"),
        ("t2", "say-2", "say", "Completed"),
    ]
    assert [t.cache_hit for t in outcome.task_runs] == [False, False, True]
    assert {(t.run_id, t.flow_attempt) for t in outcome.task_runs} == {(RUN_ID, 2)}
    assert all(
        t.started_at and t.ended_at and t.ended_at >= t.started_at for t in outcome.task_runs
    )
    assert f"run {RUN_ID[:8]}: 3 malformed task run line(s) ignored" in caplog.messages
    assert handle.files.task_runs.name == f"{RUN_ID}-2.tasks.jsonl"
    handle.cleanup()
    assert not handle.files.task_runs.exists()
    assert list(work_dir.iterdir()) == []


def test_a_killed_attempt_leaves_its_task_runs_as_last_reported_and_recovery_reads_them(
    work_dir: Path,
) -> None:
    handle, outcome = ran(spec("dies_in_a_task"), work_dir)

    assert (outcome.exit_code, outcome.result) == (-9, None)
    reported = [(t.id, t.state) for t in outcome.task_runs]
    assert reported == [("done", "Completed"), ("left", "Running"), ("queued", "Pending")]
    # What a later serve process reads after this one died (kill -9) before cleaning up.
    executor = SubprocessExecutor(work_dir)
    again = executor.reported_task_runs(handle.identity, RUN_ID, 1)
    assert again == outcome.task_runs
    assert executor.reported_task_runs(None, RUN_ID, 1) == ()
    handle.cleanup()
    assert executor.reported_task_runs(handle.identity, RUN_ID, 1) == ()


def test_a_run_that_reports_no_task_runs_has_none(work_dir: Path) -> None:
    handle, outcome = ran(spec("reports", count=0), work_dir)

    assert outcome.result is not None and outcome.result.state is RunState.COMPLETED
    assert outcome.task_runs == ()
    handle.cleanup()
