"""Supervising one flow run: start its process, stream its output, record its end.

The serve service decides *which* runs start; this module carries one run from
Running to its final state (or to a retry), through the process adapter and the
state store.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from dockyard.core.deployments import Deployment
from dockyard.core.records import RunRecord
from dockyard.core.states import RunState
from dockyard.errors import StateStoreError
from dockyard.execution.process import RunOutcome, RunProcess, start_run

logger = logging.getLogger("dockyard")

DbCall = Callable[..., Awaitable[Any]]
LOG_FLUSH_SECONDS = 0.5
LOG_FLUSH_LINES = 200
FINISH_ATTEMPTS = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ActiveRun:
    """A run whose process this serve process started and still supervises."""

    run: RunRecord
    deployment: Deployment
    process: RunProcess | None = None
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    timed_out: bool = False
    buffer: list[tuple[datetime, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    state: RunState
    message: str | None
    error: str | None = None
    result: str | None = None
    retry: bool = False


def judge(active: ActiveRun, outcome: RunOutcome) -> Verdict:
    """The final state of an attempt, from why it stopped and what the child reported."""
    reported = outcome.result or {}
    state = reported.get("state")
    if state == "Completed":
        return Verdict(RunState.COMPLETED, None, result=reported.get("result"))
    if active.cancel_reason:
        return Verdict(RunState.CANCELLED, active.cancel_reason, error=active.cancel_reason)
    if active.timed_out:
        limit = active.deployment.timeout_seconds
        message = f"timed out after {limit:g}s and was killed"
        return Verdict(RunState.FAILED, message, error=message, retry=True)
    if state == "Failed":
        error = str(reported.get("error") or "the flow failed")
        return Verdict(RunState.FAILED, error, error=error, retry=bool(reported.get("retry")))
    if state == "Cancelled":
        message = "stopped by SIGTERM from outside dockyard"
        return Verdict(RunState.CANCELLED, message, error=message)
    message = outcome.describe_exit()
    return Verdict(RunState.CRASHED, message, error=message, retry=True)


def _run_name(deployment: Deployment, parameters: dict[str, Any]) -> str | None:
    """The flow's flow_run_name for these parameters; a broken template names nothing."""
    assert deployment.flow is not None
    try:
        return deployment.flow.render_flow_run_name(parameters)
    except Exception as exc:  # a bad template must not stop the run
        logger.warning("%s: flow_run_name could not be rendered: %s", deployment.full_name, exc)
        return None


def retry_delay(deployment: Deployment, attempt: int) -> float:
    """Delay before retry number ``attempt`` (1 = first retry)."""
    delay = deployment.retry_delay_seconds
    if isinstance(delay, list | tuple):
        if not delay:
            return 0.0
        return float(delay[min(attempt, len(delay)) - 1])
    return float(delay or 0.0)


class RunSupervisor:
    """Starts and watches run processes; every store write goes through ``db``."""

    def __init__(
        self,
        db: DbCall,
        store: Any,
        work_dir: Path,
        *,
        kill_delay: float,
        on_start: Callable[[ActiveRun], None],
        on_done: Callable[[ActiveRun, Verdict, bool], None],
        out: TextIO | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.work_dir = work_dir
        self.kill_delay = kill_delay
        self.on_start = on_start
        self.on_done = on_done
        self.out = out or sys.stdout
        self.clock = clock
        self.active: dict[str, ActiveRun] = {}

    def pids(self) -> set[int]:
        return {a.process.pid for a in self.active.values() if a.process is not None}

    async def start(self, run: RunRecord, deployment: Deployment) -> bool:
        """Move ``run`` from Pending to Running and start its process."""
        now = self.clock()
        fields: dict[str, Any] = {"started_at": now, "code_revision": deployment.revision}
        if run.name is None and deployment.flow is not None:
            fields["name"] = _run_name(deployment, run.parameters)
        try:
            run = await self.db(self.store.transition, run.id, RunState.RUNNING, at=now, **fields)
        except ValueError:
            return False  # someone else moved it (cancelled meanwhile)
        active = ActiveRun(run, deployment)
        self.active[run.id] = active
        try:
            active.process = await start_run(
                self._spec(run, deployment), work_dir=self.work_dir, sink=self._sink(active)
            )
        except OSError as exc:
            await self._finish(active, Verdict(RunState.CRASHED, f"could not start: {exc}"))
            return True
        await self.db(self.store.update_run, run.id, pid=active.process.pid)
        self.on_start(active)
        active.task = asyncio.create_task(self._supervise(active), name=f"run-{run.id}")
        return True

    def _spec(self, run: RunRecord, deployment: Deployment, **extra: Any) -> dict[str, Any]:
        return {
            "run_id": run.id,
            "name": run.name,
            "deployment": run.deployment,
            "entrypoint": deployment.entrypoint,
            "base_dir": deployment.base_dir,
            "bound_instance": deployment.bound_instance,
            "parameters": run.parameters,
            "enforce_parameter_schema": deployment.enforce_parameter_schema,
            "attempt": run.attempt,
            "final_attempt": run.attempt > deployment.retries,
            "timeout_seconds": deployment.timeout_seconds,
            "scheduled_at": run.scheduled_at.isoformat(),
            **extra,
        }

    def _sink(self, active: ActiveRun) -> Callable[[str, str], None]:
        prefix = f"[{active.run.deployment} {active.run.name or active.run.id[:8]}]"

        def sink(stream: str, line: str) -> None:
            self.out.write(f"{prefix} {line}\n")
            self.out.flush()
            active.buffer.append((self.clock(), stream, line))

        return sink

    async def _flush_logs(self, active: ActiveRun) -> None:
        if not active.buffer:
            return
        lines, active.buffer = active.buffer, []
        try:
            await self.db(self.store.append_logs, active.run.id, lines)
        except StateStoreError as exc:
            # The lines already went to the process output; the store gets the rest.
            logger.warning(
                "run %s: %d log line(s) not stored: %s", active.run.id[:8], len(lines), exc
            )

    async def _supervise(self, active: ActiveRun) -> None:
        process = active.process
        assert process is not None
        waiter = asyncio.ensure_future(process.wait())
        limit = active.deployment.timeout_seconds
        # The child enforces timeout_seconds itself; this is the backstop for a flow
        # that blocks the child's signal handling (e.g. a long C call).
        deadline = (
            None if not limit else asyncio.get_running_loop().time() + limit + self.kill_delay
        )
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=LOG_FLUSH_SECONDS)
            await self._flush_logs(active)
            if deadline and asyncio.get_running_loop().time() > deadline and not waiter.done():
                active.timed_out = True
                process.kill()
                deadline = None
        outcome = waiter.result()
        await self._flush_logs(active)
        process.cleanup()
        await self._finish(active, judge(active, outcome))

    async def _finish(self, active: ActiveRun, verdict: Verdict) -> None:
        retried = False
        try:
            retried = await self._conclude_with_retries(active, verdict)
        finally:
            # Whatever the store said, the process is gone: free its slot.
            self.active.pop(active.run.id, None)
            self.on_done(active, verdict, retried)

    async def _conclude_with_retries(self, active: ActiveRun, verdict: Verdict) -> bool:
        """Record the end even through a busy or briefly unavailable state store."""
        delay = 0.5
        for attempt in range(1, FINISH_ATTEMPTS + 1):
            try:
                return await self.conclude(active.run, active.deployment, verdict)
            except StateStoreError as exc:
                if attempt == FINISH_ATTEMPTS:
                    logger.error(
                        "run %s ended %s but the state store refused to record it (%s); "
                        "the next start marks it Crashed",
                        active.run.id[:8],
                        verdict.state.value,
                        exc,
                    )
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        return False

    async def conclude(self, run: RunRecord, deployment: Deployment, verdict: Verdict) -> bool:
        """Record how an attempt ended: a retry if one is left, else the final state.

        Returns True when the run was scheduled for another attempt.
        """
        now = self.clock()
        if verdict.retry and run.attempt <= deployment.retries:
            delay = retry_delay(deployment, run.attempt)
            message = (
                f"retry {run.attempt} of {deployment.retries} in {delay:g}s "
                f"after: {verdict.message}"
            )
            logger.warning("run %s of %s: %s", run.id[:8], run.deployment, message)
            await self.db(
                self.store.transition,
                run.id,
                RunState.SCHEDULED,
                at=now,
                message=message,
                attempt=run.attempt + 1,
                error=verdict.error,
                scheduled_at=now + timedelta(seconds=delay),
            )
            return True
        await self.db(
            self.store.transition,
            run.id,
            verdict.state,
            at=now,
            message=verdict.message,
            ended_at=now,
            error=verdict.error,
            result=verdict.result,
        )
        if verdict.state is RunState.CRASHED:
            await self._crashed_hooks(run, deployment)
        return False

    async def _crashed_hooks(self, run: RunRecord, deployment: Deployment) -> None:
        """on_crashed hooks run in a fresh subprocess: the crashed one is gone."""
        flow = deployment.flow
        if flow is None or not flow.hooks_for("crashed"):
            return
        spec = self._spec(run, deployment, hook="crashed", hook_state="Crashed")
        sink = self._sink(ActiveRun(run, deployment))
        try:
            process = await start_run(spec, work_dir=self.work_dir, sink=sink)
            await asyncio.wait_for(process.wait(), timeout=30)
            process.cleanup()
        except (OSError, TimeoutError):
            logger.warning("on_crashed hooks of run %s did not finish", run.id[:8])

    def cancel(self, run_id: str, reason: str) -> bool:
        """Ask an active run to stop (SIGTERM, then SIGKILL after the kill delay)."""
        active = self.active.get(run_id)
        if active is None or active.process is None:
            return False
        if active.cancel_reason is None:
            active.cancel_reason = reason
        asyncio.create_task(active.process.stop(self.kill_delay))
        return True

    def kill_all(self, reason: str) -> None:
        for active in self.active.values():
            active.cancel_reason = active.cancel_reason or reason
            if active.process is not None:
                active.process.kill()

    async def wait_all(self) -> None:
        tasks = [a.task for a in self.active.values() if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
