"""The tables of the read commands, and ``deployment ls`` / ``rm`` on a state file: through the
real CLI, as a subprocess, on a terminal (a pty), piped, with ``NO_COLOR`` and ``FORCE_COLOR``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.core.records import ReplicaRecord
from dockyard.core.states import RunState
from dockyard.store import open_store
from tests.cli.test_cli import CLI_TIMEOUT_SECONDS, HELLO, ROOT, dockyard, error_line, finish, rows

NOW = datetime.now(UTC).replace(microsecond=0)
MIDNIGHT = NOW.replace(hour=0, minute=0, second=0)
TODAY = NOW - (NOW - MIDNIGHT) // 2
"""A time today (UTC), half-way since midnight: still today when the CLI shows it."""
LONG_AGO = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ESCAPE = "\x1b["
RED, GREEN = "\x1b[31m", "\x1b[32m"
GONE = "hello-world/every-10s"
"""The deployment the last serve process no longer served (in ``state_file``)."""


def plain_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI call, with no colour setting inherited from this one."""
    names = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return dockyard(*args, env=plain_env(**env))


def on_terminal(*args: str, stdin: str = "") -> tuple[str, int]:
    """``dockyard ARGS`` with stdin and stdout on a pseudo-terminal: what it wrote there (and
    ``stdin`` typed in), and its exit code."""
    main, secondary = pty.openpty()
    clean = {k: v for k, v in plain_env().items() if not k.startswith("DOCKYARD_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard", *args],
        cwd=ROOT,
        env={**clean, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"},
        stdin=secondary,
        stdout=secondary,
        stderr=subprocess.STDOUT,
    )
    os.close(secondary)
    if stdin:
        os.write(main, stdin.encode())
    output = b""
    deadline = datetime.now(UTC) + timedelta(seconds=CLI_TIMEOUT_SECONDS)
    while datetime.now(UTC) < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    code = process.wait(timeout=CLI_TIMEOUT_SECONDS)
    return output.decode(errors="replace").replace("\r\n", "\n"), code


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    """Two deployments, of which the last serve process (stopped now) served only
    ``etl/hourly``; a Failed run long ago, a Completed one today, a Running one."""
    path = tmp_path / "state" / "state.db"
    with open_store(path) as store:
        store.upsert_deployment(
            "etl/hourly", "etl", {"schedules": [{"cron": "0 * * * *"}]}, now=LONG_AGO
        )
        store.upsert_deployment(GONE, "hello-world", {"schedules": [{"interval": 10.0}]}, now=NOW)
        finish(store, "aaaaaaaa11112222", "etl/hourly", RunState.FAILED, 0, name="brave-otter")
        today = int((TODAY - LONG_AGO).total_seconds())
        finish(store, "bbbbbbbb33334444", "etl/hourly", RunState.COMPLETED, today)
        finish(store, "cccccccc55556666", GONE, RunState.COMPLETED, 30)
        store.heartbeat(replica("old-replica", ("etl/hourly", GONE), NOW - timedelta(hours=2)))
        store.heartbeat(replica("last-replica", ("etl/hourly",), NOW - timedelta(minutes=5)))
    return path


def replica(
    replica_id: str, names: tuple[str, ...], seen: datetime, *, live: bool = False
) -> ReplicaRecord:
    return ReplicaRecord(
        id=replica_id, host="host", pid=1, version="1", code_revision=None, deployments=names,
        runs_held=0, started_at=seen - timedelta(minutes=1), last_seen=seen,
        stopped_at=None if live else seen,
    )  # fmt: skip


def state(path: Path) -> tuple[str, str]:
    return ("--state", str(path))


# -- colour --------------------------------------------------------------------------------


def test_states_are_coloured_on_a_terminal(state_file: Path) -> None:
    output, code = on_terminal("run", "ls", *state(state_file))

    assert code == 0, output
    failed = next(line for line in output.splitlines() if "aaaaaaaa" in line)
    completed = next(line for line in output.splitlines() if "bbbbbbbb" in line)
    assert f"{RED}Failed" in failed
    assert f"{GREEN}Completed" in completed


@pytest.mark.parametrize(
    "env",
    [{}, {"NO_COLOR": "1"}, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, {"TERM": "xterm"}],
    ids=["piped", "no-color", "no-color-beats-force-color", "piped-with-a-term"],
)
def test_no_colour_when_piped_or_with_no_color(state_file: Path, env: dict[str, str]) -> None:
    for args in (("run", "ls"), ("deployment", "ls", "--all"), ("run", "inspect", "aaaaaaaa")):
        result = cli(*args, *state(state_file), **env)

        assert result.returncode == 0, result.stderr
        assert ESCAPE not in result.stdout, args


def test_force_color_colours_a_pipe_and_an_empty_no_color_does_not_count(
    state_file: Path,
) -> None:
    result = cli("run", "ls", *state(state_file), FORCE_COLOR="1", NO_COLOR="")

    assert result.returncode == 0, result.stderr
    assert f"{RED}Failed" in result.stdout


def test_run_inspect_colours_its_state_and_its_history(state_file: Path) -> None:
    result = cli("run", "inspect", "aaaaaaaa", *state(state_file), FORCE_COLOR="1")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("state") and f"{RED}Failed" in line for line in lines)
    assert sum(f"{RED}Failed" in line for line in lines) == 2  # the field and the history


# -- layout --------------------------------------------------------------------------------


@pytest.mark.parametrize("colour", [{}, {"FORCE_COLOR": "1"}], ids=["plain", "coloured"])
def test_no_line_ends_in_blanks(state_file: Path, colour: dict[str, str]) -> None:
    commands = [
        ("deployment", "ls"),
        ("deployment", "ls", "--all"),
        ("deployment", "inspect", "etl/hourly"),
        ("run", "ls"),
        ("run", "inspect", "bbbbbbbb"),
        ("replica", "ls"),
    ]
    for args in commands:
        result = cli(*args, *state(state_file), **colour)

        assert result.returncode == 0, (args, result.stderr)
        text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
        assert text.strip(), args
        for line in text.splitlines():
            assert line == line.rstrip(), (args, line)


def test_times_show_the_date_only_when_not_today(state_file: Path) -> None:
    result = cli("run", "ls", *state(state_file))

    assert result.returncode == 0, result.stderr
    shown = {row[0]: row[4] for row in rows(result.stdout)[1:]}
    # Collected before midnight and run after it, TODAY is yesterday: then the date shows.
    today = datetime.now(UTC).date() == TODAY.date()
    assert shown["bbbbbbbb"] == (f"{TODAY:%H:%M:%S}" if today else f"{TODAY:%Y-%m-%d %H:%M:%S}")
    assert shown["aaaaaaaa"] == "2024-05-01 12:00:00"


def test_the_history_shows_milliseconds(state_file: Path) -> None:
    result = cli("run", "inspect", "aaaaaaaa", *state(state_file))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    history = lines[lines.index("history") + 1 : lines.index("task runs  -")]
    assert history[-1] == "  2024-05-01 12:00:03.500  Failed  ValueError: boom"


# -- unknown deployments -----------------------------------------------------------------------


def test_run_ls_of_an_unknown_deployment_says_so(state_file: Path) -> None:
    result = cli("run", "ls", "--deployment", "etl/daily", *state(state_file))

    assert error_line(result, code=1) == (
        f"unknown deployment 'etl/daily'; known: etl/hourly, {GONE}"
    )


# -- deployments no longer served --------------------------------------------------------------


def test_deployment_ls_hides_what_the_last_serve_process_no_longer_served(
    state_file: Path,
) -> None:
    result = cli("deployment", "ls", *state(state_file))

    assert result.returncode == 0, result.stderr
    assert [row[0] for row in rows(result.stdout)[1:]] == ["etl/hourly"]
    assert result.stderr == (
        "(1 deployment(s) no serve process serves any more not shown: --all lists them, "
        "'dockyard deployment rm NAME' removes one)\n"
    )


def test_deployment_ls_all_marks_them_not_served(state_file: Path) -> None:
    table = cli("deployment", "ls", "--all", *state(state_file))
    data = cli("deployment", "ls", "--all", "--json", *state(state_file))
    served_only = cli("deployment", "ls", "--json", *state(state_file))

    assert table.returncode == data.returncode == served_only.returncode == 0
    assert table.stderr == ""
    listed = {row[0]: row for row in rows(table.stdout)[1:]}
    assert listed[GONE][2:4] == ["not served", "-"]  # no next run either
    assert listed["etl/hourly"][2] == "active"
    by_name = {d["name"]: d for d in json.loads(data.stdout)}
    assert (by_name[GONE]["served"], by_name[GONE]["next_run"]) == (False, None)
    assert by_name["etl/hourly"]["served"] is True
    assert [d["name"] for d in json.loads(served_only.stdout)] == ["etl/hourly"]


def test_a_live_replica_decides_what_is_served(state_file: Path) -> None:
    with open_store(state_file) as store:
        owner = store.take_lease()  # this process is alive: so is the replica
        store.heartbeat(replica(owner, (GONE,), datetime.now(UTC), live=True))
        result = cli("deployment", "ls", "--json", *state(state_file))
        inspected = cli("deployment", "inspect", "etl/hourly", "--json", *state(state_file))

    assert result.returncode == 0, result.stderr
    assert [d["name"] for d in json.loads(result.stdout)] == [GONE]
    detail = json.loads(inspected.stdout)
    assert (detail["served"], detail["next_run"], detail["next_runs"]) == (False, None, [])


# -- deployment rm -----------------------------------------------------------------------------


def test_rm_with_yes_removes_the_deployment_and_its_runs(state_file: Path) -> None:
    result = cli("deployment", "rm", GONE, "--yes", *state(state_file))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"removed {GONE} and its 1 run(s)\n"
    with open_store(state_file) as store:
        assert [d.name for d in store.list_deployments()] == ["etl/hourly"]
        assert {r.deployment for r in store.list_runs()} == {"etl/hourly"}
    listed = cli("deployment", "ls", "--all", *state(state_file))
    assert GONE not in listed.stdout


def test_rm_json(state_file: Path) -> None:
    result = cli("deployment", "rm", GONE, "-y", "--json", *state(state_file))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"name": GONE, "runs": 1}


def test_rm_without_yes_off_a_terminal_is_a_usage_error(state_file: Path) -> None:
    result = cli("deployment", "rm", GONE, *state(state_file))

    assert error_line(result) == f"removing {GONE} and its runs cannot be undone: pass --yes"
    with open_store(state_file) as store:
        assert store.get_deployment(GONE) is not None


@pytest.mark.parametrize(("answer", "code", "left"), [("y\n", 0, 1), ("n\n", 1, 2)])
def test_rm_asks_on_a_terminal(state_file: Path, answer: str, code: int, left: int) -> None:
    output, exit_code = on_terminal("deployment", "rm", GONE, *state(state_file), stdin=answer)

    assert exit_code == code, output
    assert f"Remove {GONE} with all its runs and their logs? [y/N]" in output
    with open_store(state_file) as store:
        assert len(store.list_deployments()) == left


def test_rm_of_an_unknown_deployment_names_the_known_ones(state_file: Path) -> None:
    result = cli("deployment", "rm", "etl/daily", "--yes", *state(state_file))

    assert error_line(result, code=1) == (
        f"unknown deployment 'etl/daily'; known: etl/hourly, {GONE}"
    )


def test_rm_refuses_a_deployment_a_live_serve_process_serves(state_file: Path) -> None:
    with open_store(state_file) as store:
        owner = store.take_lease()
        store.heartbeat(replica(owner, (GONE,), datetime.now(UTC), live=True))
        result = cli("deployment", "rm", GONE, "--yes", *state(state_file))
    after = cli("deployment", "rm", GONE, "--yes", *state(state_file))  # that process is gone

    assert error_line(result, code=1) == (
        f"{GONE} is served by a live serve process ({owner}), which would register it again: "
        "remove it from that process's configuration and restart it first"
    )
    assert after.returncode == 0, after.stderr


# -- serve --check --json ----------------------------------------------------------------------


def test_check_json_is_one_document_of_the_deployments() -> None:
    result = cli("serve", HELLO, "--interval", "60", "--param", "name=doc", "--check", "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    [deployment] = document["deployments"]
    assert (deployment["name"], deployment["deployment"]) == (
        "hello-world/hello-world",
        "hello-world",
    )
    assert (deployment["flow_name"], deployment["entrypoint"]) == ("hello-world", HELLO)
    assert [s["interval"] for s in deployment["schedules"]] == [60.0]
    assert deployment["parameters"] == {"name": "doc"}
    times = [datetime.fromisoformat(t) for t in deployment["next_runs"]]
    assert len(times) == 3
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [timedelta(seconds=60)] * 2


def test_json_without_check_is_a_usage_error() -> None:
    result = cli("serve", HELLO, "--json")

    assert error_line(result) == "--json goes with --check or --once (what serve prints then)"
