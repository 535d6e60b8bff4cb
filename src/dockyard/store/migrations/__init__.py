"""The state database's schema history: Alembic revisions, one history for SQLite and PostgreSQL.

``versions/`` holds one module per revision (ids ``"0001"``, ``"0002"``, ...; revision N is
schema version N), ``env.py`` is Alembic's environment, which runs them on the connection
``upgrade`` hands it. ``schema.py`` holds the current tables: a change there needs a new
revision here (tests/store/test_migrations.py checks that both agree on both databases).
Revisions are frozen: never edit a released one, add the next.

**Compatibility level (rolling updates: expand, then contract).** The one-row table
``schema_version`` holds the database's *compatibility level*: the lowest schema version a
dockyard must know to use the database. A dockyard knows the versions up to
``CURRENT_VERSION``, the number of its newest revision. When it opens a database:

- a level above ``CURRENT_VERSION`` is refused (``StateStoreError``: "upgrade dockyard");
- a revision it does not know (a newer dockyard migrated the database) whose level it meets
  is used as it is, without migrating;
- a revision it knows is upgraded to its newest revision, under a lock, so that replicas
  starting together migrate once (``pg_advisory_xact_lock`` inside the migrating
  transaction on PostgreSQL, whose DDL is transactional; ``BEGIN IMMEDIATE`` on SQLite).

An *expansion* (a new table, a nullable or defaulted column, an index) keeps the level, so an
older dockyard keeps working beside a newer one during a rolling update: revision 5 leaves it
at 4, and dockyard releases before it (which refuse a ``schema_version`` above what they know)
run on a database at revision 5. A *contraction* (dropping or renaming a column, a NOT NULL
column without default, a changed meaning) ends with ``set_level(N)``, N the oldest version
whose code works with the result; ship it a release after the expansion it completes.

Files made before Alembic (``schema_version`` 1..4, no ``alembic_version`` table) are stamped
with the revision of their version and upgraded, keeping every row.

Start-up stays fast: ``quick_state`` reads the revision and the level in one query and this
module does not import alembic; ``upgrade`` imports it only when there is something to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.errors import StateStoreError

REVISIONS = ("0001", "0002", "0003", "0004", "0005")
"""Every revision this dockyard knows, oldest first; the last one is its head."""
HEAD = REVISIONS[-1]
CURRENT_VERSION = len(REVISIONS)
"""The newest schema version this dockyard knows: it uses databases up to this level."""
LEGACY_VERSIONS = 4
"""``schema_version`` values of the files made before Alembic (revisions 1..4)."""
LOCK_KEY = 7263540
"""The PostgreSQL advisory lock migrations hold (any dockyard, any version)."""

_level = sa.table("schema_version", sa.column("version", sa.Integer))
_QUICK = sa.text(
    "SELECT version_num, (SELECT max(version) FROM schema_version) FROM alembic_version"
)


@dataclass(frozen=True)
class DatabaseState:
    """Where a database is in the history: its Alembic revision and compatibility level."""

    revision: str | None
    level: int | None


def quick_state(conn: Connection) -> DatabaseState | None:
    """The database's state in one query, or None when its version tables are missing (a new
    database, or a file made before Alembic): then only ``upgrade`` can tell."""
    try:
        row = conn.execute(_QUICK).first()
    except sa.exc.DBAPIError as exc:
        if _is_missing_table(exc):
            return None
        raise
    return DatabaseState(None, None) if row is None else DatabaseState(row[0], row[1])


def _is_missing_table(exc: sa.exc.DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) == "42P01":  # PostgreSQL's undefined_table
        return True
    return "no such table" in str(exc.orig)


def usable(state: DatabaseState, database: str) -> bool:
    """Whether a database in ``state`` is used as it is (see the module docstring); raise
    StateStoreError for a level this dockyard does not know."""
    if state.level is not None and state.level > CURRENT_VERSION:
        raise StateStoreError(too_new_message(database, state.level))
    if state.revision is None:
        return False
    return state.revision == HEAD or state.revision not in REVISIONS


def too_new_message(database: str, level: int) -> str:
    return (
        f"state database {database} has schema version {level} but this dockyard knows "
        f"up to {CURRENT_VERSION}; upgrade dockyard"
    )


def upgrade(conn: Connection, *, database: str) -> None:
    """Bring the database behind ``conn`` to ``HEAD`` unless it is usable as it is.

    Runs inside the caller's transaction, which on SQLite must have begun with
    ``BEGIN IMMEDIATE`` (the store's write engine); on PostgreSQL this takes the advisory
    lock first. Either way a second process waits here and then finds nothing to do.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
    state = read_state(conn)
    if usable(state, database):
        return
    stamp = None
    if state.revision is None and state.level:
        if state.level > LEGACY_VERSIONS:
            raise StateStoreError(
                f"state database {database} has schema version {state.level} but no "
                "alembic_version table; restore it from a backup"
            )
        stamp = REVISIONS[state.level - 1]
    from dockyard.store.migrations import runner  # alembic: only when migrating

    runner.upgrade(conn, stamp=stamp)


def read_state(conn: Connection) -> DatabaseState:
    """Like ``quick_state``, by looking at the tables first (no failing query, which would
    abort a PostgreSQL transaction)."""
    tables = set(sa.inspect(conn).get_table_names())
    revision = level = None
    if "alembic_version" in tables:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    if "schema_version" in tables:
        level = conn.execute(sa.select(sa.func.max(_level.c.version))).scalar()
    return DatabaseState(revision, level)


def set_level(conn: Connection, level: int) -> None:
    """Record the database's compatibility level (called by the revisions that change it)."""
    conn.execute(_level.delete())
    conn.execute(_level.insert().values(version=level))
