"""Version 5: several serve processes on one database (replicas).

The table ``replicas`` (one row per serve process, its heartbeat), runs.cancel_requested (a
cancel the run's owner carries out), runs.dockyard_version and the index on runs.owner (a
lost replica's runs). An expansion: nullable columns and a new table, so the compatibility
level stays 4 and dockyards that know only version 4 keep working beside this one.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # An expansion: no set_level, the compatibility level stays 4.
    op.add_column("runs", sa.Column("cancel_requested", sa.Text))
    op.add_column("runs", sa.Column("dockyard_version", sa.String(50)))
    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("code_revision", sa.String(100)),
        sa.Column("deployments", sa.JSON, nullable=False),
        sa.Column("runs_held", sa.Integer, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen", UTC_DATETIME, nullable=False),
        sa.Column("stopped_at", UTC_DATETIME),
        sa.Column("draining_since", UTC_DATETIME),
    )
