"""Flows with specific behaviours for the end-to-end tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dockyard import flow


@flow
def noop():
    return None


@flow(log_prints=True)
def hello(name: str = "world", count: int = 1):
    for i in range(count):
        print(f"hello {name} #{i}")
    return f"said hello to {name}"


@flow
def sleeper(seconds: float = 30.0, pid_file: str = ""):
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return seconds


@flow
def stubborn(seconds: float = 60.0):
    """Ignores SIGTERM, as some user code does."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
    time.sleep(seconds)


@flow
def spawner(pid_file: str, seconds: float = 60.0):
    """Starts a grandchild and records its pid."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(pid_file).write_text(str(child.pid))
    time.sleep(seconds)


@flow
def double_fork(pid_file: str):
    """Leaves an orphan behind (a daemon-style double fork)."""
    pid = os.fork()
    if pid == 0:
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(0.3)
            os._exit(0)
        Path(pid_file).write_text(str(grandchild))
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.6)


@flow(retries=2, retry_delay_seconds=0.2)
def flaky(counter_file: str, fail_times: int = 2):
    path = Path(counter_file)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < fail_times:
        raise RuntimeError(f"failure number {count + 1}")
    return "finally"


@flow(timeout_seconds=1)
def too_slow():
    time.sleep(30)


@flow
def chatty(lines: int = 50):
    for i in range(lines):
        print(f"line {i}")


@flow(flow_run_name="report-{day}")
def report(day: str):
    print(f"report for {day}")
    return day


def _record(flow, flow_run, state):
    marker = Path(flow_run.parameters["marker_dir"]) / f"{state.name}.hook"
    marker.write_text(f"{flow.name} {flow_run.id} {flow_run.attempt}")


@flow(
    on_completion=[_record], on_failure=[_record], on_cancellation=[_record], on_running=[_record]
)
def hooked(marker_dir: str, fail: bool = False, seconds: float = 0.0):
    time.sleep(seconds)
    if fail:
        raise ValueError("asked to fail")
    return "ok"


@flow(on_crashed=[_record])
def crashy(marker_dir: str):
    os.kill(os.getpid(), signal.SIGKILL)


@flow(log_prints=True)
def fails(message: str = "asked to fail"):
    print(f"about to fail: {message}")
    raise RuntimeError(message)


@flow
def slow_talker(lines: int = 5, pause: float = 0.3):
    """Prints a numbered line every ``pause`` seconds, for log-following tests."""
    for i in range(lines):
        print(f"talk {i}", flush=True)
        time.sleep(pause)


@flow
def show_env(name: str):
    print(f"{name}={os.environ.get(name)!r}")
