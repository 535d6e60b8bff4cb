"""Runs never execute twice and leave nothing behind: kill -9, two serve processes on one
state file, flows that leave processes holding their output, a state file deleted under a
running process, run directories of killed processes."""

from __future__ import annotations

import signal
import sqlite3
import stat
from pathlib import Path

import httpx
import pytest

from dockyard.core.results import decode_result
from dockyard.core.states import RunState
from dockyard.store import open_store
from tests.helpers import (
    dockyard_env,
    pid_alive,
    queue_run,
    read_ledger,
    serve_process,
    stored_logs,
    utc_now,
    wait_for,
    webserver_url,
)

pytestmark = pytest.mark.slow


def started(served, count: int = 1) -> bool:
    return f"serving {count} deployment" in served.output()


def pid_in(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text().strip(), what=str(path)))


def test_kill_9_never_leaves_a_run_going_and_the_next_start_kills_its_processes(project):
    """A flow that ignores SIGTERM dies with its serve process; what it started (a
    grandchild and an escaped daemon, both ignoring SIGTERM) is killed by the next start
    before the run is marked Crashed, so the retry never runs next to the first attempt."""
    pids = project / "pids"
    pids.mkdir()
    args = ["flows/leftovers.py:stubborn_tree", "--interval", "3600", "--shutdown-grace", "1"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "stubborn-tree/stubborn-tree", {"pid_dir": str(pids)})
        child = pid_in(pids / "child.pid")
        grandchild = pid_in(pids / "grandchild.pid")
        daemon = pid_in(pids / "daemon.pid")
        served.signal(signal.SIGKILL)
        served.wait_exit()
        wait_for(lambda: not pid_alive(child), timeout=15, what="the run to die with serve")
    # The run's own children cannot be reached by the kernel's parent-death signal.
    assert pid_alive(grandchild) and pid_alive(daemon)
    (pids / "child.pid").unlink()
    with serve_process(args, project, state=served.state_path, name="again") as again:

        def first_attempt_concluded() -> bool:
            record = [r for r in again.runs() if r.id == run.id][0]
            return record.attempt == 2 or record.state is not RunState.RUNNING

        wait_for(first_attempt_concluded, what="the first attempt to be concluded")
        # Killed before the run was concluded: nothing of attempt 1 remains.
        assert not pid_alive(grandchild) and not pid_alive(daemon)
        second = pid_in(pids / "child.pid")
        assert second != child
        again.signal(signal.SIGTERM)  # drains: attempt 2 ends with everything it started
        assert again.wait_exit() == 0
    for left in ("grandchild.pid", "daemon.pid"):
        pid = int((pids / left).read_text())
        wait_for(lambda pid=pid: not pid_alive(pid), timeout=15, what=f"{left} killed")
    assert "killed 2 process(es) it left running" in again.output()
    attempts = (pids / "attempts").read_text().splitlines()
    assert attempts == [f"start {child}", f"start {second}"]


def test_a_second_serve_process_on_the_same_state_leaves_the_first_ones_runs_alone(project):
    pid_file = project / "sleeper.pid"
    args = ["flows/behaviours.py:sleeper", "--interval", "3600"]
    with serve_process(args, project, name="first") as first:
        wait_for(lambda: started(first), what="startup")
        run = queue_run(
            first.state_path, "sleeper/sleeper", {"seconds": 20, "pid_file": str(pid_file)}
        )
        child = pid_in(pid_file)
        with serve_process(args, project, state=first.state_path, name="second") as second:
            wait_for(lambda: started(second), what="the second process to start")
            # Start-up recovery is over once the process says it serves.
            assert [r.state for r in second.runs()] == [RunState.RUNNING]
            assert pid_alive(child)
            done = wait_for(lambda: first.completed(), timeout=60, what="the run to complete")
            assert [r.id for r in done] == [run.id]
            second.signal(signal.SIGTERM)
            assert second.wait_exit() == 0
        first.signal(signal.SIGTERM)
        assert first.wait_exit() == 0
    history = [r.state for r in first.runs()]
    assert history == [RunState.COMPLETED]
    assert "serve process stopped" not in second.output()


def test_a_second_serve_process_takes_over_once_the_first_is_killed(project):
    pid_file = project / "sleeper.pid"
    args = ["flows/behaviours.py:sleeper", "--interval", "3600"]
    with serve_process(args, project, name="first") as first:
        wait_for(lambda: started(first), what="startup")
        queue_run(first.state_path, "sleeper/sleeper", {"seconds": 120, "pid_file": str(pid_file)})
        pid_in(pid_file)
        first.signal(signal.SIGKILL)
        first.wait_exit()
    with serve_process(args, project, state=first.state_path, name="second") as second:
        crashed = wait_for(lambda: second.runs(states=[RunState.CRASHED]), what="crashed run")
        assert "serve process stopped" in crashed[0].state_message
        second.signal(signal.SIGTERM)
        assert second.wait_exit() == 0


def test_a_run_ends_when_its_flow_returns_even_if_children_hold_its_output(project):
    pids = project / "pids"
    pids.mkdir()
    args = ["flows/leftovers.py:leaves_behind", "--interval", "3600"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "leaves-behind/leaves-behind", {"pid_dir": str(pids)})
        holder = pid_in(pids / "holder.pid")
        daemon = pid_in(pids / "daemon.pid")
        # The holder sleeps for 300 s: the run must not wait for it.
        done = wait_for(lambda: served.completed(), timeout=45, what="the run to complete")
        assert [r.id for r in done] == [run.id]
        wait_for(lambda: not pid_alive(holder), timeout=15, what="the stdout holder killed")
        wait_for(lambda: not pid_alive(daemon), timeout=15, what="the escaped daemon killed")
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0


def test_a_deleted_state_file_is_reported_and_stops_new_runs(project):
    counter = project / "counter"  # the runs work in the serve directory
    args = ["flows/leftovers.py:counter", "--interval", "1"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        wait_for(lambda: counter.exists(), what="a first run")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{served.state_path}{suffix}").unlink(missing_ok=True)

        def unready() -> dict | None:
            answer = httpx.get(f"{url}/ready", timeout=10)
            return answer.json() if answer.status_code == 503 else None

        body = wait_for(unready, timeout=30, what="/ready to report the deleted file")
        assert "was deleted" in body["reason"]
        runs_then = len(counter.read_text().splitlines())
        first_tick = httpx.get(f"{url}/health", timeout=10).json()["last_tick"]

        def ticks_later() -> bool:
            health = httpx.get(f"{url}/health", timeout=10).json()
            return health["last_tick"][:19] > first_tick[:19]  # a later second

        for _ in range(3):  # three more ticks, at least a second apart
            wait_for(ticks_later, timeout=30, what="the loop to tick")
            first_tick = httpx.get(f"{url}/health", timeout=10).json()["last_tick"]
        assert len(counter.read_text().splitlines()) <= runs_then + 1  # one in flight at most
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert "was deleted while dockyard was running" in served.output()


def test_run_directories_are_private_and_a_killed_process_leaves_none(project):
    """Each process keeps its runs' specs beside the state file, in a private directory
    the next start on that state removes after a kill -9 (nothing goes to $TMPDIR)."""
    tmp = project / "tmp"
    tmp.mkdir()
    env = dockyard_env(TMPDIR=str(tmp))
    pid_file = project / "sleeper.pid"
    args = ["flows/behaviours.py:sleeper", "--interval", "3600"]
    with serve_process(args, project, env=env) as served:
        owners = Path(f"{served.state_path}.owners")
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "sleeper/sleeper", {"seconds": 120, "pid_file": str(pid_file)})
        pid_in(pid_file)
        [left] = list(owners.glob("dockyard-runs-*"))
        assert stat.S_IMODE(left.stat().st_mode) == 0o700
        assert stat.S_IMODE(owners.stat().st_mode) == 0o700
        specs = list(left.glob("*.spec.json"))
        assert specs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in specs)
        served.signal(signal.SIGKILL)
        served.wait_exit()
    assert left.exists()  # what a kill -9 leaves
    with serve_process(args, project, env=env, state=served.state_path, name="again") as again:
        wait_for(lambda: started(again), what="restart")
        assert not left.exists()
        assert len(list(owners.glob("dockyard-runs-*"))) == 1  # its own
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0
    assert list(owners.glob("dockyard-runs-*")) == []
    assert not [p for p in tmp.iterdir() if "dockyard" in p.name]


def test_a_huge_output_line_is_stored_once_with_a_mark(project):
    args = ["flows/leftovers.py:long_line", "--interval", "3600"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "long-line/long-line")
        wait_for(lambda: served.completed(), timeout=60, what="completed")
        served.signal(signal.SIGTERM)
        served.wait_exit()
    logs = stored_logs(served.state_path, run.id)
    assert len(logs) == 2, [line[:80] for line in logs]
    assert logs[0].startswith("x" * 1000)
    assert logs[0].endswith(f"…[line truncated: {20_000_000 - 16_384} more bytes]")
    assert logs[1] == "after the long line"


def test_the_state_file_and_its_directory_are_private(project):
    state = project / "private" / "state.db"
    args = ["flows/behaviours.py:noop", "--interval", "3600"]
    with serve_process(args, project, state=state) as served:
        wait_for(lambda: started(served), what="startup")
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700


SLEEPER = ["flows/behaviours.py:sleeper", "--interval", "3600"]


def _queue_sleeper(served, pid_file: Path) -> tuple[object, int]:
    """Queue a 3 s run of the sleeper; the run and its process's pid once it started."""
    wait_for(lambda: started(served), what="startup")
    run = queue_run(served.state_path, "sleeper/sleeper", {"seconds": 3, "pid_file": str(pid_file)})
    return run, pid_in(pid_file)


def _next_start_records_it_completed(project, served, run) -> None:
    """The run was left Running; the next start takes its report: Completed, not retried."""
    assert [r.state for r in served.runs()] == [RunState.RUNNING]
    with serve_process(SLEEPER, project, state=served.state_path, name="again") as again:
        done = wait_for(lambda: again.completed(), what="the run recorded Completed")
        assert [(r.id, r.attempt, decode_result(r.result)) for r in done] == [
            (run.id, 1, (3.0, None))  # the return value, kept as JSON
        ]
        assert "it ended Completed before its serve process stopped" in again.output()
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0
    assert [r.state for r in again.runs()] == [RunState.COMPLETED]


def test_a_run_that_completed_just_before_a_kill_9_is_recorded_completed_not_run_again(
    project,
):
    """The flow returned and reported, but its serve process died before recording it
    (frozen with SIGSTOP, then killed): the next start takes the run's own report."""
    with serve_process(SLEEPER, project) as served:
        run, child = _queue_sleeper(served, project / "sleeper.pid")
        served.signal(signal.SIGSTOP)
        wait_for(lambda: not pid_alive(child), timeout=30, what="the flow to return")
        served.signal(signal.SIGKILL)
        served.wait_exit()
    _next_start_records_it_completed(project, served, run)


def test_a_run_whose_end_was_being_recorded_at_a_kill_9_is_recorded_completed_not_run_again(
    project,
):
    """The serve process saw the flow return and was writing its end when it died (the
    state file held locked by another writer): the attempt's report is still on disk, so
    the next start records the run Completed instead of retrying it."""
    with serve_process(SLEEPER, project) as served:
        run, child = _queue_sleeper(served, project / "sleeper.pid")
        wait_for(lambda: served.runs()[0].process, what="the run's process recorded")
        locker = sqlite3.connect(served.state_path, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # every write of the serve process now waits
            wait_for(lambda: not pid_alive(child), timeout=30, what="the flow to return")
            wait_for(
                lambda: "recording it when the state store answers again" in served.output(),
                timeout=60, what="the serve process to try recording the end",
            )  # fmt: skip
            served.signal(signal.SIGKILL)
            served.wait_exit()
        finally:
            locker.rollback()
            locker.close()
    _next_start_records_it_completed(project, served, run)


def test_a_run_cancelled_while_its_serve_process_was_dead_ends_cancelled_not_retried(project):
    """A cancel asked of a run whose serve process died (through another replica's API, in
    a cluster) is honoured by whoever recovers the run: Cancelled, never retried."""
    ledger = project / "ledger.txt"
    args = ["flows/replicas.py:long_tick", "--interval", "3600"]
    env = dockyard_env(LEDGER=str(ledger))
    with serve_process(args, project, env=env) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "long-tick/long-tick", {"seconds": 60})
        wait_for(lambda: ledger.exists() and read_ledger(ledger), what="the run to begin")
        served.signal(signal.SIGKILL)
        served.wait_exit()
    with open_store(served.state_path) as store:
        asked = store.request_cancel(run.id, "cancelled through the API", now=utc_now())
    assert asked.state is RunState.RUNNING and asked.cancel_requested == "cancelled through the API"
    with serve_process(args, project, env=env, state=served.state_path, name="again") as again:
        wait_for(
            lambda: [r for r in again.runs() if r.id == run.id and r.state.is_terminal],
            what="the recovery",
        )
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0
    with open_store(served.state_path) as store:
        ended = store.get_run(run.id)
    assert (ended.state, ended.attempt) == (RunState.CANCELLED, 1)
    assert ended.state_message == "cancelled through the API"
    assert [line.kind for line in read_ledger(ledger)] == ["begin"]  # no second attempt
