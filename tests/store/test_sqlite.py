"""The SQLite backend's own behaviour, on real files: paths, pragmas, concurrent first opens.

The backend-independent contract is in test_contract*.py, migrations in test_migrations.py.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from dockyard.errors import StateStoreError
from dockyard.store import PAUSED_BY_USER, migrations, open_store
from tests.store.support import DEP, JOIN_TIMEOUT_SECONDS, T0


def test_ping_answers_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(path)
    before = {p.name: p.stat().st_size for p in tmp_path.glob("state.db*")}
    assert all(store.ping() is None for _ in range(10))
    assert {p.name: p.stat().st_size for p in tmp_path.glob("state.db*")} == before
    store.close()


# -- SQLite files: paths, pragmas, migrations --------------------------------------------------


def test_open_creates_parent_directories_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    with open_store(path) as store:
        assert path.is_file()
        with store._engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 10000,
        "foreign_keys": 1,
        "synchronous": 1,
    }
    assert (_version(path), _revision(path)) == (4, migrations.HEAD)


def test_open_accepts_sqlite_urls_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_store(f"sqlite:///{path}") as store:
        store.upsert_deployment(DEP, "nightly", {}, now=T0)
    with open_store(str(path)) as store:
        assert [d.name for d in store.list_deployments()] == [DEP]


def test_unwritable_path_gives_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    path = tmp_path / "afile" / "state.db"
    with pytest.raises(StateStoreError) as caught:
        open_store(path)
    message = str(caught.value)
    assert message.startswith(f"cannot open state database {path}: ")
    assert (
        f"{tmp_path / 'afile'} is a file, not a directory; set --state or DOCKYARD_STATE" in message
    )
    assert "\n" not in message


def test_corrupt_file_gives_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a sqlite database, just some text " * 100)
    with pytest.raises(StateStoreError, match=f"cannot open state database {path}: .*not a data"):
        open_store(path)


def test_read_only_database_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_store(path) as store:
        store.upsert_deployment(DEP, "nightly", {}, now=T0)
    # Root ignores file permissions, so ask SQLite for read-only mode explicitly.
    with open_store(f"sqlite:///file:{path}?mode=ro&uri=true") as store:
        assert store.get_deployment(DEP) is not None
        with pytest.raises(StateStoreError, match="is read-only .*writable path"):
            store.set_paused(DEP, True, PAUSED_BY_USER, now=T0)


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_and_close() -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
            open_store(path).close()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_SECONDS)
        assert not thread.is_alive()
    assert errors == []
    assert (_version(path), _revision(path)) == (4, migrations.HEAD)


def _version(path: Path) -> int:
    return int(_scalar(path, "SELECT version FROM schema_version"))


def _revision(path: Path) -> str:
    return str(_scalar(path, "SELECT version_num FROM alembic_version"))


def _scalar(path: Path, query: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchone()[0]
    finally:
        conn.close()
