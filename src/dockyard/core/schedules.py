"""Schedules: cron, interval and rrule fire times as pure functions of time.

No clock lives here: every question takes "now" as an argument, like arq's ``next_cron`` and
supercronic's ``Expression.Next``. Inputs must be timezone-aware (naive → ``ValueError``); every
returned instant is in UTC. Invalid configuration raises ``ScheduleError`` whose message starts
with the bad field, so callers can prefix a path (``schedules[1].interval: ...``).

Wall-clock rules (cron, rrule and whole-day intervals), shared so all three agree:

* A wall time that does not exist (spring-forward gap) fires once, at the first valid instant
  after the gap: ``02:30`` Europe/Berlin on 2026-03-29 fires at 03:00 CEST = 01:00 UTC.
* A wall time that occurs twice (fall-back) fires at its first occurrence only (``fold=0``).
  Exception: a cron whose hour field is ``*`` or ``*/n`` also fires at the second occurrence,
  so ``0 * * * *`` fires in every distinct UTC hour (Vixie cron treats wildcard-hour jobs the
  same way).
* Instants are de-duplicated: several gap wall times that land on one instant fire once.

Every schedule also takes ``active``, ``parameters`` and ``slug`` (keyword-only, as in
Prefect). The helpers over several schedules (``fire_times``, ``next_fire``, ...) leave the
inactive ones out: an inactive schedule never fires and is never missed.

A new kind of schedule is one class here: a ``Schedule`` subclass with ``kind`` and
``config_keys`` (see ``dockyard.core.schedule_base``); ``schedule_from_dict`` finds it by kind.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, ClassVar

from dockyard.core.cron import CronSchedule
from dockyard.core.rrule import RRuleSchedule
from dockyard.core.schedule_base import COMMON_KEYS, SCHEDULE_KINDS, Schedule
from dockyard.core.wallclock import instants, utc, wall_clock, zone
from dockyard.errors import ScheduleError

__all__ = [
    "Cron",
    "CronSchedule",
    "Interval",
    "IntervalSchedule",
    "RRule",
    "RRuleSchedule",
    "SCHEDULE_KINDS",
    "Schedule",
    "active_schedules",
    "check_slugs",
    "count_fires",
    "fire_times",
    "latest_fire",
    "make_schedules",
    "next_fire",
    "schedule_from_dict",
]

DEFAULT_ANCHOR = datetime(2020, 1, 1)  # wall time in the schedule's timezone
MIN_INTERVAL = timedelta(seconds=1)
"""The shortest interval: sub-second intervals create runs faster than processes start."""
_DAY = timedelta(days=1)


# --- interval ---------------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class IntervalSchedule(Schedule):
    """Fire at ``anchor_date + k * interval`` for every integer k.

    Whole-day intervals step in the wall clock of ``timezone`` (a daily 09:00 Berlin anchor
    stays 09:00 local across DST, as in Prefect); any other interval steps in absolute time.
    ``interval`` is a timedelta or seconds. ``anchor_date`` is a datetime or an ISO string;
    a naive one is read in ``timezone``; default 2020-01-01T00:00 there. ``active``,
    ``parameters`` and ``slug`` (keyword-only) are those of every ``Schedule``.
    """

    kind: ClassVar[str] = "interval"
    config_keys: ClassVar[tuple[str, ...]] = ("timezone", "anchor_date")

    interval: timedelta
    anchor_date: datetime  # aware, in ``timezone``
    timezone: str

    def __init__(
        self,
        interval: timedelta | float,
        anchor_date: datetime | str | None = None,
        timezone: str = "UTC",
        *,
        active: bool = True,
        parameters: Mapping[str, Any] | None = None,
        slug: str | None = None,
    ) -> None:
        object.__setattr__(self, "active", active)
        object.__setattr__(self, "parameters", {} if parameters is None else parameters)
        object.__setattr__(self, "slug", slug)
        super().__post_init__()
        object.__setattr__(self, "timezone", timezone)
        tz = zone(timezone)
        object.__setattr__(self, "interval", _to_interval(interval))
        anchor: object = DEFAULT_ANCHOR if anchor_date is None else anchor_date
        if isinstance(anchor, str):
            try:
                anchor = datetime.fromisoformat(anchor)
            except ValueError:
                raise ScheduleError(f"anchor_date: {anchor!r} is not an ISO datetime") from None
        if not isinstance(anchor, datetime):
            raise ScheduleError(f"anchor_date: must be a datetime, got {anchor!r}")
        if anchor.tzinfo is None:
            anchor = instants(anchor, tz)[0]
        object.__setattr__(self, "anchor_date", anchor.astimezone(tz))

    @property
    def _local_days(self) -> bool:
        return self.interval % _DAY == timedelta(0)

    def _slot(self, k: int) -> datetime:
        tz = zone(self.timezone)
        return instants(wall_clock(self.anchor_date, tz) + k * self.interval, tz)[0]

    def _floor_k(self, dt: datetime) -> int:
        if self._local_days:
            tz = zone(self.timezone)
            return (wall_clock(dt, tz) - wall_clock(self.anchor_date, tz)) // self.interval
        return (dt - self.anchor_date.astimezone(UTC)) // self.interval

    def next_after(self, dt: datetime) -> datetime | None:
        """First fire time strictly after ``dt`` (O(1): no walk over the slots in between)."""
        return self._nearest(dt, backward=False)

    def latest_at_or_before(self, dt: datetime) -> datetime | None:
        """Last fire time at or before ``dt``."""
        return self._nearest(dt, backward=True)

    def _nearest(self, dt: datetime, backward: bool) -> datetime | None:
        dt = utc(dt)
        try:
            k = self._floor_k(dt)
            if not self._local_days:
                return self.anchor_date.astimezone(UTC) + (k + (not backward)) * self.interval
            # Wall clock and instants differ by hours, never two days: 5 slots bound the search.
            ks = range(k + 2, k - 3, -1) if backward else range(k - 2, k + 3)
            return next(s for s in map(self._slot, ks) if (s <= dt if backward else s > dt))
        except OverflowError:
            return None

    def to_dict(self) -> dict[str, object]:
        return {
            "interval": self.interval.total_seconds(),
            "anchor_date": self.anchor_date.isoformat(),
            "timezone": self.timezone,
        } | self.common_dict()

    def describe(self) -> str:
        text = f"every {self.interval.total_seconds():g}s"
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"


def _to_interval(value: object) -> timedelta:
    bad = ScheduleError(f"interval: must be a positive number of seconds, got {value!r}")
    if isinstance(value, timedelta):
        step = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise bad
        try:
            step = timedelta(seconds=value)
        except OverflowError:
            raise ScheduleError(f"interval: {value!r} seconds is too long") from None
    else:
        raise bad
    if step <= timedelta(0):  # sub-microsecond numbers round to zero: refused too
        raise bad
    if step < MIN_INTERVAL:
        raise ScheduleError(f"interval: must be at least 1s, got {step.total_seconds():g}s")
    return step


# Prefect-compatible names (``prefect.schedules.Cron`` etc.), first argument positional.
Cron = CronSchedule
Interval = IntervalSchedule
RRule = RRuleSchedule


# --- many schedules ---------------------------------------------------------------------------


def active_schedules(schedules: Iterable[Schedule]) -> list[Schedule]:
    """The schedules that fire (``active``); the helpers below consider only these."""
    return [s for s in schedules if s.active]


def _merged(schedules: Sequence[Schedule], after: datetime) -> Iterator[datetime]:
    """Fire times > ``after`` of all active schedules, increasing and without duplicates."""
    schedules = active_schedules(schedules)
    heap = [(t, i) for i, s in enumerate(schedules) if (t := s.next_after(after)) is not None]
    heapq.heapify(heap)
    last = None
    while heap:
        t, i = heapq.heappop(heap)
        if t != last:
            yield t
            last = t
        if (nxt := schedules[i].next_after(t)) is not None:
            heapq.heappush(heap, (nxt, i))


def _within(schedules: Sequence[Schedule], start: datetime, end: datetime) -> Iterator[datetime]:
    start, end = utc(start, "start"), utc(end, "end")
    for t in _merged(schedules, start):
        if t > end:
            return
        yield t


def fire_times(
    schedules: Sequence[Schedule], start: datetime, end: datetime, limit: int = 1000
) -> list[datetime]:
    """The earliest ``limit`` fire times t with start < t <= end, merged and de-duplicated."""
    return list(islice(_within(schedules, start, end), max(limit, 0)))


def count_fires(schedules: Sequence[Schedule], start: datetime, end: datetime, cap: int) -> int:
    """How many fire times lie in (start, end], counting at most ``cap``."""
    return sum(1 for _ in islice(_within(schedules, start, end), max(cap, 0)))


def next_fire(schedules: Sequence[Schedule], after: datetime) -> datetime | None:
    """The earliest fire time strictly after ``after`` across all active schedules."""
    after = utc(after, "after")
    times = (s.next_after(after) for s in active_schedules(schedules))
    return min((t for t in times if t is not None), default=None)


def latest_fire(schedules: Sequence[Schedule], at_or_before: datetime) -> datetime | None:
    """The latest fire time at or before ``at_or_before`` across all active schedules."""
    at_or_before = utc(at_or_before, "at_or_before")
    found = (s.latest_at_or_before(at_or_before) for s in active_schedules(schedules))
    return max((t for t in found if t is not None), default=None)


# --- config -----------------------------------------------------------------------------------


def _option_owners() -> tuple[list[str], dict[str, list[str]]]:
    """Config keys every kind accepts, and the others → the kinds that accept them (by name)."""
    kinds = list(SCHEDULE_KINDS.values())
    keys = sorted({key for cls in kinds for key in cls.config_keys})
    owners = {key: [cls.kind for cls in kinds if key in cls.config_keys] for key in keys}
    shared = [key for key, names in owners.items() if len(names) == len(kinds)]
    return shared, {key: names for key, names in owners.items() if key not in shared}


def schedule_from_dict(data: Mapping[str, object], path: str = "schedule") -> Schedule:
    """Build a schedule from its config form; errors name ``path`` and the bad field."""
    kinds = ", ".join(sorted(SCHEDULE_KINDS))
    if not isinstance(data, Mapping):
        raise ScheduleError(f"{path}: must be a mapping with one of {kinds}")
    shared, only_for = _option_owners()
    allowed = [*SCHEDULE_KINDS, *shared, *only_for, *COMMON_KEYS]
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ScheduleError(f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
    given = [k for k in SCHEDULE_KINDS if k in data]
    if len(given) != 1:
        raise ScheduleError(f"{path}: give exactly one of {kinds}")
    cls = SCHEDULE_KINDS[given[0]]
    for key, owners in only_for.items():
        if key in data and cls.kind not in owners:
            raise ScheduleError(f"{path}.{key}: only applies to {' or '.join(owners)} schedules")
    options = {k: v for k, v in data.items() if k != cls.kind}
    try:
        return cls.from_config(data[cls.kind], options)
    except ScheduleError as exc:
        raise ScheduleError(f"{path}.{exc.message}") from None


def make_schedules(
    *,
    interval: timedelta | float | Iterable[timedelta | float] | None = None,
    cron: str | Iterable[str] | None = None,
    rrule: str | Iterable[str] | None = None,
    schedule: Schedule | Mapping[str, object] | None = None,
    schedules: Iterable[Schedule | Mapping[str, object]] | None = None,
    timezone: str | None = None,
    anchor_date: datetime | str | None = None,
) -> list[Schedule]:
    """Schedules from Prefect-style ``flow.serve(interval=..., cron=..., ...)`` arguments.

    ``schedule`` is one schedule object (``Cron("0 * * * *", parameters=...)``) or its
    mapping; ``schedules`` a list of them. Give at most one of the schedule arguments.
    """
    given = {
        "interval": interval, "cron": cron, "rrule": rrule, "schedule": schedule,
        "schedules": schedules,
    }  # fmt: skip
    if sum(v is not None for v in given.values()) > 1:
        names = ", ".join(k for k, v in given.items() if v is not None)
        raise ScheduleError(
            f"give only one of interval, cron, rrule, schedule, schedules (got {names})"
        )
    if anchor_date is not None and interval is None:
        raise ScheduleError("anchor_date: only applies to interval schedules")
    tz = timezone or "UTC"
    if interval is not None:
        if isinstance(interval, str) or not isinstance(interval, Iterable):
            interval = [interval]
        return [IntervalSchedule(v, anchor_date, tz) for v in interval]
    if cron is not None:
        return [CronSchedule(c, tz) for c in ([cron] if isinstance(cron, str) else cron)]
    if rrule is not None:
        return [RRuleSchedule(r, tz) for r in ([rrule] if isinstance(rrule, str) else rrule)]
    if schedule is not None:
        if isinstance(schedule, str):
            raise ScheduleError(
                f"schedule: expected a schedule such as Cron({schedule!r}), got a string; "
                "pass a cron string as cron="
            )
        return [_schedule_object(schedule, tz, "schedule")]
    if isinstance(schedules, (str, Mapping, Schedule)):
        raise ScheduleError("schedules: expected a list of schedules; give one as schedule=")
    result = [
        _schedule_object(item, tz, f"schedules[{i}]") for i, item in enumerate(schedules or [])
    ]
    check_slugs(result)
    return result


def _schedule_object(item: object, timezone: str, path: str) -> Schedule:
    if isinstance(item, Mapping):
        return schedule_from_dict({"timezone": timezone, **item}, path=path)
    if not isinstance(item, Schedule):
        raise ScheduleError(f"{path}: expected a schedule or a mapping, got {item!r}")
    return item


def check_slugs(schedules: Sequence[Schedule], path: str = "schedules") -> None:
    """Refuse two schedules of one deployment with the same slug (names must tell them apart)."""
    first: dict[str, int] = {}
    for i, schedule in enumerate(schedules):
        if schedule.slug is None:
            continue
        if schedule.slug in first:
            earlier = f"{path}[{first[schedule.slug]}]"
            raise ScheduleError(
                f"{path}[{i}].slug: {schedule.slug!r} is also the slug of {earlier}; "
                "give each schedule of a deployment its own slug"
            )
        first[schedule.slug] = i


def upcoming(schedules: Sequence[Schedule], after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, merged across ``schedules``."""
    times: list[datetime] = []
    point = after
    while len(times) < count and (t := next_fire(schedules, point)) is not None:
        times.append(t)
        point = t
    return times
