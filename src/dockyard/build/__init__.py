"""``dockyard build``: an image that serves the given deployments.

``build_image(...)`` is the one entry point (the CLI and ``Flow.deploy`` call it). It
checks everything it can before touching the engine (entrypoints load and are flows,
schedules parse, the requirements file exists, the engine answers), then assembles the
context (``build.context``), writes the Dockerfile (``build.spec``) and builds and
pushes through the docker SDK (``build.docker``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard._version import __version__
from dockyard.build import spec as _spec
from dockyard.build.spec import BuildSpec, Dependencies
from dockyard.errors import EntrypointError, UsageError

if TYPE_CHECKING:
    from dockyard.core.deployments import Deployment

__all__ = [
    "BuildRequest",
    "BuiltImage",
    "build_image",
    "prepare",
    "push_image",
    "render_dockerfile",
]

Progress = Callable[[str, str], None]
_PROCESS_KEYS = ("limit", "pause_on_shutdown", "shutdown_grace", "kill_delay")
BUILD_OPTIONS = frozenset(
    {
        "project",
        "requirements",
        "dockerfile_template",
        "base_image",
        "port",
        "build_args",
        "labels",
        "platform",
        "offline",
        "nocache",
        "progress",
        *_PROCESS_KEYS,
    }
)
"""Keyword arguments of ``build_image`` that are not deployment options (``Flow.deploy``)."""
_DEFAULTS = {"catchup_window_seconds": 3600.0, "catchup_max": 10}


@dataclass(frozen=True)
class BuildRequest:
    """What to build; the CLI's flags and ``build_image``'s arguments, checked."""

    tag: str
    project: Path
    deployments: Sequence[Deployment]
    dependencies: Dependencies
    process_settings: Mapping[str, Any] = field(default_factory=dict)
    port: int = 8080
    base_image: str = field(default_factory=_spec.default_base_image)
    template: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    offline: bool = False
    nocache: bool = False


@dataclass(frozen=True)
class BuiltImage:
    """The result: image id and tag, size, labels, pushed digest (when pushed)."""

    tag: str
    image_id: str
    size_bytes: int
    labels: Mapping[str, str]
    deployments: Sequence[str]
    digest: str | None = None


def build_image(
    tag: str,
    *,
    entrypoints: Sequence[str] = (),
    config: str | os.PathLike[str] | None = None,
    deployments: Sequence[Deployment] = (),
    push: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> BuiltImage:
    """Build (and with ``push=True`` push) an image serving the given flows.

    Give ``entrypoints`` (``path/file.py:flow``, relative to ``project``) with the
    deployment options of ``dockyard serve`` (``name``, ``cron``, ``interval``, ``rrule``,
    ``timezone``, ``parameters``, ``tags``, ...), or ``config`` (a dockyard.yaml), or
    ``deployments`` made with ``flow.to_deployment``. Other options: ``project`` (the
    folder copied to /app; default the config's folder or the current one),
    ``base_image``, ``requirements``, ``dockerfile_template``, ``build_args``, ``labels``,
    ``platform``, ``offline``, ``nocache``, ``port``, and the process settings ``limit``,
    ``pause_on_shutdown``, ``shutdown_grace`` baked into the image's dockyard.yaml.
    Raises ``DockyardError`` with a one-line message on any failure.
    """
    from dockyard.build import docker as engine

    request = prepare(
        tag, entrypoints=entrypoints, config=config, deployments=deployments, **options
    )
    show = progress or console_progress()
    client = engine.connect()
    with tempfile.TemporaryDirectory(prefix="dockyard-build-") as tmp:
        context_tar, build_spec = _assemble(request, Path(tmp), show)
        labels = _labels(request, build_spec)
        show("info", f"building {tag} from {request.base_image} ({_summary(request)})")
        result = engine.build(
            client,
            context_tar,
            tag,
            dockerfile=f"{_spec.GEN_DIR}/Dockerfile",
            buildargs={"BASE_IMAGE": request.base_image, **request.build_args},
            labels=labels,
            platform=request.platform,
            nocache=request.nocache,
            progress=show,
            network_mode="none" if request.offline else None,
        )
    info = engine.image_info(client, result.image_id)
    digest = engine.push(client, tag, show) if push else None
    return BuiltImage(
        tag=tag,
        image_id=result.image_id,
        size_bytes=int(info.get("Size") or 0),
        labels=dict((info.get("Config") or {}).get("Labels") or {}),
        deployments=[d.full_name for d in request.deployments],
        digest=digest,
    )


def push_image(tag: str, *, progress: Progress | None = None) -> str:
    """Push an existing image with the usual registry credentials; returns its digest."""
    from dockyard.build import docker as engine

    return engine.push(engine.connect(), tag, progress or console_progress())


def render_dockerfile(tag: str, **options: Any) -> str:
    """The Dockerfile ``build_image`` would use (``--print-dockerfile``); no engine needed."""
    request = prepare(tag, **options)
    return _spec.dockerfile(_build_spec(request, "dockyard"), request.template)


# ── checking the request ─────────────────────────────────────────────────────────────


def prepare(
    tag: str,
    *,
    entrypoints: Sequence[str] = (),
    config: str | os.PathLike[str] | None = None,
    deployments: Sequence[Deployment] = (),
    project: str | os.PathLike[str] | None = None,
    requirements: str | os.PathLike[str] | None = None,
    dockerfile_template: str | os.PathLike[str] | None = None,
    base_image: str | None = None,
    port: int | None = None,
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    platform: str | None = None,
    offline: bool = False,
    nocache: bool = False,
    **deployment_options: Any,
) -> BuildRequest:
    """Check every input before anything is built; raise one-line errors."""
    _check_tag(tag)
    given = sum(bool(x) for x in (entrypoints, config, deployments))
    if given != 1:
        raise UsageError("give ENTRYPOINT(s), --config dockyard.yaml or deployments (one of them)")
    process = {k: deployment_options.pop(k) for k in _PROCESS_KEYS if k in deployment_options}
    process = {k: v for k, v in process.items() if v is not None}
    root = _project_dir(project, config)
    if config:
        loaded, from_file, file_port = _from_config(Path(config))
        process = {**from_file, **process}
        port = port or file_port
    elif entrypoints:
        loaded = _from_entrypoints(entrypoints, root, deployment_options)
    else:
        loaded = list(deployments)
    _check_unique(loaded)
    return BuildRequest(
        tag=tag,
        project=root,
        deployments=loaded,
        dependencies=_dependencies(root, requirements),
        process_settings=process,
        port=int(port or 8080),
        base_image=base_image or _spec.default_base_image(),
        template=_read_template(dockerfile_template),
        build_args=dict(build_args or {}),
        labels=dict(labels or {}),
        platform=platform,
        offline=offline,
        nocache=nocache,
    )


def _check_tag(tag: str) -> None:
    import re

    pattern = r"^[a-z0-9]+(?:[._:/-][a-zA-Z0-9_.-]+)*(?:@sha256:[0-9a-f]{64})?$"
    if not tag or not re.match(pattern, tag) or tag.endswith(":"):
        raise UsageError(f"-t/--image {tag!r} is not an image name; use e.g. acme/etl:1.0")


def _project_dir(project: str | os.PathLike[str] | None, config: Any) -> Path:
    if project is not None:
        root = Path(project)
    else:
        root = Path(config).parent if config else Path.cwd()
    if not root.is_dir():
        raise UsageError(f"project directory {str(root)!r} not found")
    return root.resolve()


def _from_entrypoints(
    entrypoints: Sequence[str], root: Path, options: dict[str, Any]
) -> list[Deployment]:
    if options.get("name") and len(entrypoints) > 1:
        raise UsageError("--name names one deployment; with several entrypoints leave it out")
    rest = {k: v for k, v in options.items() if k != "name"}
    return [_load(text, root, options.get("name"), rest) for text in entrypoints]


def _load(entrypoint: str, root: Path, name: str | None, options: dict[str, Any]) -> Deployment:
    from dockyard.execution.deploying import from_entrypoint

    try:
        return from_entrypoint(entrypoint, root, options, name=name)
    except EntrypointError as exc:
        cause = exc.__cause__
        if isinstance(cause, ModuleNotFoundError):
            raise EntrypointError(
                f"{exc}; dockyard build imports the flows to check them: install the "
                "project's requirements where you run it"
            ) from None
        raise


def _from_config(path: Path) -> tuple[list[Deployment], dict[str, Any], int | None]:
    from dockyard.config import load_config
    from dockyard.execution.deploying import from_config

    config = load_config(path)
    deployments = from_config(config, path)
    process = {k: v for k, v in config.process_settings().items() if k in _PROCESS_KEYS}
    return deployments, process, config.port


def _check_unique(deployments: Sequence[Deployment]) -> None:
    from dockyard.core.deployments import check_unique

    if not deployments:
        raise UsageError("nothing to build: no deployments given")
    check_unique(list(deployments))


def _dependencies(root: Path, requirements: str | os.PathLike[str] | None) -> Dependencies:
    if requirements is not None:
        path = Path(requirements)
        if not path.is_file():
            raise UsageError(f"requirements file {str(path)!r} not found")
        return Dependencies(_read_requirements(path), source=path.name)
    if (root / "requirements.txt").is_file():
        return Dependencies(
            _read_requirements(root / "requirements.txt"), source="requirements.txt"
        )
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return Dependencies()
    try:
        reqs = _spec.pyproject_requirements(pyproject.read_text(encoding="utf-8"))
        lock = next((root / n for n in ("uv.lock", "poetry.lock") if (root / n).is_file()), None)
        pins = _spec.lock_constraints(lock.read_text(encoding="utf-8")) if lock else None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise UsageError(f"cannot read {pyproject} or its lock file: {exc}") from None
    source = "pyproject.toml" + (f" + {lock.name}" if lock else "")
    return Dependencies(reqs or None, pins or None, source)


def _read_requirements(path: Path, depth: int = 0) -> str:
    """The file's lines, with ``-r other.txt`` includes inlined (the build sees one file)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.strip().split(maxsplit=1)
        if words and words[0] in ("-r", "--requirement") and len(words) == 2 and depth < 5:
            included = path.parent / words[1]
            if not included.is_file():
                raise UsageError(f"{path}: included requirements file {words[1]!r} not found")
            lines.append(_read_requirements(included, depth + 1))
        else:
            lines.append(line)
    return "\n".join(lines)


def _read_template(path: str | os.PathLike[str] | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"Dockerfile template {str(path)!r}: {exc.strerror}") from None


# ── turning the request into a spec and a context ────────────────────────────────────


def _build_spec(request: BuildRequest, dockyard_requirement: str) -> BuildSpec:
    entries = [_config_entry(d, request.project) for d in request.deployments]
    title = request.tag.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return BuildSpec(
        deployments=entries,
        deployment_names=[d.full_name for d in request.deployments],
        process_settings=dict(request.process_settings),
        base_image=request.base_image,
        dockyard_requirement=dockyard_requirement,
        dependencies=request.dependencies,
        offline=request.offline,
        port=request.port,
        title=title,
        dockyard_version=__version__,
    )


def _config_entry(deployment: Deployment, root: Path) -> dict[str, Any]:
    """A deployment as a dockyard.yaml entry whose entrypoint is relative to /app."""
    from dockyard.core.parameters import jsonable

    d = deployment
    if d.bound_instance is not None:
        raise UsageError(
            f"{d.full_name}: flows on an instance made at run time cannot be built into an "
            "image; put the instance at module level and use path/file.py:instance.method"
        )
    path, _, attr = d.entrypoint.rpartition(":")
    file = (Path(d.base_dir) / path).resolve()
    try:
        rel = file.relative_to(root)
    except ValueError:
        raise UsageError(
            f"{d.full_name}: {file} is outside the project directory {root}; "
            "build from the project's root or pass --project"
        ) from None
    entry: dict[str, Any] = {"entrypoint": f"{rel.as_posix()}:{attr}", "name": d.name}
    given = d.options
    optional = {
        "schedules": [s.to_dict() for s in d.schedules],
        "parameters": jsonable(dict(d.parameters)),
        "tags": list(d.tags),
        "description": d.description if given.get("description") else None,
        "version": d.version if given.get("version") else None,
        "paused": d.paused,
        "concurrency_limit": d.concurrency_limit,
        "overlap": d.overlap.value if d.overlap.value != "allow" else None,
        "catchup": d.catchup.value if d.catchup.value != "latest" else None,
        "catchup_window": _unless_default(d, "catchup_window_seconds"),
        "catchup_max": _unless_default(d, "catchup_max"),
        "enforce_parameter_schema": False if not d.enforce_parameter_schema else None,
    }
    entry.update({k: v for k, v in optional.items() if v not in (None, [], {})})
    return entry


def _unless_default(deployment: Deployment, attr: str) -> Any:
    value = getattr(deployment, attr)
    return None if value == _DEFAULTS[attr] else value


def _assemble(request: BuildRequest, tmp: Path, show: Progress) -> tuple[Path, BuildSpec]:
    from dockyard.build import context

    files = context.project_files(request.project)
    _check_entrypoints_included(request, files)
    wheels: list[Path] = []
    requirement = f"dockyard=={__version__}"
    if not context.dockyard_is_released():
        show("info", "building a wheel of this (unreleased) dockyard")
        wheel = context.dockyard_wheel(__version__)
        wheels.append(wheel)
        requirement = f"/tmp/dockyard-deps/wheels/{wheel.name}"
    build_spec = _build_spec(request, requirement)
    generated = _generated(build_spec, request)
    if request.offline:
        wheels = _offline_wheels(request, build_spec, wheels, tmp, show)
    tar = context.write_context(tmp / "context.tar", request.project, files, generated, wheels)
    return tar, build_spec


def _generated(build_spec: BuildSpec, request: BuildRequest) -> dict[str, bytes]:
    generated = {
        "Dockerfile": _spec.dockerfile(build_spec, request.template).encode(),
        "dockyard.yaml": _spec.config_yaml(build_spec).encode(),
        "deps/requirements.txt": _spec.requirements_txt(build_spec).encode(),
    }
    if build_spec.dependencies.constraints:
        generated["deps/constraints.txt"] = (build_spec.dependencies.constraints + "\n").encode()
    return generated


def _offline_wheels(
    request: BuildRequest, build_spec: BuildSpec, wheels: list[Path], tmp: Path, show: Progress
) -> list[Path]:
    from dockyard.build import context

    python = context.python_version_of(request.base_image)
    machine = context.platform_machine(request.platform)
    show("info", f"--offline: downloading wheels for Python {python} on {machine}")
    host_spec = build_spec
    if wheels:  # the host resolves dockyard's own wheel from its host path
        from dataclasses import replace

        host_spec = replace(build_spec, dockyard_requirement=str(wheels[0]))
    reqs = tmp / "host-requirements.txt"
    reqs.write_text(_spec.requirements_txt(host_spec), encoding="utf-8")
    constraints = None
    if build_spec.dependencies.constraints:
        constraints = tmp / "host-constraints.txt"
        constraints.write_text(build_spec.dependencies.constraints + "\n", encoding="utf-8")
    downloaded = context.download_wheels(reqs, constraints, tmp / "wheels", python, machine)
    names = {w.name for w in downloaded}
    return downloaded + [w for w in wheels if w.name not in names]


def _check_entrypoints_included(request: BuildRequest, files: Sequence[str]) -> None:
    included = set(files)
    for d in request.deployments:
        rel = _config_entry(d, request.project)["entrypoint"].rpartition(":")[0]
        if rel not in included:
            raise UsageError(f"{d.full_name}: {rel} is excluded by the project's .dockerignore")


def _labels(request: BuildRequest, build_spec: BuildSpec) -> dict[str, str]:
    from dockyard.build import context

    git = context.git_metadata(request.project)
    last = request.tag.split("/")[-1]
    version = last.split(":", 1)[1].split("@")[0] if ":" in last else None
    created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return _spec.labels(
        build_spec,
        created=created,
        revision=git.get("revision"),
        source=git.get("source"),
        version=version,
        extra=request.labels,
    )


def _summary(request: BuildRequest) -> str:
    names = ", ".join(d.full_name for d in request.deployments)
    deps = request.dependencies.source
    return f"deployments: {names}; dependencies: {deps}" + ("; offline" if request.offline else "")


# ── progress on the terminal ─────────────────────────────────────────────────────────


def console_progress(quiet: bool = False) -> Progress:
    """Progress lines on stderr with rich: steps in bold, build output dimmed."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

    def show(kind: str, text: str) -> None:
        if kind == "step":
            console.print(f"[bold]{escape(text)}[/bold]")
        elif kind == "info":
            console.print(f"[cyan]dockyard:[/cyan] {escape(text)}")
        elif not quiet:
            console.print(f"  {escape(text)}", style="dim")

    return show
