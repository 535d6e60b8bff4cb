"""Version 4: runs.tags (JSON list) and the task_runs table (a flow run's task runs).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.store.migrations import set_level

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("ALTER TABLE runs ADD COLUMN tags JSON NOT NULL DEFAULT '[]'")
    op.create_table(
        "task_runs",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("task_key", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", UTC_DATETIME),
        sa.Column("ended_at", UTC_DATETIME),
        sa.Column("error", sa.Text),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("flow_attempt", sa.Integer, nullable=False),
    )
    set_level(op.get_bind(), 4)
