"""Settings: flag > DOCKYARD_* environment > dockyard.yaml > default, validated in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import make_url

from dockyard import settings as settings_module
from dockyard.config import load_config
from dockyard.errors import ConfigError
from dockyard.settings import (
    DEFAULT_LIMIT,
    RENAMED_VARIABLES,
    Settings,
    env_name,
    flag_name,
    has_flag,
    load_client_settings,
    load_settings,
    load_state_setting,
    password_in_flag,
    redact_url,
    state_path,
    store_location,
    take_renamed,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DOCKYARD_* variable (nor libpq's PGPASSWORD) of the developer's shell leaks into
    these tests."""
    for key in list(os.environ):
        if key.startswith("DOCKYARD_") or key == "PGPASSWORD":
            monkeypatch.delenv(key)
    yield


def setting_error(flags: dict[str, object], yaml: dict[str, object] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(flags, yaml)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


def test_defaults() -> None:
    settings = load_settings({})

    assert settings.state == ".dockyard/state.db"
    assert settings.limit is None
    assert settings.effective_limit == DEFAULT_LIMIT == 5
    assert settings.pause_on_shutdown is True
    assert settings.shutdown_grace == 25.0
    assert settings.kill_delay == 5.0
    assert settings.misfire_grace == 15.0
    assert settings.max_log_lines == 10_000
    assert (settings.cron, settings.interval, settings.tags, settings.params) == ([], [], [], {})
    assert settings.entrypoint is None


def test_flag_beats_env_beats_yaml_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    yaml = {"limit": 2, "shutdown_grace": 7, "kill_delay": 3, "pause_on_shutdown": False}
    monkeypatch.setenv("DOCKYARD_LIMIT", "3")
    monkeypatch.setenv("DOCKYARD_SHUTDOWN_GRACE", "9")

    settings = load_settings({"limit": 4}, yaml)

    assert settings.limit == 4  # flag over env and yaml
    assert settings.shutdown_grace == 9  # env over yaml
    assert settings.kill_delay == 3  # yaml over default
    assert settings.pause_on_shutdown is False  # yaml over default
    assert settings.misfire_grace == 15  # default


def test_env_beats_yaml_for_a_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_PAUSE_ON_SHUTDOWN", "true")

    assert load_settings({}, {"pause_on_shutdown": False}).pause_on_shutdown is True
    assert load_settings({"pause_on_shutdown": False}, {}).pause_on_shutdown is False


def test_flags_not_given_do_not_hide_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI passes None / [] / {} for flags the user did not give.
    monkeypatch.setenv("DOCKYARD_NAME", "from-env")
    monkeypatch.setenv("DOCKYARD_TAGS", "a")
    monkeypatch.setenv("DOCKYARD_PARAMS", '{"day": "env"}')

    settings = load_settings({"name": None, "tags": [], "params": {}})

    assert (settings.name, settings.tags, settings.params) == ("from-env", ["a"], {"day": "env"})


def test_flag_beats_env_for_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_TAGS", "env1,env2")
    monkeypatch.setenv("DOCKYARD_NAME", "from-env")

    settings = load_settings({"tags": ["flag"], "name": "from-flag"})

    assert settings.tags == ["flag"]
    assert settings.name == "from-flag"


def test_a_schedule_flag_replaces_every_schedule_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKYARD_CRON", "0 * * * *")
    monkeypatch.setenv("DOCKYARD_RRULE", "FREQ=DAILY")
    monkeypatch.setenv("DOCKYARD_TIMEZONE", "Europe/Berlin")

    from_flag = load_settings({"interval": [60.0]})
    from_env = load_settings({})

    assert (from_flag.interval, from_flag.cron, from_flag.rrule) == ([60.0], [], [])
    assert from_flag.timezone == "Europe/Berlin"  # not a schedule: env still applies
    assert (from_env.cron, from_env.rrule) == (["0 * * * *"], ["FREQ=DAILY"])


def test_yaml_keys_that_are_not_settings_are_ignored() -> None:
    assert load_settings({}, {"limit": 1, "deployments": []}).limit == 1


def test_tags_from_env_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_TAGS", "etl, nightly,,team-a ")

    assert load_settings({}).tags == ["etl", "nightly", "team-a"]


def test_cron_from_env_splits_on_semicolons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_CRON", "0 * * * *; 30 2 * * 1")

    assert load_settings({}).cron == ["0 * * * *", "30 2 * * 1"]


def test_rrule_from_env_splits_on_newlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_RRULE", "FREQ=DAILY;BYHOUR=9\nFREQ=WEEKLY;BYDAY=MO")

    assert load_settings({}).rrule == ["FREQ=DAILY;BYHOUR=9", "FREQ=WEEKLY;BYDAY=MO"]


def test_interval_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_INTERVAL", "60,90.5")

    assert load_settings({}).interval == [60.0, 90.5]


def test_params_from_env_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_PARAMS", '{"day": "2026-01-01", "n": 3, "dry": true}')

    assert load_settings({}).params == {"day": "2026-01-01", "n": 3, "dry": True}


def test_params_that_are_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_PARAMS", "day=today")

    message = setting_error({})

    assert message.startswith("invalid setting: params (flag --param or DOCKYARD_PARAMS): ")
    assert 'expected a JSON object, e.g. {"day": "2026-01-01"}' in message


def test_params_that_are_json_but_not_an_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_PARAMS", "[1, 2]")

    message = setting_error({})

    assert message.startswith("invalid setting: params (flag --param or DOCKYARD_PARAMS): ")


def test_limit_zero_means_no_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_LIMIT", "0")

    settings = load_settings({})

    assert settings.limit == 0
    assert settings.effective_limit is None


def test_limit_from_yaml_and_flag() -> None:
    assert load_settings({}, {"limit": 3}).effective_limit == 3
    assert load_settings({"limit": 0}, {"limit": 3}).effective_limit is None


def test_invalid_env_value_names_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_LIMIT", "many")

    message = setting_error({})

    assert message.startswith("invalid setting: limit (flag --limit or DOCKYARD_LIMIT): ")
    assert "valid integer" in message


def test_invalid_flag_value_names_flag_and_variable() -> None:
    message = setting_error({"shutdown_grace": -1})

    assert message == (
        "invalid setting: shutdown_grace (flag --shutdown-grace or DOCKYARD_SHUTDOWN_GRACE): "
        "Input should be greater than or equal to 0"
    )


def test_invalid_list_item_names_the_setting_not_the_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKYARD_INTERVAL", "60,soon")

    message = setting_error({})

    assert message.startswith("invalid setting: interval (flag --interval or DOCKYARD_INTERVAL): ")


def test_env_only_setting_names_only_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_MAX_LOG_LINES", "3")

    message = setting_error({})

    assert message.startswith("invalid setting: max_log_lines (DOCKYARD_MAX_LOG_LINES): ")


def test_several_invalid_values_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_LIMIT", "-2")
    monkeypatch.setenv("DOCKYARD_KILL_DELAY", "x")

    message = setting_error({})

    assert "limit (flag --limit or DOCKYARD_LIMIT)" in message
    assert "kill_delay (DOCKYARD_KILL_DELAY)" in message


def test_invalid_yaml_value_is_reported() -> None:
    message = setting_error({}, {"shutdown_grace": "long"})

    assert message.startswith("invalid setting: shutdown_grace ")


def test_state_path_expands_the_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.setenv("DOCKYARD_STATE", "~/dockyard/state.db")

    assert state_path(load_settings({})) == Path("/home/someone/dockyard/state.db")


# -- values checked alone and together ----------------------------------------------------


@pytest.mark.parametrize(("given", "level"), [("debug", "DEBUG"), (" Warning ", "WARNING")])
def test_log_level_is_case_insensitive(
    monkeypatch: pytest.MonkeyPatch, given: str, level: str
) -> None:
    monkeypatch.setenv("DOCKYARD_LOG_LEVEL", given)

    assert load_settings({}).log_level == level


def test_unknown_log_level_lists_the_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_LOG_LEVEL", "LOUD")

    assert setting_error({}) == (
        "invalid setting: log_level (DOCKYARD_LOG_LEVEL): 'LOUD' is not a log level; "
        "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_durations_are_finite(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DOCKYARD_HEALTH_THRESHOLD", value)

    assert "health_threshold (DOCKYARD_HEALTH_THRESHOLD): " in setting_error({})


@pytest.mark.parametrize(
    ("env", "flags", "expected"),
    [
        (
            {"DOCKYARD_HEARTBEAT": "30"},
            {},
            "DOCKYARD_HEARTBEAT (30s) must be less than DOCKYARD_HEALTH_THRESHOLD (30s, the "
            "default), or /health reports an idle process as stalled",
        ),
        (
            {"DOCKYARD_HEALTH_THRESHOLD": "4"},
            {},
            "DOCKYARD_HEARTBEAT (5s, the default) must be less than DOCKYARD_HEALTH_THRESHOLD "
            "(4s), or /health reports an idle process as stalled",
        ),
        (
            {"DOCKYARD_REPLICA_TIMEOUT": "5"},
            {},
            "DOCKYARD_HEARTBEAT (5s, the default) must be less than DOCKYARD_REPLICA_TIMEOUT "
            "(5s), or replicas count a live one as lost between two ticks",
        ),
        (
            {"DOCKYARD_HEARTBEAT": "40", "DOCKYARD_HEALTH_THRESHOLD": "60"},
            {},
            "DOCKYARD_HEARTBEAT (40s) must be less than DOCKYARD_REPLICA_TIMEOUT (30s, the "
            "default), or replicas count a live one as lost between two ticks",
        ),
    ],
)
def test_combinations_name_both_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], flags: dict[str, object], expected: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    assert setting_error(flags) == f"{expected}: lower the first or raise the second"


def test_a_heartbeat_below_the_threshold_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_HEARTBEAT", "29")

    assert load_settings({}).heartbeat == 29


def test_a_bad_value_from_the_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dockyard.yaml"
    path.write_text("deployments:\n  - entrypoint: a.py:a\nport: 70000\n", encoding="utf-8")

    message = setting_error({}, load_config(path).process_settings())

    assert message == (
        f"invalid setting: port ({path}, line 3): Input should be less than or equal to 65535"
    )


def test_the_environment_over_a_bad_file_value_is_named_as_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKYARD_PORT", "70000")

    message = setting_error({}, {"port": 8080})

    assert message.startswith("invalid setting: port (flag --port or DOCKYARD_PORT): ")


# -- the state database is a file ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("postgresql://u:p@ss/w@rd@host:5432/db", "postgresql://u:***@host:5432/db"),
        ("sqlite:///state.db", "sqlite:///state.db"),
        (
            "postgresql://h/db?sslmode=require&password=s3",
            "postgresql://h/db?sslmode=require&password=***",
        ),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_database_url_is_not_a_state_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_STATE", "postgresql://user:secret@host/db")

    message = setting_error({})

    assert message.startswith(
        "invalid setting: state (flag --state or DOCKYARD_STATE): "
        "'postgresql://user:***@host/db' is a database URL: give it with --database-url or "
        "DOCKYARD_DATABASE_URL; --state is a file path"
    )
    assert "secret" not in message


def test_the_read_commands_refuse_a_database_url_too() -> None:
    with pytest.raises(ConfigError) as info:
        load_state_setting("sqlite:///x.db")

    assert str(info.value).startswith("invalid setting: state (flag --state): 'sqlite:///x.db'")


# -- the state database on a PostgreSQL server ------------------------------------------

SECRET = "pa:ss/w@rd-3141"
"""A password with the characters a URL must escape (':', '/', '@')."""


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://dockyard@db:5432/dockyard",
        "postgres://dockyard@db/dockyard",
        "postgresql+psycopg://dockyard@db/dockyard",
    ],
)
def test_the_accepted_database_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f" {url} ")

    settings = load_settings({})

    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == url
    assert store_location(settings) == url


def test_without_a_database_url_the_store_is_the_state_file() -> None:
    settings = load_settings({"state": "/data/state.db"})

    assert settings.database_url is None
    assert store_location(settings) == Path("/data/state.db")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://root:hunter2-secret@db/x", "'mysql://root:***@db/x'"),
        ("sqlite:///state.db", "'sqlite:///state.db'"),
        ("POSTGRESQL://dockyard@db/x", "'POSTGRESQL://dockyard@db/x'"),
    ],
)
def test_another_scheme_is_refused_naming_the_accepted_ones(
    monkeypatch: pytest.MonkeyPatch, url: str, shown: str
) -> None:
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", url)

    message = setting_error({})

    assert message == (
        "invalid setting: database_url (flag --database-url or DOCKYARD_DATABASE_URL): "
        f"{shown} is not a PostgreSQL URL; use postgresql://, postgres://, "
        "postgresql+psycopg://, e.g. postgresql://dockyard@db.example:5432/dockyard"
    )


def test_a_database_url_without_a_scheme_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without "scheme://" nothing tells the password apart: the value is not shown at all.
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "dockyard:hunter2-secret@db/dockyard")

    message = setting_error({})

    assert message == (
        "invalid setting: database_url (flag --database-url or DOCKYARD_DATABASE_URL): is not "
        "a URL; give one such as postgresql://dockyard@db.example:5432/dockyard"
    )


def test_a_password_in_the_flags_query_is_refused() -> None:
    # One in user:password@ is hidden from process lists by the CLI (tests/cli).
    message = setting_error({"database_url": "postgresql://db/x?password=hunter2-secret"})

    assert message.startswith("--database-url 'postgresql://")
    assert message.endswith(
        "holds a password, which every process list shows: pass the URL in "
        "DOCKYARD_DATABASE_URL_FILE or DOCKYARD_DATABASE_URL, or the password in PGPASSFILE "
        "or PGPASSWORD"
    )
    assert "hunter2" not in message


def test_the_flag_without_a_password_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "postgresql://env@db/dockyard")

    settings = load_settings({"database_url": "postgresql://flag@db/dockyard"})

    assert store_location(settings) == "postgresql://flag@db/dockyard"


def test_the_url_file_wins_over_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "database-url"
    secret_file.write_text(f"postgresql://dockyard:{quote(SECRET, safe='')}@db/dockyard\n")
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "postgresql://env@db/dockyard")
    monkeypatch.setenv("DOCKYARD_DATABASE_URL_FILE", str(secret_file))

    location = store_location(load_settings({}))

    assert isinstance(location, str)
    assert make_url(location).password == SECRET
    assert make_url(location).username == "dockyard"


def test_a_bad_url_in_the_file_names_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "database-url"
    secret_file.write_text("mysql://root:hunter2-secret@db/x")
    monkeypatch.setenv("DOCKYARD_DATABASE_URL_FILE", str(secret_file))

    message = setting_error({})

    assert message.startswith(
        "invalid setting: database_url (DOCKYARD_DATABASE_URL_FILE): 'mysql://root:***@db/x' "
        "is not a PostgreSQL URL; "
    )


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot read"), ("\n", "is empty")])
def test_an_unusable_url_file_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None, problem: str
) -> None:
    secret_file = tmp_path / "database-url"
    if content is not None:
        secret_file.write_text(content)
    monkeypatch.setenv("DOCKYARD_DATABASE_URL_FILE", str(secret_file))

    message = setting_error({})

    assert message.startswith("invalid setting: DOCKYARD_DATABASE_URL_FILE: ")
    assert problem in message and str(secret_file) in message


def test_pgpassword_goes_into_a_url_without_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # The serve process removes PGPASSWORD from its environment (flow code must not read
    # it), so libpq would no longer find it there: the store gets it in the URL instead.
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "postgresql://dockyard@db:5432/dockyard")
    monkeypatch.setenv("PGPASSWORD", SECRET)

    settings = load_settings({})
    location = store_location(settings)

    assert isinstance(location, str)
    url = make_url(location)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "dockyard", SECRET, "db", 5432, "dockyard"
    )  # fmt: skip
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_pgpassword_without_a_user_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "postgresql://db/dockyard")
    monkeypatch.setenv("PGPASSWORD", SECRET)

    url = make_url(str(store_location(load_settings({}))))

    assert (url.username, url.password, url.host) == ("", SECRET, "db")


def test_a_password_in_the_url_wins_over_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "postgresql://dockyard:from-url@db/dockyard")
    monkeypatch.setenv("PGPASSWORD", SECRET)

    assert store_location(load_settings({})) == "postgresql://dockyard:from-url@db/dockyard"


def test_replica_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({}).replica_timeout == 30.0
    monkeypatch.setenv("DOCKYARD_REPLICA_TIMEOUT", "12.5")
    assert load_settings({}).replica_timeout == 12.5


@pytest.mark.parametrize("value", ["0", "-3", "inf", "100000"])
def test_a_bad_replica_timeout_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DOCKYARD_REPLICA_TIMEOUT", value)

    assert setting_error({}).startswith(
        "invalid setting: replica_timeout (DOCKYARD_REPLICA_TIMEOUT): "
    )


def test_the_read_commands_find_the_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "postgresql://env@db/dockyard")
    monkeypatch.setenv("DOCKYARD_REPLICA_TIMEOUT", "7")
    monkeypatch.setenv("PGPASSWORD", SECRET)
    monkeypatch.setenv("DOCKYARD_HEARTBEAT", "not even a number")  # not the read commands'

    from_env = load_state_setting(None)
    from_flag = load_state_setting(None, "postgresql://flag@db/dockyard")
    secret_file = tmp_path / "database-url"
    secret_file.write_text("postgresql://file@db/dockyard")
    monkeypatch.setenv("DOCKYARD_DATABASE_URL_FILE", str(secret_file))
    from_file = load_state_setting(None)

    assert make_url(str(store_location(from_env))).username == "env"
    assert make_url(str(store_location(from_flag))).username == "flag"
    assert make_url(str(store_location(from_file))).username == "file"
    assert make_url(str(store_location(from_file))).password == SECRET
    assert from_env.replica_timeout == 7.0


def test_the_read_commands_refuse_a_password_flag_and_a_bad_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError) as info:
        load_state_setting(None, "postgresql://u@db/x?password=hunter2-secret")
    assert str(info.value).startswith(
        "--database-url 'postgresql://u@db/x?password=***' holds a password"
    )
    assert load_state_setting(None, "postgresql://u:pw@db/x").database_url is not None

    monkeypatch.setenv("DOCKYARD_DATABASE_URL", "mysql://u:hunter2-secret@db/x")
    with pytest.raises(ConfigError) as info:
        load_state_setting(None)
    assert str(info.value).startswith(
        "invalid setting: database_url (DOCKYARD_DATABASE_URL): 'mysql://u:***@db/x' is not a "
        "PostgreSQL URL"
    )

    monkeypatch.setenv("DOCKYARD_REPLICA_TIMEOUT", "-1")
    with pytest.raises(ConfigError) as info:
        load_state_setting(None)
    assert str(info.value).startswith(
        "invalid setting: replica_timeout (DOCKYARD_REPLICA_TIMEOUT): "
    )


# -- the client's URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://dockyard.example.com/", "https://dockyard.example.com"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_client_urls(given: str, url: str) -> None:
    assert load_client_settings(given).url == url


@pytest.mark.parametrize(
    "given", ["::::", "ftp://host", "http://", "http://host:port", "http:///x"]
)
def test_client_url_that_is_not_http(given: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_client_settings(given)

    assert str(info.value).startswith(f"--url {given!r} is not an http(s) URL; ")


@pytest.mark.parametrize(
    ("argv", "warned"),
    [
        (["serve", "--database-url", "postgresql://u:pw@db/x"], True),
        (["run", "ls", "--database-url=postgresql://u:pw@db/x"], True),
        (["run", "ls", "--database-url", "postgresql://u@db/x"], False),
        (["run", "ls", "--database-url", "postgresql://db/x?password=pw"], False),  # refused
        (["run", "ls", "--state", "postgresql://u:pw@db/x"], False),
        (["run", "ls", "--database-url"], False),
    ],
)
def test_password_in_flag_finds_a_password_the_cli_hides(argv: list[str], warned: bool) -> None:
    assert password_in_flag(argv) is warned


# -- renamed settings ---------------------------------------------------------------------


@pytest.fixture
def warnings_shown(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Deprecation warnings are printed once per process: start this test with none shown."""
    monkeypatch.setattr(settings_module, "_WARNED", set())
    yield


@pytest.mark.parametrize(("old", "field"), sorted(RENAMED_VARIABLES.items()))
def test_an_old_variable_sets_the_renamed_setting_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    warnings_shown: None,
    old: str,
    field: str,
) -> None:
    value = "60" if field == "source_pull_interval" else "release"
    monkeypatch.setenv(old, value)

    settings = load_settings({})
    load_settings({})  # settings are loaded several times by one command: warned once

    assert str(getattr(settings, field)).removesuffix(".0") == value
    assert capsys.readouterr().err == (
        f"dockyard: warning: {old} is deprecated: use DOCKYARD_{field.upper()}\n"
    )


def test_the_renamed_variables_are_the_git_settings() -> None:
    assert RENAMED_VARIABLES == {
        "DOCKYARD_BRANCH": "source_branch",
        "DOCKYARD_TAG": "source_tag",
        "DOCKYARD_COMMIT": "source_commit",
        "DOCKYARD_PULL_INTERVAL": "source_pull_interval",
    }
    assert set(RENAMED_VARIABLES.values()) <= set(Settings.model_fields)


def test_a_flag_beats_an_old_variable(
    monkeypatch: pytest.MonkeyPatch, warnings_shown: None
) -> None:
    monkeypatch.setenv("DOCKYARD_BRANCH", "from-env")

    assert load_settings({"source_branch": "from-flag"}).source_branch == "from-flag"


def test_an_old_variable_beats_the_file(
    monkeypatch: pytest.MonkeyPatch, warnings_shown: None
) -> None:
    monkeypatch.setenv("DOCKYARD_PULL_INTERVAL", "5")

    assert load_settings({}, {"source_pull_interval": 9}).source_pull_interval == 5


def test_old_and_new_variable_with_the_same_value(
    monkeypatch: pytest.MonkeyPatch, warnings_shown: None
) -> None:
    monkeypatch.setenv("DOCKYARD_TAG", "v1")
    monkeypatch.setenv("DOCKYARD_SOURCE_TAG", "v1")

    assert load_settings({}).source_tag == "v1"


def test_old_and_new_variable_that_disagree(
    monkeypatch: pytest.MonkeyPatch, warnings_shown: None
) -> None:
    monkeypatch.setenv("DOCKYARD_COMMIT", "a" * 40)
    monkeypatch.setenv("DOCKYARD_SOURCE_COMMIT", "b" * 40)

    assert setting_error({}) == (
        "DOCKYARD_COMMIT (deprecated) and DOCKYARD_SOURCE_COMMIT are both set, to different "
        "values: unset DOCKYARD_COMMIT"
    )


def test_a_bad_value_of_an_old_variable_names_it(
    monkeypatch: pytest.MonkeyPatch, warnings_shown: None
) -> None:
    monkeypatch.setenv("DOCKYARD_PULL_INTERVAL", "soon")

    assert setting_error({}).startswith(
        "invalid setting: source_pull_interval (DOCKYARD_PULL_INTERVAL): "
    )


def test_the_deployment_version_flag_is_named_in_errors() -> None:
    assert flag_name("version") == "--deployment-version"
    assert env_name("version") == "DOCKYARD_VERSION"
    assert (flag_name("tags"), flag_name("source_pull_interval")) == (
        "--tag", "--source-pull-interval"
    )  # fmt: skip


def test_take_renamed(warnings_shown: None, capsys: pytest.CaptureFixture[str]) -> None:
    flags: dict[str, object] = {"source_tag": None}

    take_renamed(flags, "source_tag", "--git-tag", "--source-tag", None)  # not given
    assert flags == {"source_tag": None} and capsys.readouterr().err == ""
    take_renamed(flags, "source_tag", "--git-tag", "--source-tag", "v1")
    assert flags == {"source_tag": "v1"}
    assert (
        capsys.readouterr().err == "dockyard: warning: --git-tag is deprecated: use --source-tag\n"
    )
    take_renamed(flags, "source_tag", "--git-tag", "--source-tag", "v1")  # same value: fine
    with pytest.raises(ConfigError, match="give only --source-tag$"):
        take_renamed(flags, "source_tag", "--git-tag", "--source-tag", "v2")


# -- the README's settings table lists every setting --------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_settings() -> tuple[dict[str, tuple[str, str, str]], str]:
    """The settings table's rows (variable → flag, default, meaning) and the text after it
    up to the next section (the renamed settings)."""
    section = README.read_text(encoding="utf-8").partition("\n### Settings and environment\n")[2]
    section = section.partition("\n## ")[0]
    rows: dict[str, tuple[str, str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 or cells[1] in ("env", "---"):
            continue
        (variable,) = re.findall(r"^`([A-Z_]+)`$", cells[1]) or [cells[1]]
        assert variable not in rows, f"{variable} has two rows"
        rows[variable] = (cells[0], cells[2], cells[3])
    return rows, section


def test_the_readme_lists_every_setting_with_its_flag_default_and_meaning() -> None:
    rows, _ = readme_settings()
    expected = {env_name(field): field for field in Settings.model_fields}

    assert set(rows) == set(expected), (
        f"missing from README.md's settings table: {sorted(set(expected) - set(rows))}; "
        f"rows that are no setting: {sorted(set(rows) - set(expected))}"
    )
    for variable, field in expected.items():
        flag, default, meaning = rows[variable]
        if field == "entrypoint":
            assert flag == "ENTRYPOINT"
        elif has_flag(field):
            assert flag.startswith(f"`{flag_name(field)}"), (variable, flag)
        else:
            assert flag == "", f"{variable} has no flag, but the table names {flag}"
        assert default and meaning, variable


def test_the_readme_lists_the_renamed_settings() -> None:
    _, section = readme_settings()
    renamed = section.partition("**Renamed settings.**")[2]

    for old, field in RENAMED_VARIABLES.items():
        assert f"`{old}`" in renamed and f"`{env_name(field)}`" in renamed, old
    for old in ("--branch", "--git-tag", "--commit", "--pull-interval", "--version", "--flow-tag"):
        assert re.search(rf"`[^`]*{old}[` ]", renamed), old
