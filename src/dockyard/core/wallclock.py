"""Wall-clock time for schedules: timezones, DST gaps and folds (see ``dockyard.core.schedules``).

The rules every schedule kind follows are in ``dockyard.core.schedules``' docstring; these helpers
implement them, and ``scan`` walks wall times (from croniter or dateutil) to the nearest
instant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dockyard.errors import ScheduleError

# Longest DST fold/gap we look around for; real-world transitions are at most 2 hours.
_MARGIN = timedelta(hours=3)
_SCAN_LIMIT = 1000
"""Wall times ``scan`` looks at: it stops after a few; the limit keeps any walk finite."""


def zone(name: object) -> ZoneInfo:
    if not isinstance(name, str):
        raise ScheduleError(f"timezone: must be a string such as 'UTC', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"timezone: unknown timezone {name!r}; use an IANA name such as 'Europe/Berlin'"
        ) from None


def utc(dt: datetime, name: str = "datetime") -> datetime:
    """``dt`` in UTC; naive input is a programming error, not a config error."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {dt.isoformat()}")
    # Normalise: same-tzinfo comparisons and subtractions ignore the offset in Python.
    return dt.astimezone(UTC)


def wall_clock(dt: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall-clock reading of an aware instant."""
    return dt.astimezone(tz).replace(tzinfo=None)


def _gap_end(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """First instant in (before, after] on the post-gap offset (tzdata moves on whole seconds)."""
    target = after.astimezone(tz).utcoffset()
    lo, hi = math.floor(before.timestamp()), math.ceil(after.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def instants(wall: datetime, tz: ZoneInfo, both_folds: bool = False) -> list[datetime]:
    """UTC instants for a naive wall time, in increasing order (see the module rules)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first < second:  # ambiguous: the wall time occurs twice
        return [first, second] if both_folds else [first]
    # Non-existent: zoneinfo maps fold=0 past the gap and fold=1 before it.
    return [_gap_end(second, first, tz)]


def margin(dt: datetime, tz: ZoneInfo) -> timedelta:
    """How far to widen a wall-clock search: only near an offset change is it needed."""
    near = (dt - _MARGIN).astimezone(tz).utcoffset() != (dt + _MARGIN).astimezone(tz).utcoffset()
    return _MARGIN if near else timedelta(0)


def scan(
    walls: Iterable[datetime], tz: ZoneInfo, dt: datetime, both: bool, backward: bool
) -> datetime | None:
    """Nearest instant after ``dt`` (or at/before it, ``backward``) among the wall times' instants.

    ``walls`` runs away from ``dt``. A wall time's instants bound every later wall time's from
    the side of ``dt`` (only fold=1 extras break plain monotonicity), so we stop as soon as the
    best candidate is no worse than that bound.
    """
    best: datetime | None = None
    for wall in islice(walls, _SCAN_LIMIT):
        found = instants(wall, tz, both)
        for t in found:
            if (t <= dt if backward else t > dt) and (
                best is None or (t > best if backward else t < best)
            ):
                best = t
        if best is not None and (best >= found[-1] if backward else best <= found[0]):
            break
    return best
