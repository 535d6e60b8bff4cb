"""The serve process: a lifecycle of named phases around one scheduling loop.

``run()`` → ``serve()`` → ``startup()`` → ``main_loop()`` → ``on_tick(now)`` →
``shutdown()``. Signal handlers only set ``should_exit`` / ``force_exit`` and wake the
loop; every wait can be interrupted by them. The lifecycle owns the collaborators and
passes each what it needs: the scheduler (one tick), the run supervisor, the code-source
supervisor, the registry (deployments in the store) and the operations the API calls.
None of them imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from dockyard.core.deployments import Deployment
from dockyard.core.policies import Trigger
from dockyard.engine.results import results_dir
from dockyard.errors import DatabaseUnavailable, DockyardError, StateStoreError, UsageError
from dockyard.execution.process import SubprocessExecutor
from dockyard.execution.reaper import become_subreaper, reap_orphans
from dockyard.execution.warm import make_executor
from dockyard.execution.workdir import WorkDir
from dockyard.metrics import Metrics
from dockyard.service.catalog import Catalog
from dockyard.service.code import CodeSupervisor, SourcePlan
from dockyard.service.membership import Membership
from dockyard.service.ops import Operations, ProcessStatus
from dockyard.service.registry import Registry
from dockyard.service.retention import Retention
from dockyard.service.scheduler import Scheduler
from dockyard.service.supervisor import ActiveRun, RunSupervisor, Verdict, utcnow
from dockyard.service.throttle import WarningThrottle
from dockyard.service.webserver import Webserver
from dockyard.settings import Settings, state_path, store_location
from dockyard.store import open_store
from dockyard.store.aio import AsyncStore
from dockyard.web.auth import RunTokens

logger = logging.getLogger("dockyard")

DRAIN_RECORD_SECONDS = 10.0
"""After the kill delay, how long a shutdown waits for stopped runs' ends to be recorded."""


class ServeService:
    """Schedules and runs the given deployments until told to stop."""

    def __init__(
        self,
        deployments: Sequence[Deployment],
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        handle_signals: bool = True,
        starting_message: bool = True,
        sources: Sequence[SourcePlan] = (),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.handle_signals = handle_signals
        self.starting_message = starting_message
        self.plans = list(sources)
        self.status = ProcessStatus()
        self.metrics = Metrics(build_revision=settings.build_revision)
        self.catalog = Catalog(deployments)
        self.throttle = WarningThrottle(logger)
        self.ops = Operations(
            self.status, settings, self.catalog, self.metrics,
            clock=clock, wake=self.wake, request_exit=self.handle_exit,
        )  # fmt: skip
        self.run_tokens = RunTokens()
        self.webserver = Webserver(self.ops, settings, self.run_tokens)
        self.store: AsyncStore | None = None
        self.supervisor: RunSupervisor | None = None
        self.scheduler: Scheduler | None = None
        self.registry: Registry | None = None
        self.code: CodeSupervisor | None = None
        self.membership: Membership | None = None
        self.retention: Retention | None = None
        self._last_recovery: datetime | None = None
        self._last_reap: float | None = None
        self._wake = asyncio.Event()
        self._work_dir: WorkDir | None = None
        self.executor: SubprocessExecutor | None = None
        self._warming: asyncio.Task[None] | None = None

    # ── lifecycle ─────────────────────────────────────────────────────────────
    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit code."""
        return asyncio.run(self.serve())

    async def serve(self) -> int:
        self._wake = asyncio.Event()  # of this event loop
        with self._capture_signals():
            try:
                await self.webserver.start()
                await self.startup()
                await self.main_loop()
            finally:
                await self.shutdown()
                await self.webserver.stop()
        return self.status.exit_code

    def handle_exit(self, sig: int | None = None) -> None:
        """First signal: drain. Second signal: stop at once."""
        if self.status.should_exit:
            self.status.force_exit = True
        self.status.should_exit = True
        self.status.draining = True  # /ready answers 503 from now on
        self.wake()

    def give_up(self) -> None:
        """Stop with exit code 1 (no good code revision in time)."""
        self.status.exit_code = 1
        self.handle_exit()

    def wake(self) -> None:
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
        loop.add_signal_handler(signal.SIGHUP, self.ops.trigger_sources)  # pull code now
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def startup(self) -> None:
        become_subreaper()
        self.store = await self._open_store()
        if self.store is None:
            return  # stopped while waiting for the database: nothing to drain
        owner = await self.store.take_lease()
        # Beside the state file: only processes of the same state clean it up, and only
        # after their recovery has read what the dead processes' runs reported.
        self._work_dir = WorkDir.create(self.store.local_dir, clean=False)
        now = self.clock()
        self.status.started_at = now
        self._build(self.store, self._work_dir.path, now, owner)
        assert self.registry is not None and self.code is not None
        assert self.executor is not None  # the fork server starts while the rest starts up
        self._warming = asyncio.create_task(self.executor.warm_up(), name="warm-executor")
        await self.registry.adopt(list(self.catalog), now)
        assert self.membership is not None
        await self.membership.join()
        assert self.retention is not None
        self.retention.start()  # prunes old runs now, then hourly, off the tick
        self.status.ready = True
        self._announce(self.store.database)
        await self.code.start(self.registry)  # adopts the last published revisions' runs too
        self._work_dir.clean_stale()

    async def _open_store(self) -> AsyncStore | None:
        """Open the state database. A database server that cannot be reached is waited
        for (``DOCKYARD_DATABASE_WAIT``), with backoff and jitter: in `docker compose up`
        or a cluster, dockyard often starts before its database does."""
        location = store_location(self.settings)
        limit, timeout = self.settings.max_log_lines, self.settings.replica_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.database_wait
        delay = 0.5
        while True:
            try:
                store = await AsyncStore.open(
                    lambda: open_store(location, max_log_lines=limit, replica_timeout=timeout)
                )
                if self.status.waiting_for is not None:
                    logger.info("the state database answers: starting")
                    self.status.waiting_for = None
                return store
            except DatabaseUnavailable as exc:
                if loop.time() + delay > deadline:
                    raise DockyardError(str(exc)) from None  # exit 1: not a usage error
                self.status.waiting_for = f"waiting for the state database: {exc}"
                self.throttle.warn("open", f"{exc}; waiting for it (DOCKYARD_DATABASE_WAIT)")
            except StateStoreError as exc:
                raise UsageError(str(exc)) from None  # the fix is a different --state or URL
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay * (0.5 + random.random()))
            delay = min(delay * 2, 10.0)
            if self.status.should_exit:
                return None

    def _build(self, store: AsyncStore, work_dir: Path, now: datetime, owner: str) -> None:
        """Make the collaborators that need the open store."""
        self.membership = membership = Membership(
            store, owner, self.catalog, self.metrics, self._runs_held,
            interval=self.beat_interval, timeout=self.settings.replica_timeout,
            clock=self.clock, throttle=self.throttle, wake=self.wake,
        )  # fmt: skip
        self.executor = executor = make_executor(self.settings.executor, work_dir)
        self.supervisor = RunSupervisor(
            store, executor, kill_delay=self.settings.kill_delay,
            on_start=self._run_started, on_done=self._run_done, clock=self.clock,
            owner=owner, metrics=self.metrics,
            api_url=self.webserver.url, run_tokens=self.run_tokens,
            results_dir=str(results_dir(state_path(self.settings))), throttle=self.throttle,
        )  # fmt: skip
        self.registry = Registry(store, self.catalog, self.supervisor, self.metrics, self.wake)
        self.scheduler = Scheduler(
            store, self.catalog, self.supervisor, self.metrics, self.settings,
            started_at=now, throttle=self.throttle, stopping=lambda: self.status.should_exit,
            owner=owner, served_since=membership.served_since,
        )  # fmt: skip
        self.code = CodeSupervisor(
            self.plans, self.settings, self.metrics,
            work_dir=work_dir, clock=self.clock, on_give_up=self.give_up,
        )  # fmt: skip
        self.ops.attach(store, self.supervisor, self.code)
        self.retention = Retention(
            store, self.settings, self.metrics, clock=self.clock, throttle=self.throttle
        )

    def _runs_held(self) -> int:
        return len(self.supervisor.active) if self.supervisor is not None else 0

    @property
    def beat_interval(self) -> float:
        """Seconds between heartbeats: a third of the replica timeout at most."""
        return min(self.settings.heartbeat, self.settings.replica_timeout / 3)

    def _announce(self, path: str) -> None:
        if self.starting_message:
            names = ", ".join(self.catalog.names()) or "nothing yet"
            sources = ", ".join(p.repo.safe_url for p in self.plans)
            code = f" (code from {sources})" if sources else ""
            logger.info("serving %s%s. Stop with Ctrl+C or SIGTERM.", names, code)
        logger.info(
            "serving %d deployment(s) from %s (limit %s, pause_on_shutdown=%s)",
            len(self.catalog), path, self.settings.effective_limit or "none",
            self.settings.pause_on_shutdown,
        )  # fmt: skip

    async def main_loop(self) -> None:
        while not self.status.should_exit:
            self._wake.clear()
            wake_at = await self._guarded_tick(self.clock())
            if self.status.should_exit:
                break
            delay = self.settings.heartbeat
            if wake_at is not None:
                delay = min(delay, max((wake_at - self.clock()).total_seconds(), 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _guarded_tick(self, now: datetime) -> datetime | None:
        """One tick; a failing one (locked or read-only database…) is logged, not fatal."""
        self.status.tick_started = now
        try:
            wake_at = await self.on_tick(now)
        except DockyardError as exc:
            self.status.tick_error = str(exc)
            self.throttle.warn("tick", f"scheduling failed, retrying: {exc}")
            return None
        except Exception as exc:  # a bug must not take down the runs in flight
            self.status.tick_error = f"{type(exc).__name__}: {exc}"
            if self.throttle.warn("tick", f"scheduling failed, retrying: {self.status.tick_error}"):
                logger.exception("scheduling tick failed")
            return None
        finally:
            self.status.last_tick = now  # ticked, well or not: /health is about the loop
        if self.status.tick_error is not None:
            logger.info("scheduling works again")
            self.throttle.clear("tick")
            self.status.tick_error = None
        return wake_at

    async def on_tick(self, now: datetime) -> datetime | None:
        """Reap orphans, then plan, claim and start what is due; return the next wake-up."""
        assert self.scheduler is not None and self.supervisor is not None
        assert self.store is not None
        self._reap()
        if self.store.local_dir is not None:
            await self.store.ping()  # a deleted state file stops claiming (and says so)
        await self._housekeeping(now)
        return await self.scheduler.tick(now)

    def _reap(self) -> None:
        """Collect orphaned zombies (PID 1, subreaper), at most once a second: reading each
        thread's children in /proc is not free, and a zombie holds no more than its pid."""
        now = time.monotonic()
        if self._last_reap is not None and now - self._last_reap < 1.0:
            return
        self._last_reap = now
        assert self.supervisor is not None
        helpers = self.executor.helper_pids() if self.executor is not None else set()
        reap_orphans(self.supervisor.pids() | helpers)

    async def _housekeeping(self, now: datetime) -> None:
        """Once a heartbeat interval: take over the runs of replicas that are gone, and
        resume schedules a replica paused for its shutdown while this one serves them."""
        assert self.registry is not None and self.membership is not None
        last = self._last_recovery
        if last is not None and (now - last).total_seconds() < self.beat_interval:
            return
        self._last_recovery = now
        trust = self.membership.trusts_heartbeats(now)
        await self.registry.recover_lost(trust_heartbeats=trust)
        if last is not None:  # at start-up, adopt() has just done it
            await self.registry.resume_after_shutdown(now)

    async def shutdown(self) -> None:
        """Stop pulling, pause schedules (pause_on_shutdown, unless another replica serves
        them), drain runs, leave the replicas, close the store."""
        self.status.ready = False
        self.status.draining = True
        if self.code is not None:
            await self.code.stop()
        if self.store is not None and self.supervisor is not None:
            await self._announce_drain()
            await self._drain(self.supervisor)
        if self.retention is not None:
            await self.retention.stop()
        if self.executor is not None:
            await self.executor.close()
        if self.membership is not None:
            await self.membership.leave()
        if self.store is not None:
            await self.store.close()
        if self._work_dir is not None:
            self._work_dir.close()
        if self.status.force_exit:
            self.status.exit_code = 1
        if self.status.started_at is not None:
            logger.info("stopped")

    async def _announce_drain(self) -> None:
        """Tell the other replicas this one is going; pause its schedules unless another
        live replica serves them (``pause_on_shutdown``)."""
        if self.membership is None or self.registry is None or not self.membership.joined:
            return  # it never served: nothing of its own to pause
        try:
            elsewhere = await self.membership.drain()
            if self.settings.pause_on_shutdown:
                await self.registry.pause_for_shutdown(self.clock(), elsewhere)
        except StateStoreError as exc:
            logger.warning("schedules not paused for the shutdown: %s", exc)

    async def _drain(self, runs: RunSupervisor) -> None:
        grace = self.settings.shutdown_grace
        if runs.active:
            logger.info(
                "shutting down: waiting up to %gs for %d run(s) in flight", grace, len(runs.active)
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while runs.active and not self.status.force_exit and loop.time() < deadline:
            self.status.last_tick = self.clock()  # the process is alive and draining
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(0.5, deadline - loop.time()))
        if self.status.force_exit:
            runs.kill_all("shutdown forced by a second signal")
        runs.stop_for_shutdown(f"shutdown: still running after the {grace:g}s grace period")
        tasks = [a.task for a in runs.active.values() if a.task is not None]
        if tasks:  # stopped runs record their end; a store that stays down is given up on
            await asyncio.wait(tasks, timeout=self.settings.kill_delay + DRAIN_RECORD_SECONDS)
        runs.closed.set()
        await runs.wait_all()

    # ── what the supervisor reports ───────────────────────────────────────────
    def _run_started(self, active: ActiveRun) -> None:
        run = active.run
        if self.code is not None:
            self.code.hold(active.deployment, True)
        lateness = None
        if Trigger(run.trigger).is_scheduled and run.attempt == 1 and run.started_at:
            lateness = (run.started_at - run.scheduled_at).total_seconds()
        self.metrics.run_started(run.deployment, lateness)

    def _run_done(self, active: ActiveRun, verdict: Verdict, retried: bool) -> None:
        run = active.run
        if active.process is not None:
            self.metrics.run_stopped(run.deployment)
            if self.code is not None:
                self.code.hold(active.deployment, False)
        if not retried:
            duration = None
            if run.started_at is not None:
                duration = (self.clock() - run.started_at).total_seconds()
            self.metrics.run_finished(run.deployment, verdict.state.value, duration)
        self.wake()


def run_service(
    deployments: Sequence[Deployment],
    settings: Settings,
    *,
    print_starting_message: bool = True,
    sources: Sequence[SourcePlan] = (),
) -> int:
    """Serve until stopped; returns the exit code."""
    from dockyard.core.deployments import check_unique
    from dockyard.service.setup import configure_logging, protect_sources

    protect_sources(sources)  # also for serve() from Python: runs must not read secrets

    configure_logging(settings.log_level, settings.log_format)
    check_unique(deployments)
    service = ServeService(
        deployments, settings, starting_message=print_starting_message, sources=sources
    )
    return service.run()
