"""One scheduling tick: plan what is due (pure), claim it, promote retries, start what fits.

``Scheduler.tick(now)`` plans only the deployments whose next fire time has come (a queue
keyed by that time, ``core.wakeups``) or whose state changed: the catalog (a new code
revision), what this process wrote through its store (the API's pause and resume,
registration), or what another process wrote (read once a heartbeat, and for every due
deployment right before it is planned). One tick's claims, cursors and the take of the runs
that fit are one write; the runs go to the supervisor, and the tick says when it wants to
tick next.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from dockyard._version import __version__
from dockyard.core import planning, wakeups
from dockyard.core.deployments import Deployment
from dockyard.core.policies import SkipReason, Trigger
from dockyard.core.records import NewRun, RunRecord, Takeable
from dockyard.core.states import RunState
from dockyard.metrics import Metrics
from dockyard.service.catalog import Catalog
from dockyard.service.supervisor import RunSupervisor
from dockyard.service.throttle import WarningThrottle
from dockyard.settings import Settings
from dockyard.store.aio import AsyncStore
from dockyard.store.base import DeploymentState, TakeRequest

logger = logging.getLogger("dockyard")

TAKE_UNLIMITED = 100
"""Runs one tick takes at most without a ``limit`` (the next tick takes more)."""


@dataclass
class _Known:
    """What the scheduler keeps of one served deployment between ticks."""

    deployment: Deployment
    state: DeploymentState | None = None
    """Its pause state and cursor as last read (None: not in the store)."""


class _Queued(NamedTuple):
    """A Pending run, as far as the limit accounting needs it."""

    id: str
    deployment: str
    trigger: str


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
        """Whether this tick made runs Pending it has not taken yet."""
        self._known: dict[str, _Known] = {}
        self._queue = wakeups.WakeupQueue()
        self._catalog_version: int | None = None
        self._wanted: list[Takeable] = []
        self._refreshed_at: datetime | None = None
        self._failing: set[str] = set()
        self._unsynced: set[str] = set()
        """Deployments whose schedules raised: planned again once a heartbeat, not queued."""

    async def tick(self, now: datetime) -> datetime | None:
        """Plan, claim, start what is due; return when something is due next."""
        changed = await self._sync(now)
        # One read of the runs that matter this tick: waiting, running anywhere, retrying.
        runs = await self.store.runs_in_states(
            [RunState.PENDING, RunState.RUNNING, RunState.SCHEDULED], light=True
        )
        self._new_work = False
        active = [r for r in runs if r.state is not RunState.SCHEDULED]
        self._stop_taken_over(active)
        queued = [
            _Queued(r.id, r.deployment, r.trigger)
            for r in active
            if r.state is RunState.PENDING and r.deployment in self.catalog
        ]
        due = self._queue.pop_due(now)
        left = None
        try:
            if due:
                left = await self._plan_due(now, due, active, queued)
        except BaseException:
            for name in due:  # planned again at the next tick
                self._queue.set(name, now)
            raise
        next_retry = await self._promote_due_retries(now, runs)
        await self._cancel_requested(runs)
        if left is not None:  # the tick's write took what fitted already
            queued = left
        if self._new_work or (queued and left is None):
            await self._dispatch(queued)
        self._report(now, changed | set(due))
        times = [t for t in (self._queue.next_at(), next_retry) if t is not None]
        return min(times) if times else None

    # ── what changed ──────────────────────────────────────────────────────────
    async def _sync(self, now: datetime) -> set[str]:
        """Read what changed since the last tick; queue the changed deployments again.
        Returns their names."""
        # Kept until read: a tick that fails on the store reads them at the next one.
        self._unsynced |= self._sync_catalog() | self.store.take_changes()
        changed = set(self._unsynced)
        last = self._refreshed_at
        if last is None or not 0 <= (now - last).total_seconds() < self.settings.heartbeat:
            fresh = {s.name: s for s in await self.store.deployment_states()}
            self._refreshed_at = now  # what other processes wrote: once a heartbeat
            names = set(self._known)
            changed |= {n for n in names if self._known[n].state != fresh.get(n)}
            changed |= self._failing & names  # do their schedules work again?
        else:
            names = {n for n in changed if n in self._known}
            found = await self.store.deployment_states(sorted(names)) if names else []
            fresh = {s.name: s for s in found}
        for name in names:
            self._known[name].state = fresh.get(name)
        for name in changed:
            known = self._known.get(name)
            self._failing.discard(name)
            if known is None:
                self._queue.discard(name)
                continue
            self._queue.set(name, wakeups.next_plan_at(self._bare_view(known), now))
        self._unsynced.clear()
        return changed

    def _sync_catalog(self) -> set[str]:
        """The names the catalog added, replaced or removed since the last tick."""
        if self.catalog.version == self._catalog_version:
            return set()
        self._catalog_version = self.catalog.version
        served = {d.full_name: d for d in self.catalog}
        changed = {name for name in self._known if name not in served}
        for name in changed:
            del self._known[name]
            self.metrics.deployment_failing(name, None)  # not scheduled: not failing either
        for name, deployment in served.items():
            known = self._known.get(name)
            if known is None:
                self._known[name] = _Known(deployment)
            elif known.deployment is not deployment:
                known.deployment = deployment
            else:
                continue
            changed.add(name)
        self._wanted = [
            Takeable(d.full_name, d.concurrency_limit, d.revision) for d in served.values()
        ]
        return changed

    def _bare_view(self, known: _Known) -> planning.DeploymentView:
        return _view(known.deployment, known.state, [], lambda name: None)

    # ── planning what is due ──────────────────────────────────────────────────
    async def _plan_due(
        self, now: datetime, due: list[str], active: list[RunRecord], queued: list[_Queued]
    ) -> list[_Queued] | None:
        """Plan the due deployments and write what they decided. Returns the runs still
        queued after the take that write did, or None when it took none."""
        # Read right before planning: a pause or a cursor another replica wrote counts now.
        fresh = {s.name: s for s in await self.store.deployment_states(due)}
        ids = self._active_ids(active)
        views = []
        for name in due:
            known = self._known.get(name)
            if known is not None:
                known.state = fresh.get(name)
                view = _view(known.deployment, known.state, ids.get(name, []), self.served_since)
                views.append(view)
        decisions = planning.plan(
            now, views, started_at=self.started_at,
            misfire_grace_seconds=self.settings.misfire_grace,
        ).decisions  # fmt: skip
        claims, cursors = await self._apply(decisions)
        left = await self._write(claims, cursors, queued)
        self._record_failures(views, decisions)
        failed = {d.deployment for d in decisions if isinstance(d, planning.ScheduleFailed)}
        for view in views:
            self._planned(view, cursors.get(view.name), now, failed=view.name in failed)
        return left

    def _active_ids(self, active: list[RunRecord]) -> dict[str, list[str]]:
        """Run ids per deployment active anywhere: waiting, or running on any replica."""
        found: dict[str, list[str]] = {}
        local = [a.run for a in self.supervisor.active.values()]
        ids = {run.id for run in local}
        for run in local + [r for r in active if r.id not in ids]:
            found.setdefault(run.deployment, []).append(run.id)
        return found

    def _planned(
        self, view: planning.DeploymentView, to: datetime | None, now: datetime, *, failed: bool
    ) -> None:
        """Queue a deployment planned at ``now`` for its next fire time."""
        known = self._known.get(view.name)
        if known is None:
            return
        state = known.state
        if to is not None and state is not None and (state.cursor is None or state.cursor < to):
            known.state = replace(state, cursor=to)
        at = wakeups.next_plan_at(self._bare_view(known), now)
        if failed or (at is not None and at <= now):  # never a busy loop on one deployment
            self._failing.add(view.name)
            self._queue.discard(view.name)
            return
        self._queue.set(view.name, at)

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

    async def _apply(
        self, decisions: list[planning.Decision]
    ) -> tuple[list[NewRun], dict[str, datetime]]:
        """Carry out skips and cancels; return the runs to claim and the cursors to move."""
        claims: list[NewRun] = []
        cursors: dict[str, datetime] = {}
        for decision in decisions:
            if isinstance(decision, planning.AdvanceCursor):
                cursors[decision.deployment] = decision.to
            elif isinstance(decision, planning.SkipSlots):
                self._skipped(decision)
            elif isinstance(decision, planning.CancelRuns):
                for run_id in decision.run_ids:
                    await self.supervisor.cancel_run(run_id, reason=decision.reason)
            elif isinstance(decision, planning.RunSlot):
                claims.append(self._new_run(decision))
        return claims, cursors

    def _new_run(self, slot: planning.RunSlot) -> NewRun:
        deployment = self.catalog.get(slot.deployment)
        parameters = deployment.slot_parameters(slot.parameters)
        trigger = Trigger(slot.trigger)
        return deployment.new_run(parameters, slot.scheduled_at, trigger, slot_variant=slot.variant)

    async def _write(
        self, claims: list[NewRun], cursors: dict[str, datetime], queued: list[_Queued]
    ) -> list[_Queued] | None:
        """Claim the slots, move the cursors and take what fits, in one transaction.

        The runs are Pending in that write (never Scheduled first: between two writes
        another process on the same database could promote a claimed run, and both would
        start it), and Running for this replica in the same commit when they fit."""
        if not claims and not cursors:
            return None
        take = self._take_request() if claims else None
        result = await self.store.claim_slots(claims, cursors=cursors, take=take)
        claimed = set(result.run_ids)
        new = [c for c in claims if c.run_id in claimed]
        for run in new:
            self._warn_if_late(run)
        if take is None:
            self._new_work = bool(new)
            return None
        queued = queued + [_Queued(r.run_id, r.deployment, r.trigger) for r in new]
        await self._start(list(result.taken), queued, take.capacity)
        taken = {r.id for r in result.taken}
        return [q for q in queued if q.id not in taken]

    def _warn_if_late(self, run: NewRun) -> None:
        if self.supervisor.running_in(run.deployment):
            self.throttle.warn(
                f"late:{run.deployment}",
                f"{run.deployment}: a run is still running past its next slot "
                f"({run.scheduled_at:%Y-%m-%d %H:%M:%S} UTC); starting another (overlap 'allow')",
            )

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

    # ── retries, cancel requests, starting runs ───────────────────────────────
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

    def _take_request(self) -> TakeRequest | None:
        """What this replica can take now (under its ``limit`` and, across all replicas,
        each deployment's ``concurrency_limit``); None while it drains."""
        if self.stopping():
            return None
        limit = self.settings.effective_limit
        capacity = (limit - len(self.supervisor.active)) if limit else TAKE_UNLIMITED
        now = self.supervisor.clock()
        return TakeRequest(self.owner, self._wanted, capacity, now, __version__)

    async def _dispatch(self, queued: list[_Queued]) -> None:
        """Take the Pending runs that fit and start them."""
        take = self._take_request()
        if take is None:
            return
        taken = await self.store.take_runs(
            take.owner, take.wanted, capacity=take.capacity, now=take.now, version=take.version
        )
        await self._start(taken, queued, take.capacity)

    async def _start(self, taken: list[RunRecord], queued: list[_Queued], capacity: int) -> None:
        for run in taken:
            await self.supervisor.start(run, self.catalog.get(run.deployment))
        if self.settings.effective_limit and len(taken) >= capacity:  # what still waits
            started = {r.id for r in taken}
            self._count_limit_waits([q for q in queued if q.id not in started])
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

    def _count_limit_waits(self, waiting: Sequence[_Queued]) -> None:
        """A scheduled run that cannot start at its slot for the limit counts once."""
        limit = self.settings.effective_limit
        self._limit_counted &= {r.id for r in waiting}  # forget runs that started or ended
        if not limit or len(self.supervisor.active) < limit:
            return
        for run in waiting:
            if Trigger(run.trigger).is_scheduled and run.id not in self._limit_counted:
                self._limit_counted.add(run.id)
                self.metrics.slots_missed(run.deployment, SkipReason.LIMIT, 1)

    def _report(self, now: datetime, names: set[str]) -> None:
        """The gauges of the deployments planned or changed this tick (the others' stay)."""
        known = {name: self._known[name] for name in names if name in self._known}
        views = {name: self._bare_view(k) for name, k in known.items()}
        self.metrics.scheduler_state(
            tick_at=now.timestamp(),
            paused={name: v.paused for name, v in views.items()},
            next_fire={
                name: None if v.paused else _timestamp(planning.safe_next_fire(v, now))
                for name, v in views.items()
            },
            limit=self.settings.effective_limit,
            running=len(self.supervisor.active),
        )


def _view(
    deployment: Deployment,
    state: DeploymentState | None,
    active: list[str],
    served_since: Callable[[str], datetime | None],
) -> planning.DeploymentView:
    return planning.DeploymentView(
        name=deployment.full_name,
        schedules=deployment.schedules,
        paused=bool(state and state.paused),
        cursor=state.cursor if state else None,
        overlap=deployment.overlap,
        catchup=deployment.catchup,
        catchup_window_seconds=deployment.catchup_window_seconds,
        catchup_max=deployment.catchup_max,
        active_runs=tuple(active),
        served_since=served_since(deployment.full_name),
    )


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None
