"""Scheduling decisions as pure functions of (state, now).

``plan`` looks at every deployment's schedules, its cursor (the instant through which
slots have been planned), whether it is paused and what is active, and returns what
should happen: slots to run, slots to skip (with the reason), runs to cancel, and how
far the cursor moves. ``select_runs_to_start`` applies the process and deployment
limits to the runs waiting as Pending. Neither reads a clock, a store or a process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.core.schedules import Schedule, count_fires, fire_times, latest_fire, next_fire

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


@dataclass(frozen=True)
class RunSlot:
    deployment: str
    scheduled_at: datetime
    trigger: str = "schedule"
    """"schedule" for a slot due now, "catchup" for one missed while down."""


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
    process started or more than ``misfire_grace_seconds`` ago; otherwise it is due now.
    """
    # A grace longer than the uptime means "since start": clamped, so no overflow either.
    grace = min(misfire_grace_seconds, max((now - started_at).total_seconds(), 0.0))
    cutoff = max(now - timedelta(seconds=grace), started_at)
    decisions: list[Decision] = []
    for view in deployments:
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


def _plan_one(now: datetime, cutoff: datetime, view: DeploymentView) -> list[Decision]:
    if view.cursor is None:
        return [AdvanceCursor(view.name, now)]
    if view.cursor >= now or next_fire(view.schedules, view.cursor) is None:
        return []
    first = next_fire(view.schedules, view.cursor)
    if first is None or first > now:
        return []
    if view.paused:
        count = count_fires(view.schedules, view.cursor, now, MISSED_COUNT_CAP)
        return [SkipSlots(view.name, count, "paused", first), AdvanceCursor(view.name, now)]
    missed_end = max(view.cursor, min(cutoff, now))
    slots = _catchup(now, view, missed_end)
    decisions: list[Decision] = list(slots.skipped)
    due = slots.run + [
        RunSlot(view.name, t) for t in fire_times(view.schedules, missed_end, now, limit=1000)
    ]
    decisions.extend(_apply_overlap(view, due))
    decisions.append(AdvanceCursor(view.name, now))
    return decisions


@dataclass
class _Catchup:
    run: list[RunSlot] = field(default_factory=list)
    skipped: list[SkipSlots] = field(default_factory=list)


def _catchup(now: datetime, view: DeploymentView, missed_end: datetime) -> _Catchup:
    """Which slots in (cursor, missed_end] run, under the deployment's catch-up policy."""
    result = _Catchup()
    if missed_end <= view.cursor:  # type: ignore[operator]
        return result
    total = count_fires(view.schedules, view.cursor, missed_end, MISSED_COUNT_CAP)  # type: ignore[arg-type]
    if total == 0:
        return result
    # Only (cursor, now] matters: a longer window is clamped to it (and cannot overflow).
    span = (now - view.cursor).total_seconds()  # type: ignore[operator]
    window_start = now - timedelta(seconds=min(view.catchup_window_seconds, span))
    keep = 0 if view.catchup is CatchupPolicy.NONE else 1
    if view.catchup is CatchupPolicy.ALL:
        keep = max(view.catchup_max, 0)
    newest = _newest(view.schedules, view.cursor, missed_end, keep)  # type: ignore[arg-type]
    chosen = [t for t in newest if t >= window_start]
    result.run = [RunSlot(view.name, t, "catchup") for t in chosen]
    if total - len(chosen) > 0:
        example = latest_fire(view.schedules, missed_end)
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
    active = bool(view.active_runs)
    decisions: list[Decision] = []
    skipped: list[RunSlot] = []
    for slot in due:
        if active and view.overlap is OverlapPolicy.SKIP:
            skipped.append(slot)
            continue
        if view.overlap is OverlapPolicy.CANCEL_PREVIOUS and view.active_runs and not decisions:
            reason = f"replaced by the run scheduled for {slot.scheduled_at:%Y-%m-%d %H:%M:%S} UTC"
            decisions.append(CancelRuns(view.name, tuple(view.active_runs), reason))
        decisions.append(slot)
        active = True
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
