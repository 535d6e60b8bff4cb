"""Plain records the state store takes and returns, and the slot key rule (no SQL here)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.core.policies import PauseReason, Trigger
from dockyard.core.states import RunState

PAUSED_BY_USER = PauseReason.USER
PAUSED_BY_SHUTDOWN = PauseReason.SHUTDOWN
PAUSED_BY_CONFIG = PauseReason.CONFIG
PAUSED_REASONS = frozenset(PauseReason)

TRIGGERS = frozenset(Trigger)
LOG_STREAMS = frozenset({"stdout", "stderr", "dockyard"})


def slot_key(deployment: str, scheduled_at: datetime, variant: str | None = None) -> str:
    """The deterministic key of one scheduled slot: ``"<deployment>:<UTC ISO time>Z"``.

    A slot of a schedule with its own parameters adds ``"#<variant>"`` (its
    ``Schedule.slot_variant``), so schedules with different parameters firing at one
    instant are separate slots; slots of schedules without parameters keep the plain key.
    """
    if scheduled_at.tzinfo is None:
        raise ValueError("slot_key needs a timezone-aware scheduled_at")
    key = f"{deployment}:{scheduled_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
    return key if variant is None else f"{key}#{variant}"


@dataclass(frozen=True)
class DeploymentRecord:
    """A deployment as the store knows it: its last spec, pause state and schedule cursor."""

    name: str
    flow_name: str
    spec: dict[str, Any]
    paused: bool
    paused_reason: str | None
    paused_at: datetime | None
    cursor: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> DeploymentRecord:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunRecord:
    """One flow run. ``log_lines`` counts stored log rows (the truncation marker included);
    ``log_truncated`` counts lines dropped after the limit. ``updated_at`` is the time of the
    last state transition."""

    id: str
    deployment: str
    flow_name: str
    name: str | None
    state: RunState
    state_message: str | None
    parameters: dict[str, Any]
    trigger: str
    scheduled_at: datetime
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    attempt: int
    retries: int
    retry_delay_seconds: float
    error: str | None
    result: str | None
    slot_key: str | None
    pid: int | None
    code_revision: str | None
    log_lines: int
    log_truncated: int
    updated_at: datetime
    owner: str | None = None
    """The serve process (its lease) that started the current attempt."""
    process: str | None = None
    """That attempt's process identity (JSON), so a later start can find what it left."""
    tags: tuple[str, ...] = ()
    """The deployment's tags at creation, those given to an ad-hoc run, or as set since."""
    cancel_requested: str | None = None
    """Why someone asked to cancel this run while another replica runs it (its owner
    stops it and records the end)."""
    dockyard_version: str | None = None
    """The dockyard version of the replica that ran the current attempt."""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RunRecord:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["state"] = RunState(values["state"])
        values["tags"] = tuple(values["tags"] or ())
        return cls(**values)


@dataclass(frozen=True)
class StateEvent:
    """One entry of a run's state history."""

    run_id: str
    state: RunState
    at: datetime
    message: str | None


@dataclass(frozen=True)
class LogLine:
    """One stored output line of a run; ``seq`` starts at 1 and increases per run."""

    run_id: str
    seq: int
    at: datetime
    stream: str
    line: str


@dataclass(frozen=True)
class NewRun:
    """What the caller knows about a run before it exists; ``id`` defaults to a uuid4 hex."""

    deployment: str
    flow_name: str
    parameters: dict[str, Any]
    scheduled_at: datetime
    trigger: str
    name: str | None = None
    retries: int = 0
    retry_delay_seconds: float = 0.0
    state: RunState = RunState.SCHEDULED
    message: str | None = None
    slot_variant: str | None = None
    """For ``claim_slot``: the variant part of its slot key (see ``slot_key``)."""
    id: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.id is None:
            object.__setattr__(self, "id", uuid.uuid4().hex)
        if self.trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {self.trigger!r}; use one of {sorted(TRIGGERS)}")
        if self.scheduled_at.tzinfo is None:
            raise ValueError("NewRun.scheduled_at must be timezone-aware (UTC)")

    @property
    def run_id(self) -> str:
        assert self.id is not None  # set in __post_init__
        return self.id


TASK_RUN_STATES = frozenset(
    {"Pending", "Running", "Completed", "Cached", "Failed", "NotReady", "Cancelled", "Crashed"}
)
"""A task run's state name: a Prefect state type's name, or the variant shown for it."""


@dataclass(frozen=True)
class TaskRunRecord:
    """One task run of a flow run, as the flow run's process reports it.

    The child appends one JSON line per change to a file beside its result (``Running`` when
    an attempt starts, the final state when it ends); the last line per ``id`` wins.
    """

    id: str
    run_id: str
    """The flow run's id."""
    name: str
    """The task run's name (``say-hello-0``, or its ``task_run_name``)."""
    task_key: str
    """The task's name (``@task(name=...)`` or the function's)."""
    state: str
    """One of ``TASK_RUN_STATES``."""
    attempts: int = 1
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    cache_hit: bool = False
    flow_attempt: int = 1
    """The attempt of the flow run this task run belongs to."""

    def to_json(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskRunRecord:
        """Parse one reported line; ``ValueError`` for anything malformed."""
        values = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for key in ("started_at", "ended_at"):
            text = values.get(key)
            values[key] = datetime.fromisoformat(text) if text else None
        record = cls(**values)
        if record.state not in TASK_RUN_STATES:
            raise ValueError(f"unknown task run state {record.state!r}")
        return record


REPLICA_STATES = ("live", "lost", "stopped")
"""What ``ReplicaRecord.state`` can say: heartbeating, heartbeat expired, left cleanly."""


@dataclass(frozen=True)
class ReplicaRecord:
    """One serve process sharing the database: who it is and when it last said so."""

    id: str
    host: str
    pid: int
    version: str
    code_revision: str | None
    deployments: tuple[str, ...]
    runs_held: int
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None
    draining_since: datetime | None = None
    """Set once it began to shut down (it still holds its runs until it stops)."""

    def state(self, now: datetime, timeout: float) -> str:
        """``stopped`` once it left, ``lost`` when its heartbeat is older than ``timeout``
        seconds at ``now``, else ``live``."""
        if self.stopped_at is not None:
            return "stopped"
        return "lost" if (now - self.last_seen).total_seconds() > timeout else "live"

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ReplicaRecord:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["deployments"] = tuple(values["deployments"] or ())
        return cls(**values)


@dataclass(frozen=True)
class Takeable:
    """A deployment a replica can start runs of: what ``take_runs`` needs to know."""

    deployment: str
    concurrency_limit: int | None = None
    code_revision: str | None = None
