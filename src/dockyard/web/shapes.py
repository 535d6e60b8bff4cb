"""Store records → HTTP API models: the one conversion the server and the CLI share.

Pure functions: records from ``dockyard.core.records`` and plain values in, models of
``dockyard.web.schemas`` out. No store, clock or service here; callers pass what only they
know (the upcoming fire times, the last run, the served deployment's spec).

A deployment's fields come from a *spec*: the dict ``Deployment.spec()`` returns. The
serve process passes its served deployment's ``spec()``; without one, the spec the store
kept (``record.spec``) is used. A key missing from an old or hand-written spec gets the
default of ``Deployment`` (no tags, no limit, overlap ``allow``, catch-up ``latest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.core.records import (
    DeploymentRecord,
    LogLine,
    ReplicaRecord,
    RunRecord,
    StateEvent,
    TaskRunRecord,
)
from dockyard.core.results import decode_result
from dockyard.web.schemas import (
    DeploymentDetail,
    DeploymentSummary,
    LogLineOut,
    ReplicaOut,
    RunDetail,
    RunSummary,
    StateEventOut,
    TaskRunOut,
)

__all__ = [
    "deployment_detail",
    "deployment_summary",
    "log_line",
    "replica",
    "run_detail",
    "run_summary",
    "schedule_view",
    "short_name",
    "state_event",
    "task_run",
]


def run_summary(run: RunRecord) -> RunSummary:
    """A run as ``GET /api/runs`` lists it."""
    return RunSummary(
        id=run.id,
        deployment=run.deployment,
        name=run.name,
        state=run.state.value,
        state_message=run.state_message,
        trigger=run.trigger,
        attempt=run.attempt,
        scheduled_at=run.scheduled_at,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration_seconds=run.duration_seconds,
        tags=list(run.tags),
    )


def state_event(event: StateEvent) -> StateEventOut:
    """One entry of a run's state history."""
    return StateEventOut(state=event.state.value, at=event.at, message=event.message)


def task_run(record: TaskRunRecord) -> TaskRunOut:
    """One task run of a flow run."""
    duration = None
    if record.started_at is not None and record.ended_at is not None:
        duration = (record.ended_at - record.started_at).total_seconds()
    return TaskRunOut(
        id=record.id,
        name=record.name,
        task_key=record.task_key,
        state=record.state,
        attempts=record.attempts,
        started_at=record.started_at,
        ended_at=record.ended_at,
        duration_seconds=duration,
        error=record.error,
        cache_hit=record.cache_hit,
        flow_attempt=record.flow_attempt,
    )


def run_detail(
    run: RunRecord, history: Sequence[StateEvent], task_runs: Sequence[TaskRunRecord] = ()
) -> RunDetail:
    """A run as ``GET /api/runs/{id}`` shows it; ``history`` oldest first, ``task_runs`` in
    the order they started."""
    result, result_repr = decode_result(run.result)
    return RunDetail(
        **run_summary(run).model_dump(),
        parameters=run.parameters,
        retries=run.retries,
        error=run.error,
        result=result,
        result_repr=result_repr,
        code_revision=run.code_revision,
        replica=run.owner,
        dockyard_version=run.dockyard_version,
        log_lines=run.log_lines,
        log_truncated=run.log_truncated > 0,
        log_lines_dropped=run.log_truncated,
        history=[state_event(e) for e in history],
        task_runs=[task_run(t) for t in task_runs],
    )


def log_line(line: LogLine) -> LogLineOut:
    """One stored output line of a run."""
    return LogLineOut(seq=line.seq, at=line.at, stream=line.stream, line=line.line)


def replica(record: ReplicaRecord, now: datetime, timeout: float) -> ReplicaOut:
    """A replica as ``GET /api/replicas`` lists it: its ``state`` at ``now``, lost when its
    last heartbeat is more than ``timeout`` seconds old."""
    return ReplicaOut(
        id=record.id,
        host=record.host,
        pid=record.pid,
        version=record.version,
        code_revision=record.code_revision,
        deployments=list(record.deployments),
        runs_held=record.runs_held,
        started_at=record.started_at,
        last_seen=record.last_seen,
        stopped_at=record.stopped_at,
        draining_since=record.draining_since,
        state=record.state(now, timeout),
    )


def deployment_summary(
    record: DeploymentRecord,
    upcoming: Sequence[datetime],
    spec: Mapping[str, Any] | None = None,
    *,
    error: str | None = None,
    served: bool = True,
) -> DeploymentSummary:
    """A deployment as ``GET /api/deployments`` lists it.

    ``upcoming``: its next fire times, earliest first (only the first is used); a paused
    deployment has no ``next_run``. ``spec``: the served deployment's ``spec()``, by
    default the one the store kept. ``error``: why its schedules fail (serve process only).
    ``served``: whether a serve process serves it (one that is not has no ``next_run``).
    """
    fields = _summary_fields(record, upcoming, _spec(record, spec), error, served)
    return DeploymentSummary(**fields)


def deployment_detail(
    record: DeploymentRecord,
    upcoming: Sequence[datetime],
    last_run: RunRecord | None,
    spec: Mapping[str, Any] | None = None,
    *,
    error: str | None = None,
    served: bool = True,
) -> DeploymentDetail:
    """A deployment as ``GET /api/deployments/{flow}/{deployment}`` shows it.

    ``upcoming``: its next fire times, earliest first (the API shows 5), listed in
    ``next_runs`` even while paused. ``last_run``: its newest run, if any. ``spec`` as for
    :func:`deployment_summary`.
    """
    values = _spec(record, spec)
    return DeploymentDetail(
        **_summary_fields(record, upcoming, values, error, served),
        entrypoint=values.get("entrypoint") or "",
        parameters=dict(values.get("parameters") or {}),
        parameter_schema=dict(values.get("parameter_schema") or {}),
        next_runs=list(upcoming),
        concurrency_limit=values.get("concurrency_limit"),
        overlap=values.get("overlap") or OverlapPolicy.ALLOW.value,
        catchup=values.get("catchup") or CatchupPolicy.LATEST.value,
        last_run=run_summary(last_run) if last_run is not None else None,
    )


def schedule_view(schedule: Mapping[str, Any]) -> dict[str, Any]:
    """A stored schedule dict with its ``slug``, ``active`` and ``parameters`` always shown."""
    return {
        **schedule,
        "slug": schedule.get("slug"),
        "active": schedule.get("active", True),
        "parameters": dict(schedule.get("parameters") or {}),
    }


def short_name(record: DeploymentRecord) -> str:
    """``hourly`` of ``etl/hourly``: the deployment's name within its flow."""
    return record.name.partition("/")[2] or record.name


def _spec(record: DeploymentRecord, spec: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return record.spec if spec is None else spec


def _summary_fields(
    record: DeploymentRecord,
    upcoming: Sequence[datetime],
    spec: Mapping[str, Any],
    error: str | None,
    served: bool = True,
) -> dict[str, Any]:
    return {
        "name": record.name,
        "flow_name": record.flow_name,
        "deployment": short_name(record),
        "schedules": [schedule_view(s) for s in spec.get("schedules") or []],
        "paused": record.paused,
        "paused_reason": record.paused_reason,
        "tags": list(spec.get("tags") or []),
        "description": spec.get("description"),
        "version": spec.get("version"),
        "next_run": None if record.paused or not served or not upcoming else upcoming[0],
        "error": error,
        "served": served,
    }
