"""Request and response models of the HTTP API (no domain logic here)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
)

from dockyard.core.states import RunState

MAX_TAGS = 50
MAX_TAG_LENGTH = 100


def _printable(tag: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in tag):
        raise ValueError("a tag must not contain control characters")
    return tag


Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TAG_LENGTH),
    AfterValidator(_printable),
]
"""A run's tag: 1-100 characters, none of them a control character."""
Tags = Annotated[
    list[Tag],
    Field(
        max_length=MAX_TAGS,
        description="At most 50 tags of 1-100 characters, no control characters.",
    ),
]


def _state_name(value: Any) -> Any:
    """A run state's name in any case (``failed``) as its ``RunState`` value (``Failed``)."""
    if isinstance(value, str):
        for state in RunState:
            if state.value.lower() == value.strip().lower():
                return state.value
    return value


StateFilter = Annotated[RunState, BeforeValidator(_state_name)]
"""A run state in a query: one of the ``RunState`` values, in any case."""


class FieldError(BaseModel):
    """One thing wrong with the request, and where."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(
        description="Where: 'body', 'query', 'path' or 'header', then the field's path."
    )
    msg: str
    type: str


class Problem(BaseModel):
    """An error: a message a person can act on, with field-level errors when relevant."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class Health(BaseModel):
    status: str
    reason: str | None = None
    last_tick: datetime | None = None
    seconds_since_tick: float | None = None
    draining: bool = False


class Ready(BaseModel):
    status: str
    reason: str | None = None
    deployments: int = 0
    failing: dict[str, str] = Field(
        default_factory=dict,
        description="Deployments whose schedules fail (name → error); the others are scheduled.",
    )


class RunSummary(BaseModel):
    id: str
    deployment: str
    name: str | None
    state: RunState
    state_message: str | None
    trigger: str
    attempt: int
    scheduled_at: datetime
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    tags: list[str]


class StateEventOut(BaseModel):
    state: RunState
    at: datetime
    message: str | None


class TaskRunOut(BaseModel):
    """One task run of a flow run, as its process last reported it."""

    id: str
    name: str
    task_key: str
    state: str
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    error: str | None
    cache_hit: bool
    flow_attempt: int = Field(description="The attempt of the flow run it belongs to.")


class RunDetail(RunSummary):
    parameters: dict[str, Any]
    retries: int
    error: str | None
    result: JsonValue = Field(
        default=None,
        description="A Completed run's return value as JSON (tuples as arrays, keys as "
        "strings), or null: it returned None, has not completed, or its value is not "
        "JSON-able or larger than 64 KiB as JSON (then ``result_repr`` holds its repr).",
    )
    result_repr: str | None = Field(
        default=None,
        description="Python's repr of a return value ``result`` cannot hold (cut after 2000 "
        "characters), else null.",
    )
    code_revision: str | None
    replica: str | None = Field(
        default=None, description="The replica (serve process) that ran its current attempt."
    )
    dockyard_version: str | None = Field(
        default=None, description="The dockyard version of that replica."
    )
    log_lines: int = Field(description="Output lines stored.")
    log_truncated: bool = Field(
        description="Whether output was dropped past the limit (DOCKYARD_MAX_LOG_LINES)."
    )
    log_lines_dropped: int = Field(description="How many output lines were dropped.")
    history: list[StateEventOut]
    task_runs: list[TaskRunOut] = Field(description="Its task runs, in the order they started.")


class RunList(BaseModel):
    runs: list[RunSummary]
    total: int
    limit: int
    offset: int


class DeploymentSummary(BaseModel):
    name: str
    flow_name: str
    deployment: str
    schedules: list[dict[str, Any]] = Field(
        description="Each schedule's config form (cron, interval or rrule with its options) and "
        "its slug (or null), active (false: it never fires) and parameters (over the "
        "deployment's, for the runs it creates)."
    )
    paused: bool
    paused_reason: str | None
    tags: list[str]
    description: str | None
    version: str | None
    next_run: datetime | None
    error: str | None = Field(
        default=None, description="Why its schedules fail (it is not being scheduled), or null."
    )
    served: bool = Field(
        default=True,
        description="Whether a live serve process serves it (while none runs: whether the last "
        "one did). One no longer served has no next run; ``?all=true`` lists those too.",
    )


class DeploymentDetail(DeploymentSummary):
    entrypoint: str
    parameters: dict[str, Any]
    parameter_schema: dict[str, Any]
    next_runs: list[datetime]
    concurrency_limit: int | None
    overlap: str
    catchup: str
    last_run: RunSummary | None


class DeploymentRemoved(BaseModel):
    """What ``DELETE /api/deployments/{flow}/{deployment}`` removed."""

    name: str
    runs: int = Field(description="How many of its runs went with it (with their logs).")


class CreateRun(BaseModel):
    """Body of ``POST /api/deployments/{flow}/{deployment}/runs``."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Merged over the deployment's default parameters."
    )
    tags: Tags | None = Field(default=None, description="Added to the deployment's tags.")


class UpdateRun(BaseModel):
    """Body of ``PATCH /api/runs/{id}``: the fields to change (a field left out stays)."""

    model_config = ConfigDict(extra="forbid")

    tags: Tags | None = Field(default=None, description="The run's tags, replacing its own.")


class LogLineOut(BaseModel):
    seq: int
    at: datetime
    stream: str
    line: str


class Logs(BaseModel):
    run_id: str
    lines: list[LogLineOut]


class Accepted(BaseModel):
    detail: str


class SourceOut(BaseModel):
    """A git source: what it serves, when it last pulled, what went wrong."""

    name: str
    url: str
    ref: str | None
    revision: str | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    refused_revision: str | None
    consecutive_failures: int
    next_attempt_at: datetime | None


class ReplicaOut(BaseModel):
    """A serve process sharing the state database, as its last heartbeat described it."""

    id: str
    host: str
    pid: int
    version: str = Field(description="Its dockyard version.")
    code_revision: str | None = Field(description="The git revision it serves, if any.")
    deployments: list[str] = Field(description="The deployments it serves.")
    runs_held: int = Field(description="Runs it was running at its last heartbeat.")
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None
    draining_since: datetime | None = Field(
        default=None, description="When it began to shut down (it still holds its runs)."
    )
    state: str = Field(
        description="live (heartbeating), lost (no heartbeat within DOCKYARD_REPLICA_TIMEOUT "
        "seconds of the answering process's clock) or stopped (shut down cleanly)."
    )
