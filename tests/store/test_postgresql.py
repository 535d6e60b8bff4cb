"""The PostgreSQL backend's own behaviour on a real server (tests/pg.py): its URLs, what its
errors say (one line, never the password), and outages (a stopped or restarted server).

The backend-independent contract runs on PostgreSQL too (test_contract*.py).
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from dockyard.errors import StateStoreError, UsageError
from dockyard.store import open_store
from tests.pg import ROLE, PgServer
from tests.store.support import DEP, T0

HINT = "check DOCKYARD_DATABASE_URL and that the database server is up"


def _shown(server: PgServer, database: str, scheme: str = "postgresql") -> str:
    return f"{scheme}://{ROLE}:***@127.0.0.1:{server.port}/{database}"


def _assert_one_line_without_secrets(error: BaseException, *secrets: str) -> None:
    message = str(error)
    assert "\n" not in message
    everything = "".join(traceback.format_exception(error))  # the chain --debug would show
    for secret in secrets:
        for form in (secret, quote(secret, safe="")):
            assert form not in everything


@pytest.fixture
def database(pg_server: PgServer, pg_migrated_template: str) -> Iterator[str]:
    name = pg_server.create_database(template=pg_migrated_template)
    yield name
    pg_server.drop_database(name)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_spelling_of_the_url_opens_the_database(
    pg_server: PgServer, database: str, scheme: str
) -> None:
    url = pg_server.url(database).replace("postgresql://", f"{scheme}://")
    with open_store(url) as store:
        store.upsert_deployment(DEP, "nightly", {}, now=T0)
        assert store.database == _shown(pg_server, database, scheme)
        assert store.local_dir is None  # no directory beside a server's database
        rows = pg_server.query(
            database,
            "SELECT application_name FROM pg_stat_activity WHERE usename = 'dockyard'",
        )
    assert ("dockyard",) in rows
    assert [name for (name,) in pg_server.query(database, "SELECT name FROM deployments")] == [DEP]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg2://u:s3cret@host/db", "unsupported database URL "
         "'postgresql+psycopg2://u:***@host/db'; give a SQLite file path, sqlite:///PATH or "
         "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"),
        ("mysql://u:s3cret@host/db", "unsupported database URL 'mysql://u:***@host/db'; give"),
        ("postgresql://u:s3cret@host:port/db", "invalid database URL "
         "'postgresql://u:***@host:port/db'; give"),
    ],
)  # fmt: skip
def test_an_unusable_url_is_a_usage_error_without_its_password(url: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        open_store(url)
    assert str(caught.value).startswith(message)
    _assert_one_line_without_secrets(caught.value, "s3cret")


def test_a_wrong_password_says_so_without_either_password(
    pg_server: PgServer, database: str
) -> None:
    wrong = f"not-{pg_server.password}"
    with pytest.raises(StateStoreError) as caught:
        open_store(pg_server.url(database, password=wrong))
    assert str(caught.value) == (
        f"cannot open state database {_shown(pg_server, database)}: password authentication "
        f'failed for user "{ROLE}"; {HINT}'
    )
    _assert_one_line_without_secrets(caught.value, wrong, pg_server.password)


def test_an_unknown_database_says_so(pg_server: PgServer) -> None:
    with pytest.raises(StateStoreError) as caught:
        open_store(pg_server.url("nosuchdb"))
    assert str(caught.value) == (
        f'cannot open state database {_shown(pg_server, "nosuchdb")}: database "nosuchdb" '
        f"does not exist; {HINT}"
    )
    _assert_one_line_without_secrets(caught.value, pg_server.password)


def test_a_stopped_server_fails_every_call_in_one_line_until_it_is_back(
    pg_private_server: PgServer,
) -> None:
    server = pg_private_server
    name = server.create_database()
    store = open_store(server.url(name))
    store.upsert_deployment(DEP, "nightly", {}, now=T0)
    server.stop()

    for _ in range(2):
        with pytest.raises(StateStoreError) as caught:
            store.list_deployments()
        assert str(caught.value).startswith(f"state database {_shown(server, name)}: ")
        assert str(caught.value).endswith(HINT)
        _assert_one_line_without_secrets(caught.value, server.password)
    with pytest.raises(StateStoreError, match="Connection refused; check") as refused:
        open_store(server.url(name))
    _assert_one_line_without_secrets(refused.value, server.password)

    server.start()
    assert [d.name for d in store.list_deployments()] == [DEP]
    store.close()


def test_after_a_restart_a_call_fails_at_most_once(pg_private_server: PgServer) -> None:
    server = pg_private_server
    store = open_store(server.url(server.create_database()))
    store.upsert_deployment(DEP, "nightly", {}, now=T0)
    assert not store._engine.pool._pre_ping  # no extra round trip before every call
    held = [store._engine.connect() for _ in range(3)]  # three connections in the pool
    for conn in held:
        conn.close()

    server.restart()

    failures = []
    for _ in range(4):
        try:
            assert [d.name for d in store.list_deployments()] == [DEP]
        except StateStoreError as exc:
            failures.append(exc)
    assert len(failures) <= 1
    assert store.list_deployments()  # and the calls after it work
    for failure in failures:
        _assert_one_line_without_secrets(failure, server.password)
    store.close()


def test_a_server_that_never_answers_fails_the_open_after_the_connect_timeout() -> None:
    with socket.socket() as silent:  # accepts TCP connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://u:s3cret@127.0.0.1:{port}/db"
        with pytest.raises(StateStoreError) as caught:
            open_store(url)
    assert "timeout expired" in str(caught.value)
    _assert_one_line_without_secrets(caught.value, "s3cret")
