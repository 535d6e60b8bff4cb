"""Process-wide settings: the one place that reads ``DOCKYARD_*`` environment variables.

Precedence is flag > environment > dockyard.yaml > default: the CLI passes only the
flags that were given, the YAML file's top-level values come in below the
environment, and everything is validated before start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from dockyard.errors import ConfigError

DEFAULT_LIMIT = 5
"""Concurrent runs per serve process when no limit is given (0 means no limit).

Prefect's serve has no limit by default; after downtime that starts every late run at
once and exhausts memory. Five matches Prefect's own runner default process limit.
"""


class Settings(BaseSettings):
    """Everything ``dockyard serve`` is configured with, from flags, env and YAML."""

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", frozen=True, extra="ignore")

    # Process-wide.
    state: str = ".dockyard/state.db"
    config: str | None = None
    limit: int | None = Field(default=None, ge=0)
    pause_on_shutdown: bool = True
    shutdown_grace: float = Field(default=25.0, ge=0)
    kill_delay: float = Field(default=5.0, ge=0)
    misfire_grace: float = Field(default=15.0, gt=0)
    heartbeat: float = Field(default=5.0, gt=0)
    max_log_lines: int = Field(default=10_000, ge=10)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    webserver: bool | None = None
    api_token: SecretStr | None = None
    api_token_file: str | None = None
    health_threshold: float = Field(default=30.0, gt=0)

    # Code from git (`--source URL`); credentials only from the environment or files.
    source: str | None = None
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    pull_interval: float = Field(default=60.0, gt=0)
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

    @field_validator("cron", "rrule", "tags", "interval", mode="before")
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
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    """Top-level values of dockyard.yaml, below flags and environment."""

    values: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k in self.settings_cls.model_fields}


_SCHEDULE_FIELDS = ("cron", "interval", "rrule")


def load_settings(flags: dict[str, Any], yaml_values: dict[str, Any] | None = None) -> Settings:
    """Build settings from the given flags (only those given), env and YAML values."""
    given = {k: v for k, v in flags.items() if v is not None and v != [] and v != {}}
    if any(k in given for k in _SCHEDULE_FIELDS):
        # A schedule given as a flag replaces the environment's, whatever its kind:
        # `--interval 60` with DOCKYARD_CRON set means the interval, not a conflict.
        given = {**{k: [] for k in _SCHEDULE_FIELDS}, **given}
    _YamlSource.values = dict(yaml_values or {})
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    finally:
        _YamlSource.values = {}


_FLAG_NAMES = {"params": "--param", "tags": "--tag"}
"""Settings whose ``dockyard serve`` flag is not ``--`` + the field name."""
_ENV_ONLY = frozenset(
    "kill_delay misfire_grace heartbeat max_log_lines log_level api_token api_token_file "
    "health_threshold source_dir source_username source_token source_token_file "
    "source_ssh_key_file source_known_hosts_file source_submodules source_webhook_secret "
    "source_check_timeout source_startup_timeout source_staleness".split()
)
"""Settings that have no ``dockyard serve`` flag, only a ``DOCKYARD_*`` variable."""


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        # The setting itself, not an item of it (``interval.0`` is DOCKYARD_INTERVAL).
        field = str(err["loc"][0]) if err["loc"] else "settings"
        env = f"DOCKYARD_{field.upper()}"
        flag = _FLAG_NAMES.get(field, "--" + field.replace("_", "-"))
        where = env if field in _ENV_ONLY else f"flag {flag} or {env}"
        parts.append(f"{field} ({where}): {err['msg']}")
    return "invalid setting: " + "; ".join(parts)


def state_path(settings: Settings) -> Path:
    return Path(settings.state).expanduser()


class _StateOnly(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", extra="ignore")

    state: str = ".dockyard/state.db"


def load_state_setting(state: str | None) -> Settings:
    """Only the state path, for the read commands: other DOCKYARD_* values don't matter."""
    path = state or _StateOnly().state
    return Settings.model_construct(state=path)


class ClientSettings(BaseSettings):
    """Where the client commands (``deployment …``, ``run …``) find a serve process.

    ``url`` comes from ``--url`` or DOCKYARD_URL; ``api_token`` only from
    DOCKYARD_API_TOKEN, so that it never shows up in a process list or shell history.
    """

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", frozen=True, extra="ignore")

    url: str | None = None
    api_token: SecretStr | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip().rstrip("/")
        if not value:
            return None
        return value if "://" in value else f"http://{value}"

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


def load_client_settings(url: str | None) -> ClientSettings:
    """Client settings from ``--url`` (when given) over DOCKYARD_URL / DOCKYARD_API_TOKEN."""
    try:
        given: dict[str, Any] = {"url": url} if url is not None else {}
        return ClientSettings(**given)
    except ValidationError as exc:
        where = {"url": "--url or DOCKYARD_URL", "api_token": "DOCKYARD_API_TOKEN"}
        parts = [f"{where.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid setting: " + "; ".join(parts)) from None
