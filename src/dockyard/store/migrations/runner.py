"""Alembic, run on a connection the store has opened (imported only to migrate)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

SCRIPTS = Path(__file__).resolve().parent


def config(conn: Connection) -> Config:
    """An Alembic configuration whose env.py runs on ``conn``, inside its transaction."""
    settings = Config()
    settings.set_main_option("script_location", str(SCRIPTS).replace("%", "%%"))
    settings.attributes["connection"] = conn
    return settings


def upgrade(conn: Connection, *, stamp: str | None = None) -> None:
    """Upgrade to the newest revision, after recording ``stamp`` as the current one (for
    a file made before Alembic)."""
    settings = config(conn)
    if stamp is not None:
        command.stamp(settings, stamp)
    command.upgrade(settings, "head")
