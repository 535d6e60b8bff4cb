"""Assembling a build context: the project's files, dockyard's wheel, offline wheels.

The context is a tar file that ``build.docker`` streams to the engine. Nothing is
written into the user's project: generated files live only in the tar (``_dockyard/``)
and in a cache folder (``$XDG_CACHE_HOME/dockyard``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from dockyard.build.spec import APP_DIR, DEFAULT_DOCKERIGNORE, GEN_DIR
from dockyard.errors import DockyardError, UsageError

# Reproducible wheels: the same source gives a byte-identical wheel, so the dependency
# layer of a rebuild hits the cache (zip entries carry timestamps otherwise).
_SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip file can hold


class ContextError(DockyardError):
    """The build context cannot be assembled (pip, git, files)."""


# ── .dockerignore ────────────────────────────────────────────────────────────────────


def dockerignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore, read as the docker SDK reads one (``APIClient.build``):
    stripped lines, without blanks and ``#`` comments."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def project_files(root: Path) -> list[str]:
    """The project's files that go to /app: all but what .dockerignore (or ours) excludes.

    Matching is the docker SDK's own (``build.docker.included_paths``): ``**``, ``!``
    exceptions (the last match wins), folder patterns, a leading ``/``.
    """
    ignore_file = root / ".dockerignore"
    text = ignore_file.read_text(encoding="utf-8") if ignore_file.is_file() else ""
    patterns = dockerignore_patterns(text) or dockerignore_patterns(DEFAULT_DOCKERIGNORE)
    from dockyard.build.docker import included_paths

    # Folders are listed too; the tar holds regular files (a folder's files imply it).
    return sorted(rel for rel in included_paths(root, patterns) if (root / rel).is_file())


# ── the tar file ─────────────────────────────────────────────────────────────────────


def write_context(
    target: Path,
    project: Path,
    files: Iterable[str],
    generated: Mapping[str, bytes],
    wheels: Iterable[Path] = (),
) -> Path:
    """Write the context tar: ``app/<files>``, ``_dockyard/<generated>``, wheels."""
    with tarfile.open(target, "w") as tar:
        for rel in files:
            _add_file(tar, project / rel, f"{APP_DIR}/{rel}")
        tar.addfile(_dir_info(APP_DIR))  # an empty project still has app/
        for name, data in sorted(generated.items()):
            info = tarfile.TarInfo(f"{GEN_DIR}/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        tar.addfile(_dir_info(f"{GEN_DIR}/deps/wheels"))
        for wheel in sorted(wheels):
            _add_file(tar, wheel, f"{GEN_DIR}/deps/wheels/{wheel.name}")
    return target


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tar.gettarinfo(str(path), arcname)
    # Root-owned and not writable by the image's user; executables stay executable.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755 if info.mode & 0o111 else 0o644
    with path.open("rb") as handle:
        tar.addfile(info, handle)


# ── dockyard itself ──────────────────────────────────────────────────────────────────


def dockyard_is_released() -> bool:
    """False when the running dockyard was installed from a path, a VCS or editable.

    Such installs carry a PEP 610 ``direct_url.json``; installs from an index do not.
    """
    try:
        dist = importlib.metadata.distribution("dockyard")
    except importlib.metadata.PackageNotFoundError:
        return False
    return dist.read_text("direct_url.json") is None


def dockyard_source_dir() -> Path:
    """The source tree of a running unreleased dockyard (holding its pyproject.toml)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "dockyard").is_dir():
            return parent
    raise ContextError(
        "this dockyard is not a released version and its source tree is not found; "
        "install dockyard from PyPI or from a source checkout"
    )


def dockyard_wheel(version: str) -> Path:
    """A wheel of the running (unreleased) dockyard, cached by a hash of its source."""
    source = dockyard_source_dir()
    digest = _tree_digest(source)
    cache = cache_dir() / "wheels" / digest[:16]
    existing = sorted(cache.glob("dockyard-*.whl"))
    if existing:
        return existing[0]
    with tempfile.TemporaryDirectory(prefix="dockyard-wheel-") as tmp:
        # Build from a copy, so that pip's in-tree build leaves no build/ or egg-info behind.
        copy = Path(tmp) / "src-copy"
        copy.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE", "setup.py", "setup.cfg"):
            if (source / name).is_file():
                shutil.copy2(source / name, copy / name)
        shutil.copytree(source / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
        out = Path(tmp) / "out"
        env = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH}
        _pip(
            ["wheel", "--no-deps", "--quiet", "-w", str(out), str(copy)],
            "build dockyard's wheel",
            env=env,
        )
        wheel = next(out.glob("dockyard-*.whl"))
        cache.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheel, cache / wheel.name))


def _tree_digest(source: Path) -> str:
    digest = hashlib.sha256()
    paths = [source / "pyproject.toml", *sorted((source / "src").rglob("*.py"))]
    paths += sorted((source / "src").rglob("*.typed"))
    for path in paths:
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dockyard"


# ── --offline: wheels downloaded on the host ─────────────────────────────────────────


@lru_cache(maxsize=1)
def _glibc_platforms(machine: str) -> tuple[str, ...]:
    # pip expands a manylinux_2_X tag to every older glibc, so the newest one is enough.
    return (f"manylinux_2_36_{machine}", f"manylinux2014_{machine}")


def platform_machine(platform: str | None) -> str:
    """``linux/amd64`` → ``x86_64``; None → the builder's own machine."""
    arch = (platform or "").split("/")[1] if platform and "/" in platform else None
    mapping = {
        "amd64": "x86_64",
        "arm64": "aarch64",
        "386": "i686",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "arm": "armv7l",
    }
    if arch is None:
        return os.uname().machine
    if arch not in mapping:
        raise UsageError(f"--platform {platform}: --offline supports {', '.join(mapping)}")
    return mapping[arch]


def python_version_of(base_image: str) -> str:
    """The Python minor version of an official ``python:X.Y…`` image, else the builder's."""
    match = re.match(r"^(?:.*/)?python:(\d+)\.(\d+)", base_image)
    if match:
        return f"{match.group(1)}.{match.group(2)}"
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def download_wheels(
    requirements: Path, constraints: Path | None, dest: Path, python: str, machine: str
) -> list[Path]:
    """Resolve and download every dependency as a wheel for the image's Python/platform."""
    dest.mkdir(parents=True, exist_ok=True)
    args = ["download", "--quiet", "--only-binary=:all:", "--dest", str(dest)]
    args += ["--python-version", python, "--implementation", "cp"]
    for tag in _glibc_platforms(machine):
        args += ["--platform", tag]
    args += ["-r", str(requirements)]
    if constraints is not None:
        args += ["-c", str(constraints)]
    _pip(args, f"download wheels for Python {python} on {machine} (--offline)")
    return sorted(dest.glob("*.whl"))


def _pip(args: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=dict(env or os.environ), timeout=900
        )
    except subprocess.TimeoutExpired:
        raise ContextError(f"could not {what}: pip did not finish within 900 s") from None
    if result.returncode != 0:
        lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        tail = " | ".join(lines[-3:]) or f"exit code {result.returncode}"
        raise ContextError(f"could not {what}: {tail}")


# ── git metadata for the labels ──────────────────────────────────────────────────────


def git_metadata(project: Path) -> dict[str, str]:
    """``revision`` (HEAD, ``-dirty`` when changed) and ``source`` (origin URL), if any."""

    from dockyard.sources.gitcli import GitCommandError, run_git

    def git(*args: str) -> str | None:
        try:
            return run_git(args, cwd=project, timeout_seconds=10)
        except GitCommandError:  # not a repository, no origin, no git: no label
            return None

    result: dict[str, str] = {}
    revision = git("rev-parse", "HEAD")
    if revision:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        result["revision"] = revision + ("-dirty" if dirty else "")
    origin = git("remote", "get-url", "origin")
    if origin and "@" not in origin.split("://")[-1].split("/")[0]:  # never leak credentials
        result["source"] = origin
    return result
