"""The serve process: a lifecycle of named phases around one scheduling loop.

``run()`` → ``serve()`` → ``startup()`` → ``main_loop()`` → ``on_tick(now)`` →
``shutdown()``. Signal handlers only set ``should_exit`` / ``force_exit`` and wake
the loop; every wait can be interrupted by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import signal
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from dockyard.core import planning
from dockyard.core.deployments import Deployment
from dockyard.core.records import (
    PAUSED_BY_CONFIG,
    PAUSED_BY_SHUTDOWN,
    DeploymentRecord,
    NewRun,
    RunRecord,
)
from dockyard.core.schedules import next_fire
from dockyard.core.states import RunState
from dockyard.errors import DockyardError, StateStoreError, UsageError
from dockyard.execution.reaper import become_subreaper, reap_orphans
from dockyard.metrics import Metrics
from dockyard.service.code import CodeSources
from dockyard.service.ops import Operations
from dockyard.service.sourcing import SourcePlan
from dockyard.service.supervisor import ActiveRun, RunSupervisor, Verdict, utcnow
from dockyard.service.throttle import WarningThrottle
from dockyard.settings import Settings, state_path
from dockyard.store import open_store

logger = logging.getLogger("dockyard")


class ServeService(Operations, CodeSources):
    """Schedules and runs the given deployments until told to stop."""

    def __init__(
        self,
        deployments: Sequence[Deployment],
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        handle_signals: bool = True,
        out: TextIO | None = None,
        starting_message: bool = True,
        sources: Sequence[SourcePlan] = (),
    ) -> None:
        self.deployments = {d.full_name: d for d in deployments}
        self.settings = settings
        self.clock = clock
        self.handle_signals = handle_signals
        self.out = out
        self.starting_message = starting_message
        self.plans = list(sources)
        self.managers = {}
        self._source_tasks = []
        self._sources_stop = None
        self.should_exit = False
        self.force_exit = False
        self.ready = False
        self.draining = False
        self.exit_code = 0
        self.last_tick: datetime | None = None
        self.tick_started: datetime | None = None
        self.tick_error: str | None = None
        self.started_at: datetime | None = None
        self.metrics = Metrics()
        self._limit_counted: set[str] = set()
        self.store: Any = None
        self.runs: RunSupervisor | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-db")
        self._wake: asyncio.Event | None = None
        self._work_dir: Path | None = None
        self._server: Any = None
        self._server_task: asyncio.Task[None] | None = None
        self.port: int | None = None
        self._throttle = WarningThrottle(logger)

    # ── lifecycle ─────────────────────────────────────────────────────────────
    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit code."""
        return asyncio.run(self.serve())

    async def serve(self) -> int:
        self._wake = asyncio.Event()
        with self._capture_signals():
            try:
                await self.start_webserver()
                await self.startup()
                await self.start_sources()
                await self.main_loop()
            finally:
                await self.stop_sources()
                await self.shutdown()
                await self.stop_webserver()
        return self.exit_code

    def handle_exit(self, sig: int | None = None) -> None:
        """First signal: drain. Second signal: stop at once."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        self.draining = True  # /ready answers 503 from now on
        self.wake()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    @contextlib.contextmanager
    def _capture_signals(self) -> Iterator[None]:
        # Signals can only be handled on the main thread; embedders turn this off.
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig)
        loop.add_signal_handler(signal.SIGHUP, self.trigger_sources)  # pull code now
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call on the one database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def startup(self) -> None:
        become_subreaper()
        path = state_path(self.settings)
        try:
            self.store = await self.db(open_store, path, max_log_lines=self.settings.max_log_lines)
        except StateStoreError as exc:
            raise UsageError(str(exc)) from None  # the fix is a different --state
        self._work_dir = Path(tempfile.mkdtemp(prefix="dockyard-runs-"))
        self.runs = RunSupervisor(
            self.db,
            self.store,
            self._work_dir,
            kill_delay=self.settings.kill_delay,
            on_start=self._run_started,
            on_done=self._run_done,
            out=self.out,
            clock=self.clock,
        )
        now = self.clock()
        self.started_at = now
        await self.adopt(list(self.deployments.values()), now)
        self.ready = True
        if self.starting_message:
            names = ", ".join(self.deployments) or "nothing yet"
            sources = ", ".join(p.repo.safe_url for p in self.plans)
            code = f" (code from {sources})" if sources else ""
            print(
                f"dockyard: serving {names}{code}. Stop with Ctrl+C or SIGTERM.",
                file=self.out,
                flush=True,
            )
        logger.info(
            "serving %d deployment(s) from %s (limit %s, pause_on_shutdown=%s)",
            len(self.deployments),
            path,
            self.settings.effective_limit or "none",
            self.settings.pause_on_shutdown,
        )

    async def main_loop(self) -> None:
        assert self._wake is not None
        while not self.should_exit:
            self._wake.clear()
            now = self.clock()
            self.tick_started = now
            wake_at = await self._guarded_tick(now)
            self.last_tick = now
            if self.should_exit:
                break
            delay = self.settings.heartbeat
            if wake_at is not None:
                delay = min(delay, max((wake_at - self.clock()).total_seconds(), 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _guarded_tick(self, now: datetime) -> datetime | None:
        """One tick; a failing one (locked or read-only database…) is logged, not fatal."""
        try:
            wake_at = await self.on_tick(now)
        except DockyardError as exc:
            self.tick_error = str(exc)
            self._throttle.warn("tick", f"scheduling failed, retrying: {exc}")
            return None
        except Exception as exc:  # a bug must not take down the runs in flight
            self.tick_error = f"{type(exc).__name__}: {exc}"
            if self._throttle.warn("tick", f"scheduling failed, retrying: {self.tick_error}"):
                logger.exception("scheduling tick failed")
            return None
        if self.tick_error is not None:
            logger.info("scheduling works again")
            self._throttle.clear("tick")
            self.tick_error = None
        return wake_at

    async def on_tick(self, now: datetime) -> datetime | None:
        """Plan, claim, start what is due; return when something is due next."""
        assert self.runs is not None
        reap_orphans(self.runs.pids())
        views = await self._views()
        decisions = planning.plan(
            now,
            views,
            started_at=self.started_at or now,
            misfire_grace_seconds=self.settings.misfire_grace,
        ).decisions
        for decision in decisions:
            await self._apply(decision, now)
        next_retry = await self._promote_due_retries(now)
        await self._dispatch()
        self._report(now, views)
        times = [t for t in (planning.next_wakeup(now, views), next_retry) if t is not None]
        return min(times) if times else None

    async def shutdown(self) -> None:
        self.ready = False
        self.draining = True
        if self.store is not None and self.runs is not None:
            await self._pause_for_shutdown()
            await self._drain()
        if self.store is not None:
            await self.db(self.store.close)
        self._executor.shutdown(wait=True)
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        if self.force_exit:
            self.exit_code = 1
        if self.started_at is not None:
            logger.info("stopped")

    # ── startup phases ────────────────────────────────────────────────────────
    async def _register(self, deployment: Deployment, now: datetime) -> None:
        name = deployment.full_name
        record = await self.db(
            self.store.upsert_deployment, name, deployment.flow_name, deployment.spec(), now=now
        )
        if deployment.paused and not record.paused:
            await self.db(self.store.set_paused, name, True, PAUSED_BY_CONFIG, now=now)
        elif not deployment.paused and record.paused and record.paused_reason == PAUSED_BY_CONFIG:
            await self.db(self.store.set_paused, name, False, None, now=now)

    async def adopt(self, deployments: list[Deployment], now: datetime) -> None:
        """Start serving these deployments (at start-up, or from a new code revision)."""
        for deployment in deployments:
            self.deployments[deployment.full_name] = deployment
            await self._register(deployment, now)
            self.metrics.add_deployment(deployment.full_name)
        names = {d.full_name for d in deployments}
        await self._recover_crashed(now, names)
        await self._resume_after_shutdown(now, names)
        self.wake()

    async def _recover_crashed(self, now: datetime, names: set[str]) -> None:
        """Runs left Running by a process that was killed end Crashed (or retry)."""
        assert self.runs is not None
        message = "the serve process stopped while this run was running (killed or out of memory)"
        verdict = Verdict(RunState.CRASHED, message, error=message, retry=True)
        for run in await self.db(self.store.runs_in_states, [RunState.RUNNING]):
            deployment = self.deployments.get(run.deployment)
            if deployment is None or run.deployment not in names or run.id in self.runs.active:
                continue
            logger.warning("run %s of %s: %s", run.id[:8], run.deployment, message)
            if not await self.runs.conclude(run, deployment, verdict):
                self.metrics.run_finished(run.deployment, RunState.CRASHED.value, None)

    async def _resume_after_shutdown(self, now: datetime, names: set[str]) -> None:
        """Schedules paused by the last shutdown resume; slots due meanwhile are skipped."""
        for record in await self.db(self.store.list_deployments):
            deployment = self.deployments.get(record.name)
            if deployment is None or record.paused_reason != PAUSED_BY_SHUTDOWN:
                continue
            if record.name not in names:
                continue
            skipped = 0
            if record.cursor is not None:
                skipped = planning.count_fires(
                    deployment.schedules, record.cursor, now, planning.MISSED_COUNT_CAP
                )
                self.metrics.slots_missed(record.name, "paused", skipped)
            await self.db(self.store.set_cursor, record.name, now)
            await self.db(self.store.set_paused, record.name, False, None, now=now)
            logger.info(
                "resumed %s (paused by the last shutdown); %d slot(s) skipped while it was down",
                record.name,
                skipped,
            )

    # ── tick work ─────────────────────────────────────────────────────────────
    async def _views(self) -> list[planning.DeploymentView]:
        assert self.runs is not None
        records = {r.name: r for r in await self.db(self.store.list_deployments)}
        pending = await self.db(self.store.runs_in_states, [RunState.PENDING])
        active: dict[str, list[str]] = {}
        for run in [a.run for a in self.runs.active.values()] + pending:
            active.setdefault(run.deployment, []).append(run.id)
        return [
            _view(d, records.get(name), active.get(name, []))
            for name, d in self.deployments.items()
        ]

    async def _apply(self, decision: planning.Decision, now: datetime) -> None:
        if isinstance(decision, planning.AdvanceCursor):
            await self.db(self.store.set_cursor, decision.deployment, decision.to)
        elif isinstance(decision, planning.SkipSlots):
            self._skipped(decision)
        elif isinstance(decision, planning.CancelRuns):
            for run_id in decision.run_ids:
                await self.cancel_run(run_id, reason=decision.reason)
        elif isinstance(decision, planning.RunSlot):
            await self._claim(decision, now)

    def _skipped(self, decision: planning.SkipSlots) -> None:
        self.metrics.slots_missed(decision.deployment, decision.reason, decision.count)
        if decision.reason == "overlap":
            self._throttle.warn(
                f"overlap:{decision.deployment}",
                f"{decision.deployment}: skipped {decision.count} slot(s) because a run is "
                "still active (overlap policy 'skip')",
            )
        elif decision.reason == "downtime":
            logger.info(
                "%s: %d slot(s) missed while the process was down were not run (catchup policy)",
                decision.deployment,
                decision.count,
            )

    async def _claim(self, slot: planning.RunSlot, now: datetime) -> None:
        deployment = self.deployments[slot.deployment]
        new = self._new_run(
            deployment, dict(deployment.parameters), slot.scheduled_at, slot.trigger
        )
        run = await self.db(self.store.claim_slot, new)
        if run is None:
            return  # another process (or an earlier life of this one) already took it
        if self.runs and any(
            a.run.deployment == slot.deployment for a in self.runs.active.values()
        ):
            self._throttle.warn(
                f"late:{slot.deployment}",
                f"{slot.deployment}: a run is still running past its next slot "
                f"({slot.scheduled_at:%Y-%m-%d %H:%M:%S} UTC); starting another (overlap 'allow')",
            )
        await self.db(self.store.transition, run.id, RunState.PENDING, at=now)

    def _new_run(
        self, deployment: Deployment, parameters: dict[str, Any], at: datetime, trigger: str
    ) -> NewRun:
        # The run's name (flow_run_name) is rendered when it starts, like Prefect does.
        return NewRun(
            deployment=deployment.full_name,
            flow_name=deployment.flow_name,
            parameters=parameters,
            scheduled_at=at,
            trigger=trigger,
            retries=deployment.retries,
            retry_delay_seconds=_first_delay(deployment),
        )

    async def _promote_due_retries(self, now: datetime) -> datetime | None:
        """Retries whose delay has passed become Pending; returns the next one's time."""
        later: list[datetime] = []
        for run in await self.db(self.store.runs_in_states, [RunState.SCHEDULED]):
            if run.deployment not in self.deployments:
                continue
            if run.scheduled_at > now:
                later.append(run.scheduled_at)
                continue
            with contextlib.suppress(ValueError):
                await self.db(self.store.transition, run.id, RunState.PENDING, at=now)
        return min(later) if later else None

    async def _dispatch(self) -> None:
        assert self.runs is not None
        if self.should_exit:
            return
        pending = [
            r
            for r in await self.db(self.store.runs_in_states, [RunState.PENDING])
            if r.deployment in self.deployments and r.id not in self.runs.active
        ]
        running = Counter(a.run.deployment for a in self.runs.active.values())
        chosen = planning.select_runs_to_start(
            [planning.QueuedRun(r.id, r.deployment) for r in pending],
            running,
            limit=self.settings.effective_limit,
            concurrency_limits={n: d.concurrency_limit for n, d in self.deployments.items()},
        )
        by_id = {r.id: r for r in pending}
        for run_id in chosen:
            run = by_id[run_id]
            await self.runs.start(run, self.deployments[run.deployment])
        self._count_limit_waits([r for r in pending if r.id not in chosen])

    def _count_limit_waits(self, waiting: list[RunRecord]) -> None:
        """A scheduled run that cannot start at its slot for the limit counts once."""
        limit = self.settings.effective_limit
        self._limit_counted &= {r.id for r in waiting}  # forget runs that started or ended
        if not limit or len(self.runs.active if self.runs else ()) < limit:
            return
        for run in waiting:
            if run.trigger in ("schedule", "catchup") and run.id not in self._limit_counted:
                self._limit_counted.add(run.id)
                self.metrics.slots_missed(run.deployment, "limit", 1)

    def _report(self, now: datetime, views: list[planning.DeploymentView]) -> None:
        assert self.runs is not None
        self.metrics.scheduler_state(
            tick_at=now.timestamp(),
            paused={v.name: v.paused for v in views},
            next_fire={
                v.name: None if v.paused else _timestamp(next_fire(v.schedules, now)) for v in views
            },
            limit=self.settings.effective_limit,
            running=len(self.runs.active),
        )

    def _run_started(self, active: ActiveRun) -> None:
        run = active.run
        self._hold_revision(active.deployment, True)
        lateness = None
        if run.trigger in ("schedule", "catchup") and run.attempt == 1 and run.started_at:
            lateness = (run.started_at - run.scheduled_at).total_seconds()
        self.metrics.run_started(run.deployment, lateness)

    def _run_done(self, active: ActiveRun, verdict: Verdict, retried: bool) -> None:
        run = active.run
        if active.process is not None:
            self.metrics.run_stopped(run.deployment)
            self._hold_revision(active.deployment, False)
        if not retried:
            duration = None
            if run.started_at is not None:
                duration = (self.clock() - run.started_at).total_seconds()
            self.metrics.run_finished(run.deployment, verdict.state.value, duration)
        self.wake()

    # ── shutdown phases ───────────────────────────────────────────────────────
    async def _pause_for_shutdown(self) -> None:
        if not self.settings.pause_on_shutdown:
            return
        now = self.clock()
        for record in await self.db(self.store.list_deployments):
            if record.name in self.deployments and not record.paused:
                await self.db(self.store.set_paused, record.name, True, PAUSED_BY_SHUTDOWN, now=now)
        logger.info("paused %d schedule(s) until the next start", len(self.deployments))

    async def _drain(self) -> None:
        assert self.runs is not None
        grace = self.settings.shutdown_grace
        if self.runs.active:
            logger.info(
                "shutting down: waiting up to %gs for %d run(s) in flight",
                grace,
                len(self.runs.active),
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.runs.active and not self.force_exit and loop.time() < deadline:
            assert self._wake is not None
            self.last_tick = self.clock()  # the process is alive and draining
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(0.5, deadline - loop.time()))
        reason = f"shutdown: still running after the {grace:g}s grace period"
        if self.force_exit:
            self.runs.kill_all("shutdown forced by a second signal")
        for run_id in list(self.runs.active):
            self.runs.cancel(run_id, reason)
        await self.runs.wait_all()


def _view(
    deployment: Deployment, record: DeploymentRecord | None, active: list[str]
) -> planning.DeploymentView:
    return planning.DeploymentView(
        name=deployment.full_name,
        schedules=deployment.schedules,
        paused=bool(record and record.paused),
        cursor=record.cursor if record else None,
        overlap=deployment.overlap,
        catchup=deployment.catchup,
        catchup_window_seconds=deployment.catchup_window_seconds,
        catchup_max=deployment.catchup_max,
        active_runs=tuple(active),
    )


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _first_delay(deployment: Deployment) -> float:
    delay = deployment.retry_delay_seconds
    if isinstance(delay, list | tuple):
        return float(delay[0]) if delay else 0.0
    return float(delay or 0.0)
