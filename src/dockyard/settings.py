"""Process-wide settings: the one place that reads ``DOCKYARD_*`` environment variables.

Precedence is flag > environment > dockyard.yaml > default: the CLI passes only the
flags that were given, the YAML file's top-level values come in below the
environment, and everything is validated before start-up.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from dockyard.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The values of DOCKYARD_LOG_LEVEL (any case)."""

DATABASE_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
"""The schemes of DOCKYARD_DATABASE_URL (PostgreSQL, opened with psycopg 3)."""
_DATABASE_EXAMPLE = "postgresql://dockyard@db.example:5432/dockyard"

DEFAULT_LIMIT = 5
"""Concurrent runs per serve process when no limit is given (0 means no limit).

Prefect's serve has no limit by default; after downtime that starts every late run at
once and exhausts memory. Five matches Prefect's own runner default process limit.
"""


class Settings(BaseSettings):
    """Everything ``dockyard serve`` is configured with, from flags, env and YAML."""

    # Durations and counts are finite: DOCKYARD_HEARTBEAT=inf would never tick.
    model_config = SettingsConfigDict(
        env_prefix="DOCKYARD_", frozen=True, extra="ignore", allow_inf_nan=False
    )

    # Process-wide.
    state: str = ".dockyard/state.db"
    database_url: SecretStr | None = None
    database_url_file: str | None = None
    # libpq reads PGPASSWORD on every connect, but flow code must not see it: it is kept
    # here and removed from the environment once settings are read (SECRET_ENV).
    pg_password: SecretStr | None = Field(default=None, validation_alias="PGPASSWORD")
    # At most a day: the rows of replicas not seen for a day are deleted.
    replica_timeout: float = Field(default=30.0, gt=0, le=86400)
    database_wait: float = Field(default=300.0, ge=0, le=86400)
    """How long start-up waits for a database server that cannot be reached (0: not)."""
    config: str | None = None
    limit: int | None = Field(default=None, ge=0)
    pause_on_shutdown: bool = True
    shutdown_grace: float = Field(default=25.0, ge=0)
    kill_delay: float = Field(default=5.0, ge=0)
    misfire_grace: float = Field(default=15.0, gt=0, le=366 * 86400)
    heartbeat: float = Field(default=5.0, gt=0, le=3600)
    max_log_lines: int = Field(default=10_000, ge=10)
    # Run history retention: finished runs older than this many days, or beyond the newest
    # N per deployment, are pruned with their logs (0: keep them all).
    retention_days: float = Field(default=30.0, ge=0, le=36500)
    retention_runs: int = Field(default=10_000, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    webserver: bool | None = None
    api_token: SecretStr | None = None
    api_token_file: str | None = None
    health_threshold: float = Field(default=30.0, gt=0)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024**3)
    max_parameter_bytes: int = Field(default=256 * 1024, ge=1024, le=1024**3)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Code from git (`--source URL`); credentials only from the environment or files.
    source: str | None = None
    source_branch: str | None = None
    source_tag: str | None = None
    source_commit: str | None = None
    source_pull_interval: float = Field(default=60.0, gt=0)
    source_dir: str | None = None
    source_username: str | None = None
    source_token: SecretStr | None = None
    source_token_file: str | None = None
    source_ssh_key_file: str | None = None
    source_known_hosts_file: str | None = None
    source_submodules: bool = False
    source_webhook_secret: SecretStr | None = None
    source_check_timeout: float = Field(default=60.0, gt=0)
    source_startup_timeout: float = Field(default=300.0, gt=0)
    source_staleness: float = Field(default=900.0, gt=0)
    debug: bool = False
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # How runs start: forked from a warm fork server, or each in a fresh interpreter.
    executor: Literal["warm", "fresh"] = "warm"
    # The git commit dockyard was built from (the runtime image's build sets it): the
    # revision label of dockyard_build_info.
    build_revision: str | None = Field(default=None, max_length=100)

    # One deployment from the command line or environment (`dockyard serve ENTRYPOINT`).
    entrypoint: str | None = None
    name: str | None = None
    cron: Annotated[list[str], NoDecode] = Field(default_factory=list)
    interval: Annotated[list[float], NoDecode] = Field(default_factory=list)
    rrule: Annotated[list[str], NoDecode] = Field(default_factory=list)
    timezone: str | None = None
    params: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    tags: Annotated[list[str], NoDecode] = Field(default_factory=list)
    description: str | None = None
    version: str | None = None
    paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, ge=1)
    overlap: str | None = None
    catchup: str | None = None

    @field_validator("cron", "rrule", "tags", "interval", "allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any, info: Any) -> Any:
        # From the environment: DOCKYARD_TAGS=a,b  DOCKYARD_INTERVAL=60  DOCKYARD_CRON="0 * * * *"
        # (several crons separated by ';'; several rrules by newlines, since rrules hold ';').
        if isinstance(value, str):
            sep = {"cron": ";", "rrule": "\n"}.get(info.field_name, ",")
            return [part.strip() for part in value.split(sep) if part.strip()]
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError('expected a JSON object, e.g. {"day": "2026-01-01"}') from None
        return value

    @field_validator("state", mode="after")
    @classmethod
    def _state(cls, value: str) -> str:
        problem = state_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value().strip() if value is not None else ""
        if not url:
            return None
        problem = database_url_problem(url)
        if problem:
            raise ValueError(problem)
        return SecretStr(url)

    @field_validator("log_format", "executor", mode="before")
    @classmethod
    def _log_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="after")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return level

    @property
    def effective_limit(self) -> int | None:
        """The concurrent-run cap in force: None means unlimited."""
        if self.limit is None:
            return DEFAULT_LIMIT
        return self.limit or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        renamed = _RenamedEnvSource(settings_cls)
        return (init_settings, env_settings, renamed, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    """Top-level values of dockyard.yaml, below flags and environment."""

    values: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k in self.settings_cls.model_fields}


class _RenamedEnvSource(PydanticBaseSettingsSource):
    """The variables of RENAMED_VARIABLES, below the variables that replace them."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {new: os.environ[old] for old, new in RENAMED_VARIABLES.items() if old in os.environ}


RENAMED_VARIABLES = {
    "DOCKYARD_BRANCH": "source_branch",
    "DOCKYARD_TAG": "source_tag",
    "DOCKYARD_COMMIT": "source_commit",
    "DOCKYARD_PULL_INTERVAL": "source_pull_interval",
}
"""Variables of earlier versions (old name → the setting it became): still read, with a
warning, below the new variable. DOCKYARD_TAG sat beside DOCKYARD_TAGS (deployment tags)."""
_WARNED: set[str] = set()


def warn_renamed(old: str, new: str) -> None:
    """``dockyard: warning: OLD is deprecated: use NEW`` on stderr, once per process."""
    line = f"dockyard: warning: {old} is deprecated: use {new}"
    if line not in _WARNED:
        _WARNED.add(line)
        sys.stderr.write(line + "\n")


def take_renamed(flags: dict[str, Any], key: str, old: str, new: str, value: Any) -> None:
    """Put the value of the deprecated flag ``old`` under ``key`` (where the value of its
    new name ``new`` goes), with a warning; both given, with different values, is an error."""
    if value is None or value == []:
        return
    current = flags.get(key)
    if current not in (None, []) and current != value:
        raise ConfigError(
            f"{old} (deprecated) and {new} are both given, with different values: give only {new}"
        )
    warn_renamed(old, new)
    flags[key] = value


def _check_renamed_variables() -> None:
    """Warn about each deprecated variable set; refuse one that disagrees with its new name."""
    for old, field in RENAMED_VARIABLES.items():
        if old not in os.environ:
            continue
        new = env_name(field)
        if new in os.environ and os.environ[new] != os.environ[old]:
            raise ConfigError(
                f"{old} (deprecated) and {new} are both set, to different values: unset {old}"
            )
        warn_renamed(old, new)


_SCHEDULE_FIELDS = ("cron", "interval", "rrule")


def load_settings(flags: dict[str, Any], yaml_values: Mapping[str, Any] | None = None) -> Settings:
    """Build settings from the given flags (only those given), env and YAML values.

    Errors name where the bad value came from: the flag or variable, or the file (and
    line) of ``yaml_values`` when it is ``dockyard.config.FileValues``. Combinations are
    checked too (``check_combinations``).
    """
    given = {k: v for k, v in flags.items() if v is not None and v != [] and v != {}}
    if any(k in given for k in _SCHEDULE_FIELDS):
        # A schedule given as a flag replaces the environment's, whatever its kind:
        # `--interval 60` with DOCKYARD_CRON set means the interval, not a conflict.
        given = {**{k: [] for k in _SCHEDULE_FIELDS}, **given}
    refuse_password_flag(given.get("database_url"))
    _check_renamed_variables()
    origin = _Origin(given, yaml_values)
    _YamlSource.values = dict(yaml_values or {})
    try:
        settings = Settings(**given)
        if settings.database_url_file and "database_url" not in given:
            origin.files["database_url"] = "DOCKYARD_DATABASE_URL_FILE"
            url = _secret_file("DOCKYARD_DATABASE_URL_FILE", settings.database_url_file)
            settings = Settings(**given, database_url=url)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, origin)) from None
    finally:
        _YamlSource.values = {}
    check_combinations(settings, origin)
    return settings


_FLAG_NAMES = {"params": "--param", "tags": "--tag", "version": "--deployment-version"}
"""Settings whose ``dockyard serve`` flag is not ``--`` + the field name."""
_ENV_NAMES = {"pg_password": "PGPASSWORD"}
"""Settings whose variable is not ``DOCKYARD_`` + the field name."""
_ENV_ONLY = frozenset(
    "kill_delay misfire_grace heartbeat max_log_lines log_level api_token api_token_file "
    "health_threshold source_dir source_username source_token source_token_file "
    "source_ssh_key_file source_known_hosts_file source_submodules source_webhook_secret "
    "source_check_timeout source_startup_timeout source_staleness max_request_bytes "
    "max_parameter_bytes allowed_hosts database_url_file pg_password replica_timeout "
    "database_wait retention_days retention_runs build_revision".split()
)
"""Settings that have no ``dockyard serve`` flag, only a ``DOCKYARD_*`` variable."""


class _Origin:
    """Where each setting's value comes from, to name it in an error."""

    def __init__(
        self, flags: Collection[str] = (), yaml_values: Mapping[str, Any] | None = None
    ) -> None:
        self.flags = set(flags)
        self.yaml = yaml_values or {}
        self.env = {k.upper() for k in os.environ if k.upper().startswith("DOCKYARD_")}
        self.files: dict[str, str] = {}
        """Settings read from a file a variable names (field → the variable)."""

    def where(self, field: str) -> str:
        """``flag --limit or DOCKYARD_LIMIT``; ``dockyard.yaml, line 3`` for a file value."""
        env = env_name(field)
        if field in self.files:
            return self.files[field]
        if field not in self.flags and env not in self.env:
            renamed = [old for old, new in RENAMED_VARIABLES.items() if new == field]
            if renamed and renamed[0] in self.env:
                return renamed[0]
            if field in self.yaml:
                return self._in_file(field)
        return env if field in _ENV_ONLY else f"flag {flag_name(field)} or {env}"

    def name(self, field: str, value: float) -> str:
        """The one place a duration comes from, with its value: ``--shutdown-grace (10s)``,
        ``DOCKYARD_HEARTBEAT (5s, the default)``, ``kill_delay in dockyard.yaml, line 2 (3s)``.
        """
        env = env_name(field)
        if field in self.flags:
            return f"{flag_name(field)} ({value:g}s)"
        if env in self.env:
            return f"{env} ({value:g}s)"
        if field in self.yaml:
            return f"{field} in {self._in_file(field)} ({value:g}s)"
        return f"{env} ({value:g}s, the default)"

    def _in_file(self, field: str) -> str:
        where = getattr(self.yaml, "where", None)
        return str(where(field)) if callable(where) else "dockyard.yaml"


def flag_name(field: str) -> str:
    """The ``dockyard serve`` flag of a setting: ``--shutdown-grace``, ``--tag``."""
    return _FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def env_name(field: str) -> str:
    """The variable a setting is read from: ``DOCKYARD_LIMIT``, ``PGPASSWORD``."""
    return _ENV_NAMES.get(field, f"DOCKYARD_{field.upper()}")


def has_flag(field: str) -> bool:
    """Whether ``dockyard serve`` has a flag for the setting (else only its variable)."""
    return field in Settings.model_fields and field not in _ENV_ONLY


def _one_line(exc: ValidationError, origin: _Origin) -> str:
    parts = []
    for err in exc.errors():
        # The setting itself, not an item of it (``interval.0`` is DOCKYARD_INTERVAL).
        field = str(err["loc"][0]) if err["loc"] else "settings"
        parts.append(f"{field} ({origin.where(field)}): {_message(err['msg'])}")
    return "invalid setting: " + "; ".join(parts)


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


_ORDERED = (
    ("heartbeat", "health_threshold", "or /health reports an idle process as stalled"),
    # A replica writes its heartbeat once a tick (at most DOCKYARD_HEARTBEAT apart).
    ("heartbeat", "replica_timeout", "or replicas count a live one as lost between two ticks"),
)
"""Pairs of settings where the first must be less than the second, and why."""


def check_combinations(settings: Settings, origin: _Origin | None = None) -> None:
    """Refuse settings that are valid alone but not together (one line naming both)."""
    origin = origin or _Origin()
    for small, large, why in _ORDERED:
        low, high = getattr(settings, small), getattr(settings, large)
        if low >= high:
            raise ConfigError(
                f"{origin.name(small, low)} must be less than {origin.name(large, high)}, "
                f"{why}: lower the first or raise the second"
            )


def state_problem(state: str) -> str | None:
    """Why ``state`` is not a usable state database path, or None.

    A URL (``postgresql://…``) would otherwise be taken as a relative path, creating
    directories named after it; the message shows it with its password masked.
    """
    if "://" in state:
        if state.partition("://")[0].lower() in DATABASE_SCHEMES:
            return (
                f"{redact_url(state)!r} is a database URL: give it with --database-url or "
                "DOCKYARD_DATABASE_URL; --state is a file path (the SQLite database, or with a "
                "database URL where local files go), e.g. /data/dockyard/state.db"
            )
        return (
            f"{redact_url(state)!r} is a database URL; --state is a SQLite file path, "
            "e.g. /data/dockyard/state.db (PostgreSQL: --database-url or DOCKYARD_DATABASE_URL)"
        )
    if not state.strip():
        return "is empty; give a file path, e.g. /data/dockyard/state.db"
    return None


_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db`` (and a
    ``?password=`` libpq accepts in the query is masked too)."""
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def database_url_problem(url: str) -> str | None:
    """Why ``url`` is not a PostgreSQL URL dockyard opens, or None (its password masked)."""
    scheme, sep, _ = url.partition("://")
    if not sep:  # not quoted: without "://" the masking cannot tell a password apart
        return f"is not a URL; give one such as {_DATABASE_EXAMPLE}"
    if scheme not in DATABASE_SCHEMES:  # as SQLAlchemy, which knows no POSTGRESQL://
        schemes = ", ".join(f"{s}://" for s in DATABASE_SCHEMES)
        return (
            f"{redact_url(url)!r} is not a PostgreSQL URL; use {schemes}, e.g. {_DATABASE_EXAMPLE}"
        )
    return None


def _has_password(url: str) -> bool:
    try:
        in_userinfo = urlsplit(url).password is not None
    except ValueError:
        in_userinfo = ":" in url.partition("://")[2].rpartition("@")[0]
    return in_userinfo or _QUERY_PASSWORD.search(url) is not None


def refuse_password_flag(url: str | None) -> None:
    """A ``--database-url`` with ``?password=`` is refused: process lists show argv, and
    only a password in the URL's ``user:password@`` part is hidden from them at start
    (``cli.app.main``); the CLI warns about that one."""
    if url is not None and _QUERY_PASSWORD.search(url) is not None:
        raise ConfigError(
            f"--database-url {redact_url(url)!r} holds a password, which every process list "
            "shows: pass the URL in DOCKYARD_DATABASE_URL_FILE or DOCKYARD_DATABASE_URL, or "
            "the password in PGPASSFILE or PGPASSWORD"
        )


def password_in_flag(argv: list[str]) -> bool:
    """Whether ``--database-url`` in these arguments carries a ``user:password@``."""
    for i, arg in enumerate(argv):
        if arg.startswith("--database-url="):
            value = arg.partition("=")[2]
        elif arg == "--database-url" and i + 1 < len(argv):
            value = argv[i + 1]
        else:
            continue
        if _has_password(value) and _QUERY_PASSWORD.search(value) is None:
            return True
    return False


def store_location(settings: Settings) -> str | Path:
    """What ``open_store`` opens: the database URL, or else the SQLite file of ``state``.

    The URL comes with its password (PGPASSWORD's when the URL has none), in the clear:
    pass it to ``open_store`` only (which names it with the password hidden), never
    print or log it.
    """
    if settings.database_url is None:
        return state_path(settings)
    url = settings.database_url.get_secret_value()
    if settings.pg_password is None or _has_password(url):
        return url
    parts = urlsplit(url)
    user, _, hosts = parts.netloc.rpartition("@")
    password = quote(settings.pg_password.get_secret_value(), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{hosts}"))


def state_path(settings: Settings) -> Path:
    return Path(settings.state).expanduser()


class _StateOnly(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", extra="ignore", allow_inf_nan=False)

    state: str = ".dockyard/state.db"
    database_url: SecretStr | None = None
    database_url_file: str | None = None
    pg_password: SecretStr | None = Field(default=None, validation_alias="PGPASSWORD")
    replica_timeout: float = Field(default=30.0, gt=0, le=86400)  # as in Settings


def load_state_setting(state: str | None, database_url: str | None = None) -> Settings:
    """Where the read commands find the state database: ``--state`` / ``--database-url``
    over DOCKYARD_STATE / DOCKYARD_DATABASE_URL (or its _FILE) and PGPASSWORD. Other
    DOCKYARD_* values don't matter here (DOCKYARD_REPLICA_TIMEOUT is checked alone)."""
    refuse_password_flag(database_url)
    try:
        env = _StateOnly()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, _Origin())) from None
    path = state if state is not None else env.state
    problem = state_problem(path)
    if problem:
        where = "flag --state" if state is not None else "DOCKYARD_STATE"
        raise ConfigError(f"invalid setting: state ({where}): {problem}")
    url, where = _database_url_of(env, database_url)
    if url is not None and (problem := database_url_problem(url.strip())):
        raise ConfigError(f"invalid setting: database_url ({where}): {problem}")
    return Settings.model_construct(
        state=path,
        database_url=SecretStr(url.strip()) if url and url.strip() else None,
        pg_password=env.pg_password,
        replica_timeout=env.replica_timeout,
    )


def _database_url_of(env: _StateOnly, flag: str | None) -> tuple[str | None, str]:
    """The database URL the read commands use (flag > file > variable), and where from."""
    if flag is not None:
        return flag, "flag --database-url"
    if env.database_url_file:
        path = env.database_url_file
        return _secret_file("DOCKYARD_DATABASE_URL_FILE", path), "DOCKYARD_DATABASE_URL_FILE"
    url = env.database_url.get_secret_value() if env.database_url else None
    return url, "DOCKYARD_DATABASE_URL"


class ClientSettings(BaseSettings):
    """Where the client commands (``deployment …``, ``run …``) and ``get_client`` outside a
    flow run find a serve process.

    ``url`` comes from ``--url`` or DOCKYARD_URL; ``api_token`` only from
    DOCKYARD_API_TOKEN, or from the file DOCKYARD_API_TOKEN_FILE names (which wins, as in
    the serve process), so that it never shows up in a process list or shell history.
    """

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", frozen=True, extra="ignore")

    url: str | None = None
    api_token: SecretStr | None = None
    api_token_file: str | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        given = value.strip()
        if not given.rstrip("/"):
            return None
        url = given if "://" in given else f"http://{given}"
        if not _is_http_url(url):
            raise ValueError(
                f"{redact_url(given)!r} is not an http(s) URL; "
                "give the serve process's address, e.g. http://127.0.0.1:8080"
            )
        return url.rstrip("/")

    @field_validator("api_token", mode="after")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        # The value is left out of the message: it is a secret.
        secret = value.get_secret_value().strip() if value is not None else ""
        if not secret:
            return None
        if not secret.isascii() or not secret.isprintable() or " " in secret:
            raise ValueError("must be printable ASCII without spaces (it is sent as a header)")
        return SecretStr(secret)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def load_client_settings(url: str | None) -> ClientSettings:
    """Client settings from ``--url`` (when given) over DOCKYARD_URL / DOCKYARD_API_TOKEN
    (or the file named by DOCKYARD_API_TOKEN_FILE)."""
    try:
        given: dict[str, Any] = {"url": url} if url is not None else {}
        settings = ClientSettings(**given)
        if settings.api_token_file:
            token = _secret_file("DOCKYARD_API_TOKEN_FILE", settings.api_token_file)
            settings = ClientSettings(**given, api_token=token)
        return settings
    except ValidationError as exc:
        parts = (_client_error(e, url is not None) for e in exc.errors())
        raise ConfigError("; ".join(parts)) from None


def _secret_file(variable: str, path: str) -> str:
    """The secret in the file ``variable`` names (a mounted secret), stripped."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"invalid setting: {variable}: cannot read {file}: {reason}") from None
    if not text:
        raise ConfigError(f"invalid setting: {variable}: {file} is empty")
    return text


def _client_error(error: ErrorDetails, url_given: bool) -> str:
    # The URL's error quotes the value (its password masked); the token's never does.
    field, message = str(error["loc"][0]), _message(error["msg"])
    if field == "url":
        return f"{'--url' if url_given else 'DOCKYARD_URL'} {message}"
    return f"invalid setting: DOCKYARD_{field.upper()}: {message}"
