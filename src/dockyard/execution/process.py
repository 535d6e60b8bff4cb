"""Flow-run and probe subprocesses: start, stream output, stop with the whole process group.

This is the only module that starts or signals processes. Each run is started in a
new session (its own process group) so cancelling it reaches everything it spawned.
``SubprocessExecutor`` is the ``Executor`` the serve process uses: a fresh interpreter
(``python -m dockyard.execution.child``) per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from dockyard.core.records import TaskRunRecord
from dockyard.execution.environment import child_environment
from dockyard.execution.leftovers import RUN_ID_ENV, ProcessIdentity, identify, kill_leftovers
from dockyard.execution.spec import (
    ChildResult,
    ChildStarted,
    LineSink,
    ProbeRequest,
    ProbeResult,
    RunOutcome,
    RunSpec,
    attempt_key,
)
from dockyard.execution.task_run_file import read_task_runs, task_runs_path
from dockyard.execution.workdir import PREFIX as WORK_DIR_PREFIX
from dockyard.execution.workdir import find_abandoned

MAX_LINE = 16_384
"""Bytes of one output line that are kept; the rest is dropped with a mark."""
READ_CHUNK = 65_536
EXIT_POLL = 0.02
READERS_GRACE = 5.0
"""Seconds the output may take to drain once a run's processes are gone."""


def describe_exit(exit_code: int | None) -> str:
    """Why a process that did not report ended: the signal that killed it, or its code."""
    if exit_code is not None and exit_code < 0:
        return f"process killed by {signal.Signals(-exit_code).name}"
    return f"process exited with code {exit_code} without reporting a result"


class ChildProcess(Protocol):
    """The process of one attempt, however it was started."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def exited(self) -> int:
        """The exit code, as soon as the process has exited (not when its pipes close)."""
        ...

    def close(self) -> None:
        """Stop reading the process's output, and release what watched it."""
        ...


class Spawned:
    """A run process started by exec: an ``asyncio.subprocess.Process``, watched by pidfd."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._pidfd = _pidfd(process.pid)
        self._gone: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def exited(self) -> int:
        # Not ``asyncio.subprocess.Process.wait()``: that also waits for the output pipes
        # to close, which a grandchild that inherited them may hold open for ever.
        if self.process.returncode is None and self._pidfd is not None:
            if self._gone is None:
                self._gone = _readable(self._pidfd)
            await asyncio.shield(self._gone)
        # Exited, but asyncio's child watcher has not collected it yet (or there is no
        # pidfd): asyncio offers no event for that alone.
        while self.process.returncode is None:  # noqa: ASYNC110
            await asyncio.sleep(EXIT_POLL)
        return self.process.returncode

    def close_pipes(self) -> None:
        transport = getattr(self.process, "_transport", None)
        if transport is not None:
            transport.close()

    def close(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: no loop
                asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


@dataclass
class RunFiles:
    """The files through which the serve process and one attempt talk."""

    spec: Path
    result: Path
    started: Path
    task_runs: Path

    @classmethod
    def write(cls, spec: RunSpec, work_dir: Path, *, parent_pid: int) -> RunFiles:
        """Write the attempt's envelope (private: it holds the parameters)."""
        result = work_dir / f"{spec.key}{_RESULT}"
        files = cls(
            work_dir / f"{spec.key}.spec.json", result,
            work_dir / f"{spec.key}.started.json", task_runs_path(result),
        )  # fmt: skip
        files.result.unlink(missing_ok=True)
        files.started.unlink(missing_ok=True)
        envelope = {
            "spec": spec.to_json(),
            "result_path": str(files.result),
            "started_path": str(files.started),
            "task_runs_path": str(files.task_runs),
            "parent_pid": parent_pid,
        }
        _write_private(files.spec, json.dumps(envelope, default=str))
        _write_private(files.task_runs, "")  # the child appends to it: private from the start
        return files

    def remove(self) -> None:
        for path in (self.spec, self.result, self.started, self.task_runs):
            path.unlink(missing_ok=True)


@dataclass
class RunProcess:
    """A started flow-run process."""

    process: ChildProcess
    run_id: str
    files: RunFiles
    attempt: int = 1
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    close_pipes: Callable[[], None] = lambda: None
    _identity: ProcessIdentity | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the run's whole process group; False if it is gone."""
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    @property
    def identity(self) -> str | None:
        return self._identity.to_json() if self._identity is not None else None

    async def exited(self) -> int:
        """The exit code, as soon as the process has exited."""
        return await self.process.exited()

    async def wait(self) -> RunOutcome:
        code = await self.exited()
        # The flow has returned: whatever it left behind goes with it — its group, and
        # daemons that escaped the group — so that the run ends now, not when a
        # grandchild holding the output pipes exits.
        self.signal_group(signal.SIGKILL)
        await asyncio.to_thread(kill_leftovers, self.run_id, self._identity, own_run=True)
        if self.readers:
            _done, pending = await asyncio.wait(self.readers, timeout=READERS_GRACE)
            for reader in pending:  # a process dockyard may not kill still holds a pipe
                reader.cancel()
            if pending:
                self.close_pipes()
        data = _read_json(self.files.result)
        task_runs = await asyncio.to_thread(
            read_task_runs, self.files.task_runs, self.run_id, self.attempt
        )
        return RunOutcome(code, ChildResult.from_json(data) if data else None, task_runs)

    def started(self) -> ChildStarted | None:
        """What the child reported before running the flow, once it has."""
        data = _read_json(self.files.started)
        return ChildStarted.from_json(data) if data is not None else None

    async def stop(self, kill_after: float) -> None:
        """SIGTERM the group; SIGKILL it if the run is still there after ``kill_after``."""
        if self.process.returncode is not None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.exited()), kill_after)
        except TimeoutError:
            self.signal_group(signal.SIGKILL)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def cleanup(self) -> None:
        self.files.remove()
        self.process.close()


def _pidfd(pid: int) -> int | None:
    """A pidfd of the child just started (readable once it exits); None off Linux 5.3+."""
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None


def _readable(fd: int) -> asyncio.Future[None]:
    """A future done once ``fd`` is readable (a pidfd: once its process has exited)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        loop.remove_reader(fd)
        if not done.done():
            done.set_result(None)

    try:
        loop.add_reader(fd, readable)
    except (OSError, NotImplementedError, ValueError):
        done.set_result(None)  # the caller falls back to polling
    return done


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class SubprocessExecutor:
    """Starts each attempt in a fresh interpreter; spec and result files live in ``work_dir``."""

    def __init__(self, work_dir: Path, env: dict[str, str] | None = None) -> None:
        self.work_dir = work_dir
        self.env = env or {}

    async def start(self, spec: RunSpec, sink: LineSink) -> RunProcess:
        return await start_run(spec, work_dir=self.work_dir, sink=sink, env=self.env)

    async def warm_up(self) -> None:
        """Prepare to start runs quickly (nothing to prepare for a fresh interpreter)."""

    def helper_pids(self) -> set[int]:
        """This process's children that are not runs (not to be reaped as orphans)."""
        return set()

    async def close(self) -> None:
        """Release what ``warm_up`` prepared (the runs themselves are the supervisor's)."""

    async def kill_leftovers(self, run_id: str, identity: str | None) -> int:
        return await asyncio.to_thread(kill_leftovers, run_id, ProcessIdentity.from_json(identity))

    def reported(self, identity: str | None, run_id: str, attempt: int) -> ChildResult | None:
        path = self._result_path(identity, run_id, attempt)
        data = _read_json(path) if path else None
        try:
            return ChildResult.from_json(data) if data else None
        except (KeyError, ValueError):
            return None

    def reported_task_runs(
        self, identity: str | None, run_id: str, attempt: int
    ) -> tuple[TaskRunRecord, ...]:
        """The task runs an attempt of a serve process that died had reported."""
        path = self._result_path(identity, run_id, attempt)
        return read_task_runs(task_runs_path(path), run_id, attempt) if path else ()

    def _result_path(self, identity: str | None, run_id: str, attempt: int) -> Path | None:
        """Where the attempt wrote its result: only ever in a run directory. Without a
        stored identity (its serve process died before writing it), in a run directory
        beside this process's that no live process holds."""
        known = ProcessIdentity.from_json(identity)
        if known is None or not known.result:
            return find_abandoned(self.work_dir, f"{attempt_key(run_id, attempt)}{_RESULT}")
        path = Path(known.result)
        if not path.parent.name.startswith(WORK_DIR_PREFIX) or not path.name.endswith(_RESULT):
            return None
        return path


_RESULT = ".result.json"


async def start_run(
    spec: RunSpec, *, work_dir: Path, sink: LineSink, env: dict[str, str] | None = None
) -> RunProcess:
    """Write the spec and start ``python -m dockyard.execution.child`` for it."""
    files = RunFiles.write(spec, work_dir, parent_pid=os.getpid())
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dockyard.execution.child",
        str(files.spec),
        cwd=spec.base_dir,
        env=run_environment(spec, env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    spawned = Spawned(process)
    assert process.stdout is not None and process.stderr is not None
    return watch(spawned, spec, files, process.stdout, process.stderr, sink, spawned.close_pipes)


def run_environment(spec: RunSpec, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an attempt: the serve process's without its secrets, plus ``env``."""
    return child_environment({**(env or {}), "PYTHONUNBUFFERED": "1", RUN_ID_ENV: spec.run_id})


def watch(
    process: ChildProcess,
    spec: RunSpec,
    files: RunFiles,
    stdout: asyncio.StreamReader,
    stderr: asyncio.StreamReader,
    sink: LineSink,
    close_pipes: Callable[[], None],
) -> RunProcess:
    """The handle of a just-started attempt: named for a later start, its output pumped."""
    handle = RunProcess(process, spec.run_id, files, spec.attempt, close_pipes=close_pipes)
    known = identify(process.pid)
    handle._identity = replace(known, result=str(files.result)) if known else None
    handle.readers = [
        asyncio.create_task(_pump(stdout, "stdout", sink)),
        asyncio.create_task(_pump(stderr, "stderr", sink)),
    ]
    return handle


class LineSplitter:
    """Bytes in, lines out; a line longer than ``limit`` bytes is cut with a visible mark."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._line = bytearray()
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = max(self.limit - len(self._line), 0)
            self._line += piece[:room]
            self._dropped += max(len(piece) - room, 0)
            if end < 0:
                return lines
            lines.append(self._take())
            start = end + 1

    def close(self) -> list[str]:
        """The last line, when the stream ended without a newline."""
        return [self._take()] if self._line or self._dropped else []

    def _take(self) -> str:
        line = self._line.decode("utf-8", errors="replace").rstrip("\r")
        if self._dropped:
            line += f" …[line truncated: {self._dropped} more bytes]"
        self._line, self._dropped = bytearray(), 0
        return line


async def _pump(stream: asyncio.StreamReader, name: str, sink: LineSink) -> None:
    lines = LineSplitter()
    while True:
        chunk = await stream.read(READ_CHUNK)
        for line in lines.feed(chunk) if chunk else lines.close():
            outcome = sink(name, line)
            if outcome is not None:
                await outcome
        if not chunk:
            return


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only this user can read (it may hold parameters)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


async def probe(request: ProbeRequest, *, work_dir: Path, limit_seconds: float) -> ProbeResult:
    """Load a code revision in ``python -m dockyard.execution.probe`` with a time limit."""
    spec_path = work_dir / f"probe-{os.getpid()}-{id(request)}.json"
    _write_private(spec_path, json.dumps({**request.to_json(), "parent_pid": os.getpid()}))
    child_env = child_environment()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dockyard.execution.probe",
        str(spec_path),
        cwd=request.root,
        env=child_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit_seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return ProbeResult(False, f"loading the code took longer than {limit_seconds:g}s")
    finally:
        spec_path.unlink(missing_ok=True)
    return _probe_result(out.decode(errors="replace"), err.decode(errors="replace"))


def _probe_result(out: str, err: str) -> ProbeResult:
    for line in reversed(out.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "ok" in data:
            return ProbeResult.from_json(data)
    last = (err.strip().splitlines() or ["no output"])[-1]
    return ProbeResult(False, f"the code check crashed: {last}")
