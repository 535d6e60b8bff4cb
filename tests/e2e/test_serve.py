"""`dockyard serve` as a user runs it: real subprocesses, a real SQLite file, real signals."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from dockyard.core.states import RunState
from tests.helpers import (
    dockyard_env,
    pid_alive,
    queue_run,
    serve_process,
    stored_logs,
    utc_now,
    wait_for,
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]


def cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args, "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dockyard_env(),
    )


def started(served) -> bool:
    return "serving 1 deployment" in served.output()


def test_hello_world_runs_complete_with_prefixed_output(tmp_path):
    args = [str(REPO / "examples/hello_world.py:hello_world"), "--interval", "1"]
    with serve_process(args, tmp_path) as served:
        wait_for(lambda: len(served.completed()) >= 2, what="2 completed runs")
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    runs = served.completed()
    out = served.output()
    assert f"[hello-world/hello-world {runs[0].name}] Hello world from dockyard!" in out
    assert all(r.trigger == "schedule" and r.attempt == 1 for r in runs)
    slots = [r.scheduled_at for r in served.runs()]
    assert len(slots) == len(set(slots))  # no slot ran twice


def test_idle_sigterm_pauses_and_restart_resumes(project):
    args = ["flows/behaviours.py:noop", "--interval", "3600", "--name", "hourly"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        served.signal(signal.SIGTERM)
        assert served.wait_exit(timeout=10) == 0
    listed = cli("deployment", "ls", state=served.state_path)
    assert "noop/hourly" in listed.stdout and "paused (shutdown)" in listed.stdout
    with serve_process(args, project, state=served.state_path) as again:
        wait_for(lambda: started(again), what="second startup")
        assert again.deployment("noop/hourly").paused is False
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0


def test_no_pause_on_shutdown_never_pauses(project):
    args = ["flows/behaviours.py:noop", "--interval", "3600", "--no-pause-on-shutdown"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    assert served.deployment("noop/noop").paused is False
    assert "paused" not in cli("deployment", "ls", state=served.state_path).stdout


def test_a_person_pause_is_honoured_live_and_survives_restarts(project):
    args = ["flows/behaviours.py:noop", "--interval", "1", "--name", "often"]
    with serve_process(args, project) as served:
        wait_for(lambda: served.completed(), what="first run")
        assert cli("deployment", "pause", "noop/often", state=served.state_path).returncode == 0
        paused_at = utc_now()
        count = len(served.runs())
        # Slots keep coming due while paused: the cursor moves past them, no run is made.
        wait_for(
            lambda: served.deployment("noop/often").cursor > paused_at + timedelta(seconds=3),
            what="three slots to pass",
        )
        assert len(served.runs()) <= count + 1  # at most a slot claimed before it saw the pause
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    record = served.deployment("noop/often")
    assert record.paused and record.paused_reason == "user"
    with serve_process(args, project, state=served.state_path) as again:
        wait_for(lambda: started(again), what="startup")
        assert again.deployment("noop/often").paused_reason == "user"
        before = len(again.completed())
        assert cli("deployment", "resume", "noop/often", state=served.state_path).returncode == 0
        wait_for(lambda: len(again.completed()) > before, what="runs after resume")
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0


def test_started_paused_with_flag(project):
    args = ["flows/behaviours.py:noop", "--interval", "1", "--paused"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        record = served.deployment("noop/noop")
        assert record.paused and record.paused_reason == "config"
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    assert served.runs() == []


def test_kill_9_during_a_run_then_restart_marks_it_crashed_and_leaves_no_process(project):
    pid_file = project / "sleeper.pid"
    args = ["flows/behaviours.py:sleeper", "--interval", "3600"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(
            served.state_path, "sleeper/sleeper", {"seconds": 120, "pid_file": str(pid_file)}
        )
        child = int(
            wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="run started")
        )
        served.signal(signal.SIGKILL)
        served.wait_exit()
        wait_for(lambda: not pid_alive(child), timeout=15, what="the run to die with serve")
    assert served.runs()[0].state is RunState.RUNNING  # what a kill -9 leaves behind
    with serve_process(args, project, state=served.state_path) as again:
        crashed = wait_for(lambda: again.runs(states=[RunState.CRASHED]), what="crashed run")
        assert crashed[0].id == run.id
        assert "serve process stopped" in crashed[0].state_message
        # the run's end line, from the process that recovered it (with the run's name if
        # the killed process had stored it)
        end = rf"dockyard: run sleeper/sleeper (\S+ )?\({run.id[:8]}\) Crashed: the serve"
        wait_for(lambda: re.search(end, again.output()), what="the end line")
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0


def test_drain_cancels_runs_still_going_after_the_grace(project):
    pid_file = project / "grandchild.pid"
    args = ["flows/behaviours.py:spawner", "--interval", "3600", "--shutdown-grace", "1"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "spawner/spawner", {"pid_file": str(pid_file)})
        grandchild = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    final = served.runs()[0]
    assert final.id == run.id and final.state is RunState.CANCELLED
    assert "grace period" in final.state_message
    wait_for(lambda: not pid_alive(grandchild), timeout=10, what="grandchild killed with the group")


def test_a_run_that_ignores_sigterm_ends_within_grace_plus_kill_delay(project):
    args = ["flows/behaviours.py:stubborn", "--interval", "3600", "--shutdown-grace", "0.5"]
    with serve_process(args, project, env=dockyard_env(DOCKYARD_KILL_DELAY="1")) as served:
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "stubborn/stubborn")
        wait_for(lambda: "ignoring SIGTERM" in served.output(), what="run started")
        served.signal(signal.SIGTERM)
        assert served.wait_exit(timeout=20) == 0
    assert served.runs()[0].state is RunState.CANCELLED


def test_second_signal_exits_at_once_with_code_1(project):
    args = ["flows/behaviours.py:stubborn", "--interval", "3600", "--shutdown-grace", "60"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "stubborn/stubborn")
        wait_for(lambda: "ignoring SIGTERM" in served.output(), what="run started")
        served.signal(signal.SIGTERM)
        wait_for(lambda: "waiting up to 60s" in served.output(), what="drain started")
        served.signal(signal.SIGINT)
        assert served.wait_exit(timeout=20) == 1
    assert served.runs()[0].state is RunState.CANCELLED


def test_retries_then_completed(project):
    counter = project / "count.txt"
    args = ["flows/behaviours.py:flaky", "--interval", "3600", "--param", f"counter_file={counter}"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "flaky/flaky", {"counter_file": str(counter)})
        done = wait_for(lambda: served.completed(), what="completion after retries")[0]
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert done.id == run.id and done.attempt == 3 and counter.read_text() == "3"
    from dockyard.store import open_store

    with open_store(served.state_path) as store:
        states = [e.state.value for e in store.state_history(run.id)]
    assert states.count("Running") == 3 and states.count("Scheduled") == 2  # two retries
    assert "failure number 2" in served.output()


def test_timeout_fails_the_run_with_a_reason(project):
    args = ["flows/behaviours.py:too_slow", "--interval", "3600"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "too-slow/too-slow")
        failed = wait_for(lambda: served.runs(states=[RunState.FAILED]), what="failed run")[0]
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert "timed out after 1s" in failed.error


def test_output_is_stored_bounded_with_a_truncation_mark(project):
    args = ["flows/behaviours.py:chatty", "--interval", "3600"]
    env = dockyard_env(DOCKYARD_MAX_LOG_LINES="10")
    with serve_process(args, project, env=env) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "chatty/chatty", {"lines": 50})
        wait_for(lambda: served.completed(), what="completed")
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert "line 49" in served.output()  # every line reaches the process output
    logs = stored_logs(served.state_path, run.id)
    assert logs[:10] == [f"line {i}" for i in range(10)]
    assert "log truncated" in logs[10] and len(logs) == 11


def test_overlap_skip_never_runs_two_at_once(project):
    args = [
        "flows/behaviours.py:sleeper",
        "--interval",
        "1",
        "--param",
        "seconds=2.5",
        "--overlap",
        "skip",
    ]
    with serve_process(args, project) as served:
        wait_for(lambda: len(served.completed()) >= 2, timeout=40, what="two runs")
        served.signal(signal.SIGTERM)
        served.wait_exit()
    runs = [r for r in served.runs() if r.started_at]
    for a, b in zip(runs, runs[1:], strict=False):
        assert a.ended_at is None or b.started_at >= a.ended_at


def test_process_limit_keeps_runs_pending(project):
    args = ["flows/behaviours.py:sleeper", "--interval", "3600", "--limit", "1"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        for _ in range(3):
            queue_run(served.state_path, "sleeper/sleeper", {"seconds": 0.5})
        wait_for(lambda: len(served.completed()) == 3, what="three runs")
        served.signal(signal.SIGTERM)
        served.wait_exit()
    runs = sorted(served.runs(), key=lambda r: r.started_at)
    for a, b in zip(runs, runs[1:], strict=False):
        assert b.started_at >= a.ended_at  # one at a time


def test_missed_slot_after_downtime_is_caught_up_once(project):
    args = ["flows/behaviours.py:noop", "--interval", "1", "--no-pause-on-shutdown"]
    with serve_process(args, project) as served:
        wait_for(lambda: served.completed(), what="a run")
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    stopped = utc_now()
    wait_for(lambda: utc_now() > stopped + timedelta(seconds=3), what="downtime")
    with serve_process(args, project, state=served.state_path) as again:
        caught = wait_for(lambda: again.runs(), what="catch-up")
        caught = wait_for(
            lambda: [r for r in again.runs() if r.trigger == "catchup"], what="catch-up run"
        )
        again.signal(signal.SIGTERM)
        again.wait_exit()
    assert len(caught) == 1
    assert "missed while the process was down" in again.output()


def test_double_fork_leaves_no_zombie(project):
    pid_file = project / "orphan.pid"
    args = ["flows/behaviours.py:double_fork", "--interval", "3600"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "double-fork/double-fork", {"pid_file": str(pid_file)})
        wait_for(lambda: served.completed(), what="completed")
        orphan = int(pid_file.read_text())
        wait_for(
            lambda: not pid_alive(orphan) and not _is_zombie_of(orphan, served.process.pid),
            timeout=15,
            what="orphan reaped",
        )
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0


def _is_zombie_of(pid: int, parent: int) -> bool:
    from tests.helpers import zombie_children

    return pid in zombie_children(parent)


def test_check_validates_and_exits(project):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockyard",
            "serve",
            "flows/behaviours.py:noop",
            "--cron",
            "0 * * * *",
            "--check",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=dockyard_env(),
    )
    assert out.returncode == 0, out.stderr
    assert "noop/noop" in out.stdout and "next runs" in out.stdout


def test_slot_claimed_before_a_kill_9_runs_once_after_restart(project):
    """kill -9 between claiming a slot and starting its run: the slot still runs once."""
    from dockyard.core.records import NewRun
    from dockyard.store import open_store

    args = ["flows/behaviours.py:noop", "--cron", "0 0 1 1 *", "--no-pause-on-shutdown"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        served.signal(signal.SIGKILL)
        served.wait_exit()
    slot = utc_now().replace(microsecond=0) - timedelta(seconds=1)
    with open_store(served.state_path) as store:  # what the killed process had written
        claimed = store.claim_slot(NewRun("noop/noop", "noop", {}, slot, "schedule"))
        store.transition(claimed.id, RunState.PENDING, at=utc_now())
        assert store.claim_slot(NewRun("noop/noop", "noop", {}, slot, "schedule")) is None
    with serve_process(args, project, state=served.state_path) as again:
        wait_for(lambda: again.completed(), what="the claimed run to complete")
        again.signal(signal.SIGTERM)
        assert again.wait_exit() == 0
    runs = again.runs()
    assert [r.id for r in runs] == [claimed.id]
    assert runs[0].state is RunState.COMPLETED


def test_flow_run_name_is_rendered_from_parameters(project):
    args = ["flows/behaviours.py:report", "--interval", "3600", "--param", "day=2026-01-01"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "report/report", {"day": "2026-02-03"})
        done = wait_for(lambda: served.completed(), what="completed")[0]
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert done.name == "report-2026-02-03"
    assert "[report/report report-2026-02-03] report for 2026-02-03" in served.output()


@pytest.mark.parametrize(
    ("params", "expected_state", "hooks"),
    [
        ({}, RunState.COMPLETED, {"Running", "Completed"}),
        ({"fail": True}, RunState.FAILED, {"Running", "Failed"}),
    ],
)
def test_hooks_run_in_the_run_process(project, params, expected_state, hooks):
    args = ["flows/behaviours.py:hooked", "--interval", "3600"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        run = queue_run(served.state_path, "hooked/hooked", {"marker_dir": str(project), **params})
        final = wait_for(lambda: served.runs(states=[expected_state]), what="final state")[0]
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert final.id == run.id
    assert {p.stem for p in project.glob("*.hook")} == hooks
    assert (project / f"{expected_state.value}.hook").read_text() == f"hooked {run.id} 1"


def test_cancellation_by_shutdown_runs_on_cancellation_hooks(project):
    args = ["flows/behaviours.py:hooked", "--interval", "3600", "--shutdown-grace", "0"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "hooked/hooked", {"marker_dir": str(project), "seconds": 60})
        wait_for(lambda: (project / "Running.hook").exists(), what="run started")
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    assert served.runs()[0].state is RunState.CANCELLED
    assert (project / "Cancelled.hook").exists()


def test_crash_runs_on_crashed_hooks_in_a_fresh_process(project):
    args = ["flows/behaviours.py:crashy", "--interval", "3600"]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        queue_run(served.state_path, "crashy/crashy", {"marker_dir": str(project)})
        crashed = wait_for(lambda: served.runs(states=[RunState.CRASHED]), what="crash")[0]
        wait_for(lambda: (project / "Crashed.hook").exists(), what="on_crashed hook")
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert "killed by SIGKILL" in crashed.state_message


def test_cancel_previous_replaces_the_active_run(project):
    args = [
        "flows/behaviours.py:sleeper",
        "--interval",
        "2",
        "--param",
        "seconds=30",
        "--overlap",
        "cancel-previous",
    ]
    with serve_process(args, project) as served:
        cancelled = wait_for(
            lambda: served.runs(states=[RunState.CANCELLED]), timeout=40, what="a replaced run"
        )[0]
        served.signal(signal.SIGTERM)
        served.wait_exit()
    assert "replaced by the run scheduled for" in cancelled.state_message


def test_concurrency_limit_caps_one_deployment(project):
    args = [
        "flows/behaviours.py:sleeper",
        "--interval",
        "3600",
        "--concurrency-limit",
        "1",
        "--limit",
        "10",
    ]
    with serve_process(args, project) as served:
        wait_for(lambda: started(served), what="startup")
        for _ in range(3):
            queue_run(served.state_path, "sleeper/sleeper", {"seconds": 0.5})
        # While one runs, the others wait as Pending.
        wait_for(lambda: served.runs(states=[RunState.RUNNING]), what="one running")
        assert len(served.runs(states=[RunState.PENDING])) >= 1
        wait_for(lambda: len(served.completed()) == 3, what="all three")
        served.signal(signal.SIGTERM)
        served.wait_exit()
    runs = sorted(served.runs(), key=lambda r: r.started_at)
    for a, b in zip(runs, runs[1:], strict=False):
        assert b.started_at >= a.ended_at
