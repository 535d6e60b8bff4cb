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


def require_prometheus_tool(path: Path) -> Path:
    """``path`` (/usr/bin/prometheus or /usr/bin/promtool, from Debian's prometheus); the
    test is skipped without it, or fails under CI=true (.ci/run installs it)."""
    if path.exists():
        return path
    import pytest

    reason = f"{path} is missing: `apt-get install -y prometheus` (.ci/run does it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


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
    """``python SCRIPT`` in ``tmp_path``; its output goes to ``tmp_path/<stem>.log``."""
    with open(tmp_path / f"{script.stem}.log", "wb") as out:  # the child keeps its own copy
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


# ── replicas: several serve processes sharing one PostgreSQL database ───────────────────
# Used by tests/e2e/test_replicas_*.py. Each replica has a directory of its own (its state
# path for local files, its copy of tests/e2e/flows, its ledger); only the database is
# shared. The ledger format is described in tests/e2e/flows/replicas.py.

REPLICA_TOKEN = "replica-test-token"
"""The API token every test replica is given (mutating calls send it)."""


@dataclass(frozen=True)
class LedgerLine:
    """One line a flow of tests/e2e/flows/replicas.py wrote: ``begin`` or ``end`` of an attempt."""

    kind: str
    run_id: str
    slot: str
    attempt: int
    replica: str
    pid: int
    start: float
    end: float | None


def read_ledger(path: Path) -> list[LedgerLine]:
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        kind, run_id, slot, attempt, who, start, end = text.split()
        replica, _, pid = who.rpartition("/")
        lines.append(
            LedgerLine(
                kind, run_id, slot, int(attempt), replica, int(pid), float(start),
                None if end == "-" else float(end),
            )
        )  # fmt: skip
    return lines


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (one ending when another starts: not both)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in events:  # at a tie, -1 sorts before +1
        current += step
        most = max(most, current)
    return most


@dataclass
class Replica:
    """One running replica: its serve process, directory, webserver URL and ledger."""

    name: str
    directory: Path
    served: Served
    stack: contextlib.ExitStack
    _url: str | None = None

    @property
    def url(self) -> str:
        """The webserver's base URL (waits until the process has logged it)."""
        if self._url is None:
            self._url = webserver_url(self.served, timeout=60)
        return self._url

    @property
    def pid(self) -> int:
        return self.served.process.pid

    @property
    def ledger_path(self) -> Path:
        return self.directory / "ledger.txt"

    def ledger(self) -> list[LedgerLine]:
        return read_ledger(self.ledger_path)

    def alive(self) -> bool:
        return self.served.process.poll() is None

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` on this replica's webserver (an ``httpx.Response``)."""
        import httpx

        return httpx.get(self.url + path, params=params or None, timeout=10)

    def status(self, path: str) -> int | None:
        """The status code of GET ``path``, or None when the webserver does not answer."""
        import httpx

        try:
            return int(self.get(path).status_code)
        except httpx.HTTPError:
            return None


class Replicas:
    """Replicas of ``args`` on ``database_url``, each started once the previous one is
    ready; every process is killed when the ``with`` block ends (also on failure, when
    each one's last output is printed)."""

    def __init__(self, root: Path, database_url: str, args: list[str], **env: str) -> None:
        self.root = root
        self.database_url = database_url
        self.args = args
        self.env = env
        self.members: dict[str, Replica] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Replicas:
        self._stack.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)

    def start(self, name: str, *, ready: bool = True, **env: str) -> Replica:
        """Start replica ``name`` (again, after a stop: same directory, new process) and,
        with ``ready``, wait until its ``/ready`` answers 200 (else return at once)."""
        directory = self.root / name
        if not directory.exists():
            directory.mkdir(parents=True)
            import shutil

            shutil.copytree(FLOWS, directory / "flows")
        environment = dockyard_env(
            DOCKYARD_DATABASE_URL=self.database_url,
            DOCKYARD_API_TOKEN=REPLICA_TOKEN,
            REPLICA=name,
            LEDGER=str(directory / "ledger.txt"),
            **{**self.env, **env},
        )
        stack = contextlib.ExitStack()
        self._stack.enter_context(stack)
        served = stack.enter_context(
            serve_process(
                self.args, directory, cwd=directory, env=environment,
                state=directory / "state.db", name=name,
            )
        )  # fmt: skip
        replica = Replica(name, directory, served, stack)
        self.members[name] = replica
        if ready:
            wait_for(
                lambda: not replica.alive() or replica.status("/ready") == 200,
                60,
                what=f"{name} to be ready",
            )
            assert replica.alive(), f"replica {name} exited with {served.process.returncode}"
        return replica

    def start_all(self, count: int, **env: str) -> list[Replica]:
        return [self.start(f"r{i}", **env) for i in range(1, count + 1)]

    def __getitem__(self, name: str) -> Replica:
        return self.members[name]

    def running(self) -> list[Replica]:
        return [r for r in self.members.values() if r.alive()]

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal replica ``name`` and wait for it to exit; its exit code."""
        replica = self.members[name]
        replica.served.signal(sig)
        code = replica.served.wait_exit(timeout=timeout)
        replica.stack.close()
        return code

    def stop_all(self, timeout: float = 60.0) -> dict[str, int]:
        """SIGTERM every running replica at once; their exit codes."""
        live = self.running()
        for replica in live:
            replica.served.signal(signal.SIGTERM)
        return {r.name: r.served.wait_exit(timeout=timeout) for r in live}

    def ledgers(self) -> list[LedgerLine]:
        """Every replica's ledger lines (each replica writes its own file)."""
        return [line for r in self.members.values() for line in r.ledger()]

    def store(self) -> Any:
        """The shared database, opened as dockyard opens it (a context manager)."""
        return open_store(self.database_url)


def ended_slots(lines: list[LedgerLine]) -> list[str]:
    """The slots of the attempts that ended, one entry per ``end`` line."""
    return [line.slot for line in lines if line.kind == "end"]
