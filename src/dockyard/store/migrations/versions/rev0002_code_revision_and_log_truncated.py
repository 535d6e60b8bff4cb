"""Version 2: runs.code_revision (git commit a run used) and runs.log_truncated.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from dockyard.store.migrations import set_level

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE runs ADD COLUMN code_revision VARCHAR(100)")
    op.execute("ALTER TABLE runs ADD COLUMN log_truncated INTEGER NOT NULL DEFAULT 0")
    set_level(op.get_bind(), 2)
