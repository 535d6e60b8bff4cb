"""Flow-run subprocesses: start, stream output, stop with their whole process group.

This is the only module that starts or signals processes. Each run is started in a
new session (its own process group) so cancelling it reaches everything it spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LineSink = Callable[[str, str], Awaitable[None] | None]
"""Called with (stream, line) for every line the run prints."""

MAX_LINE = 16_384
SECRET_ENV = frozenset(
    {"DOCKYARD_API_TOKEN", "DOCKYARD_SOURCE_TOKEN", "DOCKYARD_SOURCE_WEBHOOK_SECRET"}
)
"""dockyard's own secrets: flow code (and what it logs) never sees them."""


@dataclass
class RunOutcome:
    """How a run's process ended, as the serve process saw it."""

    exit_code: int | None
    result: dict[str, Any] | None
    """The JSON the child wrote, or None when it died without writing one."""

    @property
    def signal(self) -> int | None:
        if self.exit_code is not None and self.exit_code < 0:
            return -self.exit_code
        return None

    def describe_exit(self) -> str:
        if self.signal:
            return f"process killed by {signal.Signals(self.signal).name}"
        return f"process exited with code {self.exit_code} without reporting a result"


@dataclass
class RunProcess:
    """A started flow-run subprocess."""

    process: asyncio.subprocess.Process
    spec_path: Path
    result_path: Path
    readers: list[asyncio.Task[None]] = field(default_factory=list)

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

    async def wait(self) -> RunOutcome:
        code = await self.process.wait()
        await asyncio.gather(*self.readers, return_exceptions=True)
        # Whatever the flow left behind in its group goes with it.
        self.signal_group(signal.SIGKILL)
        return RunOutcome(code, _read_result(self.result_path))

    async def stop(self, kill_after: float) -> None:
        """SIGTERM the group; SIGKILL it if the run is still there after ``kill_after``."""
        if self.process.returncode is not None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), kill_after)
        except TimeoutError:
            self.signal_group(signal.SIGKILL)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def cleanup(self) -> None:
        for path in (self.spec_path, self.result_path):
            path.unlink(missing_ok=True)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


async def start_run(
    spec: dict[str, Any], *, work_dir: Path, sink: LineSink, env: dict[str, str] | None = None
) -> RunProcess:
    """Write the spec and start ``python -m dockyard.execution.child`` for it."""
    run_key = (
        f"{spec['run_id']}-{spec.get('attempt', 1)}{'-' + spec['hook'] if spec.get('hook') else ''}"
    )
    spec_path = work_dir / f"{run_key}.spec.json"
    result_path = work_dir / f"{run_key}.result.json"
    result_path.unlink(missing_ok=True)
    full = {**spec, "result_path": str(result_path), "parent_pid": os.getpid()}
    spec_path.write_text(json.dumps(full, default=str), encoding="utf-8")
    child_env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    child_env.update({**(env or {}), "PYTHONUNBUFFERED": "1"})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dockyard.execution.child",
        str(spec_path),
        cwd=spec["base_dir"],
        env=child_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=MAX_LINE * 4,
    )
    handle = RunProcess(process, spec_path, result_path)
    assert process.stdout is not None and process.stderr is not None
    handle.readers = [
        asyncio.create_task(_pump(process.stdout, "stdout", sink)),
        asyncio.create_task(_pump(process.stderr, "stderr", sink)),
    ]
    return handle


async def _pump(stream: asyncio.StreamReader, name: str, sink: LineSink) -> None:
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line longer than the buffer: take what is there
            raw = await stream.read(MAX_LINE)
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + " …[line truncated]"
        outcome = sink(name, line)
        if outcome is not None:
            await outcome


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    error: str | None = None
    deployments: tuple[str, ...] = ()


async def probe(spec: dict[str, Any], *, work_dir: Path, limit_seconds: float) -> ProbeResult:
    """Load a code revision in ``python -m dockyard.execution.probe`` with a time limit."""
    spec_path = work_dir / f"probe-{os.getpid()}-{id(spec)}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dockyard.execution.probe",
        str(spec_path),
        cwd=spec["path"],
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
            return ProbeResult(
                bool(data["ok"]), data.get("error"), tuple(data.get("deployments", ()))
            )
    last = (err.strip().splitlines() or ["no output"])[-1]
    return ProbeResult(False, f"the code check crashed: {last}")
