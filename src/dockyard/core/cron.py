"""``CronSchedule``: cron expressions (croniter) evaluated in a timezone's wall clock."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, Self

from croniter import CroniterBadDateError, CroniterError, croniter

from dockyard.core.schedule_base import Schedule
from dockyard.core.wallclock import margin, scan, utc, wall_clock, zone
from dockyard.errors import ScheduleError

_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_FIELDS = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("weekday", "0-7 or SUN-SAT"),
    ("second", "0-59"),
]


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A cron expression evaluated in the wall clock of ``timezone``.

    Five fields (minute hour day month weekday) or a nickname such as ``@hourly``. With
    ``seconds=True`` a sixth field is allowed and it is the *last* one, seconds, following
    croniter's default ``second_at_beginning=False`` (``0 * * * * 30`` = minute 0, second 30).
    ``day_or=True`` is classic cron: day-of-month and weekday are OR-ed when both are set.
    ``active``, ``parameters`` and ``slug`` (keyword-only) are those of every ``Schedule``.
    """

    kind: ClassVar[str] = "cron"
    config_keys: ClassVar[tuple[str, ...]] = ("timezone", "day_or", "seconds")

    cron: str
    timezone: str = "UTC"
    day_or: bool = True
    seconds: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        zone(self.timezone)
        _check_cron(self.cron, self.seconds)

    @classmethod
    def from_config(cls, value: object, options: Mapping[str, object]) -> Self:
        for key in ("day_or", "seconds"):
            if key in options and not isinstance(options[key], bool):
                raise ScheduleError(f"{key}: must be true or false, got {options[key]!r}")
        return super().from_config(value, options)

    @property
    def _hour_is_wildcard(self) -> bool:
        hour = _NICKNAMES.get(self.cron.strip().lower(), self.cron).split()[1]
        return hour == "*" or hour.startswith("*/")

    def _walls(self, start: datetime, backward: bool) -> Iterator[datetime]:
        it = croniter(self.cron, start, ret_type=datetime, day_or=self.day_or)
        step = it.get_prev if backward else it.get_next
        try:
            while True:
                yield step()
        except CroniterBadDateError:  # croniter gives up after decades without a match
            return

    def next_after(self, dt: datetime) -> datetime | None:
        """First fire time strictly after ``dt``."""
        tz = zone(self.timezone)
        dt = utc(dt)
        start = wall_clock(dt, tz) - margin(dt, tz)
        return scan(self._walls(start, False), tz, dt, self._hour_is_wildcard, False)

    def latest_at_or_before(self, dt: datetime) -> datetime | None:
        """Last fire time at or before ``dt``."""
        tz = zone(self.timezone)
        # +1s: croniter's get_prev is strictly before its start; candidates > dt are skipped.
        dt = utc(dt)
        start = wall_clock(dt, tz) + margin(dt, tz) + timedelta(seconds=1)
        return scan(self._walls(start, True), tz, dt, self._hour_is_wildcard, True)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"cron": self.cron, "timezone": self.timezone}
        if not self.day_or:
            data["day_or"] = False
        if self.seconds:
            data["seconds"] = True
        return data | self.common_dict()

    def describe(self) -> str:
        return f"cron '{self.cron}' ({self.timezone})"


def _check_cron(expr: object, seconds: bool) -> None:
    if not isinstance(expr, str):
        raise ScheduleError(f"cron: must be a string, got {expr!r}")
    fields = _NICKNAMES.get(expr.strip().lower(), expr).split()
    if expr.strip().startswith("@") and expr.strip().lower() not in _NICKNAMES:
        raise ScheduleError(f"cron: {expr!r} is not a known nickname ({', '.join(_NICKNAMES)})")
    if len(fields) == 6 and not seconds:
        raise ScheduleError(
            f"cron: {expr!r} has 6 fields; dockyard reads 5-field cron (minute hour day month "
            "weekday). To schedule by seconds pass seconds=True (config: seconds: true)"
        )
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"cron: {expr!r} has {len(fields)} fields; dockyard reads 5-field cron "
            "(minute hour day month weekday)"
        )
    if not croniter.is_valid(expr, strict=True):
        raise ScheduleError(f"cron: {expr!r} is not a valid cron expression: {_cron_why(fields)}")


def _cron_why(fields: list[str]) -> str:
    """Name the first field croniter refuses on its own, else croniter's own message."""
    for i, (name, allowed) in enumerate(_CRON_FIELDS[: len(fields)]):
        probe = ["*"] * len(fields)
        probe[i] = fields[i]
        if not croniter.is_valid(" ".join(probe)):
            return f"{name} must be {allowed}, got {fields[i]!r}"
    try:
        croniter.expand(" ".join(fields), strict=True)
    except (CroniterError, ValueError) as exc:
        return str(exc)
    return "it never matches a date"  # pragma: no cover - is_valid and expand disagree
