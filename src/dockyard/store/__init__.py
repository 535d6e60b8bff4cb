"""dockyard's state: deployments, runs, slots, logs and task runs in one SQL database.

``open_store(path_or_url)`` returns a :class:`SqlStateStore` (``sql.py``); everything it
returns is a plain frozen record from ``records.py``. SQL lives only in this package:
``schema.py`` holds the tables, ``migrations/`` their history (Alembic revisions, with the
rules for rolling updates). This module turns a path or URL (SQLite or PostgreSQL) into a
configured engine.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dockyard.core.records import (
    PAUSED_BY_CONFIG,
    PAUSED_BY_SHUTDOWN,
    PAUSED_BY_USER,
    DeploymentRecord,
    LogLine,
    NewRun,
    RunRecord,
    StateEvent,
    TaskRunRecord,
    slot_key,
)
from dockyard.errors import StateStoreError, UsageError
from dockyard.store.migrations import CURRENT_VERSION
from dockyard.store.sql import HINT, SqlStateStore, first_line

__all__ = [
    "CURRENT_VERSION",
    "PAUSED_BY_CONFIG",
    "PAUSED_BY_SHUTDOWN",
    "PAUSED_BY_USER",
    "DeploymentRecord",
    "LogLine",
    "NewRun",
    "RunRecord",
    "SqlStateStore",
    "StateEvent",
    "TaskRunRecord",
    "open_store",
    "slot_key",
]


def open_store(
    path_or_url: str | Path, *, max_log_lines: int = 10_000, replica_timeout: float = 30.0
) -> SqlStateStore:
    """Open (creating it if needed) the state database and apply pending migrations.

    ``path_or_url`` is a file path for SQLite (parent directories are created), a URL
    such as ``sqlite:///state.db``, or a PostgreSQL URL (``postgresql://user:password@host:
    5432/db``; ``postgres://`` and ``postgresql+psycopg://`` too), opened with psycopg 3;
    ``store.database`` names it in messages (a URL without its password). An existing
    file this process may not write is opened read-only: reads work, writes raise
    :class:`StateStoreError`.
    ``max_log_lines`` bounds the log lines stored per run; ``replica_timeout`` is how many
    seconds after its last heartbeat a replica counts as lost.
    """
    url, database, file = _resolve(path_or_url)
    engine = _create_engine(url)
    store = SqlStateStore(
        engine, database=database, max_log_lines=max_log_lines, file=file,
        replica_timeout=replica_timeout,
    )  # fmt: skip
    try:
        _upgrade_when_unlocked(store)
    except sa.exc.DBAPIError as exc:
        store.close()
        if file is None and url.get_backend_name() != "sqlite":
            error = store._translate(exc)
            raise type(error)(f"cannot open {error}") from exc
        reason = _open_reason(exc)
        raise StateStoreError(f"cannot open state database {database}: {reason}") from exc
    except BaseException:
        store.close()
        raise
    return store


OPEN_ATTEMPTS = 6


def _upgrade_when_unlocked(store: SqlStateStore) -> None:
    """Migrate, retrying briefly while another process opens the same new file: SQLite
    answers "locked" at once, without waiting, when two connections switch a new file to
    WAL together."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            store._upgrade()
            return
        except sa.exc.OperationalError as exc:
            if "locked" not in first_line(exc) or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def _resolve(path_or_url: str | Path) -> tuple[sa.URL, str, Path | None]:
    """The URL to open, how to name it in messages, and its file (SQLite on a file)."""
    if isinstance(path_or_url, str) and "://" in path_or_url:
        url = _parse_url(path_or_url)
        if url.get_backend_name() in POSTGRES_SCHEMES:
            return _postgres_url(url), url.render_as_string(hide_password=True), None
        name = url.database or ""
        if url.get_backend_name() != "sqlite" or not name or name.startswith("file:"):
            return url, url.render_as_string(hide_password=True), None
        if name == ":memory:":
            return url, name, None
        path = Path(name)
    else:
        path = Path(path_or_url)
    path = path.expanduser().absolute()
    try:
        # Private by default: the database holds the runs' parameters, results and logs.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_private(path)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            reason = f"{blocker} is a file, not a directory"
        raise StateStoreError(f"cannot open state database {path}: {reason}; {HINT}") from exc
    if path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        # Let `dockyard run ls` read a state file it may not write (e.g. another user's).
        uri = f"file:{quote(str(path))}?mode=ro"
        return sa.URL.create("sqlite", database=uri, query={"uri": "true"}), str(path), path
    return sa.URL.create("sqlite", database=str(path)), str(path), path


POSTGRES_SCHEMES = ("postgresql", "postgres")
URL_FORMS = "a SQLite file path, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
CONNECT_DEFAULTS = {"connect_timeout": "5", "application_name": "dockyard"}
"""libpq options set unless the URL gives them: fail fast while the server is down."""


def _parse_url(text: str) -> sa.URL:
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise UsageError(f"invalid database URL {_redact(text)!r}; give {URL_FORMS}") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" or (backend in POSTGRES_SCHEMES and driver in ("", "psycopg")):
        return url
    shown = url.render_as_string(hide_password=True)
    raise UsageError(f"unsupported database URL {shown!r}; give {URL_FORMS}")


def _redact(text: str) -> str:
    """``scheme://user:secret@host`` → ``scheme://user:***@host`` for a URL that did not parse."""
    return re.sub(r"^([^:/]+://[^:/@]*):.*@", r"\1:***@", text)


def _postgres_url(url: sa.URL) -> sa.URL:
    """The URL SQLAlchemy opens: psycopg 3, with the connection defaults."""
    query = {**CONNECT_DEFAULTS, **url.query}
    return url.set(drivername="postgresql+psycopg", query=query)


def _create_private(path: Path) -> None:
    """Create an empty database file only its owner may read (SQLite copies the mode to
    its -wal and -shm files)."""
    if path.exists():
        return
    with contextlib.suppress(FileExistsError):  # another process was quicker
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _create_engine(url: sa.URL) -> Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Take transaction control away from the sqlite3 module: we emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # first, so the WAL switch waits for locks
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise  # a read-only file keeps its journal mode
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("dockyard_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _open_reason(exc: sa.exc.DBAPIError) -> str:
    text = first_line(exc)
    if "not a database" in text or "malformed" in text:
        return f"{text} (corrupt or not SQLite); move it away or {HINT.replace('writable', 'new')}"
    return f"{text}; {HINT}"
