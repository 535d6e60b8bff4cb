"""Scheduling decisions as pure functions of (state, now).

``plan`` looks at every deployment's schedules, its cursor (the instant through which
slots have been planned), whether it is paused and what is active, and returns what
should happen: slots to run, slots to skip (with the reason), runs to cancel, and how
far the cursor moves. ``select_runs_to_start`` applies the process and deployment
limits to the runs waiting as Pending. Neither reads a clock, a store or a process.

A deployment's active schedules are planned in *streams*: the schedules with the same
``parameters``. Each stream's fire times are merged and de-duplicated and follow the
catch-up policy on their own, so two schedules with different parameters firing at one
instant are two runs, and schedules with equal parameters (none, usually) one run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.core.schedules import (
    Schedule,
    active_schedules,
    count_fires,
    fire_times,
    latest_fire,
    next_fire,
)

MISSED_COUNT_CAP = 100_000
"""Counting missed slots stops here (a 1 s interval down for a year is not enumerated)."""


@dataclass(frozen=True)
class DeploymentView:
    """What the planner needs to know about one deployment."""

    name: str
    schedules: Sequence[Schedule]
    paused: bool
    cursor: datetime | None
    overlap: OverlapPolicy = OverlapPolicy.ALLOW
    catchup: CatchupPolicy = CatchupPolicy.LATEST
    catchup_window_seconds: float = 3600.0
    catchup_max: int = 10
    active_runs: Sequence[str] = ()
    """Ids of this deployment's runs that are Pending or Running."""
    served_since: datetime | None = None
    """Since when another replica has served it, if earlier than this process's start:
    slots it fell due for are not downtime (that replica may not have claimed them yet)."""


@dataclass(frozen=True)
class RunSlot:
    deployment: str
    scheduled_at: datetime
    trigger: str = "schedule"
    """"schedule" for a slot due now, "catchup" for one missed while down."""
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The schedule's parameters, to merge over the deployment's defaults."""
    variant: str | None = None
    """The schedule's ``slot_variant`` (part of the slot key; None for no parameters)."""


@dataclass(frozen=True)
class SkipSlots:
    deployment: str
    count: int
    reason: str
    """One of "overlap", "downtime", "paused" (the metric's reason label)."""
    example: datetime | None = None


@dataclass(frozen=True)
class CancelRuns:
    deployment: str
    run_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class AdvanceCursor:
    deployment: str
    to: datetime


@dataclass(frozen=True)
class ScheduleFailed:
    """The deployment's schedules raised: it is not planned this tick, the others are."""

    deployment: str
    error: str
    """One line: the exception's type and message."""


Decision = RunSlot | SkipSlots | CancelRuns | AdvanceCursor | ScheduleFailed


@dataclass(frozen=True)
class Plan:
    decisions: list[Decision] = field(default_factory=list)


def plan(
    now: datetime,
    deployments: Iterable[DeploymentView],
    *,
    started_at: datetime,
    misfire_grace_seconds: float = 15.0,
) -> Plan:
    """Decide what is due at ``now``.

    A slot is *missed* (and follows the catch-up policy) when it fell due before the
    deployment was served (by this process, or by a replica since ``served_since``) or more
    than ``misfire_grace_seconds`` ago; otherwise it is due now.
    """
    decisions: list[Decision] = []
    for view in deployments:
        up = min(started_at, view.served_since) if view.served_since else started_at
        # A grace longer than the uptime means "since start": clamped, so no overflow either.
        grace = min(misfire_grace_seconds, max((now - up).total_seconds(), 0.0))
        cutoff = max(now - timedelta(seconds=grace), up)
        # One deployment's broken schedule must not stop the others being planned.
        try:
            decisions.extend(_plan_one(now, cutoff, view))
        except Exception as exc:
            decisions.append(ScheduleFailed(view.name, describe_error(exc)))
    return Plan(decisions)


def describe_error(exc: BaseException) -> str:
    """``OverflowError: date value out of range``: one line for logs, /ready and the API."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class _Stream:
    """Active schedules with equal parameters: one run per fire time of any of them."""

    schedules: list[Schedule]
    parameters: Mapping[str, Any]
    variant: str | None

    def slot(self, view: DeploymentView, at: datetime, trigger: str = "schedule") -> RunSlot:
        return RunSlot(view.name, at, trigger, self.parameters, self.variant)


def _streams(schedules: Sequence[Schedule]) -> list[_Stream]:
    """The active schedules grouped by parameters, in the order they first appear."""
    streams: dict[str | None, _Stream] = {}
    for schedule in active_schedules(schedules):
        variant = schedule.slot_variant
        if variant not in streams:
            streams[variant] = _Stream([], schedule.parameters, variant)
        streams[variant].schedules.append(schedule)
    return list(streams.values())


def _plan_one(now: datetime, cutoff: datetime, view: DeploymentView) -> list[Decision]:
    if view.cursor is None:
        return [AdvanceCursor(view.name, now)]
    cursor = view.cursor
    if cursor >= now:
        return []
    first = next_fire(view.schedules, cursor)
    if first is None or first > now:
        # Only inactive schedules fell due (if any): past their slots, so that activating
        # one later does not count them as missed.
        inactive_due = _inactive_due(view.schedules, cursor, now)
        return [AdvanceCursor(view.name, now)] if inactive_due else []
    streams = _streams(view.schedules)
    if view.paused:
        count = sum(count_fires(s.schedules, cursor, now, MISSED_COUNT_CAP) for s in streams)
        return [SkipSlots(view.name, count, "paused", first), AdvanceCursor(view.name, now)]
    missed_end = max(cursor, min(cutoff, now))
    skipped: list[SkipSlots] = []
    due: list[RunSlot] = []
    for stream in streams:
        slots = _catchup(now, view, stream, missed_end)
        skipped.extend(slots.skipped)
        due.extend(slots.run)
        due.extend(stream.slot(view, t) for t in fire_times(stream.schedules, missed_end, now))
    due.sort(key=lambda slot: slot.scheduled_at)  # stable: streams keep their order
    decisions: list[Decision] = _combined(skipped)
    decisions.extend(_apply_overlap(view, due))
    decisions.append(AdvanceCursor(view.name, now))
    return decisions


def _inactive_due(schedules: Sequence[Schedule], cursor: datetime, now: datetime) -> bool:
    times = (s.next_after(cursor) for s in schedules if not s.active)
    return any(t is not None and t <= now for t in times)


def _combined(skipped: list[SkipSlots]) -> list[Decision]:
    """The streams' downtime skips as one decision (one log line, one metric step)."""
    if len(skipped) < 2:
        return list(skipped)
    examples = [s.example for s in skipped if s.example is not None]
    first = skipped[0]
    count = sum(s.count for s in skipped)
    return [SkipSlots(first.deployment, count, first.reason, max(examples, default=None))]


@dataclass
class _Catchup:
    run: list[RunSlot] = field(default_factory=list)
    skipped: list[SkipSlots] = field(default_factory=list)


def _catchup(
    now: datetime, view: DeploymentView, stream: _Stream, missed_end: datetime
) -> _Catchup:
    """Which of the stream's slots in (cursor, missed_end] run, under the catch-up policy."""
    result = _Catchup()
    cursor = view.cursor
    assert cursor is not None  # _plan_one returned for a new deployment
    if missed_end <= cursor:
        return result
    total = count_fires(stream.schedules, cursor, missed_end, MISSED_COUNT_CAP)
    if total == 0:
        return result
    # Only (cursor, now] matters: a longer window is clamped to it (and cannot overflow).
    span = (now - cursor).total_seconds()
    window_start = now - timedelta(seconds=min(view.catchup_window_seconds, span))
    keep = 0 if view.catchup is CatchupPolicy.NONE else 1
    if view.catchup is CatchupPolicy.ALL:
        keep = max(view.catchup_max, 0)
    newest = _newest(stream.schedules, cursor, missed_end, keep)
    chosen = [t for t in newest if t >= window_start]
    result.run = [stream.slot(view, t, "catchup") for t in chosen]
    if total - len(chosen) > 0:
        example = latest_fire(stream.schedules, missed_end)
        result.skipped.append(SkipSlots(view.name, total - len(chosen), "downtime", example))
    return result


def _newest(
    schedules: Sequence[Schedule], start: datetime, end: datetime, count: int
) -> list[datetime]:
    """The ``count`` newest fire times in (start, end], oldest first."""
    found: list[datetime] = []
    point = end
    while len(found) < count:
        t = latest_fire(schedules, point)
        if t is None or t <= start:
            break
        found.append(t)
        point = t - timedelta(microseconds=1)
    return sorted(found)


def _apply_overlap(view: DeploymentView, due: list[RunSlot]) -> list[Decision]:
    """Overlap is judged per instant: runs of one instant (several streams) never overlap."""
    active = bool(view.active_runs)
    started: datetime | None = None
    decisions: list[Decision] = []
    skipped: list[RunSlot] = []
    for slot in due:
        if active and view.overlap is OverlapPolicy.SKIP and slot.scheduled_at != started:
            skipped.append(slot)
            continue
        if view.overlap is OverlapPolicy.CANCEL_PREVIOUS and view.active_runs and not decisions:
            reason = f"replaced by the run scheduled for {slot.scheduled_at:%Y-%m-%d %H:%M:%S} UTC"
            decisions.append(CancelRuns(view.name, tuple(view.active_runs), reason))
        decisions.append(slot)
        active, started = True, slot.scheduled_at
    if skipped:
        decisions.insert(0, SkipSlots(view.name, len(skipped), "overlap", skipped[-1].scheduled_at))
    return decisions


def next_wakeup(now: datetime, deployments: Iterable[DeploymentView]) -> datetime | None:
    """The earliest instant after ``now`` at which some active deployment has a slot.

    A deployment whose schedules raise is left out (``plan`` reports it).
    """
    times = [safe_next_fire(view, now) for view in deployments if not view.paused]
    candidates = [t for t in times if t is not None]
    return min(candidates) if candidates else None


def safe_next_fire(view: DeploymentView, now: datetime) -> datetime | None:
    """The deployment's next slot after ``now`` (and its cursor); None if its schedules raise."""
    try:
        return next_fire(view.schedules, max(now, view.cursor or now))
    except Exception:
        return None


@dataclass(frozen=True)
class QueuedRun:
    id: str
    deployment: str


def select_runs_to_start(
    pending: Sequence[QueuedRun],
    running: Mapping[str, int],
    *,
    limit: int | None,
    concurrency_limits: Mapping[str, int | None],
) -> list[str]:
    """Pending runs (oldest first) that may start now without exceeding any limit.

    ``limit`` caps runs of the whole process (None or 0: no cap); a deployment's
    concurrency limit caps its own. Runs that do not fit stay Pending, in order.
    """
    counts = dict(running)
    total = sum(counts.values())
    chosen: list[str] = []
    for run in pending:
        if limit and total >= limit:
            break
        cap = concurrency_limits.get(run.deployment)
        if cap is not None and counts.get(run.deployment, 0) >= cap:
            continue
        chosen.append(run.id)
        counts[run.deployment] = counts.get(run.deployment, 0) + 1
        total += 1
    return chosen
