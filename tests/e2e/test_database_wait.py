"""A serve process started before its PostgreSQL waits for it, then serves (as under
`docker compose up`); a database that refuses the login stops it at once."""

from __future__ import annotations

import httpx
import pytest

from dockyard.store import open_store
from tests.helpers import dockyard_env, serve_process, wait_for, webserver_url
from tests.pg import PgServer, pg_private_server, pg_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_serve_waits_for_a_database_server_that_is_not_up_yet(
    project,
    pg_private_server: PgServer,  # noqa: F811
):
    database = pg_private_server.create_database()
    url = pg_private_server.url(database)
    pg_private_server.stop()
    env = dockyard_env(DOCKYARD_DATABASE_URL=url)
    with serve_process(["flows/behaviours.py:noop", "--interval", "1"], project, env=env) as s:
        base = webserver_url(s)

        def waiting() -> str | None:
            answer = httpx.get(f"{base}/ready", timeout=5)
            assert answer.status_code == 503, answer.text
            reason = answer.json()["reason"]
            return reason if reason.startswith("waiting for the state database: ") else None

        assert "check DOCKYARD_DATABASE_URL" in wait_for(waiting, what="/ready to say why")
        wait_for(lambda: "waiting for it (DOCKYARD_DATABASE_WAIT)" in s.output(), what="a log")
        assert s.process.poll() is None  # still there, not restarted

        pg_private_server.start()
        wait_for(lambda: httpx.get(f"{base}/ready", timeout=5).status_code == 200, 60)
        with open_store(url) as store:
            wait_for(lambda: store.list_runs(deployment="noop/noop"), 60, what="a first run")
        s.signal()
        assert s.wait_exit() == 0
    out = s.output()
    assert "the state database answers: starting" in out
    assert pg_private_server.password not in out


@pytest.mark.timeout(120)
def test_serve_stops_at_once_when_the_database_refuses_the_login(
    project,
    pg_server: PgServer,  # noqa: F811
):
    database = pg_server.create_database()
    url = pg_server.url(database, password="not-the-password")
    env = dockyard_env(DOCKYARD_DATABASE_URL=url)  # the default wait is 5 minutes
    with serve_process(["flows/behaviours.py:noop", "--interval", "1"], project, env=env) as s:
        assert s.wait_exit(60) == 2
    out = s.output()
    assert "password authentication failed" in out
    assert "not-the-password" not in out and "Traceback" not in out
