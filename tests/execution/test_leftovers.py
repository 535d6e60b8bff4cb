"""Finding what a run left: real processes, real process groups, real /proc."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from dockyard.execution.leftovers import (
    RUN_ID_ENV,
    ProcessIdentity,
    find_leftovers,
    identify,
    kill_leftovers,
)
from dockyard.execution.process import LineSplitter
from dockyard.execution.workdir import PREFIX, WorkDir, clean_stale
from tests.helpers import pid_alive, wait_for

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def _started(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]


def test_identity_round_trips_and_names_this_boot() -> None:
    me = identify(os.getpid())
    assert me is not None and me.pid == os.getpid() and me.boot
    assert ProcessIdentity.from_json(me.to_json()) == me
    assert ProcessIdentity.from_json("not json") is None
    assert ProcessIdentity.from_json(None) is None


def test_the_group_and_marked_escapees_are_found_and_nothing_else() -> None:
    env = {**os.environ, RUN_ID_ENV: "run-a"}
    # The leader starts a member of its group (no marker) and says its pid.
    leader = _started(
        ["sh", "-c", "sleep 120 & echo $!; wait"], start_new_session=True, stdout=subprocess.PIPE
    )
    assert leader.stdout is not None
    member_pid = int(leader.stdout.readline())
    escaped = _started(SLEEP, start_new_session=True, env=env)  # own session, marked
    other = _started(SLEEP, start_new_session=True, env={**os.environ, RUN_ID_ENV: "run-b"})
    bystander = _started(SLEEP)  # older than nothing, in pytest's group
    try:
        identity = identify(leader.pid)
        found = set(find_leftovers("run-a", identity))
        assert found == {leader.pid, member_pid, escaped.pid}
        assert kill_leftovers("run-a", identity) == 3
        for process in (leader, escaped):
            process.wait(timeout=15)
        wait_for(lambda: not pid_alive(member_pid), timeout=15, what="the member killed")
        assert other.poll() is None and bystander.poll() is None
        # Another boot's identity: only the marker counts.
        foreign = ProcessIdentity("another-boot", identity.pidns, other.pid, identity.start)
        assert find_leftovers("run-c", foreign) == []
    finally:
        for process in (leader, escaped, other, bystander):
            process.kill()
            process.wait(timeout=15)
        leader.stdout.close()


def test_a_reused_pid_is_not_taken_for_the_run() -> None:
    process = _started(SLEEP, start_new_session=True)
    try:
        real = identify(process.pid)
        assert real is not None
        # The recorded leader started later than this process: a different process.
        later = ProcessIdentity(real.boot, real.pidns, real.pid, real.start + 10**9)
        assert find_leftovers("nobody", later) == []
        assert pid_alive(process.pid)
    finally:
        process.kill()
        process.wait(timeout=15)


def test_line_splitter_cuts_long_lines_once_with_a_mark() -> None:
    lines = LineSplitter(limit=10)
    out = lines.feed(b"short\nabcdefghij") + lines.feed(b"KLMNOP" * 1000 + b"\nnext")
    assert out == ["short", "abcdefghij …[line truncated: 6000 more bytes]"]
    assert lines.feed(b" line\r\n") == ["next line"]
    assert lines.feed(b"tail") == [] and lines.close() == ["tail"]
    assert lines.close() == []


def test_work_dirs_are_private_and_only_dead_ones_are_cleaned(tmp_path: Path) -> None:
    live = WorkDir.create(tmp_path)
    assert live.path.name.startswith(PREFIX)
    assert stat.S_IMODE(live.path.stat().st_mode) == 0o700
    code = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).parents[2] / "src")!r})
from dockyard.execution.workdir import WorkDir
print(WorkDir.create({str(tmp_path)!r}).path, flush=True)
os.kill(os.getpid(), 9)
"""
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    dead = Path(killed.stdout.strip())
    assert dead.is_dir()  # what kill -9 leaves
    assert clean_stale(tmp_path) == [dead]
    assert not dead.exists() and live.path.is_dir()  # the live one is locked: kept
    live.close()
    assert not live.path.exists()
    wait_for(lambda: list(tmp_path.glob(f"{PREFIX}*")) == [], timeout=5, what="nothing left")
