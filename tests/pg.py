"""A private PostgreSQL server for tests: real binaries, a temporary cluster, no mocks.

``PgServer.create()`` makes a cluster in a temporary directory (a copy of one ``initdb`` per
test process), listening on a free loopback port with its socket in its own directory.
Tests connect as the role ``dockyard`` over TCP with a password (scram-sha-256), so they can
check that the password never leaks; the fixtures themselves use the superuser over the
socket. As root, every server command runs as the OS user ``postgres``
(``runuser -u postgres --``): PostgreSQL refuses to run as root.

Fixtures (import them where they are used, e.g. ``from tests.pg import pg_server``):

- ``pg_server``: one server per test session (so one per xdist worker), removed at exit;
- ``pg_database``: the URL of a new empty database on it, dropped after the test;
- ``pg_migrated_template``: the name of a database on it at dockyard's newest schema, to copy
  (``pg_server.create_database(template=...)``);
- ``pg_private_server``: a server of the test's own, started, that it may stop and start.

Where the binaries are missing the fixtures skip with the reason, except when the
environment variable ``CI`` is set: there a missing PostgreSQL fails the tests.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from dockyard.store import open_store
from tests.helpers import free_port

ROLE = "dockyard"
"""The role tests connect as (a password, no superuser), owner of every database made here."""
SUPERUSER = "postgres"
OS_USER = "postgres"
START_TIMEOUT_SECONDS = 60
SETTINGS = """
# tests/pg.py: a throwaway test server, fast rather than durable.
listen_addresses = '{listen}'
port = {port}
unix_socket_directories = '{socket_dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
shared_buffers = 16MB
max_connections = 100
autovacuum = off
password_encryption = 'scram-sha-256'
"""
_numbers = itertools.count(1)


def _candidate_bindirs() -> Iterator[Path]:
    on_path = shutil.which("initdb")
    if on_path:
        yield Path(on_path).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    yield from versions


@functools.cache
def bindir() -> Path | None:
    """The directory of initdb and pg_ctl, or None if PostgreSQL is not installed."""
    for directory in _candidate_bindirs():
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def unavailable_reason() -> str | None:
    """Why no test server can run here, or None."""
    if bindir() is None:
        return (
            "PostgreSQL is not installed (no initdb/pg_ctl on PATH or in "
            "/usr/lib/postgresql/*/bin): apt-get install postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root needs the OS user {OS_USER!r} to run PostgreSQL"
        if shutil.which("runuser") is None:
            return "running as root needs runuser (util-linux) to run PostgreSQL"
    return None


def require_postgresql() -> None:
    """Skip the test where PostgreSQL cannot run, or fail it when CI is set."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI needs PostgreSQL for these tests: {reason}", pytrace=False)
    pytest.skip(reason)


def _binary(name: str) -> str:
    directory = bindir()
    if directory is None:
        raise RuntimeError(unavailable_reason())
    return str(directory / name)


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], *, what: str) -> None:
    done = subprocess.run(
        _as_owner(command),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS + 30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _private_dir(prefix: str) -> Path:
    """A new directory under the system temp dir the server's OS user owns (pytest's
    tmp_path is private to root, where PostgreSQL cannot enter)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@functools.cache
def _pristine_cluster() -> Path:
    """One initdb per test process; every server starts from a copy of it."""
    root = _private_dir("dockyard-pg-initdb-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    data = root / "data"
    _run(
        [_binary("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth-local=trust",
         "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"],
        what="initdb",
    )  # fmt: skip
    return data


class PgServer:
    """One PostgreSQL cluster in a temporary directory (see the module docstring)."""

    def __init__(self, root: Path, also_listen: str | None = None) -> None:
        self.root = root
        self.also_listen = also_listen
        """An address besides 127.0.0.1 (the Docker bridge's, for containers), or None."""
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.password = f"pw@{os.urandom(6).hex()}%/"  # characters a URL must escape
        self._role_made = False
        self._started_once = False

    @classmethod
    def create(cls, also_listen: str | None = None) -> PgServer:
        """A new stopped server (call ``start``); ``destroy`` removes it. With
        ``also_listen`` (an IPv4 address of this machine, e.g. its address on Docker's
        bridge) it listens there too and accepts the role ``dockyard`` from this machine's
        subnets: containers on any Docker network reach it at that address."""
        root = _private_dir("dockyard-pg-")
        server = cls(root, also_listen)
        atexit.register(server.destroy)
        subprocess.run(["cp", "-a", str(_pristine_cluster()), str(server.data)], check=True)
        server.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(server.socket_dir, OS_USER, OS_USER)
        server._write_settings()
        return server

    def _write_settings(self) -> None:
        listen = ",".join(filter(None, ["127.0.0.1", self.also_listen]))
        settings = SETTINGS.format(port=self.port, socket_dir=self.socket_dir, listen=listen)
        path = self.data / "postgresql.auto.conf"
        path.write_text(settings)
        if self.also_listen:
            # samenet: any subnet of this machine's interfaces (every Docker network's).
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all {ROLE} samenet scram-sha-256\n")
        if os.geteuid() == 0:
            shutil.chown(path, OS_USER, OS_USER)

    def _pg_ctl(self, *args: str, what: str) -> None:
        wait = ["-w", "-t", str(START_TIMEOUT_SECONDS)]
        _run([_binary("pg_ctl"), "-D", str(self.data), *wait, *args], what=what)

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        for attempt in range(3):
            try:
                self._pg_ctl("-l", str(self.log), "start", what="pg_ctl start")
                break
            except RuntimeError:
                taken = "Address already in use" in self._log_text()
                if self._started_once or not taken or attempt == 2:
                    raise
                self.port = free_port()  # another process took the port first
                self._write_settings()
        self._started_once = True
        if not self._role_made:
            self._make_role()

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _make_role(self) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(self.password)
                )
            )
        self._role_made = True

    def stop(self) -> None:
        """Fast shutdown (disconnects every client); returns once the server is down."""
        if self.running:
            self._pg_ctl("-m", "fast", "stop", what="pg_ctl stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the server and remove its directory (safe to call twice)."""
        with contextlib.suppress(RuntimeError, FileNotFoundError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, *, password: str | None = None, host: str = "127.0.0.1") -> str:
        """``postgresql://dockyard:PASSWORD@127.0.0.1:PORT/DATABASE`` (``password`` to
        give a wrong one, ``host`` for ``also_listen``)."""
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{ROLE}:{secret}@{host}:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the socket, in autocommit mode."""
        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=database,
            autocommit=True, connect_timeout=10,
        )  # fmt: skip

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database owned by ``dockyard`` (a copy of ``template`` if given);
        return its name (a new unique one unless ``name``)."""
        name = name or f"test_{os.getpid()}_{next(_numbers)}"
        query = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(ROLE)
        )
        if template is not None:
            query += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
        with self.admin() as conn:
            conn.execute(query)
        return name

    def drop_database(self, name: str) -> None:
        """Drop the database, disconnecting whoever is still connected."""
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def query(self, database: str, statement: str) -> list[tuple[object, ...]]:
        """Rows of one statement run as the superuser (for checks and set-ups)."""
        with self.admin(database) as conn:
            cursor = conn.execute(statement.encode())
            return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def running_server(also_listen: str | None = None) -> Iterator[PgServer]:
    """A started server of its own, destroyed afterwards."""
    require_postgresql()
    server = PgServer.create(also_listen)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One server for the whole test session (per xdist worker)."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def pg_migrated_template(pg_server: PgServer) -> str:
    """A database at dockyard's newest schema on the session's server: pass it as
    ``template`` to ``create_database`` for a fresh migrated database in a few ms."""
    name = pg_server.create_database("dockyard_template")
    open_store(pg_server.url(name)).close()
    return name


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The URL of a new empty database on the session's server (dropped afterwards)."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def pg_private_server() -> Iterator[PgServer]:
    """A started server only this test uses: it may stop, restart or break it."""
    with running_server() as server:
        yield server
