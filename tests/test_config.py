"""``dockyard.yaml`` loading: real files in tmp_path, errors that name the file and path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockyard.config import deployment_options, load_config
from dockyard.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLI_TIMEOUT_SECONDS = 60


def write(tmp_path: Path, text: str, name: str = "dockyard.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


def test_valid_file_with_two_deployments_and_process_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        limit: 4
        pause_on_shutdown: false
        shutdown_grace: 10
        deployments:
          - entrypoint: flows/etl.py:etl
            name: hourly
            schedules:
              - cron: "0 * * * *"
                timezone: Europe/Berlin
              - interval: 3600
            parameters: {day: today}
            tags: [etl]
            concurrency_limit: 1
            overlap: skip
            catchup: none
            catchup_window: 3600
            paused: true
          - entrypoint: other.py:other
        """,
    )

    config = load_config(path)

    first, second = config.deployments
    assert first.entrypoint == "flows/etl.py:etl"
    assert first.name == "hourly"
    assert first.schedules == [
        {"cron": "0 * * * *", "timezone": "Europe/Berlin"},
        {"interval": 3600},
    ]
    assert first.parameters == {"day": "today"}
    assert first.tags == ["etl"]
    assert first.concurrency_limit == 1
    assert (first.overlap, first.catchup, first.catchup_window) == ("skip", "none", 3600)
    assert first.paused is True
    assert second.entrypoint == "other.py:other"
    assert (second.name, second.schedules, second.parameters) == (None, [], {})
    assert (second.overlap, second.catchup, second.paused) == ("allow", "latest", None)
    # Only the process-wide values the file sets, for the settings layer below env.
    assert config.process_settings() == {
        "limit": 4,
        "pause_on_shutdown": False,
        "shutdown_grace": 10,
    }


def test_the_example_file_loads() -> None:
    config = load_config(EXAMPLES / "dockyard.yaml")

    assert len(config.deployments) == 5
    assert config.process_settings()["limit"] == 4


def test_deployment_options_build_schedules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        deployments:
          - entrypoint: a.py:a
            schedules: [{interval: 60}, {cron: "*/5 * * * *"}]
        """,
    )
    entry = load_config(path).deployments[0]

    options = deployment_options(entry, 0)

    interval, cron = options["schedules"]
    assert interval.to_dict()["interval"] == 60.0
    assert cron.to_dict()["cron"] == "*/5 * * * *"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "limits: 3\ndeployments:\n  - entrypoint: a.py:a\n")

    assert config_error(path) == f"{path}: limits (line 1): unknown key"


def test_unknown_key_in_second_deployment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        deployments:
          - entrypoint: a.py:a
          - entrypoint: b.py:b
            nmae: typo
        """,
    )

    assert config_error(path) == f"{path}: deployments[1].nmae (line 4): unknown key"


def test_missing_entrypoint(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments:\n  - name: nightly\n")

    assert config_error(path) == f"{path}: deployments[0].entrypoint (line 2): Field required"


def test_wrong_type_names_the_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        deployments:
          - entrypoint: a.py:a
            concurrency_limit: lots
        """,
    )

    message = config_error(path)

    assert message.startswith(f"{path}: deployments[0].concurrency_limit (line 3): ")
    assert "valid integer" in message


def test_out_of_range_value(tmp_path: Path) -> None:
    path = write(tmp_path, "limit: -1\ndeployments:\n  - entrypoint: a.py:a\n")

    assert (
        config_error(path) == f"{path}: limit (line 1): Input should be greater than or equal to 0"
    )


def test_several_errors_report_the_first_and_a_count(tmp_path: Path) -> None:
    path = write(tmp_path, "bogus: 1\nother: 2\ndeployments:\n  - entrypoint: a.py:a\n")

    assert config_error(path) == f"{path}: bogus (line 1): unknown key (and 1 more)"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        deployments:
          - entrypoint: a.py:a
           name: misindented
        """,
    )

    message = config_error(path)

    assert message.startswith(f"{path}: invalid YAML (line 3): ")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)

    assert config_error(path) == (
        f"{path}: expected a mapping with a 'deployments:' list at the top"
    )


def test_empty_deployments_list(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments: []\n")

    message = config_error(path)

    assert message.startswith(f"{path}: deployments (line 1): ")
    assert "at least 1 item" in message


def test_missing_deployments_key(tmp_path: Path) -> None:
    path = write(tmp_path, "limit: 2\n")

    assert config_error(path) == f"{path}: deployments: Field required"


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "limit: 1\ndeployments:\n  - entrypoint: a.py:a\nlimit: 2\n")

    assert config_error(path) == (
        f"{path}: invalid YAML (line 4): duplicate key 'limit' (first on line 1); keep one"
    )


def test_a_merge_key_may_be_overridden(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        deployments:
          - &base {entrypoint: a.py:a, name: first, tags: [etl]}
          - <<: *base
            name: second
        """,
    )

    first, second = load_config(path).deployments

    assert (first.name, second.name, second.tags) == ("first", "second", ["etl"])


def test_aliases_that_expand_too_far_are_refused(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]" for p, n in zip("ab", "bc", strict=True)]
    small = write(tmp_path, "\n".join([*levels, "deployments: [{entrypoint: a.py:a}]"]))
    levels.append(f"d: &d [{', '.join(['*c'] * 100)}]")  # 100 * 1000 strings
    large = write(tmp_path, "\n".join([*levels, "deployments: [{entrypoint: a.py:a}]"]), "l.yaml")

    assert config_error(small) == f"{small}: a (line 1): unknown key (and 2 more)"
    assert config_error(large).startswith(f"{large}: expands to more than 100000 YAML nodes")


def test_a_file_over_the_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments: [{entrypoint: a.py:a}]\n" + "#" * 1024 * 1024)

    assert config_error(path) == (
        f"{path}: larger than 1 MiB; a dockyard.yaml holds deployments and settings: trim it"
    )


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments: " + "[" * 3000 + "]" * 3000 + "\n")

    assert config_error(path).startswith(f"{path}: nested too deeply")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dockyard.yaml"
    path.write_bytes(b"deployments: [{entrypoint: caf\xe9.py:a}]\n")

    assert config_error(path) == f"{path}: not UTF-8 text (byte 30); save it as UTF-8"


def test_process_settings_know_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments: [{entrypoint: a.py:a}]\nport: 9000\n")

    values = load_config(path).process_settings()

    assert values == {"port": 9000}
    assert values.where("port") == f"{path}, line 2"
    assert values.where("limit") == str(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    assert config_error(path) == f"config file {str(path)!r} not found"


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    message = config_error(tmp_path)

    assert message.startswith(f"cannot read config file {str(tmp_path)!r}: ")


# -- errors found while building the deployments, through `dockyard serve --check` --------


def check(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--config", str(config), "--check"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def flows_file(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        textwrap.dedent(
            """\
            from dockyard import flow


            @flow
            def etl(day: str = "today", dry: bool = False):
                print(day)
            """
        ),
        encoding="utf-8",
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"dockyard: error: {expected}"]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            'cron: "0 0 * * * *"',
            "cron (line 7): '0 0 * * * *' has 6 fields; dockyard reads 5-field cron",
        ),
        ('cron: "61 * * * *"', "cron (line 7): '61 * * * *' is not a valid cron expression"),
        ("interval: -5", "interval (line 7): must be a positive number of seconds, got -5"),
    ],
)
def test_schedule_errors_name_file_and_path(tmp_path: Path, schedule: str, message: str) -> None:
    flows_file(tmp_path)
    path = write(
        tmp_path,
        f"""\
        deployments:
          - entrypoint: flows.py:etl
            name: first
          - entrypoint: flows.py:etl
            name: second
            schedules:
              - {schedule}
        """,
    )

    result = check(path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"dockyard: error: {path}: deployments[1].schedules[0].{message}")


def test_bad_default_parameters_name_the_deployment(tmp_path: Path) -> None:
    flows_file(tmp_path)
    path = write(
        tmp_path,
        """\
        deployments:
          - entrypoint: flows.py:etl
            parameters: {dry: maybe}
        """,
    )

    result = check(path)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"dockyard: error: {path}: deployments[0]: ")
    assert "dry" in line


def test_missing_entrypoint_file_names_the_deployment(tmp_path: Path) -> None:
    flows_file(tmp_path)
    path = write(
        tmp_path,
        """\
        deployments:
          - entrypoint: flows.py:etl
          - entrypoint: missing.py:etl
            name: other
        """,
    )

    result = check(path)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"dockyard: error: {path}: deployments[1]: ")
    assert "'missing.py' not found" in line


def test_entrypoints_are_relative_to_the_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    flows_file(project)
    path = write(project, "deployments:\n  - entrypoint: flows.py:etl\n    name: nightly\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--config", str(path), "--check"],
        cwd=elsewhere,
        env={k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )

    assert result.returncode == 0, result.stderr
    assert "etl/nightly" in result.stdout


def test_duplicate_deployment_names_fail_the_check(tmp_path: Path) -> None:
    flows_file(tmp_path)
    path = write(
        tmp_path,
        """\
        deployments:
          - entrypoint: flows.py:etl
            name: nightly
          - entrypoint: flows.py:etl
            name: nightly
        """,
    )

    result = check(path)

    assert_one_error_line(
        result, "deployment 'etl/nightly' is given twice; give each a different name"
    )
