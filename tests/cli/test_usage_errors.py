"""Bad configuration and command-line input: one line that names the place, exit code 2.

Every case runs the real CLI in a subprocess and asserts the exit code, the single
``dockyard: error: …`` line and that no traceback is printed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockyard.store import open_store
from tests.cli.test_cli import CLI_TIMEOUT_SECONDS, HELLO, ROOT, dockyard, error_line

# 9 levels of 9 aliases: 414 bytes that expand to 9**9 strings.
_LAUGHS = [
    '&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"&{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)),
]
BILLION_LAUGHS = (
    f"deployments:\n  - entrypoint: {ROOT / HELLO}\n"
    f"    parameters: {{name: [{', '.join(_LAUGHS)}]}}\n"
)
MEMORY_LIMIT_BYTES = 1024**3


def write(tmp_path: Path, text: str, name: str = "dockyard.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def hello_config(tmp_path: Path, extra: str = "") -> Path:
    return write(tmp_path, f"deployments:\n  - entrypoint: {ROOT / HELLO}\n{extra}")


def check_error(config: Path) -> str:
    """The one error line of ``dockyard serve --config CONFIG --check``."""
    return error_line(dockyard("serve", "--config", str(config), "--check"))


# -- dockyard.yaml ------------------------------------------------------------------------


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def check_in_1_gib(path: Path) -> subprocess.CompletedProcess[str]:
    """``serve --config path --check`` with its address space capped at 1 GiB."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--config", str(path), "--check"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        preexec_fn=_limit_memory,
    )


def test_nested_aliases_are_refused_before_they_expand(tmp_path: Path) -> None:
    path = write(tmp_path, BILLION_LAUGHS)
    assert path.stat().st_size < 500

    line = error_line(check_in_1_gib(path))  # before the fix: past 3 GiB in the probe

    assert line == (
        f"{path}: expands to more than 100000 YAML nodes or 100 levels (nested or recursive "
        "aliases?); write the values out or use fewer aliases"
    )


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"deployments:\n  - entrypoint: {ROOT / HELLO}\n    parameters: &p {{name: *p}}\n"
    )

    assert "expands to more than" in error_line(check_in_1_gib(path))


def test_a_file_over_one_mib_is_refused(tmp_path: Path) -> None:
    path = hello_config(tmp_path, "# " + "x" * (1024 * 1024) + "\n")

    line = check_error(path)
    assert line.startswith(f"{path}: larger than 1 MiB")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "port: 8081\nport: 8082\n",
            "{path}: invalid YAML (line 4): duplicate key 'port' (first on line 3); keep one",
        ),
        (  # the file and its line, not --port / DOCKYARD_PORT
            "port: 99999\n",
            "invalid setting: port ({path}, line 3): Input should be less than or equal to 65535",
        ),
    ],
)
def test_a_top_level_value_is_named_with_file_and_line(
    tmp_path: Path, extra: str, expected: str
) -> None:
    path = hello_config(tmp_path, extra)

    assert check_error(path) == expected.format(path=path)


def test_a_duplicate_key_inside_a_deployment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        deployments:
          - entrypoint: {ROOT / HELLO}
            name: first
            name: second
        """,
    )

    line = check_error(path)
    assert line.startswith(f"{path}: invalid YAML (line 4): duplicate key 'name'")


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dockyard.yaml"
    path.write_bytes(b"\xff\xfedeployments: []\n")

    line = check_error(path)
    assert line == f"{path}: not UTF-8 text (byte 0); save it as UTF-8"


# -- DOCKYARD_* settings ------------------------------------------------------------------


def test_an_unknown_log_level_names_the_variable_and_the_levels() -> None:
    result = dockyard("serve", HELLO, "--check", env={"DOCKYARD_LOG_LEVEL": "LOUD"})

    assert error_line(result) == (
        "invalid setting: log_level (DOCKYARD_LOG_LEVEL): 'LOUD' is not a log level; "
        "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DOCKYARD_HEARTBEAT", "inf", "heartbeat (DOCKYARD_HEARTBEAT): Input should be a finite"),
        (
            "DOCKYARD_KILL_DELAY",
            "nan",
            "kill_delay (DOCKYARD_KILL_DELAY): Input should be a finite",
        ),
        ("DOCKYARD_STATE", "", "state (flag --state or DOCKYARD_STATE): is empty"),
    ],
)
def test_bad_values_from_the_environment(variable: str, value: str, expected: str) -> None:
    result = dockyard("serve", HELLO, "--check", env={variable: value})

    assert error_line(result).startswith(f"invalid setting: {expected}")


def test_heartbeat_above_the_health_threshold_names_both() -> None:
    result = dockyard("serve", HELLO, "--check", env={"DOCKYARD_HEARTBEAT": "60"})

    assert error_line(result) == (
        "DOCKYARD_HEARTBEAT (60s) must be less than DOCKYARD_HEALTH_THRESHOLD (30s, the "
        "default), or /health reports an idle process as stalled: lower the first or raise "
        "the second"
    )


@pytest.mark.parametrize("command", [("deployment", "ls"), ("serve", HELLO, "--check")])
def test_a_database_url_as_state_is_refused_without_its_password(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = {"DOCKYARD_STATE": "postgresql://user:secret@host/db"}

    result = dockyard(*command, cwd=tmp_path, env=env)

    line = error_line(result)
    assert "'postgresql://user:***@host/db' is a database URL" in line
    assert "secret" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # no directory named after the URL


# -- the client commands ------------------------------------------------------------------


def test_a_url_that_is_not_http() -> None:
    result = dockyard("run", "ls", "--url", "::::")

    assert error_line(result) == (
        "--url '::::' is not an http(s) URL; give the serve process's address, "
        "e.g. http://127.0.0.1:8080"
    )


def test_a_bad_url_from_the_environment_hides_its_password() -> None:
    result = dockyard("deployment", "ls", env={"DOCKYARD_URL": "http://me:pw@host:port"})

    assert error_line(result).startswith("DOCKYARD_URL 'http://me:***@host:port' is not an http")


@pytest.mark.parametrize("value", ["-1", "0", "501", "99999999999999999999"])
def test_run_ls_limit_is_checked_before_reading(tmp_path: Path, value: str) -> None:
    state = tmp_path / "state.db"
    open_store(state).close()

    result = dockyard("run", "ls", "--limit", value, "--state", str(state))

    assert error_line(result).startswith("Invalid value for '--limit': ")


def test_run_logs_tail_is_checked_before_reading(tmp_path: Path) -> None:
    result = dockyard("run", "logs", "abcdef", "--tail", "-5", "--state", str(tmp_path / "x"))

    assert error_line(result).startswith("Invalid value for '--tail': ")


# -- a corrupt state database -------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("deployment", "ls"),
        ("deployment", "inspect", "etl/hourly"),
        ("deployment", "pause", "etl/hourly"),
        ("run", "ls"),
        ("run", "inspect", "abcdef"),
        ("run", "logs", "abcdef"),
        ("serve", str(ROOT / HELLO), "--port", "0"),
    ],
)
def test_a_corrupt_state_file_is_exit_2_everywhere(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    state = tmp_path / "state.db"
    state.write_bytes(b"not a database " * 100)

    result = dockyard(*command, "--state", str(state), cwd=tmp_path)

    assert error_line(result) == (
        f"cannot open state database {state}: file is not a database (corrupt or not SQLite); "
        "move it away or set --state or DOCKYARD_STATE to a new path"
    )
