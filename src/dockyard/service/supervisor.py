"""Supervising flow runs: start each through the executor, stream its output, record its end.

The scheduler decides *which* runs start; the supervisor carries one run from Running to
its final state (or to a retry), through an ``Executor`` (``execution.spec``) and the
state store. It also owns cancelling: an active run is signalled, a waiting one withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dockyard.core.deployments import Deployment
from dockyard.core.policies import ShutdownPolicy, Trigger
from dockyard.core.records import RunRecord, TaskRunRecord
from dockyard.core.states import RunState
from dockyard.errors import StateStoreError
from dockyard.execution.process import describe_exit
from dockyard.execution.spec import Executor, RunHandle, RunOutcome, RunSpec
from dockyard.metrics import Metrics
from dockyard.service.logfmt import RUN_OUTPUT_LOGGER, log_end, output_level, run_fields
from dockyard.service.throttle import WarningThrottle
from dockyard.store.aio import AsyncStore

if TYPE_CHECKING:
    from dockyard.web.auth import RunTokens

logger = logging.getLogger("dockyard")
output_logger = logging.getLogger(RUN_OUTPUT_LOGGER)

LOG_FLUSH_SECONDS = 0.5
MAX_BUFFERED_LINES = 50_000
"""Log lines of one run kept in memory while the state store cannot be written."""
FINISH_BACKOFF_SECONDS = (0.5, 10.0)
"""First and longest wait between attempts to record a run's end (with jitter)."""
CRASHED_HOOKS_SECONDS = 30.0
UNFINISHED_TASK_STATES = frozenset({"Pending", "Running"})
WAITING_STATES = frozenset({RunState.SCHEDULED, RunState.PENDING})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ActiveRun:
    """A run whose process this serve process started and still supervises."""

    run: RunRecord
    deployment: Deployment
    process: RunHandle | None = None
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    timed_out: bool = False
    name_reported: bool = False
    name_to_store: str | None = None
    unsaved: dict[str, Any] = field(default_factory=dict)
    """Run fields (pid, process) still to be written (kept through a database outage)."""
    buffer: list[tuple[datetime, str, str]] = field(default_factory=list)
    dropped: int = 0
    """Lines left out of ``buffer`` while the database was unreachable for too long."""
    reschedule: bool = False
    """Stopped by a shutdown under ``on_shutdown: reschedule``: queue it again."""
    exited: bool = False
    """Its process has ended (its end may still be being recorded)."""
    flush_after: float = 0.0
    flush_backoff: float = 0.0
    """After a failed write, the next try waits (loop time; doubling up to 10 s), so that a
    locked or unreachable database is not asked again every half second per run."""


@dataclass(frozen=True)
class Verdict:
    state: RunState
    message: str | None
    error: str | None = None
    result: str | None = None
    retry: bool = False


def judge(active: ActiveRun, outcome: RunOutcome) -> Verdict:
    """The final state of an attempt, from why it stopped and what the child reported."""
    reported = outcome.result
    state = reported.state if reported else None
    if reported and state is RunState.COMPLETED:
        return Verdict(RunState.COMPLETED, None, result=reported.result)
    if active.cancel_reason:
        return Verdict(RunState.CANCELLED, active.cancel_reason, error=active.cancel_reason)
    if active.timed_out:
        limit = active.deployment.timeout_seconds or 0
        message = f"timed out after {limit:g}s and was killed"
        return Verdict(RunState.FAILED, message, error=message, retry=True)
    if reported and state is RunState.FAILED:
        error = reported.error or "the flow failed"
        return Verdict(RunState.FAILED, error, error=error, retry=reported.retry)
    if state is RunState.CANCELLED:
        message = "stopped by SIGTERM from outside dockyard"
        return Verdict(RunState.CANCELLED, message, error=message)
    message = describe_exit(outcome.exit_code)
    return Verdict(RunState.CRASHED, message, error=message, retry=True)


def _duration(run: RunRecord, active: ActiveRun | None, now: datetime) -> float | None:
    """How long the attempt this process started ran (None for one it did not run)."""
    if active is None or active.process is None or run.started_at is None:
        return None
    return max((now - run.started_at).total_seconds(), 0.0)


def settle_task_runs(
    task_runs: Iterable[TaskRunRecord], verdict: Verdict, at: datetime
) -> tuple[TaskRunRecord, ...]:
    """An attempt's task runs as they ended: one still Pending or Running when its process
    ended is Cancelled with a cancelled run, and Crashed otherwise."""
    if verdict.state is RunState.CANCELLED:
        state, error = "Cancelled", "cancelled with its flow run"
    else:
        state = "Crashed"
        error = "the flow run's process ended before this task run finished"
        error += f" ({verdict.message})" if verdict.message else ""
    return tuple(
        replace(t, state=state, ended_at=t.ended_at or at, error=t.error or error)
        if t.state in UNFINISHED_TASK_STATES
        else t
        for t in task_runs
    )


def run_spec(
    run: RunRecord,
    deployment: Deployment,
    *,
    api_url: str | None = None,
    api_token: str | None = None,
    results_dir: str | None = None,
) -> RunSpec:
    """What the child needs for the next attempt of ``run`` (with the API access it gets,
    and where its cached task results live)."""
    return RunSpec(
        run_id=run.id,
        deployment=run.deployment,
        entrypoint=deployment.entrypoint,
        base_dir=deployment.base_dir,
        parameters=run.parameters,
        attempt=run.attempt,
        final_attempt=run.attempt > deployment.retries,
        name=run.name,
        bound_instance=deployment.bound_instance,
        enforce_parameter_schema=deployment.enforce_parameter_schema,
        timeout_seconds=deployment.timeout_seconds,
        scheduled_at=run.scheduled_at,
        tags=run.tags,
        deployment_parameters=dict(deployment.parameters),
        trigger=run.trigger,
        api_url=api_url,
        api_token=api_token,
        results_dir=results_dir,
    )


class RunSupervisor:
    """Starts and watches runs; every store write goes through ``store``."""

    def __init__(
        self,
        store: AsyncStore,
        executor: Executor,
        *,
        kill_delay: float,
        on_start: Callable[[ActiveRun], None],
        on_done: Callable[[ActiveRun, Verdict, bool], None],
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        metrics: Metrics | None = None,
        api_url: str | None = None,
        run_tokens: RunTokens | None = None,
        results_dir: str | None = None,
        throttle: WarningThrottle | None = None,
    ) -> None:
        self.store = store
        self.throttle = throttle
        self.closed = asyncio.Event()
        """Set when the process gives up writing (end of shutdown): retries stop."""
        self.results_dir = results_dir
        self.api_url = api_url
        self.run_tokens = run_tokens
        self.executor = executor
        self.owner = owner
        self.metrics = metrics
        self.kill_delay = kill_delay
        self.on_start = on_start
        self.on_done = on_done
        self.clock = clock
        self.active: dict[str, ActiveRun] = {}

    def pids(self) -> set[int]:
        return {a.process.pid for a in self.active.values() if a.process is not None}

    def running_in(self, deployment: str) -> bool:
        return any(a.run.deployment == deployment for a in self.active.values())

    async def start(self, run: RunRecord, deployment: Deployment) -> None:
        """Start the process of ``run``, which ``take_runs`` already moved to Running for
        this replica."""
        active = ActiveRun(run, deployment, name_reported=run.name is not None)
        self.active[run.id] = active
        try:
            active.process = await self.executor.start(
                self._spec(run, deployment), self._sink(active)
            )
        except OSError as exc:
            await self._finish(active, Verdict(RunState.CRASHED, f"could not start: {exc}"))
            return
        process = active.process
        active.unsaved = {"pid": process.pid, "process": process.identity}
        await self._flush(active)  # a database outage now only delays these writes
        self.on_start(active)
        active.task = asyncio.create_task(self._supervise(active), name=f"run-{run.id}")

    def _spec(self, run: RunRecord, deployment: Deployment) -> RunSpec:
        """The attempt's spec, with a token for the API that is revoked when it ends."""
        if self.api_url is None or self.run_tokens is None:
            return run_spec(run, deployment, results_dir=self.results_dir)
        token = self.run_tokens.issue(run.id)
        return run_spec(
            run, deployment, api_url=self.api_url, api_token=token, results_dir=self.results_dir
        )

    def _learn_name(self, active: ActiveRun) -> None:
        """Take the name the child rendered, once it has reported it."""
        if active.name_reported or active.process is None:
            return
        started = active.process.started()
        if started is None:
            return
        active.name_reported = True
        if started.name:
            active.run = replace(active.run, name=started.name)
            active.name_to_store = started.name

    def _sink(self, active: ActiveRun) -> Callable[[str, str], None]:
        def sink(stream: str, line: str) -> None:
            # The child reports its name before the flow prints: known by the first line.
            self._learn_name(active)
            run = active.run
            fields = run_fields(run.deployment, run.id, run.name, stream=stream)
            output_logger.log(output_level(stream, line), "%s", line, extra=fields)
            active.buffer.append((self.clock(), stream, line))

        return sink

    async def _flush(self, active: ActiveRun, *, now: bool = False) -> None:
        """Write what the run produced since the last flush. Through a database outage
        everything is kept (up to ``MAX_BUFFERED_LINES`` lines) and written once it is back;
        until then tries are spaced out, unless ``now``."""
        self._learn_name(active)
        loop = asyncio.get_running_loop()
        if not now and loop.time() < active.flush_after:
            return
        fields = dict(active.unsaved)
        if active.name_to_store is not None:
            fields["name"] = active.name_to_store
        lines, active.buffer = active.buffer, []
        try:
            if fields:
                await self.store.update_run(active.run.id, **fields)
                # Only what was written: the name may have been learned meanwhile (a forked
                # run reports it within milliseconds, while its pid is being written).
                for key, value in fields.items():
                    if active.unsaved.get(key) == value:
                        del active.unsaved[key]
                if active.name_to_store == fields.get("name"):
                    active.name_to_store = None
            if lines:
                await self.store.append_logs(active.run.id, lines)
                lines = []
            if active.dropped:
                note = f"[dockyard] {active.dropped} log line(s) were lost in a database outage"
                await self.store.append_logs(active.run.id, [(self.clock(), "dockyard", note)])
                active.dropped = 0
            active.flush_backoff = 0.0
        except StateStoreError as exc:
            # The lines went to the process output already; the store gets them later.
            active.buffer = lines + active.buffer
            active.flush_backoff = min(max(active.flush_backoff * 2, 1.0), 10.0)
            active.flush_after = loop.time() + active.flush_backoff
            excess = len(active.buffer) - MAX_BUFFERED_LINES
            if excess > 0:
                del active.buffer[:excess]
                active.dropped += excess
            self.throttle_warn(
                f"flush:{active.run.id}",
                f"run {active.run.id[:8]}: {len(active.buffer)} log line(s) kept until the "
                f"state store answers again: {exc}",
            )

    def throttle_warn(self, key: str, message: str) -> None:
        if self.throttle is not None:
            self.throttle.warn(key, message)
        else:
            logger.warning("%s", message)

    async def _supervise(self, active: ActiveRun) -> None:
        process = active.process
        assert process is not None
        waiter = asyncio.ensure_future(process.wait())
        limit = active.deployment.timeout_seconds
        loop = asyncio.get_running_loop()
        # The child enforces timeout_seconds itself; this is the backstop for a flow
        # that blocks the child's signal handling (e.g. a long C call).
        deadline = None if not limit else loop.time() + limit + self.kill_delay
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=LOG_FLUSH_SECONDS)
            await self._flush(active)
            if deadline and loop.time() > deadline and not waiter.done():
                active.timed_out = True
                process.kill()
                deadline = None
        outcome = waiter.result()
        active.exited = True
        await self._flush(active)
        verdict = judge(active, outcome)
        try:
            await self._finish(active, verdict, outcome.task_runs)
        finally:
            # Only once the end is recorded: killed before that, this process leaves the
            # attempt's report for the next start, which then records the run as it ended
            # instead of running it again.
            process.cleanup()

    async def _record_task_runs(
        self, run: RunRecord, task_runs: Iterable[TaskRunRecord], verdict: Verdict
    ) -> None:
        """Store an attempt's task runs as they ended, and count them (before the run's
        end is recorded: whoever sees the run ended sees its task runs)."""
        settled = settle_task_runs(task_runs, verdict, self.clock())
        if not settled:
            return
        await self.store.save_task_runs(run.id, settled)  # idempotent: safe to repeat
        if self.metrics is not None:
            self.metrics.task_runs_ended(run.deployment, [t.state for t in settled])

    async def _finish(
        self, active: ActiveRun, verdict: Verdict, task_runs: Iterable[TaskRunRecord] = ()
    ) -> None:
        if self.run_tokens is not None:
            self.run_tokens.revoke(active.run.id)  # the attempt is over: so is its API access
        retried = False
        try:
            retried = await self._conclude_with_retries(active, verdict, tuple(task_runs))
        finally:
            # Whatever the store said, the process is gone: free its slot.
            self.active.pop(active.run.id, None)
            self.on_done(active, verdict, retried)

    async def _conclude_with_retries(
        self, active: ActiveRun, verdict: Verdict, task_runs: tuple[TaskRunRecord, ...]
    ) -> bool:
        """Record the end (logs, task runs, final state) through a busy or unavailable state
        store: retried with backoff and jitter until it answers or the process stops."""
        first, longest = FINISH_BACKOFF_SECONDS
        delay = first
        while True:
            try:
                await self._flush(active, now=True)
                if active.buffer or active.unsaved:
                    raise StateStoreError("log lines are still waiting to be written")
                await self._record_task_runs(active.run, task_runs, verdict)
                task_runs = ()
                return await self.conclude(active.run, active.deployment, verdict, active)
            except StateStoreError as exc:
                if self.closed.is_set():
                    logger.error(
                        "run %s ended %s but the state store could not record it (%s); "
                        "a live replica marks it Crashed once this one's heartbeat expires",
                        active.run.id[:8], verdict.state.value, exc,
                    )  # fmt: skip
                    return False
                self.throttle_warn(
                    f"finish:{active.run.id}",
                    f"run {active.run.id[:8]} ended {verdict.state.value}; recording it when "
                    f"the state store answers again: {exc}",
                )
            except ValueError as exc:  # no longer Running: another replica took it over
                logger.warning(
                    "run %s ended %s here, but the state store already has it otherwise: %s",
                    active.run.id[:8], verdict.state.value, exc,
                )  # fmt: skip
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), delay * (0.5 + random.random()))
            delay = min(delay * 2, longest)

    async def conclude(
        self,
        run: RunRecord,
        deployment: Deployment,
        verdict: Verdict,
        active: ActiveRun | None = None,
    ) -> bool:
        """Record how an attempt ended: a retry if one is left, else the final state (and,
        for a run a shutdown stopped under ``on_shutdown: reschedule``, a new Pending run).

        Returns True when the run was scheduled for another attempt.
        """
        now = self.clock()
        if verdict.retry and run.attempt <= deployment.retries:
            delay = deployment.retry_delay(run.attempt)
            message = (
                f"retry {run.attempt} of {deployment.retries} in {delay:g}s "
                f"after: {verdict.message}"
            )
            logger.warning(
                "run %s of %s: %s", run.id[:8], run.deployment, message,
                extra=run_fields(run.deployment, run.id, run.name),
            )  # fmt: skip
            await self.store.transition(
                run.id, RunState.SCHEDULED, at=now, message=message, attempt=run.attempt + 1,
                error=verdict.error, scheduled_at=now + timedelta(seconds=delay),
            )  # fmt: skip
            return True
        await self.store.transition(
            run.id, verdict.state, at=now, message=verdict.message, ended_at=now,
            error=verdict.error, result=verdict.result,
        )  # fmt: skip
        log_end(run, verdict.state, verdict.error, _duration(run, active, now))
        if active is not None and active.reschedule and verdict.state is RunState.CANCELLED:
            await self._reschedule(run, deployment, now)
        if verdict.state is RunState.CRASHED and deployment.crashed_hooks:
            await self._crashed_hooks(run, deployment)
        return False

    async def _reschedule(self, run: RunRecord, deployment: Deployment, now: datetime) -> None:
        """Queue the run again for another replica (its retries start over)."""
        new = replace(
            deployment.new_run(run.parameters, now, Trigger(run.trigger)),
            name=run.name, tags=run.tags,
            message=f"rescheduled: run {run.id[:8]} was stopped by its replica's shutdown",
        )  # fmt: skip
        again = await self.store.create_run(new)
        logger.info(
            "run %s of %s: queued again as run %s for another replica",
            run.id[:8], run.deployment, again.id[:8],
        )  # fmt: skip

    async def _crashed_hooks(self, run: RunRecord, deployment: Deployment) -> None:
        """on_crashed hooks run in a fresh subprocess: the crashed one is gone."""
        hooks = replace(run_spec(run, deployment), hook="crashed")
        try:
            process = await self.executor.start(hooks, self._sink(ActiveRun(run, deployment)))
        except OSError as exc:
            logger.warning("on_crashed hooks of run %s could not start: %s", run.id[:8], exc)
            return
        try:
            await asyncio.wait_for(process.wait(), timeout=CRASHED_HOOKS_SECONDS)
        except TimeoutError:
            process.kill()
            logger.warning(
                "on_crashed hooks of run %s did not finish in %gs: killed",
                run.id[:8], CRASHED_HOOKS_SECONDS,
            )  # fmt: skip
        finally:
            process.cleanup()

    async def recover(self, run: RunRecord, deployment: Deployment, crashed: Verdict) -> str:
        """Conclude ``run``, left Running by a serve process now gone; say how it ended.

        What the attempt left running is killed first. An attempt that reported its end
        before its serve process died ends as it reported (a run that completed is not run
        again); any other ends ``crashed`` (which retries it if it may).
        """
        killed = await self.executor.kill_leftovers(run.id, run.process)
        reported = self.executor.reported(run.process, run.id, run.attempt)
        left = ActiveRun(run, deployment)  # not ours to supervise: only to judge and report
        verdict = judge(left, RunOutcome(None, reported)) if reported else crashed
        read = self.executor.reported_task_runs
        task_runs = await asyncio.to_thread(read, run.process, run.id, run.attempt)
        try:
            await self._record_task_runs(run, task_runs, verdict)
        except StateStoreError as exc:
            logger.warning("run %s: task runs not stored: %s", run.id[:8], exc)
        if not await self.conclude(run, deployment, verdict):
            self.on_done(left, verdict, False)
        how = crashed.message
        if reported is not None:
            how = f"it ended {reported.state.value} before its serve process stopped: recorded so"
        killed_text = f" (killed {killed} process(es) it left running)" if killed else ""
        return f"{how}{killed_text}"

    async def cancel_run(self, run_id: str, reason: str) -> RunRecord:
        """Stop a run: signal it when active here; otherwise withdraw it if it waits, or
        ask the replica running it to stop it."""
        run = await self.store.get_run(run_id)
        if self.cancel(run.id, reason):
            return run
        after = await self.store.request_cancel(run.id, reason, now=self.clock())
        if after.state is RunState.CANCELLED and run.state in WAITING_STATES:
            log_end(after, RunState.CANCELLED, reason, None)
        return after

    def cancel(self, run_id: str, reason: str) -> bool:
        """Ask an active run to stop (SIGTERM, then SIGKILL after the kill delay)."""
        active = self.active.get(run_id)
        if active is None or active.process is None:
            return False
        if active.cancel_reason is None:
            active.cancel_reason = reason
        asyncio.create_task(active.process.stop(self.kill_delay))
        return True

    def stop_for_shutdown(self, reason: str) -> None:
        """Cancel every active run at the end of the shutdown grace; runs of deployments
        with ``on_shutdown: reschedule`` are queued again once they stopped."""
        for run_id, active in list(self.active.items()):
            if active.deployment.on_shutdown is ShutdownPolicy.RESCHEDULE:
                active.reschedule = True
                self.cancel(run_id, f"{reason}; queued again for another replica")
            else:
                self.cancel(run_id, reason)

    def kill_all(self, reason: str) -> None:
        for active in self.active.values():
            active.cancel_reason = active.cancel_reason or reason
            if active.process is not None:
                active.process.kill()

    async def wait_all(self) -> None:
        tasks = [a.task for a in self.active.values() if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
