"""Fixtures and helpers for the tests on a real Docker engine (tests/e2e/test_docker.py).

Without a reachable engine or the local base image the tests skip with the reason,
except under CI=true, where they fail: CI must run them (scripts/ci-docker.sh sets up
both). Every container, image, volume and registry a test makes is removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import helpers

BASE_IMAGE = os.environ.get("DOCKYARD_TEST_BASE_IMAGE", "dockyard-test-base:bookworm")
REPO = Path(__file__).resolve().parents[2]
DOCKYARD = str(Path(sys.executable).parent / "dockyard")
FIGURES: dict[str, float] = {}
"""Measured build/stop figures, printed at the end of the module (README numbers)."""


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the Docker tests must run; see scripts/ci-docker.sh)")
    pytest.skip(reason)


def engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI on PATH: run scripts/ci-docker.sh"
    try:
        probe = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 20 s"
    if probe.returncode != 0:
        return "no Docker engine reachable (start it with scripts/ci-docker.sh or set DOCKER_HOST)"
    inspect = docker("image", "inspect", BASE_IMAGE, check=False)
    if inspect.returncode != 0:
        return f"base image {BASE_IMAGE} is missing: run scripts/ci-docker.sh"
    return None


def unique(prefix: str) -> str:
    return f"dockyard-e2e-{prefix}-{uuid.uuid4().hex[:8]}"


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()[-800:]}")
    return result


def dockyard_build(
    *args: str, cwd: Path, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return subprocess.run(
        [DOCKYARD, "build", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base_env, **(env or {})},
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    """tests.helpers.wait_for, polling the engine less often."""
    return helpers.wait_for(predicate, timeout, what, interval=0.25)


def http_status(url: str, timeout: float = 3) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def http_json(url: str, method: str = "GET", body: Any = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def logs(container: str) -> str:
    result = docker("logs", container, check=False)
    return result.stdout + result.stderr


class Cleanup:
    """Names of what a test made; removed in reverse order, errors ignored."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, kind: str, name: str) -> str:
        self.items.append((kind, name))
        return name

    def run(self) -> None:
        commands = {
            "container": ("rm", "-f", "-v"),
            "image": ("rmi", "-f"),
            "volume": ("volume", "rm", "-f"),
        }
        for kind, name in reversed(self.items):
            with contextlib.suppress(Exception):
                docker(*commands[kind], name, check=False, timeout=60)


@contextlib.contextmanager
def cleanup() -> Iterator[Cleanup]:
    tracker = Cleanup()
    try:
        yield tracker
    finally:
        tracker.run()


def run_container(
    tracker: Cleanup,
    image: str,
    *args: str,
    env: dict[str, str] | None = None,
    volume: str | None = None,
    port: int | None = None,
) -> str:
    """``docker run -d`` with a unique name; published on 127.0.0.1 only."""
    name = tracker.add("container", unique("c"))
    command = ["run", "-d", "--name", name]
    if port is not None:
        command += ["-p", f"127.0.0.1:{port}:8080"]
    if volume is not None:
        command += ["-v", f"{volume}:/data"]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    docker(*command, *args, image)
    return name


def state_json(image: str, volume: str, *command: str) -> Any:
    """Run a dockyard read command against the state in ``volume`` (helper container)."""
    result = docker(
        "run",
        "--rm",
        "-v",
        f"{volume}:/data",
        "--entrypoint",
        "dockyard",
        image,
        *command,
        "--json",
        "--state",
        "/data/state.db",
        timeout=60,
    )
    return json.loads(result.stdout)


@contextlib.contextmanager
def registry() -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1:FREEPORT, storage in a temp folder, no auth."""
    import tempfile

    binary = shutil.which("docker-registry")
    if binary is None:
        unavailable("docker-registry is not installed: run scripts/ci-docker.sh")
    with tempfile.TemporaryDirectory(prefix="dockyard-registry-") as tmp:
        port = helpers.free_port()
        config = Path(tmp) / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {tmp}/data\nhttp:\n  addr: 127.0.0.1:{port}\n"
        )
        with open(Path(tmp) / "registry.log", "wb") as out:
            process = subprocess.Popen(
                [str(binary), "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_for(lambda: http_status(f"http://127.0.0.1:{port}/v2/") == 200, 30, "registry")
            yield f"127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def build_runtime_image(tracker: Cleanup, prefix: str = "runtime") -> str:
    """The repository's Dockerfile (the runtime image) on the local base image, built as a
    developer does (scripts/docker-build: the OCI labels filled in); a tag of the test's
    own, removed with ``tracker`` (a rebuild is quick: the layers are cached)."""
    tag = tracker.add("image", unique(prefix) + ":1")
    command = [str(REPO / "scripts" / "docker-build"), "-q", "-t", tag]
    command += ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    for _ in range(3):
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        # Another test file builds the same image under its own tag and removes that tag
        # when it ends; if that removal deletes the image this build just took from the
        # cache, the engine says so and a second build makes it again.
        if result.returncode == 0 or "failed to get digest" not in result.stderr:
            break
    if result.returncode != 0:
        raise AssertionError(f"scripts/docker-build failed: {result.stderr.strip()[-800:]}")
    return tag


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: what containers reach this machine at
    (the bridge's gateway; the default bridge may list only its subnet, whose first address
    the engine gives the host)."""
    import ipaddress

    result = docker("network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}")
    for entry in json.loads(result.stdout) or []:
        if entry.get("Gateway"):
            return str(entry["Gateway"])
        if entry.get("Subnet") and ":" not in entry["Subnet"]:
            return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
    raise AssertionError("Docker's bridge network has neither a gateway nor an IPv4 subnet")
