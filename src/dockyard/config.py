"""``dockyard.yaml``: several deployments and process-wide settings in one file.

The file is validated with pydantic; every error names the file, its path inside it and
the line, for example ``dockyard.yaml: deployments[1].schedules[0].cron (line 7): …``.
It is read with a ``SafeLoader`` that refuses duplicate keys and documents that are
larger than :data:`MAX_BYTES` or expand (through aliases) to more than :data:`MAX_NODES`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from dockyard.errors import ConfigError, DockyardError

MAX_BYTES = 1024 * 1024
"""The largest dockyard.yaml read: it lists deployments and settings, not data."""
MAX_NODES = 100_000
"""The most YAML nodes a dockyard.yaml may expand to, each use of an alias counted in
full: 460 bytes of nested aliases ("billion laughs") expand to billions of nodes."""

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
    on_shutdown: str = "cancel"
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

    _file: str = PrivateAttr(default="dockyard.yaml")
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    def process_settings(self) -> FileValues:
        """The process-wide values the file sets, for the settings layer below env."""
        values = {k: getattr(self, k) for k in PROCESS_KEYS if getattr(self, k) is not None}
        return FileValues(values, self._file, self._lines)


Loc = tuple[str | int, ...]
"""A place in the file: ``('deployments', 1, 'name')``."""


class FileValues(dict[str, Any]):
    """Top-level values of a dockyard.yaml that knows where each is written.

    ``dockyard.settings`` names ``where(key)`` in its errors (``dockyard.yaml, line 3``)
    rather than the flag or variable the value did not come from.
    """

    def __init__(self, values: dict[str, Any], file: str, lines: dict[Loc, int]) -> None:
        super().__init__(values)
        self.file = file
        self._lines = lines

    def where(self, key: str) -> str:
        line = self._lines.get((key,))
        return f"{self.file}, line {line}" if line else self.file


def error_path(loc: tuple[Any, ...]) -> str:
    """``('deployments', 1, 'schedules', 0, 'cron')`` → ``deployments[1].schedules[0].cron``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_config(path: str | Path) -> FileConfig:
    """Read and validate a dockyard.yaml; errors name the file, the path inside it and the line."""
    file = Path(path)
    raw, lines = _parse(file, _read(file))
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping with a 'deployments:' list at the top")
    try:
        config = FileConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        where = f"{error_path(first['loc'])}{_line_of(lines, first['loc'])}"
        raise ConfigError(f"{file}: {where}: {message}{more}") from None
    config._file, config._lines = str(file), lines
    return config


def _read(file: Path) -> str:
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(file)!r} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"{file}: larger than {MAX_BYTES // 1024 // 1024} MiB; "
            "a dockyard.yaml holds deployments and settings: trim it"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _parse(file: Path, text: str) -> tuple[Any, dict[Loc, int]]:
    """The document and the line of every place in it (bounded, duplicate keys refused)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines = _lines(node, file)
        return loader.construct_document(node), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{file}: nested too deeply to be a dockyard.yaml") from None
    finally:
        loader.dispose()


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (not last-wins)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(self, node)
        return super().construct_mapping(node, deep=deep)


def _refuse_duplicate_keys(loader: _Loader, node: yaml.MappingNode) -> None:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        # `<<: *base` merges may repeat keys: the mapping's own value overrides the merged one.
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in first_line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {first_line[key]}); keep one",
                key_node.start_mark,
            )
        first_line[key] = line


def _lines(root: yaml.Node, file: Path) -> dict[Loc, int]:
    """Where each place of the document starts, walking aliases as often as they are used.

    The walk stops past MAX_NODES or MAX_DEPTH: that bounds what constructing and
    validating the document costs, whatever its aliases expand to (a recursive alias
    expands forever). Lines are kept for the first few levels, where the settings are.
    """
    lines: dict[Loc, int] = {}
    stack: list[tuple[yaml.Node, Loc, int]] = [(root, (), 0)]
    count = 0
    while stack:
        node, loc, depth = stack.pop()
        count += 1 + (len(node.value) if isinstance(node, yaml.MappingNode) else 0)
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise ConfigError(
                f"{file}: expands to more than {MAX_NODES} YAML nodes or {MAX_DEPTH} levels "
                "(nested or recursive aliases?); write the values out or use fewer aliases"
            )
        for child, key, line in _children(node):
            child_loc = (*loc, key) if depth < _LINE_DEPTH else loc
            lines.setdefault(child_loc, line + 1)
            stack.append((child, child_loc, depth + 1))
    return lines


MAX_DEPTH = 100
"""The deepest a dockyard.yaml may nest (aliases expanded)."""
_LINE_DEPTH = 8


def _children(node: yaml.Node) -> list[tuple[yaml.Node, str | int, int]]:
    """``(child, key or index, line)`` of a sequence or mapping node."""
    if isinstance(node, yaml.SequenceNode):
        return [(item, i, item.start_mark.line) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        return [(value, str(key.value), key.start_mark.line) for key, value in node.value]
    return []


def _line_of(lines: dict[Loc, int], loc: tuple[Any, ...]) -> str:
    """`` (line N)`` of the innermost written place of ``loc``, or nothing."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return f" (line {lines[loc[:end]]})"
    return ""


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


def with_path(
    index: int,
    exc: DockyardError,
    file: str | Path | None = None,
    config: FileConfig | None = None,
) -> ConfigError:
    """Prefix an error raised while building deployments[index] with the file and path.

    An error about one of its schedules (``schedules[1].slug: ...``) names that place and,
    given the ``config`` it came from, its line: ``deployments[0].schedules[1].slug (line 9)``.
    """
    message = str(exc)
    place = _SCHEDULE_PLACE.match(message)
    if place and place.group(1) in (None, str(index)):
        key = place.group(3)
        loc: Loc = ("deployments", index, "schedules", int(place.group(2)), *([key] if key else []))
        line = _line_of(config._lines, loc) if config is not None else ""
        message = f"{error_path(loc)}{line}{message[place.end() :]}"
    elif not message.startswith(f"deployments[{index}]"):
        message = f"deployments[{index}]: {message}"
    return ConfigError(f"{file}: {message}" if file is not None else message)


_SCHEDULE_PLACE = re.compile(r"(?:deployments\[(\d+)\]\.)?schedules\[(\d+)\](?:\.(\w+))?")
"""``[deployments[i].]schedules[j][.key]`` at the start of an error message."""
