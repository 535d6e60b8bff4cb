"""Version 3: runs.owner (the serve process's lease) and runs.process (its identity).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from dockyard.store.migrations import set_level

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE runs ADD COLUMN owner VARCHAR(100)")
    op.execute("ALTER TABLE runs ADD COLUMN process TEXT")
    set_level(op.get_bind(), 3)
