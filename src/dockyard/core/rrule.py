"""``RRuleSchedule``: RFC 5545 recurrence rules (dateutil), searched within a finite bound.

dateutil walks a rule period by period from DTSTART and only stops at a fire time or at year
9999. Asked naively, ``FREQ=SECONDLY`` from 2020 walks 200 million seconds to reach today and
``BYMONTH=2;BYMONTHDAY=30`` walks to year 9999; either blocks the event loop. So every search
here is bounded:

* The rule is restarted at the last whole period before the search point (the same fire times
  from there on), so the walk starts at most one period away. COUNT rules cannot be
  restarted (COUNT counts from DTSTART): their COUNT is capped instead.
* Forward searches run in a *calendar twin*: the same dates shifted to years just before
  9999 whose weekdays and leap years match, so dateutil's own stop at 9999 ends the walk
  ``SEARCH_YEARS`` after the search point. A fire time further away than that is "none".
* At load, a rule must fire within ``SEARCH_YEARS`` of its start, and INTERVAL, COUNT and
  impossible month/day pairs are checked; errors name the rule and say what to change.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta
from dateutil.rrule import (
    DAILY,
    HOURLY,
    MINUTELY,
    MONTHLY,
    SECONDLY,
    WEEKLY,
    YEARLY,
    rrule,
    rrulestr,
)

from dockyard.core.schedule_base import Schedule
from dockyard.core.wallclock import margin, scan, utc, wall_clock, zone
from dockyard.errors import ScheduleError

__all__ = ["MAX_COUNT", "SEARCH_YEARS", "RRuleSchedule"]

DEFAULT_ANCHOR = datetime(2020, 1, 1)  # wall time in the schedule's timezone
SEARCH_YEARS = 30
"""How far ahead (and back) a fire time is searched; a rule must fire within this of its start."""
MAX_COUNT = 10_000
"""Largest COUNT (a COUNT rule is walked from its start; UNTIL has no such limit)."""
_FIXED = {
    SECONDLY: timedelta(seconds=1),
    MINUTELY: timedelta(minutes=1),
    HOURLY: timedelta(hours=1),
    DAILY: timedelta(days=1),
    WEEKLY: timedelta(weeks=1),
}
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class RRuleSchedule(Schedule):
    """An RFC 5545 recurrence rule, iterated in the wall clock of ``timezone``.

    Without DTSTART the rule starts at 2020-01-01T00:00 local. A DTSTART with ``Z`` or ``TZID``
    fixes the start instant, which is then read in ``timezone``'s wall clock; UNTIL is compared
    as wall-clock time. Fire times more than ``SEARCH_YEARS`` away are not searched for.
    ``active``, ``parameters`` and ``slug`` (keyword-only) are those of every ``Schedule``.
    """

    kind: ClassVar[str] = "rrule"
    config_keys: ClassVar[tuple[str, ...]] = ("timezone",)

    rrule: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        super().__post_init__()
        zone(self.timezone)
        if not isinstance(self.rrule, str):
            raise ScheduleError(f"rrule: must be a string, got {self.rrule!r}")
        _compile(self.rrule, self.timezone)

    def next_after(self, dt: datetime) -> datetime | None:
        """First fire time strictly after ``dt``."""
        tz, rule = zone(self.timezone), _compile(self.rrule, self.timezone)
        dt = utc(dt)
        start = wall_clock(dt, tz) - margin(dt, tz)
        return scan(rule.forward(start), tz, dt, False, False)

    def latest_at_or_before(self, dt: datetime) -> datetime | None:
        """Last fire time at or before ``dt``."""
        tz, rule = zone(self.timezone), _compile(self.rrule, self.timezone)
        dt = utc(dt)
        start = wall_clock(dt, tz) + margin(dt, tz)
        return scan(rule.backward(start), tz, dt, False, True)

    def to_dict(self) -> dict[str, object]:
        return {"rrule": self.rrule, "timezone": self.timezone} | self.common_dict()

    def describe(self) -> str:
        return f"rrule '{self.rrule}' ({self.timezone})"


@dataclass(frozen=True)
class _Rules:
    """A parsed rule set: recurrence rules plus explicit dates, in naive wall time."""

    rules: tuple[rrule, ...]
    rdates: tuple[datetime, ...]
    exdates: frozenset[datetime]

    def forward(self, start: datetime) -> Iterator[datetime]:
        """Fire times > ``start``, increasing, within ``SEARCH_YEARS``."""
        wall = start
        while (found := self._next(wall)) is not None:
            yield found
            wall = found

    def _next(self, wall: datetime) -> datetime | None:
        candidates = [t for r in self.rules if (t := _after(r, wall, self.exdates)) is not None]
        i = bisect_right(self.rdates, wall)
        candidates += [t for t in self.rdates[i:] if t not in self.exdates][:1]
        return min(candidates, default=None)

    def backward(self, start: datetime) -> Iterator[datetime]:
        """Fire times <= ``start``, decreasing, within ``SEARCH_YEARS``."""
        wall: datetime | None = start
        inclusive = True
        while wall is not None:
            wall = self._previous(wall, inclusive)
            if wall is not None:
                yield wall
            inclusive = False

    def _previous(self, wall: datetime, inclusive: bool) -> datetime | None:
        found = [t for r in self.rules if (t := _before(r, wall, inclusive, self.exdates))]
        i = bisect_right(self.rdates, wall) if inclusive else bisect_left(self.rdates, wall)
        found += [t for t in reversed(self.rdates[:i]) if t not in self.exdates][:1]
        return max(found, default=None)


@lru_cache(maxsize=256)
def _compile(text: str, timezone: str) -> _Rules:
    """Parse and check once per (rule, timezone)."""
    tz = zone(timezone)
    tokens = text.split()
    starts = [t for t in tokens if t.upper().startswith("DTSTART")]
    lines = [t for t in tokens if not t.upper().startswith("DTSTART")]
    try:
        dtstart = _parse_dtstart(starts[-1], tz) if starts else DEFAULT_ANCHOR
        for line in lines:
            _check_line(line)
        parsed = rrulestr("\n".join(lines), dtstart=dtstart, forceset=True, ignoretz=True)
    except (ValueError, TypeError, KeyError, ZoneInfoNotFoundError) as exc:
        raise ScheduleError(f"rrule: {text!r} is not a valid rrule: {exc}") from None
    # dateutil keeps a set's parts private; these names have not changed since 2011.
    found: list[rrule] = vars(parsed)["_rrule"]
    rdates: list[datetime] = vars(parsed)["_rdate"]
    exdates = frozenset[datetime](vars(parsed)["_exdate"])
    _check_fires(text, found, rdates, exdates, dtstart)
    # A COUNT rule becomes its (at most MAX_COUNT) dates: COUNT counts from DTSTART, so it
    # cannot be restarted near the search point. islice stops at the last one, not after it.
    dates = [*rdates, *(t for r in found if (n := _spec(r).count) for t in islice(r, n))]
    rules = tuple(r for r in found if not _spec(r).count)
    return _Rules(rules, tuple(sorted(set(dates))), exdates)


def _check_line(line: str) -> None:
    """INTERVAL, COUNT and month/day pairs that would make dateutil loop or never fire."""
    name, _, body = line.rpartition(":")
    if name.upper() == "EXRULE":
        raise ValueError("EXRULE is not supported (RFC 5545 deprecates it); use EXDATE")
    if name.upper() not in ("", "RRULE"):
        return  # RDATE / EXDATE: explicit dates
    parts = dict(p.partition("=")[::2] for p in body.upper().split(";") if p)
    if "BYEASTER" in parts:
        raise ValueError("BYEASTER is not supported")
    interval = parts.get("INTERVAL", "1")
    if not re.fullmatch(r"\+?\d+", interval) or int(interval) < 1:
        raise ValueError(f"INTERVAL must be a whole number of at least 1, got {interval}")
    count = parts.get("COUNT")
    if count is not None and not 1 <= _int(count) <= MAX_COUNT:
        raise ValueError(f"COUNT must be 1 to {MAX_COUNT}, got {count}; use UNTIL for more")
    if "BYMONTH" in parts and "BYMONTHDAY" in parts:
        months = [_int(m) for m in parts["BYMONTH"].split(",")]
        days = [_int(d) for d in parts["BYMONTHDAY"].split(",")]
        pairs = [(m, d) for m in months for d in days if 1 <= m <= 12 and d]
        if pairs and not any(abs(d) <= _MONTH_DAYS[m - 1] for m, d in pairs):
            raise ValueError(
                f"BYMONTHDAY={parts['BYMONTHDAY']} never occurs in BYMONTH={parts['BYMONTH']}"
            )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _check_fires(
    text: str,
    rules: list[rrule],
    rdates: list[datetime],
    exdates: frozenset[datetime],
    dtstart: datetime,
) -> None:
    if rdates or any(_after(r, _spec(r).dtstart, exdates, inc=True) for r in rules):
        return
    raise ScheduleError(
        f"rrule: {text!r} never fires within {SEARCH_YEARS} years of its start "
        f"({dtstart:%Y-%m-%d}); check BYMONTH, BYMONTHDAY, BYDAY and INTERVAL together"
    )


@dataclass(frozen=True)
class _Spec:
    """What dateutil keeps about one rule, as private attributes (unchanged since 2011)."""

    freq: int
    interval: int
    count: int | None
    until: datetime | None
    dtstart: datetime
    given: dict[str, Any]
    """The parts the rule text gave (not filled in from DTSTART)."""


def _spec(rule: rrule) -> _Spec:
    v = vars(rule)
    return _Spec(
        v["_freq"], v["_interval"], v["_count"], v["_until"], v["_dtstart"], v["_original_rule"]
    )


# --- one rule, searched within bounds -----------------------------------------------------


def _after(
    rule: rrule, wall: datetime, exdates: frozenset[datetime], inc: bool = False
) -> datetime | None:
    """The rule's first fire time after ``wall`` (not excluded), within ``SEARCH_YEARS``."""
    near = _restarted(rule, wall)
    shift = _twin_shift(_spec(near).dtstart, wall)
    moved = _moved(near, shift)
    found = moved.after(wall + shift, inc=inc)
    while found is not None and found - shift in exdates:
        found = moved.after(found)
    if found is None or (shift and found.year > (wall + shift).year + SEARCH_YEARS):
        return None  # past the twin years (their calendar no longer matches): beyond the bound
    return found - shift


def _before(
    rule: rrule, wall: datetime, inclusive: bool, exdates: frozenset[datetime]
) -> datetime | None:
    """The rule's last fire time at (``inclusive``) or before ``wall``, within ``SEARCH_YEARS``."""
    end = wall if inclusive else wall - timedelta(microseconds=1)
    recent = _restarted(rule, _back(rule, end, 1)).before(end, inc=True)
    if recent is not None and recent not in exdates:
        return recent  # the usual case: a fire time within the last period
    # Bisect with bounded forward searches: ``latest`` is a fire time <= end, and none lies
    # in (hi, end]. Each step halves (latest, hi], so this ends in about 60 steps.
    latest = _after(
        rule, max(_spec(rule).dtstart, _back(rule, end, 0, SEARCH_YEARS)), exdates, True
    )
    if latest is None or latest > end:
        return None
    hi = end
    while (following := _after(rule, latest, exdates)) is not None and following <= hi:
        middle = latest + (hi - latest) / 2
        found = _after(rule, middle, exdates)
        if found is not None and found <= hi:
            latest = found
        else:
            hi = middle
    return latest


def _back(rule: rrule, wall: datetime, periods: int, years: int = 0) -> datetime:
    return _minus(wall, _period(rule) * periods + relativedelta(years=years))


def _minus(wall: datetime, delta: timedelta | relativedelta) -> datetime:
    try:
        return wall - delta
    except (OverflowError, ValueError):
        return datetime.min


def _period(rule: rrule) -> timedelta | relativedelta:
    spec = _spec(rule)
    if spec.freq in _FIXED:
        return _FIXED[spec.freq] * spec.interval
    if spec.freq == MONTHLY:
        return relativedelta(months=spec.interval)
    return relativedelta(years=spec.interval)


def _restarted(rule: rrule, wall: datetime) -> rrule:
    """The rule restarted at the start of its last period at or before ``wall``.

    It has the same fire times from there on: the restart is a whole number of periods
    later, and the parts DTSTART stood in for (time, weekday, day, month) are kept.
    """
    spec = _spec(rule)
    start, every = spec.dtstart, spec.interval
    if wall <= start:
        return rule
    if spec.freq in _FIXED:  # whole periods keep the time of day and the weekday
        step = _FIXED[spec.freq] * every
        return rule.replace(dtstart=start + step * ((wall - start) // step))
    if spec.freq == MONTHLY:
        months = (wall.year - start.year) * 12 + wall.month - start.month
        first = date(start.year, start.month, 1) + relativedelta(months=months // every * every)
    else:
        first = date(start.year + (wall.year - start.year) // every * every, 1, 1)
    restart = datetime.combine(first, datetime.min.time())
    return _replace(rule, dtstart=restart, **_defaults(spec))


def _defaults(spec: _Spec) -> dict[str, Any]:
    """What dateutil fills in from DTSTART for MONTHLY and YEARLY rules (see ``rrule.__init__``)."""
    given, start = spec.given, spec.dtstart
    explicit: dict[str, Any] = {
        key: given[key] if key in given else getattr(start, key[2:])
        for key in ("byhour", "byminute", "bysecond")
    }
    date_keys = ("byweekno", "byyearday", "bymonthday", "byweekday", "byeaster")
    if any(given.get(key) is not None for key in date_keys):
        return explicit
    explicit["bymonthday"] = start.day
    if spec.freq == YEARLY:
        explicit["bymonth"] = given.get("bymonth") or start.month
    return explicit


def _replace(rule: rrule, **changes: Any) -> rrule:
    replaced: rrule = rule.replace(**changes)
    return replaced


def _moved(rule: rrule, shift: timedelta) -> rrule:
    if not shift:
        return rule
    spec = _spec(rule)
    try:
        until = None if spec.until is None else spec.until + shift
    except OverflowError:
        until = None  # beyond year 9999: past the search bound anyway
    return rule.replace(dtstart=spec.dtstart + shift, until=until)


def _twin_shift(start: datetime, wall: datetime) -> timedelta:
    """How far to move dates from ``start`` to ``wall + SEARCH_YEARS`` onto their twin years."""
    twin = _twin_year(start.year, wall.year + SEARCH_YEARS - start.year)
    if twin is None:
        return timedelta(0)
    return date(twin, 1, 1) - date(start.year, 1, 1)


@lru_cache(maxsize=512)
def _twin_year(year: int, span: int) -> int | None:
    """The latest year T with T + span <= 9999 whose calendar matches ``year``'s for ``span``
    years (same weekday on 1 January, same leap years): dateutil stops at 9999, right after.

    T = year + 400k always matches (the Gregorian cycle), so at most 401 years are tried.
    """
    last = MAXYEAR - span
    if last <= year:
        return None
    for twin in range(last, max(year, last - 400), -1):
        same_start = date(twin, 1, 1).weekday() == date(year, 1, 1).weekday()
        if same_start and all(
            calendar.isleap(year + i) == calendar.isleap(twin + i) for i in range(span + 1)
        ):
            return twin
    return None


def _parse_dtstart(token: str, tz: ZoneInfo) -> datetime:
    """``DTSTART[;TZID=X]:YYYYMMDD[THHMMSS[Z]]`` → naive wall time in ``tz``."""
    head, _, value = token.partition(":")
    params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
    value = value.upper()
    naive = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S" if "T" in value else "%Y%m%d")
    zone = UTC if value.endswith("Z") else ZoneInfo(params["TZID"]) if "TZID" in params else None
    return naive if zone is None else wall_clock(naive.replace(tzinfo=zone), tz)
