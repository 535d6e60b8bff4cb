"""The schedule contract and its kind → class registry (``SCHEDULE_KINDS``).

A schedule type is one class: subclass ``Schedule``, set ``kind`` (the config key that holds
its value, as in ``cron: "0 * * * *"``) and ``config_keys`` (the other keys it accepts, passed
to its constructor as keywords). Defining the class registers it; ``schedule_from_dict`` in
``dockyard.core.schedules`` builds schedules from config through the registry alone.

Every kind also has the keyword-only fields of ``Schedule`` itself (``COMMON_KEYS``), as
Prefect's schedules do: ``active`` (False: it never fires), ``parameters`` (merged over the
deployment's defaults for the runs it creates) and ``slug`` (its name within a deployment).

This module is separate from ``dockyard.core.schedules`` so that ``dockyard.core.cron`` can
define ``CronSchedule`` without importing the module that imports it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from dockyard.core.names import name_problem
from dockyard.errors import ScheduleError

__all__ = ["COMMON_KEYS", "SCHEDULE_KINDS", "Schedule"]

SCHEDULE_KINDS: dict[str, type[Schedule]] = {}
"""Config key → schedule class, in the order the classes were defined."""
COMMON_KEYS = ("active", "parameters", "slug")
"""Config keys every kind accepts: the keyword-only fields of ``Schedule``."""


@dataclass(frozen=True)
class Schedule:
    """Fire times as pure functions of time: timezone-aware instants in, UTC instants out.

    ``next_after`` and ``latest_at_or_before`` answer for the schedule whether or not it is
    ``active``; the helpers of ``dockyard.core.schedules`` leave inactive schedules out.
    """

    active: bool = field(default=True, kw_only=True)
    """False: the schedule is kept (and shown) but never fires."""
    parameters: Mapping[str, Any] = field(default_factory=dict, kw_only=True, hash=False)
    """Parameters of the runs it creates, over the deployment's defaults (JSON values)."""
    slug: str | None = field(default=None, kw_only=True)
    """Its name, unique within a deployment."""

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

    def __post_init__(self) -> None:
        if not isinstance(self.active, bool):
            raise ScheduleError(f"active: must be true or false, got {self.active!r}")
        object.__setattr__(self, "parameters", _json_parameters(self.parameters))
        if self.slug is not None:
            problem = name_problem(self.slug) if isinstance(self.slug, str) else "not a string"
            if problem:
                raise ScheduleError(f"slug: {self.slug!r} is not allowed: {problem}")

    @property
    def slot_variant(self) -> str | None:
        """What tells its slots from those of schedules with other parameters (None: none).

        A digest of the parameters, so schedules with equal parameters share their slots
        (one run when they fire at the same instant) and one without keeps the plain key.
        """
        if not self.parameters:
            return None
        text = json.dumps(self.parameters, sort_keys=True, separators=(",", ":"))
        return "params=" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def common_dict(self) -> dict[str, object]:
        """The common fields that differ from their defaults, for ``to_dict``."""
        data: dict[str, object] = {}
        if not self.active:
            data["active"] = False
        if self.parameters:
            data["parameters"] = dict(self.parameters)
        if self.slug is not None:
            data["slug"] = self.slug
        return data

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


def _json_parameters(value: object) -> dict[str, Any]:
    """``value`` as a JSON object (tuples become lists), or ``ScheduleError``."""
    if not isinstance(value, Mapping):
        raise ScheduleError(f"parameters: must be a mapping of names to values, got {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise ScheduleError(f"parameters: names must be strings, got {key!r}")
    try:
        text = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ScheduleError(
            f"parameters: must be JSON values (strings, numbers, true/false, null, lists, "
            f"mappings): {exc}"
        ) from None
    data: dict[str, Any] = json.loads(text)
    return data
