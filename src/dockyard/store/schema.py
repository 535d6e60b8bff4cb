"""The current (latest-version) tables of the state database, as SQLAlchemy Core objects.

The store queries these objects. The DDL that creates them lives in ``migrations/versions/``,
whose revisions are frozen: when a column is added here, add a revision too (the rules for
rolling updates are in ``migrations/__init__.py``; test_migrations checks the two agree).

Datetimes use :class:`UTCDateTime`: aware UTC in, aware UTC out. On SQLite the value is
stored as SQLAlchemy's fixed-width ``YYYY-MM-DD HH:MM:SS.ffffff`` text in UTC, so string
order is time order and SQL comparisons work; on PostgreSQL it is ``timestamptz``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from dockyard.core.records import DeploymentRecord, NewRun, RunRecord
from dockyard.core.states import RunState
from dockyard.errors import NotFoundError


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime; naive values are refused on the way in."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}; pass a timezone-aware UTC one")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no offset: everything was converted to UTC before it was written.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("flow_name", sa.String(200), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("paused_reason", sa.String(20)),
    sa.Column("paused_at", UTCDateTime),
    sa.Column("cursor", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("deployment", sa.ForeignKey("deployments.name"), nullable=False),
    sa.Column("flow_name", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("state_message", sa.Text),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("scheduled_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("retries", sa.Integer, nullable=False),
    sa.Column("retry_delay_seconds", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("result", sa.Text),
    sa.Column("slot_key", sa.String(300)),
    sa.Column("pid", sa.Integer),
    sa.Column("log_lines", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Added by migration 2.
    sa.Column("code_revision", sa.String(100)),
    sa.Column("log_truncated", sa.Integer, nullable=False, server_default="0"),
    # Added by migration 3.
    sa.Column("owner", sa.String(100)),
    sa.Column("process", sa.Text),
    # Added by migration 4.
    sa.Column("tags", sa.JSON, nullable=False, server_default="[]"),
    # Added by migration 5 (replicas).
    sa.Column("cancel_requested", sa.Text),
    sa.Column("dockyard_version", sa.String(50)),
)

run_states = sa.Table(
    "run_states",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("message", sa.Text),
)

slots = sa.Table(
    "slots",
    metadata,
    sa.Column("slot_key", sa.String(300), primary_key=True),
    sa.Column("deployment", sa.String(200), nullable=False),
    sa.Column("scheduled_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),
)

run_logs = sa.Table(
    "run_logs",
    metadata,
    sa.Column("run_id", sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("stream", sa.String(10), nullable=False),
    sa.Column("line", sa.Text, nullable=False),
)

# Added by migration 4: the task runs a flow run's process reported, one row per task run.
task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("task_key", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("error", sa.Text),
    sa.Column("cache_hit", sa.Boolean, nullable=False),
    sa.Column("flow_attempt", sa.Integer, nullable=False),
)

# Added by migration 5: the serve processes sharing the database, one row each.
replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("code_revision", sa.String(100)),
    sa.Column("deployments", sa.JSON, nullable=False),
    sa.Column("runs_held", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("stopped_at", UTCDateTime),
    sa.Column("draining_since", UTCDateTime),
)

sa.Index("ix_runs_deployment_created_at", runs.c.deployment, runs.c.created_at)
sa.Index("ix_runs_state", runs.c.state)
sa.Index("ix_runs_owner", runs.c.owner)  # migration 5: a lost replica's runs


# -- small queries the store runs inside its transactions ------------------------------------


def find_deployment(conn: Connection, name: str) -> DeploymentRecord | None:
    query = sa.select(deployments).where(deployments.c.name == name)
    row = conn.execute(query).mappings().first()
    return DeploymentRecord.from_row(row) if row is not None else None


def require_deployment(conn: Connection, name: str) -> DeploymentRecord:
    record = find_deployment(conn, name)
    if record is None:
        names = conn.execute(sa.select(deployments.c.name).order_by(deployments.c.name)).scalars()
        known = ", ".join(names) or "(none)"
        raise NotFoundError(f"unknown deployment {name!r}; known: {known}")
    return record


def run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"unknown run {run_id!r}; check the id with `dockyard run ls`")


def require_run(conn: Connection, run_id: str) -> RunRecord:
    row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise run_not_found(run_id)
    return RunRecord.from_row(row)


def insert_event(
    conn: Connection, run_id: str, state: RunState, at: datetime, message: str | None
) -> None:
    conn.execute(
        run_states.insert().values(run_id=run_id, state=state.value, at=at, message=message)
    )


def insert_run(conn: Connection, new: NewRun, now: datetime, key: str | None) -> None:
    conn.execute(
        runs.insert().values(
            id=new.run_id, deployment=new.deployment, flow_name=new.flow_name, name=new.name,
            state=RunState(new.state).value, state_message=new.message,
            parameters=new.parameters, trigger=new.trigger, scheduled_at=new.scheduled_at,
            created_at=now, started_at=None, ended_at=None, attempt=1, retries=new.retries,
            retry_delay_seconds=new.retry_delay_seconds, error=None, result=None,
            slot_key=key, pid=None, code_revision=None, log_lines=0, log_truncated=0, owner=None,
            process=None, tags=unique_tags(new.tags),
            updated_at=now,
        )
    )  # fmt: skip
    insert_event(conn, new.run_id, RunState(new.state), now, new.message)


def unique_tags(tags: Iterable[str]) -> list[str]:
    """A run's tags as stored: strings, each once, in the order first given."""
    tags = list(tags)
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError(f"a run's tags are strings, not {type(tag).__name__} ({tag!r})")
    return list(dict.fromkeys(tags))


def run_filters(
    deployment: str | None,
    states: Iterable[RunState] | None,
    since: datetime | None,
    until: datetime | None,
) -> list[sa.ColumnElement[bool]]:
    filters: list[sa.ColumnElement[bool]] = []
    if deployment is not None:
        filters.append(runs.c.deployment == deployment)
    if states is not None:
        filters.append(runs.c.state.in_([RunState(s).value for s in states]))
    if since is not None:
        filters.append(runs.c.created_at >= since)
    if until is not None:
        filters.append(runs.c.created_at < until)
    return filters
