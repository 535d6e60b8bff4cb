"""``dockyard replica ls``: the serve processes sharing a database, as a real CLI subprocess.

Against a SQLite file (``--state``), a PostgreSQL database (``--database-url`` and
DOCKYARD_DATABASE_URL, on the private test server of ``tests/pg.py``) and a running serve
process (``--url``), whose own heartbeat row is listed too. Rows of "other" replicas are
written with the store's own API. A row is live or lost by the reading process's clock:
the rows here are an hour in the future (live for any clock within that hour), hours
old (lost) or stopped, so no output depends on how fast the test runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.core.records import ReplicaRecord
from dockyard.store import open_store
from dockyard.web.schemas import ReplicaOut
from tests.cli.test_same_output import FLOWS, _ready
from tests.helpers import REPO, dockyard_env, serve_process, wait_for, webserver_url
from tests.pg import PgServer, pg_server  # noqa: F401 - the fixture

CLI_TIMEOUT_SECONDS = 60
NOW = datetime.now(UTC).replace(microsecond=0)
REVISION = "0123456789abcdef0123456789abcdef01234567"


def replica(replica_id: str, **changes: object) -> ReplicaRecord:
    values: dict[str, object] = {
        "id": replica_id,
        "host": "worker-1",
        "pid": 321,
        "version": "2.0.0",
        "code_revision": None,
        "deployments": (),
        "runs_held": 0,
        "started_at": NOW - timedelta(days=2),
        "last_seen": NOW - timedelta(hours=3),
        "stopped_at": None,
    }
    values.update(changes)
    return ReplicaRecord(**values)  # type: ignore[arg-type]


ROWS = [
    replica(
        "a-live",
        last_seen=NOW + timedelta(hours=1),
        code_revision=REVISION,
        deployments=("etl/hourly", "etl/daily", "report/weekly", "report/monthly", "x/y"),
        runs_held=4,
    ),
    replica("b-lost", host="worker-2", version="1.9.0"),
    replica("c-stopped", stopped_at=NOW - timedelta(hours=3)),
]


def dockyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_") and k != "PGPASSWORD"
    }
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        cwd=REPO,
        env={**clean, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def write_rows(location: str | Path) -> None:
    with open_store(location) as store:
        for row in ROWS:
            store.heartbeat(row)


def table_rows(text: str) -> dict[str, list[str]]:
    """The table's lines by replica id, split on runs of two or more spaces."""
    import re

    lines = text.splitlines()
    assert lines[0].split() == [
        "ID", "HOST", "VERSION", "REVISION", "STATE", "LAST", "SEEN", "RUNS", "DEPLOYMENTS"
    ]  # fmt: skip
    return {line.split()[0]: re.split(r"\s{2,}", line.strip()) for line in lines[1:]}


def check_listing(table: str, listed: list[dict[str, object]]) -> None:
    """What ``replica ls`` shows of ROWS, as a table and as JSON."""
    mine = [r for r in listed if r["id"] in {row.id for row in ROWS}]
    assert [r["id"] for r in mine] == ["a-live", "b-lost", "c-stopped"]
    assert [r["state"] for r in mine] == ["live", "lost", "stopped"]
    assert all(set(r) == set(ReplicaOut.model_fields) for r in listed)
    live = mine[0]
    assert (live["runs_held"], live["code_revision"], live["host"]) == (4, REVISION, "worker-1")
    assert len(live["deployments"]) == 5  # type: ignore[arg-type]
    rows = table_rows(table)
    assert rows["a-live"] == [
        "a-live", "worker-1", "2.0.0", REVISION[:12], "live", "0s ago", "4",
        "etl/hourly, etl/daily, report/weekly (+2)",
    ]  # fmt: skip
    assert rows["b-lost"] == ["b-lost", "worker-2", "1.9.0", "-", "lost", "3h ago", "0", "-"]
    assert rows["c-stopped"][4:6] == ["stopped", "3h ago"]


def test_replica_ls_on_a_sqlite_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    write_rows(state)

    table = ok(dockyard("replica", "ls", "--state", str(state)))
    listed = json.loads(ok(dockyard("replica", "ls", "--state", str(state), "--json")))

    check_listing(table, listed)
    assert [r["id"] for r in listed] == ["a-live", "b-lost", "c-stopped"]


def test_replica_ls_on_a_database_without_replicas(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    open_store(state).close()

    assert json.loads(ok(dockyard("replica", "ls", "--state", str(state), "--json"))) == []
    assert ok(dockyard("replica", "ls", "--state", str(state))).split() == [
        "ID", "HOST", "VERSION", "REVISION", "STATE", "LAST", "SEEN", "RUNS", "DEPLOYMENTS"
    ]  # fmt: skip


def test_the_replica_timeout_of_the_reader_decides_lost(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    write_rows(state)
    env = {"DOCKYARD_REPLICA_TIMEOUT": str(86400)}  # the lost row is 3 hours old

    listed = json.loads(ok(dockyard("replica", "ls", "--state", str(state), "--json", env=env)))

    assert [r["state"] for r in listed] == ["live", "live", "stopped"]


def test_replica_ls_on_postgresql(pg_server: PgServer) -> None:  # noqa: F811
    database = pg_server.create_database()
    url = pg_server.url(database)
    try:
        write_rows(url)
        without_password = f"postgresql://dockyard@127.0.0.1:{pg_server.port}/{database}"
        from_env = {"DOCKYARD_DATABASE_URL": url}
        from_flag = {"PGPASSWORD": pg_server.password}

        table = ok(dockyard("replica", "ls", env=from_env))
        listed = json.loads(
            ok(
                dockyard(
                    "replica", "ls", "--database-url", without_password, "--json", env=from_flag
                )
            )
        )
    finally:
        pg_server.drop_database(database)

    check_listing(table, listed)
    assert pg_server.password not in table + json.dumps(listed)


@pytest.mark.slow
def test_replica_ls_over_the_api_and_the_database_agree(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    (tmp_path / "dockyard.yaml").write_text(
        'deployments:\n  - entrypoint: "flows/behaviours.py:noop"\n    name: n\n'
    )
    with serve_process(["--config", "dockyard.yaml"], tmp_path, env=dockyard_env()) as served:
        url = webserver_url(served)
        wait_for(lambda: _ready(url), timeout=30, what="/ready")
        write_rows(served.state_path)
        over_http = json.loads(ok(dockyard("replica", "ls", "--url", url, "--json")))
        local = json.loads(
            ok(dockyard("replica", "ls", "--state", str(served.state_path), "--json"))
        )
        table = ok(dockyard("replica", "ls", "--url", url))

    def mine(listed: list[dict[str, object]]) -> list[dict[str, object]]:
        return [r for r in listed if r["id"] in {row.id for row in ROWS}]

    assert mine(over_http) == mine(local)
    check_listing(table, over_http)
    [own] = [r for r in over_http if r["id"] not in {row.id for row in ROWS}]
    assert (own["state"], own["pid"], own["deployments"]) == (
        "live",
        served.process.pid,
        ["noop/n"],
    )
