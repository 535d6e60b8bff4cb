"""Shared test helpers: bounded waits and a real `dockyard serve` subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dockyard.core.states import RunState
from dockyard.store import open_store

T = TypeVar("T")

TESTS = Path(__file__).resolve().parent
"""The tests directory: shared fixture files are found from here, wherever a test lives."""
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
FLOWS = TESTS / "e2e" / "flows"
"""The flows of tests/e2e/flows/behaviours.py, used by unit and end-to-end tests alike."""


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 60.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def zombie_children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                stat = Path(f"/proc/{child}/stat").read_text()
                if stat.rpartition(")")[2].split()[0] == "Z":
                    found.append(int(child))
    return found


@dataclass
class Served:
    """A running `dockyard serve` process and its state file."""

    process: subprocess.Popen[bytes]
    out_path: Path
    state_path: Path

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def runs(self, **filters: Any) -> list[Any]:
        if not self.state_path.exists():
            return []
        with open_store(self.state_path) as store:
            return store.list_runs(limit=1000, order="asc", **filters)

    def completed(self, deployment: str | None = None) -> list[Any]:
        return self.runs(deployment=deployment, states=[RunState.COMPLETED])

    def deployment(self, name: str) -> Any:
        with open_store(self.state_path) as store:
            return store.get_deployment(name)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout=timeout)


def dockyard_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update(
        {
            "DOCKYARD_HEARTBEAT": "0.5",
            "DOCKYARD_KILL_DELAY": "2",
            "DOCKYARD_PORT": "0",  # any free port: tests run in parallel
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def serve_process(
    args: list[str],
    tmp_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    state: Path | None = None,
    name: str = "serve",
) -> Iterator[Served]:
    """Start `dockyard serve ARGS --state …` and make sure it is gone afterwards."""
    state_path = state or tmp_path / "state.db"
    out_path = tmp_path / f"{name}-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "dockyard", "serve", *args, "--state", str(state_path)]
    with open(out_path, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd or tmp_path,
            env=env or dockyard_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, out_path, state_path)
    try:
        yield served
    except BaseException:
        # pytest shows this with the failure: what the serve process said last.
        print(
            f"--- last output of {' '.join(command[3:])}:\n"
            + "\n".join(served.output().splitlines()[-40:])
        )
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def run_script(
    script: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    out = open(tmp_path / f"{script.stem}.log", "wb")
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env or dockyard_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def queue_run(state: Path, deployment: str, parameters: dict[str, Any] | None = None) -> Any:
    """Queue an ad-hoc run (defaults merged under ``parameters``) in the state file."""
    from datetime import UTC, datetime

    from dockyard.core.records import NewRun

    now = datetime.now(UTC)
    with open_store(state) as store:
        record = store.get_deployment(deployment)
        merged = {**record.spec.get("parameters", {}), **(parameters or {})}
        # Created Pending in one step: a Scheduled run that is due is the serve process's
        # to promote, and it may do so before a second write from here.
        new = NewRun(deployment, record.flow_name, merged, now, "manual", state=RunState.PENDING)
        return store.create_run(new)


def stored_logs(state: Path, run_id: str) -> list[str]:
    """A run's stored output lines, as `dockyard run logs` prints them."""
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "run", "logs", run_id, "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dockyard_env(),
    )
    return done.stdout.splitlines()


def utc_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def webserver_url(served: Served, timeout: float = 30.0) -> str:
    """The base URL a serve process logged (it listens on a free port in tests)."""
    import re

    def found() -> str | None:
        match = re.search(r"webserver listening on (http://[\d.]+:\d+)", served.output())
        return match.group(1) if match else None

    return wait_for(found, timeout, what="the webserver to listen")


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of metric ``name`` with ``labels`` in a Prometheus text page, or None."""
    for line in text.splitlines():
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None
