"""One scheduling tick: plan (pure), claim what is due, promote retries, start what fits.

``Scheduler.tick(now)`` reads the store, asks ``core.planning`` what to do, carries the
decisions out, hands the runs that fit under the limits to the supervisor, and says when
it wants to tick next.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from dockyard._version import __version__
from dockyard.core import planning
from dockyard.core.deployments import Deployment
from dockyard.core.policies import SkipReason, Trigger
from dockyard.core.records import DeploymentRecord, RunRecord, Takeable
from dockyard.core.states import RunState
from dockyard.metrics import Metrics
from dockyard.service.catalog import Catalog
from dockyard.service.supervisor import RunSupervisor
from dockyard.service.throttle import WarningThrottle
from dockyard.settings import Settings
from dockyard.store.aio import AsyncStore

logger = logging.getLogger("dockyard")

TAKE_UNLIMITED = 100
"""Runs one tick takes at most without a ``limit`` (the next tick takes more)."""


class Scheduler:
    """Turns schedules and waiting runs into started runs, one tick at a time."""

    def __init__(
        self,
        store: AsyncStore,
        catalog: Catalog,
        supervisor: RunSupervisor,
        metrics: Metrics,
        settings: Settings,
        *,
        started_at: datetime,
        throttle: WarningThrottle,
        stopping: Callable[[], bool] = lambda: False,
        owner: str = "",
        served_since: Callable[[str], datetime | None] = lambda name: None,
    ) -> None:
        self.store = store
        self.owner = owner
        """This replica's id: the owner of the runs it takes."""
        self.served_since = served_since
        """Since when another live replica has served a deployment (None: none does)."""
        self.catalog = catalog
        self.supervisor = supervisor
        self.metrics = metrics
        self.settings = settings
        self.started_at = started_at
        self.throttle = throttle
        self.stopping = stopping
        """True once the process drains: nothing new starts."""
        self._limit_counted: set[str] = set()
        self._new_work = False
        """Whether this tick made runs Pending (so it takes runs even if none waited)."""

    async def tick(self, now: datetime) -> datetime | None:
        """Plan, claim, start what is due; return when something is due next."""
        records = {r.name: r for r in await self.store.list_deployments()}
        # One read of the runs that matter this tick: waiting, running anywhere, retrying.
        runs = await self.store.runs_in_states(
            [RunState.PENDING, RunState.RUNNING, RunState.SCHEDULED], light=True
        )
        self._new_work = False
        views = self._views(records, [r for r in runs if r.state is not RunState.SCHEDULED])
        decisions = planning.plan(
            now,
            views,
            started_at=self.started_at,
            misfire_grace_seconds=self.settings.misfire_grace,
        ).decisions
        for decision in decisions:
            await self._apply(decision, now)
        self._record_failures(views, decisions)
        next_retry = await self._promote_due_retries(now, runs)
        await self._cancel_requested(runs)
        waiting = [r for r in runs if r.state is RunState.PENDING and r.deployment in self.catalog]
        if waiting or self._new_work:
            await self._dispatch(waiting)
        self._report(now, views)
        times = [t for t in (planning.next_wakeup(now, views), next_retry) if t is not None]
        return min(times) if times else None

    def _views(
        self, records: dict[str, DeploymentRecord], waiting: list[RunRecord]
    ) -> list[planning.DeploymentView]:
        # Active anywhere: waiting, or running on this or another replica.
        active: dict[str, list[str]] = {}
        ids = {a.run.id for a in self.supervisor.active.values()}
        for run in [a.run for a in self.supervisor.active.values()]:
            active.setdefault(run.deployment, []).append(run.id)
        for run in waiting:
            if run.id not in ids:
                active.setdefault(run.deployment, []).append(run.id)
        self._stop_taken_over(waiting)
        return [
            _view(d, records.get(d.full_name), active.get(d.full_name, []), self.served_since)
            for d in self.catalog
        ]

    def _stop_taken_over(self, active_anywhere: list[RunRecord]) -> None:
        """Stop local runs the database no longer has Running here: another replica took
        them over (this one's heartbeat expired while it could not reach the database)."""
        held = {
            r.id for r in active_anywhere if r.state is RunState.RUNNING and r.owner == self.owner
        }
        for run_id, active in list(self.supervisor.active.items()):
            if run_id in held or active.process is None or active.cancel_reason is not None:
                continue
            if active.exited or active.task is None or active.task.done():
                continue
            logger.warning(
                "run %s is no longer this replica's in the state store (another replica took "
                "it over): stopping it here", run_id[:8],
            )  # fmt: skip
            self.supervisor.cancel(run_id, "taken over by another replica")

    async def _apply(self, decision: planning.Decision, now: datetime) -> None:
        if isinstance(decision, planning.AdvanceCursor):
            await self.store.set_cursor(decision.deployment, decision.to)
        elif isinstance(decision, planning.SkipSlots):
            self._skipped(decision)
        elif isinstance(decision, planning.CancelRuns):
            for run_id in decision.run_ids:
                await self.supervisor.cancel_run(run_id, reason=decision.reason)
        elif isinstance(decision, planning.RunSlot):
            await self._claim(decision)

    def _record_failures(
        self, views: list[planning.DeploymentView], decisions: list[planning.Decision]
    ) -> None:
        """Failing deployments are logged once, reported, and recover on their own."""
        errors = {
            d.deployment: d.error for d in decisions if isinstance(d, planning.ScheduleFailed)
        }
        for view in views:
            error = errors.get(view.name)
            was_failing = view.name in self.metrics.failing_deployments()
            self.metrics.deployment_failing(view.name, error)
            if error is not None:
                self.throttle.warn(
                    f"schedule:{view.name}",
                    f"{view.name}: its schedule fails, it is not being scheduled: {error}",
                )
            elif was_failing:
                logger.info("%s: its schedule works again", view.name)
                self.throttle.clear(f"schedule:{view.name}")

    def _skipped(self, decision: planning.SkipSlots) -> None:
        self.metrics.slots_missed(decision.deployment, decision.reason, decision.count)
        if decision.reason == SkipReason.OVERLAP:
            self.throttle.warn(
                f"overlap:{decision.deployment}",
                f"{decision.deployment}: skipped {decision.count} slot(s) because a run is "
                "still active (overlap policy 'skip')",
            )
        elif decision.reason == SkipReason.DOWNTIME:
            logger.info(
                "%s: %d slot(s) missed while the process was down were not run (catchup policy)",
                decision.deployment, decision.count,
            )  # fmt: skip

    async def _claim(self, slot: planning.RunSlot) -> None:
        deployment = self.catalog.get(slot.deployment)
        trigger = Trigger(slot.trigger)
        # Pending in one write: between two writes another process on the same database
        # could promote the claimed run, and both would start it.
        parameters = deployment.slot_parameters(slot.parameters)
        new = deployment.new_run(parameters, slot.scheduled_at, trigger, slot_variant=slot.variant)
        run = await self.store.claim_slot(new)
        if run is None:
            return  # another process (or an earlier life of this one) already took it
        self._new_work = True
        if self.supervisor.running_in(slot.deployment):
            self.throttle.warn(
                f"late:{slot.deployment}",
                f"{slot.deployment}: a run is still running past its next slot "
                f"({slot.scheduled_at:%Y-%m-%d %H:%M:%S} UTC); starting another (overlap 'allow')",
            )

    async def _promote_due_retries(self, now: datetime, runs: list[RunRecord]) -> datetime | None:
        """Retries whose delay has passed become Pending; returns the next one's time."""
        later: list[datetime] = []
        for run in runs:
            if run.state is not RunState.SCHEDULED or run.deployment not in self.catalog:
                continue
            if run.scheduled_at > now:
                later.append(run.scheduled_at)
                continue
            with contextlib.suppress(ValueError):  # another replica was quicker
                await self.store.transition(run.id, RunState.PENDING, at=now)
                self._new_work = True
        return min(later) if later else None

    async def _dispatch(self, waiting: list[RunRecord]) -> None:
        """Take the Pending runs that fit (under this replica's ``limit`` and, across all
        replicas, each deployment's ``concurrency_limit``) and start them."""
        if self.stopping():
            return
        limit = self.settings.effective_limit
        capacity = (limit - len(self.supervisor.active)) if limit else TAKE_UNLIMITED
        wanted = [Takeable(d.full_name, d.concurrency_limit, d.revision) for d in self.catalog]
        taken = await self.store.take_runs(
            self.owner, wanted, capacity=capacity, now=self.supervisor.clock(),
            version=__version__,
        )  # fmt: skip
        for run in taken:
            await self.supervisor.start(run, self.catalog.get(run.deployment))
        if limit and len(taken) >= capacity:  # what still waits, as read this tick
            started = {r.id for r in taken}
            self._count_limit_waits([r for r in waiting if r.id not in started])
        else:
            self._limit_counted.clear()

    async def _cancel_requested(self, runs: list[RunRecord]) -> None:
        """Stop the runs of this replica that someone asked another replica to cancel."""
        for run in runs:
            if run.state is not RunState.RUNNING or not run.cancel_requested:
                continue
            active = self.supervisor.active.get(run.id)
            if run.owner == self.owner and active is not None and active.cancel_reason is None:
                self.supervisor.cancel(run.id, run.cancel_requested)

    def _count_limit_waits(self, waiting: list[RunRecord]) -> None:
        """A scheduled run that cannot start at its slot for the limit counts once."""
        limit = self.settings.effective_limit
        self._limit_counted &= {r.id for r in waiting}  # forget runs that started or ended
        if not limit or len(self.supervisor.active) < limit:
            return
        for run in waiting:
            if Trigger(run.trigger).is_scheduled and run.id not in self._limit_counted:
                self._limit_counted.add(run.id)
                self.metrics.slots_missed(run.deployment, SkipReason.LIMIT, 1)

    def _report(self, now: datetime, views: list[planning.DeploymentView]) -> None:
        self.metrics.scheduler_state(
            tick_at=now.timestamp(),
            paused={v.name: v.paused for v in views},
            next_fire={
                v.name: None if v.paused else _timestamp(planning.safe_next_fire(v, now))
                for v in views
            },
            limit=self.settings.effective_limit,
            running=len(self.supervisor.active),
        )


def _view(
    deployment: Deployment,
    record: DeploymentRecord | None,
    active: list[str],
    served_since: Callable[[str], datetime | None],
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
        served_since=served_since(deployment.full_name),
    )


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None
