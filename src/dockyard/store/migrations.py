"""Versioned schema migrations for the state database.

``STEPS[n - 1]`` takes a database from version ``n - 1`` to version ``n``. Steps are frozen:
never edit a released one, append a new step and update ``schema.py`` instead. Each step
gets a Connection inside the caller's transaction; ``migrate`` records the new version in
``schema_version`` after every step, in that same transaction.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.errors import StateStoreError
from dockyard.store.schema import UTCDateTime

Step = Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    """Version 1: the initial tables (runs without code_revision and log_truncated)."""
    md = sa.MetaData()
    sa.Table(
        "deployments",
        md,
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
        md,
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
    )
    sa.Index("ix_runs_deployment_created_at", runs.c.deployment, runs.c.created_at)
    sa.Index("ix_runs_state", runs.c.state)
    sa.Table(
        "run_states",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("message", sa.Text),
    )
    sa.Table(
        "slots",
        md,
        sa.Column("slot_key", sa.String(300), primary_key=True),
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("scheduled_at", UTCDateTime, nullable=False),
        sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("claimed_at", UTCDateTime, nullable=False),
    )
    sa.Table(
        "run_logs",
        md,
        sa.Column("run_id", sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("stream", sa.String(10), nullable=False),
        sa.Column("line", sa.Text, nullable=False),
    )
    md.create_all(conn)


def _v2_code_revision_and_log_truncated(conn: Connection) -> None:
    """Version 2: runs.code_revision (git commit a run used) and runs.log_truncated."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN code_revision VARCHAR(100)")
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN log_truncated INTEGER NOT NULL DEFAULT 0")


def _v3_run_owner_and_process(conn: Connection) -> None:
    """Version 3: runs.owner (the serve process's lease) and runs.process (its identity)."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN owner VARCHAR(100)")
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN process TEXT")


def _v4_run_tags_and_task_runs(conn: Connection) -> None:
    """Version 4: runs.tags (JSON list) and the task_runs table (a flow run's task runs)."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN tags JSON NOT NULL DEFAULT '[]'")
    md = sa.MetaData()
    sa.Table("runs", md, sa.Column("id", sa.String(64), primary_key=True))  # the FK's target
    task_runs = sa.Table(
        "task_runs",
        md,
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
    task_runs.create(conn)


STEPS: list[Step] = [
    _v1_initial,
    _v2_code_revision_and_log_truncated,
    _v3_run_owner_and_process,
    _v4_run_tags_and_task_runs,
]
CURRENT_VERSION = len(STEPS)

_version_table = sa.Table(
    "schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False)
)


def current_version(conn: Connection) -> int:
    """The schema version of the database behind ``conn``; 0 for an empty database."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(sa.select(sa.func.max(_version_table.c.version))).scalar() or 0


def too_new_message(database: str, version: int) -> str:
    return (
        f"state database {database} has schema version {version} but this dockyard knows "
        f"up to {CURRENT_VERSION}; upgrade dockyard"
    )


def migrate(conn: Connection, target: int = CURRENT_VERSION, *, database: str = "") -> int:
    """Apply the steps after the database's version up to ``target``; return the new version.

    Runs inside the caller's transaction, which should hold the write lock (BEGIN IMMEDIATE
    on SQLite) so that two processes opening the same file do not both migrate it.
    """
    version = current_version(conn)
    if version > CURRENT_VERSION:
        raise StateStoreError(too_new_message(database or "(unnamed)", version))
    if version == 0:
        _version_table.create(conn)
        conn.execute(_version_table.insert().values(version=0))
    for number in range(version + 1, target + 1):
        STEPS[number - 1](conn)
        conn.execute(_version_table.update().values(version=number))
        version = number
    return version
