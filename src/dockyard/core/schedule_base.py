"""The schedule contract and its kind → class registry (``SCHEDULE_KINDS``).

A schedule type is one class: subclass ``Schedule``, set ``kind`` (the config key that holds
its value, as in ``cron: "0 * * * *"``) and ``config_keys`` (the other keys it accepts, passed
to its constructor as keywords). Defining the class registers it; ``schedule_from_dict`` in
``dockyard.core.schedules`` builds schedules from config through the registry alone.

This module is separate from ``dockyard.core.schedules`` so that ``dockyard.core.cron`` can
define ``CronSchedule`` without importing the module that imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import ClassVar, Self

__all__ = ["SCHEDULE_KINDS", "Schedule"]

SCHEDULE_KINDS: dict[str, type[Schedule]] = {}
"""Config key → schedule class, in the order the classes were defined."""


class Schedule:
    """Fire times as pure functions of time: timezone-aware instants in, UTC instants out."""

    kind: ClassVar[str]
    """The config key holding the schedule's value; set it to register the class."""
    config_keys: ClassVar[tuple[str, ...]] = ()
    """The config keys accepted besides ``kind``: keyword arguments of the constructor."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        kind = vars(cls).get("kind")
        if kind is None:  # an intermediate base, not a kind of its own
            return
        known = SCHEDULE_KINDS.get(kind)
        # The same class defined again (a module reload) replaces its earlier self.
        if known is not None and _name(known) != _name(cls):
            raise TypeError(f"schedule kind {kind!r} is already registered by {_name(known)}")
        SCHEDULE_KINDS[kind] = cls

    @classmethod
    def from_config(cls, value: object, options: Mapping[str, object]) -> Self:
        """Build from config: ``value`` was under ``kind``, ``options`` are among ``config_keys``.

        Raises ``ScheduleError`` whose message starts with the bad field.
        """
        build: Callable[..., Self] = cls
        return build(value, **options)

    def next_after(self, dt: datetime) -> datetime | None:
        """First fire time strictly after ``dt``."""
        raise NotImplementedError

    def latest_at_or_before(self, dt: datetime) -> datetime | None:
        """Last fire time at or before ``dt``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, object]:
        """The config form, which ``schedule_from_dict`` turns back into an equal schedule."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for people, such as ``cron '0 * * * *' (UTC)``."""
        raise NotImplementedError


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
