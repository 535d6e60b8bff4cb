"""The ``dockyard`` command line, run as a real subprocess.

``serve`` is only run with ``--check`` here (it validates, prints and exits); the
state-inspection commands run against SQLite files prepared with the store's own API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.core.states import RunState
from dockyard.store import NewRun, open_store
from dockyard.web.schemas import (
    DeploymentDetail,
    DeploymentSummary,
    LogLineOut,
    RunDetail,
    RunSummary,
)
from tests import helpers

ROOT = helpers.REPO
HELLO = "examples/hello_world.py:hello_world"
FIXTURES = ROOT / "tests" / "fixtures" / "cli"
CLI_TIMEOUT_SECONDS = 60
MINUTE = r"(?:\d{4}-\d\d-\d\d )?\d\d:\d\d"
"""A shown time to the minute: the date only when it is not today (UTC)."""

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FAILED_ID = "aaaaaaaa11112222"
COMPLETED_ID = "bbbbbbbb33334444"
OTHER_ID = "cccccccc55556666"
# What --json prints in both modes: the HTTP API's response models.
SUMMARY_KEYS = set(DeploymentSummary.model_fields)
DETAIL_KEYS = set(DeploymentDetail.model_fields)
RUN_KEYS = set(RunSummary.model_fields)
RUN_DETAIL_KEYS = set(RunDetail.model_fields)
LOG_KEYS = set(LogLineOut.model_fields)


def dockyard(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def error_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single ``dockyard: error: …`` line of a failed command, without the prefix."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: error: ")
    return lines[0].removeprefix("dockyard: error: ")


# -- serve --check ------------------------------------------------------------------------


def test_check_with_an_interval() -> None:
    result = dockyard("serve", HELLO, "--interval", "60", "--check")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"hello-world/hello-world  ({HELLO})"
    assert lines[1] == "  schedules: every 60s"
    assert re.fullmatch(rf"  next runs \(UTC\): {MINUTE}:00, {MINUTE}:00, {MINUTE}:00", lines[2])
    assert lines[-1] == "ok: 1 deployment(s) valid"
    assert result.stderr == ""


def test_check_with_a_cron_and_options() -> None:
    result = dockyard(
        "serve",
        HELLO,
        "--name",
        "nightly",
        "--cron",
        "30 2 * * *",
        "--param",
        "name=dock=yard",
        "--paused",
        "--check",
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"hello-world/nightly  ({HELLO})"
    assert lines[1] == "  schedules: cron 30 2 * * *"
    times = re.fullmatch(r"  next runs \(UTC\): (.*)", lines[2])
    assert times is not None
    days = [shown_time(t) for t in times.group(1).split(", ")]
    assert [(d.hour, d.minute) for d in days] == [(2, 30)] * 3
    assert [b - a for a, b in zip(days, days[1:], strict=False)] == [timedelta(days=1)] * 2
    assert '  parameters: {"name": "dock=yard"}' in lines
    assert "  starts paused" in lines
    assert lines[-1] == "ok: 1 deployment(s) valid"


def test_check_without_schedule() -> None:
    result = dockyard("serve", HELLO, "--check")

    assert result.returncode == 0, result.stderr
    assert "  schedules: -" in result.stdout.splitlines()
    assert "  next runs (UTC): -" in result.stdout.splitlines()


def test_check_config_lists_every_deployment() -> None:
    result = dockyard("serve", "--config", "examples/dockyard.yaml", "--check")

    assert result.returncode == 0, result.stderr
    headers = [line.split("  ")[0] for line in result.stdout.splitlines() if line[:1] != " "]
    assert headers == [
        "hello-world/every-10s",
        "slow-flow/sleeper",
        "fast-flow/fast",
        "process-batch/batch-processor",
        "get-repo-info/hourly",
        "ok: 5 deployment(s) valid",
    ]
    assert "  schedules: cron 0 * * * * (Europe/Berlin)" in result.stdout
    assert result.stderr == ""


def test_check_shows_a_schedules_slug_parameters_and_whether_it_is_active(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text(
        f"deployments:\n  - entrypoint: {ROOT / HELLO}\n    schedules:\n"
        "      - {cron: '0 6 * * *', slug: morning, parameters: {name: sun}}\n"
        "      - {interval: 60, active: false}\n"
    )
    result = dockyard("serve", "--config", str(config), "--check")

    assert result.returncode == 0, result.stderr
    assert (
        "  schedules: cron 0 6 * * * [morning] with name='sun', every 60s (inactive)"
        in result.stdout.splitlines()
    )


def test_check_config_from_env(tmp_path: Path) -> None:
    result = dockyard(
        "serve",
        "--check",
        cwd=tmp_path,
        env={"DOCKYARD_CONFIG": str(ROOT / "examples" / "dockyard.yaml")},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok: 5 deployment(s) valid"


def test_entrypoint_from_env() -> None:
    result = dockyard("serve", "--check", env={"DOCKYARD_ENTRYPOINT": HELLO})

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"hello-world/hello-world  ({HELLO})"


def test_schedule_and_tags_from_env() -> None:
    result = dockyard(
        "serve",
        HELLO,
        "--check",
        env={"DOCKYARD_CRON": "0 * * * *;30 * * * *", "DOCKYARD_PARAMS": '{"name": "env"}'},
    )

    assert result.returncode == 0, result.stderr
    assert "  schedules: cron 0 * * * *, cron 30 * * * *" in result.stdout.splitlines()
    assert '  parameters: {"name": "env"}' in result.stdout.splitlines()


def test_env_name_is_used_and_a_flag_beats_it() -> None:
    from_env = dockyard("serve", HELLO, "--check", env={"DOCKYARD_NAME": "from-env"})
    from_flag = dockyard(
        "serve", HELLO, "--name", "from-flag", "--check", env={"DOCKYARD_NAME": "from-env"}
    )

    assert from_env.returncode == 0, from_env.stderr
    assert from_env.stdout.startswith("hello-world/from-env  (")
    assert from_flag.returncode == 0, from_flag.stderr
    assert from_flag.stdout.startswith("hello-world/from-flag  (")


def test_flag_interval_beats_env_cron() -> None:
    result = dockyard(
        "serve", HELLO, "--interval", "60", "--check", env={"DOCKYARD_CRON": "0 * * * *"}
    )

    assert result.returncode == 0, result.stderr
    assert "  schedules: every 60s" in result.stdout.splitlines()


def test_version() -> None:
    result = dockyard("version")

    assert result.returncode == 0
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\n", result.stdout)


# -- serve errors: one line on stderr, exit 2 ---------------------------------------------


def test_missing_entrypoint_file() -> None:
    result = dockyard("serve", "nope/missing.py:flow", "--check")

    assert error_line(result) == f"entrypoint file 'nope/missing.py' not found in {ROOT}"


def test_missing_function_lists_the_flows() -> None:
    result = dockyard("serve", "examples/hello_world.py:nope", "--check")

    assert error_line(result) == (
        "examples/hello_world.py has no flow 'nope'; flows defined there: hello_world"
    )


def test_plain_function_is_not_a_flow() -> None:
    result = dockyard("serve", "plain_function.py:report", "--check", cwd=FIXTURES)

    assert error_line(result) == (
        "plain_function.py:report is a function, not a flow: decorate it with @flow"
    )


def test_syntax_error_in_user_code(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from dockyard import flow\n\ndef broken(:\n")

    result = dockyard("serve", "broken.py:broken", "--check", cwd=tmp_path)

    message = error_line(result)
    assert message.startswith("importing broken.py failed: SyntaxError: ")
    assert "line 3" in message


def test_import_error_in_user_code(tmp_path: Path) -> None:
    (tmp_path / "needs.py").write_text("import not_a_module_dockyard_test\n")

    result = dockyard("serve", "needs.py:x", "--check", cwd=tmp_path)

    assert error_line(result) == (
        "importing needs.py failed: ModuleNotFoundError: "
        "No module named 'not_a_module_dockyard_test' (needs.py, line 1)"
    )


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("every hour", "cron: 'every hour' has 2 fields; dockyard reads 5-field cron"),
        ("0 0 * * * *", "cron: '0 0 * * * *' has 6 fields; dockyard reads 5-field cron"),
        ("0 25 * * *", "cron: '0 25 * * *' is not a valid cron expression: hour must be 0-23"),
    ],
)
def test_invalid_cron(cron: str, expected: str) -> None:
    result = dockyard("serve", HELLO, "--cron", cron, "--check")

    assert error_line(result).startswith(expected)


def test_cron_and_interval_together() -> None:
    result = dockyard("serve", HELLO, "--cron", "0 * * * *", "--interval", "60", "--check")

    assert error_line(result) == (
        "give only one of interval, cron, rrule, schedule, schedules (got interval, cron)"
    )


def test_param_without_equals() -> None:
    result = dockyard("serve", HELLO, "--param", "goodbye", "--check")

    assert error_line(result) == "--param 'goodbye': expected KEY=VALUE"


def test_param_of_the_wrong_type_names_the_field() -> None:
    result = dockyard("serve", HELLO, "--param", "goodbye=notabool", "--check")

    message = error_line(result)
    assert "goodbye: Input should be a valid boolean" in message
    assert "'notabool'" in message


def test_unknown_param_is_rejected() -> None:
    result = dockyard("serve", HELLO, "--param", "colour=red", "--check")

    assert "colour" in error_line(result)


def test_invalid_setting_from_env_names_flag_and_variable() -> None:
    result = dockyard("serve", HELLO, "--check", env={"DOCKYARD_LIMIT": "lots"})

    assert error_line(result).startswith(
        "invalid setting: limit (flag --limit or DOCKYARD_LIMIT): "
    )


def test_unknown_option() -> None:
    result = dockyard("serve", HELLO, "--zzz-unknown", "--check")

    assert error_line(result) == "No such option: --zzz-unknown (see 'dockyard serve --help')"


def test_entrypoint_and_config_together() -> None:
    result = dockyard("serve", HELLO, "--config", "examples/dockyard.yaml", "--check")

    assert error_line(result) == "give either an ENTRYPOINT or --config, not both"


def test_neither_entrypoint_nor_config() -> None:
    result = dockyard("serve", "--check")

    assert error_line(result) == (
        "give an ENTRYPOINT (path/to/file.py:flow_function) or --config dockyard.yaml"
    )


def test_missing_config_file() -> None:
    result = dockyard("serve", "--config", "nope.yaml", "--check")

    assert error_line(result) == "config file 'nope.yaml' not found"


def test_debug_shows_the_traceback_with_the_same_exit_code() -> None:
    result = dockyard("serve", "examples/hello_world.py:nope", "--check", "--debug")

    assert result.returncode == 2
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().splitlines()[-1] == (
        "dockyard.errors.EntrypointError: "
        "examples/hello_world.py has no flow 'nope'; flows defined there: hello_world"
    )


def test_no_command_shows_the_help() -> None:
    result = dockyard()

    assert result.returncode == 2
    assert "Usage: dockyard" in result.stdout + result.stderr
    assert "serve" in result.stdout + result.stderr


# -- state inspection ---------------------------------------------------------------------


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    """Two deployments and three finished runs, written with the store's API."""
    path = tmp_path / "state" / "state.db"
    store = open_store(path)
    try:
        store.upsert_deployment(
            "etl/hourly",
            "etl",
            {
                "schedules": [{"cron": "0 * * * *", "timezone": "Europe/Berlin"}],
                "tags": ["etl", "team-a"],
            },
            now=T0,
        )
        store.upsert_deployment(
            "hello-world/every-10s", "hello-world", {"schedules": [{"interval": 10.0}]}, now=T0
        )
        finish(store, FAILED_ID, "etl/hourly", RunState.FAILED, 0, name="brave-otter")
        finish(store, COMPLETED_ID, "etl/hourly", RunState.COMPLETED, 60)
        finish(store, OTHER_ID, "hello-world/every-10s", RunState.FAILED, 120)
        store.append_logs(
            FAILED_ID, [(T0, "stdout", f"line {i}") for i in range(1, 5)] + [(T0, "stderr", "oops")]
        )
    finally:
        store.close()
    return path


def finish(
    store: object, run_id: str, deployment: str, end: RunState, offset: int, name: str = ""
) -> None:
    at = T0 + timedelta(seconds=offset)
    store.create_run(  # type: ignore[attr-defined]
        NewRun(
            deployment=deployment,
            flow_name=deployment.split("/")[0],
            parameters={"day": "today"},
            scheduled_at=at,
            trigger="schedule",
            name=name or None,
            id=run_id,
        ),
        now=at,
    )
    store.transition(run_id, RunState.PENDING, at=at)  # type: ignore[attr-defined]
    started = at + timedelta(seconds=1)
    store.transition(run_id, RunState.RUNNING, at=started, started_at=started)  # type: ignore[attr-defined]
    ended = at + timedelta(seconds=3.5)
    message = "ValueError: boom" if end is RunState.FAILED else None
    store.transition(  # type: ignore[attr-defined]
        run_id, end, at=ended, message=message, ended_at=ended, error=message
    )


def rows(stdout: str) -> list[list[str]]:
    """Table rows (header first) split on runs of two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def test_deployment_ls(state_file: Path) -> None:
    before = datetime.now(UTC)
    result = dockyard("deployment", "ls", "--state", str(state_file))
    after = datetime.now(UTC)

    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table[0] == ["DEPLOYMENT", "SCHEDULE", "STATUS", "NEXT RUN (UTC)", "TAGS"]
    assert [row[:3] + row[4:] for row in table[1:]] == [
        ["etl/hourly", "cron 0 * * * * (Europe/Berlin)", "active", "etl, team-a"],
        ["hello-world/every-10s", "every 10s", "active", "-"],
    ]
    # The next run is computed from the stored schedules, as the serve process does.
    hourly, every_10s = (shown_time(row[3]) for row in table[1:])
    assert (hourly.minute, hourly.second) == (0, 0)
    assert before < hourly <= after + timedelta(hours=1)
    assert every_10s.second % 10 == 0
    assert before < every_10s <= after + timedelta(seconds=10)


def shown_time(cell: str) -> datetime:
    """A ``YYYY-MM-DD HH:MM:SS`` (UTC) table cell, or ``HH:MM:SS`` for a time today."""
    if len(cell) == len("HH:MM:SS"):
        cell = f"{datetime.now(UTC):%Y-%m-%d} {cell}"
    return datetime.strptime(cell, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def test_deployment_ls_json(state_file: Path) -> None:
    result = dockyard("deployment", "ls", "--state", str(state_file), "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["name"] for d in data] == ["etl/hourly", "hello-world/every-10s"]
    assert data[0]["flow_name"] == "etl"
    assert data[0]["tags"] == ["etl", "team-a"]
    assert data[0]["paused"] is False
    # The API's DeploymentSummary, not the store record (no spec, created_at, cursor).
    assert set(data[0]) == SUMMARY_KEYS
    assert data[0]["deployment"] == "hourly"
    assert data[0]["schedules"] == [
        {
            "cron": "0 * * * *",
            "timezone": "Europe/Berlin",
            "slug": None,
            "active": True,
            "parameters": {},
        }
    ]
    assert data[0]["next_run"].endswith(":00:00Z")


def test_state_file_from_env(state_file: Path, tmp_path: Path) -> None:
    result = dockyard("deployment", "ls", cwd=tmp_path, env={"DOCKYARD_STATE": str(state_file)})

    assert result.returncode == 0, result.stderr
    assert "etl/hourly" in result.stdout


def test_pause_then_resume(state_file: Path) -> None:
    state = ("--state", str(state_file))

    paused = dockyard("deployment", "pause", "etl/hourly", *state)
    listed = dockyard("deployment", "ls", *state)
    resumed = dockyard("deployment", "resume", "etl/hourly", *state)
    listed_again = dockyard("deployment", "ls", *state)

    assert (paused.returncode, paused.stdout) == (0, "etl/hourly: paused (user)\n")
    assert rows(listed.stdout)[1] == [
        "etl/hourly",
        "cron 0 * * * * (Europe/Berlin)",
        "paused (user)",
        "-",  # no next run while paused
        "etl, team-a",
    ]
    assert rows(listed.stdout)[2][2] == "active"
    assert (resumed.returncode, resumed.stdout) == (0, "etl/hourly: active\n")
    assert rows(listed_again.stdout)[1][2] == "active"
    store = open_store(state_file)
    try:
        record = store.get_deployment("etl/hourly")
    finally:
        store.close()
    assert record is not None
    assert (record.paused, record.paused_reason) == (False, None)


def test_pause_json(state_file: Path) -> None:
    result = dockyard("deployment", "pause", "etl/hourly", "--state", str(state_file), "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["name"], data["paused"], data["paused_reason"]) == ("etl/hourly", True, "user")
    assert set(data) == SUMMARY_KEYS
    assert data["next_run"] is None


def test_pause_unknown_deployment_lists_the_known_ones(state_file: Path) -> None:
    result = dockyard("deployment", "pause", "etl/daily", "--state", str(state_file))

    assert error_line(result, code=1) == (
        "unknown deployment 'etl/daily'; known: etl/hourly, hello-world/every-10s"
    )


def test_deployment_inspect(state_file: Path) -> None:
    result = dockyard("deployment", "inspect", "etl/hourly", "--state", str(state_file))

    assert result.returncode == 0, result.stderr
    fields = dict(re.split(r"\s+", line, maxsplit=1) for line in _renamed(result.stdout))
    assert fields["name"] == "etl/hourly"
    assert fields["status"] == "active"
    assert fields["schedules"] == "cron 0 * * * * (Europe/Berlin)"
    assert fields["tags"] == "etl, team-a"
    assert (fields["overlap"], fields["catchup"]) == ("allow", "latest")  # Deployment's defaults
    assert fields["last_run"] == "bbbbbbbb Completed 2024-05-01 12:01:00"
    hours = [shown_time(t) for t in fields["next_runs"].split(", ")]
    assert [b - a for a, b in zip(hours, hours[1:], strict=False)] == [timedelta(hours=1)] * 4


def _renamed(stdout: str) -> list[str]:
    """The inspect lines with the two-word keys joined by ``_`` (``next runs`` → ``next_runs``)."""
    return [re.sub(r"^(next|last) (runs?)", r"\1_\2", line) for line in stdout.splitlines()]


def test_deployment_inspect_json(state_file: Path) -> None:
    result = dockyard("deployment", "inspect", "etl/hourly", "--state", str(state_file), "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == DETAIL_KEYS
    assert (data["flow_name"], data["deployment"], data["paused"]) == ("etl", "hourly", False)
    assert len(data["next_runs"]) == 5
    assert data["next_run"] == data["next_runs"][0]
    assert set(data["last_run"]) == RUN_KEYS
    assert (data["last_run"]["id"], data["last_run"]["state"]) == (COMPLETED_ID, "Completed")
    assert (data["entrypoint"], data["parameters"], data["parameter_schema"]) == ("", {}, {})


def test_deployment_inspect_unknown_lists_the_known_ones(state_file: Path) -> None:
    result = dockyard("deployment", "inspect", "etl/daily", "--state", str(state_file))

    assert error_line(result, code=1) == (
        "unknown deployment 'etl/daily'; known: etl/hourly, hello-world/every-10s"
    )


def test_run_ls(state_file: Path) -> None:
    result = dockyard("run", "ls", "--state", str(state_file))

    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table[0] == ["ID", "DEPLOYMENT", "NAME", "STATE", "SCHEDULED (UTC)", "DURATION"]
    assert table[1:] == [
        ["cccccccc", "hello-world/every-10s", "-", "Failed", "2024-05-01 12:02:00", "2.5s"],
        ["bbbbbbbb", "etl/hourly", "-", "Completed", "2024-05-01 12:01:00", "2.5s"],
        ["aaaaaaaa", "etl/hourly", "brave-otter", "Failed", "2024-05-01 12:00:00", "2.5s"],
    ]


def test_run_ls_filters_on_deployment_and_status(state_file: Path) -> None:
    result = dockyard(
        "run", "ls", "--deployment", "etl/hourly", "--status", "Failed", "--state", str(state_file)
    )

    assert result.returncode == 0, result.stderr
    assert [row[0] for row in rows(result.stdout)[1:]] == ["aaaaaaaa"]


def test_run_ls_status_is_case_insensitive_and_repeatable(state_file: Path) -> None:
    result = dockyard(
        "run",
        "ls",
        "--status",
        "failed",
        "--status",
        "COMPLETED",
        "--limit",
        "2",
        "--state",
        str(state_file),
        "--json",
    )

    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [r["id"] for r in listed] == [OTHER_ID, COMPLETED_ID]
    assert [set(r) for r in listed] == [RUN_KEYS, RUN_KEYS]
    assert listed[1]["scheduled_at"] == "2024-05-01T12:01:00Z"
    assert listed[1]["duration_seconds"] == 2.5


def test_run_ls_unknown_status_lists_the_states(state_file: Path) -> None:
    result = dockyard("run", "ls", "--status", "bogus", "--state", str(state_file))

    assert error_line(result) == (
        "Invalid value for '--status': 'bogus' is not one of 'scheduled', 'pending', "
        "'running', 'completed', 'failed', 'cancelled', 'crashed'. "
        "(see 'dockyard run ls --help')"
    )


def test_run_inspect_by_prefix_shows_the_history(state_file: Path) -> None:
    result = dockyard("run", "inspect", FAILED_ID[:6], "--state", str(state_file))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"id          {FAILED_ID}" in lines
    assert "deployment  etl/hourly" in lines
    assert "name        brave-otter" in lines
    assert "state       Failed: ValueError: boom" in lines
    assert 'parameters  {"day": "today"}' in lines
    assert "error       ValueError: boom" in lines
    assert "tags        -" in lines
    history = lines[lines.index("history") + 1 : lines.index("task runs  -")]
    assert history == [
        "  2024-05-01 12:00:00.000  Scheduled",
        "  2024-05-01 12:00:00.000  Pending",
        "  2024-05-01 12:00:01.000  Running",
        "  2024-05-01 12:00:03.500  Failed  ValueError: boom",
    ]


def test_run_inspect_json(state_file: Path) -> None:
    result = dockyard("run", "inspect", COMPLETED_ID, "--state", str(state_file), "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["id"], data["state"]) == (COMPLETED_ID, "Completed")
    assert [e["state"] for e in data["history"]] == ["Scheduled", "Pending", "Running", "Completed"]
    assert set(data) == RUN_DETAIL_KEYS  # the API's RunDetail: no pid, slot_key, …
    assert data["parameters"] == {"day": "today"}
    assert data["history"][-1] == {"state": "Completed", "at": "2024-05-01T12:01:03.500000Z",
                                   "message": None}  # fmt: skip


def test_run_inspect_unknown_run(state_file: Path) -> None:
    result = dockyard("run", "inspect", "ffffffff", "--state", str(state_file))

    assert error_line(result, code=1) == (
        "unknown run 'ffffffff'; check the id with `dockyard run ls`"
    )


def test_run_inspect_too_short_prefix(state_file: Path) -> None:
    result = dockyard("run", "inspect", "aaa", "--state", str(state_file))

    assert "at least 6 characters" in error_line(result, code=1)


def test_run_logs(state_file: Path) -> None:
    result = dockyard("run", "logs", FAILED_ID, "--state", str(state_file))

    assert (result.returncode, result.stdout) == (0, "line 1\nline 2\nline 3\nline 4\noops\n")


def test_run_logs_tail(state_file: Path) -> None:
    result = dockyard("run", "logs", FAILED_ID, "--tail", "2", "--state", str(state_file))

    assert (result.returncode, result.stdout) == (0, "line 4\noops\n")


def test_run_logs_json(state_file: Path) -> None:
    result = dockyard(
        "run", "logs", FAILED_ID[:8], "--tail", "1", "--state", str(state_file), "--json"
    )

    assert result.returncode == 0, result.stderr
    [line] = json.loads(result.stdout)
    assert (line["stream"], line["line"], line["seq"]) == ("stderr", "oops", 5)
    assert line == {"seq": 5, "at": "2024-05-01T12:00:00Z", "stream": "stderr", "line": "oops"}
    assert set(line) == LOG_KEYS


def test_missing_state_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "state.db"

    result = dockyard("run", "ls", "--state", str(missing))

    assert error_line(result) == (
        f"no state database at {missing}; run 'dockyard serve' first or pass --state PATH"
    )
    assert not missing.parent.exists()


def test_missing_state_file_for_deployment_ls(tmp_path: Path) -> None:
    result = dockyard("deployment", "ls", cwd=tmp_path)

    assert error_line(result) == (
        "no state database at .dockyard/state.db; run 'dockyard serve' first or pass --state PATH"
    )


def test_single_deployment_flags_with_config_are_refused() -> None:
    result = dockyard(
        "serve", "--config", "examples/dockyard.yaml", "--name", "x", "--cron", "* * * * *"
    )
    assert error_line(result) == (
        "--name, --cron describe a single ENTRYPOINT; with --config set them in the file"
    )


def test_check_shows_coerced_default_parameters() -> None:
    result = dockyard("serve", HELLO, "--param", "goodbye=true", "--check")
    assert result.returncode == 0, result.stderr
    assert 'parameters: {"goodbye": true}' in result.stdout


def test_state_commands_ignore_unrelated_invalid_settings(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    open_store(state).close()
    result = dockyard("run", "ls", "--state", str(state), env={"DOCKYARD_LIMIT": "lots"})
    assert result.returncode == 0, result.stderr
