"""``dockyard.yaml``: several deployments and process-wide settings in one file.

The file is validated with pydantic; every error names its path, for example
``deployments[1].schedules[0].cron: …``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dockyard.errors import ConfigError, DockyardError

PROCESS_KEYS = (
    "limit",
    "pause_on_shutdown",
    "shutdown_grace",
    "kill_delay",
    "state",
    "port",
    "host",
)


class DeploymentConfig(BaseModel):
    """One entry of ``deployments:``."""

    model_config = ConfigDict(extra="forbid")

    entrypoint: str
    name: str | None = None
    schedules: list[dict[str, Any]] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    version: str | None = None
    paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, ge=1)
    overlap: str = "allow"
    catchup: str = "latest"
    catchup_window: float | None = Field(default=None, gt=0)
    catchup_max: int | None = Field(default=None, ge=1)
    enforce_parameter_schema: bool = True


class SourceCredentialsConfig(BaseModel):
    """Where a git token or SSH key comes from (never the secret itself)."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    ssh_key_file: str | None = None
    known_hosts_file: str | None = None


class SourceConfig(BaseModel):
    """``source:``: the git repository the deployments' entrypoints live in."""

    model_config = ConfigDict(extra="forbid")

    url: str
    ref: str | None = Field(default=None, description="A branch, or a full commit SHA.")
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    credentials: SourceCredentialsConfig | None = None
    include_submodules: bool = False
    pull_interval: float | None = Field(default=None, gt=0)


class FileConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    deployments: list[DeploymentConfig] = Field(min_length=1)
    source: SourceConfig | None = None
    limit: int | None = Field(default=None, ge=0)
    pause_on_shutdown: bool | None = None
    shutdown_grace: float | None = Field(default=None, ge=0)
    kill_delay: float | None = Field(default=None, ge=0)
    state: str | None = None
    port: int | None = None
    host: str | None = None

    def process_settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in PROCESS_KEYS if getattr(self, k) is not None}


def error_path(loc: tuple[Any, ...]) -> str:
    """``('deployments', 1, 'schedules', 0, 'cron')`` → ``deployments[1].schedules[0].cron``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_config(path: str | Path) -> FileConfig:
    """Read and validate a dockyard.yaml; errors name the file and the path inside it."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(file)!r} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}: invalid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping with a 'deployments:' list at the top")
    try:
        return FileConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{file}: {error_path(first['loc'])}: {message}{more}") from None


def deployment_options(entry: DeploymentConfig, index: int) -> dict[str, Any]:
    """The deployment options the entry sets (others keep their defaults), schedules
    checked with their path."""
    from dockyard.core.schedules import schedule_from_dict

    given = entry.model_fields_set - {"entrypoint", "name"}
    options: dict[str, Any] = {key: getattr(entry, key) for key in given}
    if "schedules" in options:
        options["schedules"] = [
            schedule_from_dict(s, path=f"deployments[{index}].schedules[{j}]")
            for j, s in enumerate(entry.schedules)
        ] or None
    return options


def with_path(index: int, exc: DockyardError, file: str | Path | None = None) -> ConfigError:
    """Prefix an error raised while building deployments[index] with the file and path."""
    message = str(exc)
    if not message.startswith(f"deployments[{index}]"):
        message = f"deployments[{index}]: {message}"
    return ConfigError(f"{file}: {message}" if file is not None else message)
