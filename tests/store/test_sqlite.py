"""The SQLite backend's own behaviour, on real files: paths, pragmas, migrations.

The backend-independent contract is in test_contract.py.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.core.records import TaskRunRecord
from dockyard.core.states import RunState
from dockyard.errors import StateStoreError
from dockyard.store import PAUSED_BY_USER, migrations, open_store
from tests.store.support import DEP, JOIN_TIMEOUT_SECONDS, T0, new_run


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
    assert _version(path) == migrations.CURRENT_VERSION == 4


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


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 9")
    conn.close()
    expected = (
        f"state database {path} has schema version 9 but this dockyard knows up to 4; "
        "upgrade dockyard"
    )
    with pytest.raises(StateStoreError) as caught:
        open_store(path)
    assert str(caught.value) == expected


def test_migrates_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        assert migrations.migrate(conn, target=1) == 1
        conn.exec_driver_sql(
            "INSERT INTO deployments (name, flow_name, spec, paused, created_at, updated_at) "
            "VALUES ('etl/nightly', 'nightly', '{}', 0, "
            "'2024-05-01 12:00:00.000000', '2024-05-01 12:00:00.000000')"
        )
        conn.exec_driver_sql(
            "INSERT INTO runs (id, deployment, flow_name, state, parameters, trigger, "
            "scheduled_at, created_at, attempt, retries, retry_delay_seconds, log_lines, "
            "updated_at) VALUES ('0123456789abcdef', 'etl/nightly', 'nightly', 'Running', "
            "'{\"n\": 3}', 'schedule', '2024-05-01 12:00:00.000000', "
            "'2024-05-01 12:00:00.000000', 1, 0, 0.0, 0, '2024-05-01 12:00:00.000000')"
        )
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(runs)")]
    engine.dispose()
    assert "code_revision" not in columns and "log_truncated" not in columns
    assert _version(path) == 1

    with open_store(path) as store:
        assert _version(path) == 4
        old = store.get_run("0123456789")
        assert (old.state, old.parameters, old.scheduled_at) == (RunState.RUNNING, {"n": 3}, T0)
        assert (old.code_revision, old.log_truncated) == (None, 0)
        assert (old.owner, old.process, old.tags) == (None, None, ())
        done = store.transition(old.id, RunState.COMPLETED, at=T0, code_revision="deadbeef")
        assert done.code_revision == "deadbeef"
        fresh = store.create_run(new_run(), now=T0)
        assert store.update_run(fresh.id, code_revision="cafe").code_revision == "cafe"


def test_upgrading_a_version_3_file_keeps_every_run(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        assert migrations.migrate(conn, target=3) == 3
        conn.exec_driver_sql(
            "INSERT INTO deployments (name, flow_name, spec, paused, created_at, updated_at) "
            "VALUES ('etl/nightly', 'nightly', '{\"tags\": [\"etl\"]}', 0, "
            "'2024-05-01 12:00:00.000000', '2024-05-01 12:00:00.000000')"
        )
        for i, state in enumerate(["Completed", "Failed", "Running", "Scheduled"]):
            conn.exec_driver_sql(
                "INSERT INTO runs (id, deployment, flow_name, state, parameters, trigger, "
                "scheduled_at, created_at, attempt, retries, retry_delay_seconds, log_lines, "
                "updated_at, code_revision, log_truncated, owner, process) VALUES "
                f"('run{i}-0123456789', 'etl/nightly', 'nightly', '{state}', '{{\"i\": {i}}}', "
                "'schedule', '2024-05-01 12:00:00.000000', '2024-05-01 12:00:00.000000', 1, 0, "
                f"0.0, 0, '2024-05-01 12:00:00.000000', 'c{i}', 0, 'owner-{i}', NULL)"
            )
        conn.exec_driver_sql(
            "INSERT INTO run_states (run_id, state, at) "
            "VALUES ('run0-0123456789', 'Completed', '2024-05-01 12:00:00.000000')"
        )
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert "task_runs" not in tables and _version(path) == 3

    with open_store(path) as store:
        assert _version(path) == 4
        runs = store.list_runs(order="asc")
        assert [(r.id, r.state.value, r.parameters) for r in runs] == [
            ("run0-0123456789", "Completed", {"i": 0}),
            ("run1-0123456789", "Failed", {"i": 1}),
            ("run2-0123456789", "Running", {"i": 2}),
            ("run3-0123456789", "Scheduled", {"i": 3}),
        ]
        assert [(r.code_revision, r.owner, r.tags) for r in runs][0] == ("c0", "owner-0", ())
        assert all(r.tags == () for r in runs)
        assert [e.state for e in store.state_history("run0-0123456789")] == [RunState.COMPLETED]
        assert store.task_runs("run0-0123456789") == []
        assert store.set_run_tags("run2-0123456789", ["late"]).tags == ("late",)
        record = TaskRunRecord("t1", "run2-0123456789", "say-0", "say", "Running", started_at=T0)
        store.save_task_runs("run2-0123456789", [record])
        assert store.task_runs("run2-0123456789") == [record]
        assert store.get_deployment(DEP) is not None


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
    assert _version(path) == migrations.CURRENT_VERSION


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
    finally:
        conn.close()
