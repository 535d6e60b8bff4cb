"""Version 1: the initial tables (runs without code_revision and log_truncated).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.store.migrations import set_level

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)  # what schema.UTCDateTime stores


def upgrade() -> None:
    conn = op.get_bind()
    if not sa.inspect(conn).has_table("schema_version"):  # a file at version 0 has it
        op.create_table("schema_version", sa.Column("version", sa.Integer, nullable=False))
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("flow_name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("paused_reason", sa.String(20)),
        sa.Column("paused_at", UTC_DATETIME),
        sa.Column("cursor", UTC_DATETIME),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("deployment", sa.String(200), sa.ForeignKey("deployments.name"), nullable=False),
        sa.Column("flow_name", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("state_message", sa.Text),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("scheduled_at", UTC_DATETIME, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME),
        sa.Column("ended_at", UTC_DATETIME),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("retry_delay_seconds", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("slot_key", sa.String(300)),
        sa.Column("pid", sa.Integer),
        sa.Column("log_lines", sa.Integer, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
    )
    op.create_index("ix_runs_deployment_created_at", "runs", ["deployment", "created_at"])
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_table(
        "run_states",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("message", sa.Text),
    )
    op.create_index("ix_run_states_run_id", "run_states", ["run_id"])
    op.create_table(
        "slots",
        sa.Column("slot_key", sa.String(300), primary_key=True),
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("scheduled_at", UTC_DATETIME, nullable=False),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("claimed_at", UTC_DATETIME, nullable=False),
    )
    op.create_table(
        "run_logs",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("stream", sa.String(10), nullable=False),
        sa.Column("line", sa.Text, nullable=False),
    )
    set_level(conn, 1)
