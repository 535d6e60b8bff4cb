"""Flows that leave processes behind or misbehave with their output, for the fault tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dockyard import flow

SLEEP_IGNORING_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
)


def _daemon(pid_file: Path) -> None:
    """Start a double-forked daemon in a session of its own; record its pid."""
    first = os.fork()
    if first == 0:
        os.setsid()
        second = os.fork()
        if second == 0:
            os.closerange(0, 3)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(600)
            os._exit(0)
        pid_file.write_text(str(second))
        os._exit(0)
    os.waitpid(first, 0)


def _append(path: Path, line: str) -> None:
    with path.open("a") as fh:
        fh.write(line + "\n")


@flow(retries=1, retry_delay_seconds=0)
def stubborn_tree(pid_dir: str, seconds: float = 300.0):
    """Ignores SIGTERM, starts a grandchild that ignores it too and an escaped daemon."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = Path(pid_dir)
    _append(out / "attempts", f"start {os.getpid()}")
    child = subprocess.Popen([sys.executable, "-c", SLEEP_IGNORING_TERM])
    _daemon(out / "daemon.pid")
    (out / "grandchild.pid").write_text(str(child.pid))
    (out / "child.pid").write_text(str(os.getpid()))
    time.sleep(seconds)


@flow
def leaves_behind(pid_dir: str):
    """Returns at once, leaving a child that holds its stdout and an escaped daemon."""
    out = Path(pid_dir)
    holder = subprocess.Popen(["sleep", "300"])  # inherits the run's stdout and stderr
    _daemon(out / "daemon.pid")
    (out / "holder.pid").write_text(str(holder.pid))
    return "done"


@flow
def counter(counter_file: str = "counter"):
    _append(Path(counter_file), "run")


@flow
def long_line(size: int = 20_000_000):
    sys.stdout.write("x" * size + "\n")
    print("after the long line")
