"""The schema history (dockyard.store.migrations) on real SQLite files and PostgreSQL databases.

The revisions build exactly the tables schema.py declares, on both databases; files made
before Alembic (fixtures/legacy_v1..4.sql, dumps of files the last dockyard before Alembic
made, see fixtures/make_legacy_dumps.py) upgrade keeping every row; replicas opening a new
database together migrate it once; the compatibility level decides what a dockyard uses.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import setuptools
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dockyard.core.records import TaskRunRecord
from dockyard.core.states import RunState
from dockyard.errors import StateStoreError
from dockyard.store import migrations, open_store, schema
from tests.helpers import REPO, wait_for
from tests.pg import PgServer
from tests.store.support import JOIN_TIMEOUT_SECONDS, T0, new_run

FIXTURES = Path(__file__).parent / "fixtures"
LEGACY = (1, 2, 3, 4)
RUN_ID = "02" + "ab" * 15  # the Running run of every legacy dump


@dataclass
class Database:
    """A new empty database of one backend: its URL and raw SQL on it (outside dockyard)."""

    url: str
    execute: Callable[[str], list[tuple[object, ...]]]


def _sqlite_execute(path: Path) -> Callable[[str], list[tuple[object, ...]]]:
    def execute(statement: str) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(path)
        try:
            with conn:
                return conn.execute(statement).fetchall()
        finally:
            conn.close()

    return execute


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        yield Database(f"sqlite:///{path}", _sqlite_execute(path))
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create_database()
    yield Database(server.url(name), lambda statement: server.query(name, statement))
    server.drop_database(name)


def _json_defaults_differ(
    context: object, inspected: object, column: sa.Column[object], found: str | None,
    wanted: object, rendered: str | None,
) -> bool | None:  # fmt: skip
    """PostgreSQL has no ``json = json``: compare a JSON column's default as text
    (``'[]'::json`` or ``'[]'`` against ``[]``); leave every other column to alembic."""
    if not isinstance(column.type, sa.JSON):
        return None
    return _unquoted(found) != _unquoted(rendered)


def _unquoted(default: str | None) -> str:
    return re.sub(r"::\w+$", "", default or "").strip("'")


def _differences(url: str) -> list[object]:
    """What alembic's autogenerate would change to make the database match schema.py."""
    store = open_store(url)
    try:
        with store._engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "compare_server_default": _json_defaults_differ},
            )
            return list(compare_metadata(context, schema.metadata))
    finally:
        store.close()


def test_the_migrations_build_the_tables_of_schema_py(database: Database) -> None:
    assert _differences(database.url) == []
    assert database.execute("SELECT version_num FROM alembic_version") == [(migrations.HEAD,)]
    # Revision 5 is an expansion: dockyards that know version 4 go on using the database.
    assert database.execute("SELECT version FROM schema_version") == [(4,)]


def test_the_comparison_sees_a_missing_column(database: Database) -> None:
    open_store(database.url).close()
    database.execute("ALTER TABLE runs DROP COLUMN dockyard_version")
    [difference] = _differences(database.url)
    assert difference[0] == "add_column"  # type: ignore[index]
    assert difference[3].name == "dockyard_version"  # type: ignore[index]


def test_the_revisions_are_a_package_setuptools_installs() -> None:
    packages = setuptools.find_packages(str(REPO / "src"))
    assert {"dockyard.store.migrations", "dockyard.store.migrations.versions"} <= set(packages)
    versions = Path(migrations.__file__).parent / "versions"
    numbers = sorted(p.name[3:7] for p in versions.glob("rev*.py"))
    assert tuple(numbers) == migrations.REVISIONS
    assert migrations.CURRENT_VERSION == int(migrations.HEAD) == 5


# -- files made before Alembic -----------------------------------------------------------------


def _legacy_file(tmp_path: Path, version: int) -> Path:
    path = tmp_path / f"legacy_v{version}.db"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / f"legacy_v{version}.sql").read_text())
    conn.close()
    return path


def _rows(path: Path) -> dict[str, list[dict[str, object]]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        tables = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] != "alembic_version"
        ]
        return {t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}"')] for t in tables}
    finally:
        conn.close()


def _key(row: dict[str, object]) -> str:
    return repr(sorted(row.items()))


@pytest.mark.parametrize("version", LEGACY)
def test_a_legacy_file_upgrades_keeping_every_row(tmp_path: Path, version: int) -> None:
    path = _legacy_file(tmp_path, version)
    before = _rows(path)
    assert before["schema_version"] == [{"version": version}]
    assert len(before["runs"]) == 6 and len(before["run_logs"]) == 18

    open_store(path).close()

    after = _rows(path)
    assert after["schema_version"] == [{"version": 4}]
    for table, rows in before.items():
        if table == "schema_version":
            continue
        kept = [{column: row[column] for column in rows[0]} for row in after[table]]
        assert sorted(map(_key, kept)) == sorted(map(_key, rows)), table
    run = next(r for r in after["runs"] if r["id"] == RUN_ID)
    added = {"cancel_requested": None, "dockyard_version": None}
    if version < 2:
        added |= {"code_revision": None, "log_truncated": 0}
    if version < 3:
        added |= {"owner": None, "process": None}
    if version < 4:
        added |= {"tags": "[]"}
    assert {column: run[column] for column in added} == added
    assert after["replicas"] == [] and len(after["task_runs"]) == (6 if version == 4 else 0)
    assert _differences(f"sqlite:///{path}") == []


@pytest.mark.parametrize("version", LEGACY)
def test_the_store_reads_and_writes_an_upgraded_legacy_file(tmp_path: Path, version: int) -> None:
    path = _legacy_file(tmp_path, version)
    with open_store(path) as store:
        runs = store.list_runs(order="asc")
        assert [r.state.value for r in runs] == [
            "Completed", "Failed", "Running", "Scheduled", "Pending", "Cancelled",
        ]  # fmt: skip
        running = store.get_run(RUN_ID[:8])
        assert (running.parameters, running.scheduled_at) == (
            {"day": "2024-05-03", "n": 2},
            T0.replace(minute=2),
        )
        assert running.tags == (("etl", "t2") if version == 4 else ())
        assert [line.line for line in store.get_logs(RUN_ID, tail=1)] == ["line 3 of run 2 ünïcode"]
        assert [e.state for e in store.state_history(RUN_ID)] == [
            RunState.SCHEDULED,
            RunState.RUNNING,
        ]
        assert len(store.task_runs(RUN_ID)) == (2 if version == 4 else 0)
        assert store.get_deployment("etl/hourly").paused  # type: ignore[union-attr]

        done = store.transition(RUN_ID, RunState.COMPLETED, at=T0, code_revision="deadbeef")
        assert done.code_revision == "deadbeef"
        store.append_logs(RUN_ID, [(T0, "stdout", "after the upgrade")])
        assert store.get_logs(RUN_ID, tail=1)[0].seq == 4
        record = TaskRunRecord("late", RUN_ID, "say-0", "say", "Completed", started_at=T0)
        store.save_task_runs(RUN_ID, [record])
        assert record in store.task_runs(RUN_ID)
        assert store.create_run(new_run(deployment="etl/nightly"), now=T0).state
        assert store.set_run_tags(RUN_ID, ["late"]).tags == ("late",)


# -- several processes, and what a dockyard uses ----------------------------------------------

_OPEN = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from dockyard.store import open_store
open_store(os.environ["TEST_DATABASE_URL"]).close()
print("alembic" in sys.modules)
"""


def _waiting_for_the_lock(server: PgServer, name: str) -> int:
    rows = server.query(
        "postgres",
        "SELECT count(*) FROM pg_locks JOIN pg_database d ON d.oid = pg_locks.database "
        f"WHERE locktype = 'advisory' AND NOT granted AND d.datname = '{name}'",
    )
    return int(rows[0][0])  # type: ignore[call-overload]


def test_two_processes_opening_a_new_database_migrate_it_once(pg_server: PgServer) -> None:
    name = pg_server.create_database()
    env = {**os.environ, "TEST_DATABASE_URL": pg_server.url(name)}  # not in argv
    with pg_server.admin(name) as holder:
        # Hold the migrations' lock so that both processes are sure to meet at it.
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN],
                env=env,
                cwd=REPO,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            for _ in range(2)
        ]
        wait_for(
            lambda: (
                _waiting_for_the_lock(pg_server, name) == 2
                or any(process.poll() is not None for process in processes)
            ),
            timeout=JOIN_TIMEOUT_SECONDS,
            what="both processes waiting for the migration lock",
        )
        assert [process.poll() for process in processes] == [None, None]  # none got past it
    outputs = [process.communicate(timeout=JOIN_TIMEOUT_SECONDS) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outputs
    logs = "".join(err for _, err in outputs)
    assert logs.count("Running upgrade  -> 0001") == 1, logs
    assert logs.count("Running upgrade 0004 -> 0005") == 1, logs
    assert sorted(out.strip() for out, _ in outputs) == ["False", "True"]  # one ran alembic
    assert pg_server.query(name, "SELECT version_num FROM alembic_version") == [("0005",)]
    pg_server.drop_database(name)


def test_opening_a_database_at_the_newest_revision_does_not_import_alembic(
    database: Database,
) -> None:
    env = {**os.environ, "TEST_DATABASE_URL": database.url}

    def opened() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _OPEN], env=env, cwd=REPO, capture_output=True,
            text=True, timeout=JOIN_TIMEOUT_SECONDS, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    assert opened() == "True"  # the first open migrates
    assert opened() == "False"


def test_opening_a_database_at_the_newest_revision_asks_it_once(database: Database) -> None:
    open_store(database.url).close()
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        open_store(database.url).close()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    asked = [s for s in seen if "alembic_version" in s or "schema_version" in s]
    assert len(asked) == 1, seen


@pytest.mark.parametrize("level", [6, 9])
def test_a_database_whose_level_is_too_high_is_refused(database: Database, level: int) -> None:
    with open_store(database.url) as store:
        name = store.database
    database.execute(f"UPDATE schema_version SET version = {level}")

    with pytest.raises(StateStoreError) as caught:
        open_store(database.url)

    assert str(caught.value) == (
        f"state database {name} has schema version {level} but this dockyard knows up to 5; "
        "upgrade dockyard"
    )


@pytest.mark.parametrize("level", [4, 5])
def test_a_newer_revision_whose_level_we_know_is_used_as_it_is(
    database: Database, level: int
) -> None:
    open_store(database.url).close()
    database.execute("UPDATE alembic_version SET version_num = '0042'")  # a newer dockyard's
    database.execute(f"UPDATE schema_version SET version = {level}")

    with open_store(database.url) as store:
        store.upsert_deployment("etl/nightly", "nightly", {}, now=T0)
        assert store.create_run(new_run(), now=T0).state is RunState.SCHEDULED

    assert database.execute("SELECT version_num FROM alembic_version") == [("0042",)]
    assert database.execute("SELECT version FROM schema_version") == [(level,)]


def test_an_older_revision_is_upgraded(database: Database) -> None:
    open_store(database.url).close()
    database.execute("DROP INDEX ix_runs_owner")
    database.execute("DROP TABLE replicas")
    database.execute("ALTER TABLE runs DROP COLUMN cancel_requested")
    database.execute("ALTER TABLE runs DROP COLUMN dockyard_version")
    database.execute("UPDATE alembic_version SET version_num = '0004'")

    assert _differences(database.url) == []
    assert database.execute("SELECT version_num FROM alembic_version") == [("0005",)]


def test_the_previous_release_can_still_use_a_database_at_the_newest_revision(
    database: Database,
) -> None:
    # A rolling update runs the release before this one beside it: that release refuses a
    # schema_version above 4, and writes runs naming only the columns it knew.
    open_store(database.url).close()
    assert database.execute("SELECT max(version) FROM schema_version") == [(4,)]
    database.execute(
        "INSERT INTO deployments (name, flow_name, spec, paused, created_at, updated_at) "
        "VALUES ('f/d', 'f', '{}', false, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    database.execute(
        "INSERT INTO runs (id, deployment, flow_name, state, parameters, trigger, "
        "scheduled_at, created_at, attempt, retries, retry_delay_seconds, log_lines, "
        "updated_at, log_truncated, owner, process, tags) VALUES ('old-release-run', 'f/d', "
        "'f', 'Pending', '{}', 'manual', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1, 0, "
        "0, 0, '2026-01-01 00:00:00', 0, NULL, NULL, '[]')"
    )
    with open_store(database.url) as store:
        run = store.get_run("old-release-run")
        assert (run.state, run.cancel_requested, run.dockyard_version) == (
            RunState.PENDING, None, None,
        )  # fmt: skip
