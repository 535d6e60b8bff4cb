"""The Docker engine, through the docker SDK only: connect, build, push, and the SDK's
.dockerignore matcher for the build context.

Every failure becomes one ``DockyardError`` line: which step failed and its last
output lines, or why the engine cannot be reached (DOCKER_HOST). Progress goes to a
callback as plain text, so the caller decides how to show it.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.utils import parse_repository_tag
from docker.utils.build import exclude_paths

from dockyard.errors import DockyardError

Progress = Callable[[str, str], None]
"""``progress(kind, text)``: kind is ``step``, ``line`` or ``push``."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_KEEP_LINES = 4


class BuildError(DockyardError):
    """The image build (or push) failed; the message names the step and its last lines."""


class EngineError(DockyardError):
    """The Docker engine cannot be reached."""


def _ignore(kind: str, text: str) -> None:
    return None


def connect(timeout: float = 120) -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (or the default socket), checked with a ping."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (the default)"
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        reason = _short_reason(exc)
        raise EngineError(
            f"cannot reach the Docker engine at {host}: {reason}; start the engine or set "
            "DOCKER_HOST to one that runs (e.g. unix:///var/run/docker.sock, tcp://HOST:2375)"
        ) from None
    return client


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for known in (
        "Connection refused",
        "No such file or directory",
        "Permission denied",
        "timed out",
        "Name or service not known",
    ):
        if known.lower() in text.lower():
            return known.lower()
    return text[-160:]


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tag: str


def build(
    client: docker.DockerClient,
    context_tar: Path,
    tag: str,
    *,
    dockerfile: str,
    buildargs: Mapping[str, str],
    labels: Mapping[str, str],
    platform: str | None = None,
    nocache: bool = False,
    network_mode: str | None = None,
    progress: Progress = _ignore,
) -> BuildResult:
    """Build ``context_tar`` (a tar made by ``build.context``) and tag the image.

    ``network_mode="none"`` runs every RUN step without network (``--offline``).
    """
    state = _BuildState()
    with context_tar.open("rb") as fileobj:
        try:
            stream = client.api.build(
                fileobj=fileobj,
                custom_context=True,
                tag=tag,
                dockerfile=dockerfile,
                buildargs=dict(buildargs),
                labels=dict(labels),
                platform=platform,
                nocache=nocache,
                network_mode=network_mode,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for event in stream:
                state.feed(event, progress)
        except docker.errors.APIError as exc:
            raise BuildError(f"build of {tag} failed: {_api_reason(exc)}") from None
        except docker.errors.DockerException as exc:
            raise BuildError(f"build of {tag} failed: {_short_reason(exc)}") from None
    if state.error is not None:
        raise BuildError(state.failure(tag))
    if state.image_id is None:
        raise BuildError(f"build of {tag} ended without an image; last lines: {state.tail()}")
    return BuildResult(state.image_id, tag)


class _BuildState:
    def __init__(self) -> None:
        self.step = ""
        self.lines: deque[str] = deque(maxlen=_KEEP_LINES)
        self.error: str | None = None
        self.image_id: str | None = None

    def feed(self, event: dict[str, Any], progress: Progress) -> None:
        if "error" in event:
            self.error = " ".join(str(event["error"]).split())
            return
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        for raw in _ANSI.sub("", str(event.get("stream", ""))).splitlines():
            line = raw.rstrip()
            if not line.strip():
                continue
            match = _STEP.match(line)
            if match:
                self.step, self.lines = line, deque(maxlen=_KEEP_LINES)
                progress("step", line)
            elif not line.startswith(" ---> ") and not line.startswith("Removing intermediate"):
                self.lines.append(line.strip())
                progress("line", line)
        if "status" in event:  # pulling a base image
            progress("line", str(event["status"]))

    def tail(self) -> str:
        return " | ".join(self.lines) or "(no output)"

    def failure(self, tag: str) -> str:
        match = _STEP.match(self.step)
        where = (
            f"step {match.group(1)}/{match.group(2)} ({_clip(match.group(3))})"
            if match
            else ("the start")
        )
        hint = ""
        if self.error and re.search(
            r"pull access denied|manifest unknown|not found: manifest|"
            r"no such host|dial tcp|repository does not exist",
            self.error,
        ):
            hint = "; is the base image present or pullable? pass --base-image NAME"
        return f"build of {tag} failed at {where}: {self.tail()} → {self.error}{hint}"


def _clip(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _api_reason(exc: docker.errors.APIError) -> str:
    return " ".join(str(getattr(exc, "explanation", None) or exc).split())


def push(client: docker.DockerClient, tag: str, progress: Progress = _ignore) -> str:
    """Push ``tag`` with the credentials of ~/.docker/config.json; returns the digest."""
    repository, version = parse_repository_tag(tag)
    digest = ""
    try:
        stream = client.api.push(repository, tag=version or "latest", stream=True, decode=True)
        for event in stream:
            if "error" in event:
                detail = " ".join(str(event["error"]).split())
                raise BuildError(f"push of {tag} failed: {detail}")
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            if event.get("status") and event.get("id"):
                progress("push", f"{event['id']}: {event['status']}")
    except docker.errors.APIError as exc:
        raise BuildError(f"push of {tag} failed: {_api_reason(exc)}") from None
    except docker.errors.DockerException as exc:
        raise BuildError(f"push of {tag} failed: {_short_reason(exc)}") from None
    return digest


def included_paths(root: Path, patterns: list[str]) -> set[str]:
    """Paths under ``root`` (files and folders, relative, '/'-separated) that .dockerignore
    ``patterns`` keep, by the SDK's port of the engine's matcher.

    The SDK always keeps ``.dockerignore`` and the Dockerfile it is told of; the image's
    Dockerfile is generated outside the project, so it is told of ``.dockerignore`` again
    and a project's own Dockerfile follows the patterns like any other file.
    """
    return exclude_paths(str(root), list(patterns), dockerfile=".dockerignore")


def image_info(client: docker.DockerClient, name: str) -> dict[str, Any]:
    """``docker image inspect`` of ``name`` (size, labels, layers)."""
    try:
        return dict(client.api.inspect_image(name))
    except docker.errors.ImageNotFound:
        raise BuildError(f"image {name} not found") from None
