"""The state database's URL on the command line: where it may come from, what is refused,
and that its password shows nowhere: not in an error, the output, or a flow's environment.

Every case runs the real CLI in a subprocess. "Unreachable" is a closed port on 127.0.0.1;
a real PostgreSQL server (``tests/pg.py``) serves the cases that connect.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from dockyard.store import open_store
from tests.cli.test_replicas import dockyard
from tests.helpers import REPO, dockyard_env, free_port, serve_process, wait_for, webserver_url
from tests.pg import PgServer, pg_server  # noqa: F401 - the fixture

HELLO = str(REPO / "examples" / "hello_world.py") + ":hello_world"
PASSWORD = "hunter2-Zq81"
READ_COMMANDS = [
    ("run", "ls"),
    ("run", "inspect", "abcdef12"),
    ("run", "logs", "abcdef12"),
    ("deployment", "ls"),
    ("deployment", "inspect", "a/b"),
    ("replica", "ls"),
]


def error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single ``dockyard: error: …`` line of a failed command, without the prefix."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: error: ")
    return lines[0].removeprefix("dockyard: error: ")


def no_password(result: subprocess.CompletedProcess[str]) -> None:
    assert PASSWORD not in result.stdout + result.stderr


@pytest.fixture
def closed_port() -> int:
    return free_port()


# -- refused input (exit 2) -----------------------------------------------------------------


@pytest.mark.parametrize("command", [*READ_COMMANDS, ("serve", HELLO, "--check")])
def test_a_password_in_the_flags_query_is_refused(command: tuple[str, ...]) -> None:
    # Only a password in user:password@ can be hidden from process lists at start.
    url = f"postgres://db/x?password={PASSWORD}"
    result = dockyard(*command, "--database-url", url)

    line = error_line(result, 2)
    assert line.startswith("--database-url '")
    assert "pass the URL in DOCKYARD_DATABASE_URL_FILE or DOCKYARD_DATABASE_URL" in line
    assert line.endswith("or the password in PGPASSFILE or PGPASSWORD")
    no_password(result)


@pytest.mark.parametrize(
    ("command", "where"),
    [
        (("run", "ls"), "DOCKYARD_DATABASE_URL"),
        (("replica", "ls"), "DOCKYARD_DATABASE_URL"),
        (("serve", HELLO, "--check"), "flag --database-url or DOCKYARD_DATABASE_URL"),
    ],
)
def test_another_scheme_names_the_accepted_ones(command: tuple[str, ...], where: str) -> None:
    env = {"DOCKYARD_DATABASE_URL": f"mysql://root:{PASSWORD}@db/x"}

    result = dockyard(*command, env=env)

    assert error_line(result, 2) == (
        f"invalid setting: database_url ({where}): 'mysql://root:***@db/x' is not "
        "a PostgreSQL URL; use postgresql://, postgres://, postgresql+psycopg://, "
        "e.g. postgresql://dockyard@db.example:5432/dockyard"
    )


def test_url_and_database_url_together_are_refused() -> None:
    result = dockyard(
        "replica", "ls", "--url", "http://127.0.0.1:1", "--database-url", "postgresql://db/x"
    )

    assert error_line(result, 2) == (
        "give either --url (a running serve process) or --database-url (its database), not both"
    )


def test_follow_needs_the_serve_process() -> None:
    result = dockyard("run", "logs", "abcdef12", "--follow", "--database-url", "postgresql://db/x")

    assert error_line(result, 2) == (
        "--follow reads from a running serve process: use --url, not --database-url"
    )


def test_a_state_url_points_to_database_url(tmp_path: Path) -> None:
    result = dockyard("run", "ls", "--state", f"postgresql://dockyard:{PASSWORD}@db/x")

    line = error_line(result, 2)
    assert line.startswith(
        "invalid setting: state (flag --state): 'postgresql://dockyard:***@db/x' is a database "
        "URL: give it with --database-url or DOCKYARD_DATABASE_URL; "
    )
    no_password(result)


def test_an_unreadable_url_file_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"

    result = dockyard("replica", "ls", env={"DOCKYARD_DATABASE_URL_FILE": str(missing)})

    assert error_line(result, 2) == (
        f"invalid setting: DOCKYARD_DATABASE_URL_FILE: cannot read {missing}: "
        "No such file or directory"
    )


# -- an unreachable database: one line, no password ------------------------------------------


@pytest.mark.parametrize("command", READ_COMMANDS)
@pytest.mark.parametrize("given", ["url", "pgpassword", "file"])
def test_an_unreachable_database_never_shows_the_password(
    tmp_path: Path, closed_port: int, command: tuple[str, ...], given: str
) -> None:
    with_password = f"postgresql://dockyard:{PASSWORD}@127.0.0.1:{closed_port}/dockyard"
    env = {
        "url": {"DOCKYARD_DATABASE_URL": with_password},
        "pgpassword": {
            "DOCKYARD_DATABASE_URL": f"postgresql://dockyard@127.0.0.1:{closed_port}/dockyard",
            "PGPASSWORD": PASSWORD,
        },
        "file": {"DOCKYARD_DATABASE_URL_FILE": str(tmp_path / "url")},
    }[given]
    (tmp_path / "url").write_text(with_password + "\n")

    result = dockyard(*command, env=env)

    line = error_line(result, 1)
    assert line.startswith(
        f"cannot open state database postgresql://dockyard:***@127.0.0.1:{closed_port}/dockyard: "
    )
    no_password(result)


def test_serve_with_an_unreachable_database_never_shows_the_password(
    tmp_path: Path, closed_port: int
) -> None:
    url = f"postgresql://dockyard:{PASSWORD}@127.0.0.1:{closed_port}/dockyard"
    # Not waiting for the server to come up (DOCKYARD_DATABASE_WAIT=0): it is not there.
    env = {"DOCKYARD_DATABASE_URL": url, "DOCKYARD_PORT": "0", "DOCKYARD_DATABASE_WAIT": "0"}

    result = dockyard(
        "serve", HELLO, "--interval", "60", "--state", str(tmp_path / "s.db"), env=env
    )

    line = error_line(result, 1)  # the server is down: not a usage error
    assert line.startswith("cannot open state database postgresql://dockyard:***@127.0.0.1:")
    no_password(result)


# -- a served flow's environment ---------------------------------------------------------------

ENV_FLOW = """\
import os
from pathlib import Path

from dockyard import flow


@flow(name="env", log_prints=True)
def env():
    for key, value in sorted(os.environ.items()):
        print(f"{key}={value}")
    for what in ("environ", "cmdline"):
        try:
            text = Path(f"/proc/{os.getppid()}/{what}").read_bytes().decode("utf-8", "replace")
        except OSError as exc:
            text = f"<unreadable: {type(exc).__name__}>"
        print(f"parent {what}: " + text.replace("\\0", " "))
"""


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[tuple[str, PgServer]]:  # noqa: F811
    database = pg_server.create_database()
    yield database, pg_server
    pg_server.drop_database(database)


@pytest.mark.slow
@pytest.mark.parametrize("given", ["url", "pgpassword"])
def test_a_served_flow_sees_neither_the_url_nor_pgpassword(
    tmp_path: Path, pg_url: tuple[str, PgServer], given: str
) -> None:
    database, server = pg_url
    url = server.url(database)
    plain = f"postgresql://dockyard@127.0.0.1:{server.port}/{database}"
    extra = {"DOCKYARD_DATABASE_URL": url}
    if given == "pgpassword":
        extra = {"DOCKYARD_DATABASE_URL": plain, "PGPASSWORD": server.password}
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "env_flow.py").write_text(ENV_FLOW)
    env = {
        k: v for k, v in dockyard_env(**extra).items() if given == "pgpassword" or k != "PGPASSWORD"
    }

    with serve_process(["flows/env_flow.py:env", "--name", "e"], tmp_path, env=env) as served:
        base = webserver_url(served)
        with httpx.Client(base_url=base, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, 60, what="/ready")
            run_id = client.post("/api/deployments/env/e/runs", json={}).json()["id"]
            wait_for(
                lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "Completed",
                60,
                what="the run to complete",
            )
            lines = [x["line"] for x in client.get(f"/api/runs/{run_id}/logs").json()["lines"]]
            answers = client.get("/api/replicas").text + client.get("/metrics").text
        output = served.output()

    assert any(line.startswith("PATH=") for line in lines)  # the flow printed its environment
    assert not [
        line for line in lines if line.startswith(("DOCKYARD_DATABASE_URL=", "PGPASSWORD="))
    ]
    for text in ("\n".join(lines), output, answers):
        assert server.password not in text
        assert server.url(database) not in text
    # The serve process kept its state there, not in a SQLite file.
    with open_store(url) as store:
        assert [r.id for r in store.list_runs(deployment="env/e")] == [run_id]
    assert not served.state_path.exists()


@pytest.mark.slow
def test_a_password_in_the_flag_is_hidden_from_process_lists_with_a_warning(
    tmp_path: Path, pg_url: tuple[str, PgServer]
) -> None:
    database, server = pg_url
    url = server.url(database)
    args = ["flows/env_flow.py:env", "--name", "e", "--database-url", url]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "env_flow.py").write_text(ENV_FLOW)
    with serve_process(args, tmp_path) as served:
        base = webserver_url(served)
        wait_for(lambda: httpx.get(f"{base}/ready", timeout=10).status_code == 200, 60)
        cmdline = Path(f"/proc/{served.process.pid}/cmdline").read_bytes().decode()
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"--database-url\0postgresql://dockyard@127.0.0.1:{server.port}/" in cmdline
    secrets = (server.password, quote(server.password, safe=""))
    assert not [s for s in secrets if s in cmdline or s in ps]
    output = served.output()
    assert "warning: --database-url holds a password" in output
    assert not [s for s in secrets if s in output]
    with open_store(url) as store:  # it did use the database the flag named
        assert [d.name for d in store.list_deployments()] == ["env/e"]

    result = dockyard("replica", "ls", "--json", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("dockyard: warning: --database-url holds a password")
    assert not [s for s in secrets if s in result.stdout + result.stderr]
