"""`dockyard build`, the images it makes and the runtime image, on a real Docker engine.

One image is built per module (fixture ``image``) and shared; the tests that need a
different image (a code change, --offline, the runtime image) build their own, reusing
the engine's layer cache. Measured figures are printed at the end (pytest -s) and are
the README's numbers; no test asserts a wall-clock bound beyond generous deadlines.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from dockyard._version import __version__
from dockyard.build.context import project_files
from tests.build.dockerignore_cases import CASES, make_project
from tests.e2e.docker_support import (
    BASE_IMAGE,
    FIGURES,
    REPO,
    build_runtime_image,
    cleanup,
    docker,
    dockyard_build,
    engine_problem,
    http_json,
    http_status,
    logs,
    registry,
    run_container,
    state_json,
    unavailable,
    unique,
    wait_for,
)
from tests.helpers import free_port
from tests.test_constraints import pins

# Builds take minutes on a cold cache: a longer per-test timeout than the default 180 s.
pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(900)]

TOKEN = "e2e-token"
SLEEPER = """\
import time

from dockyard import flow


@flow(log_prints=True)
def sleeper(seconds: float = 300):
    print("sleeper started")
    time.sleep(seconds)
"""
SLEEPER_CONFIG = """\
shutdown_grace: 3
kill_delay: 2
deployments:
  - entrypoint: flows/sleeper.py:sleeper
    name: sleeper
"""


@pytest.fixture(scope="module")
def engine() -> None:
    problem = engine_problem()
    if problem:
        unavailable(problem)


@pytest.fixture(scope="module")
def image_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "examples").mkdir()
    shutil.copy(REPO / "examples" / "hello_world.py", root / "examples" / "hello_world.py")
    (root / "flows").mkdir()
    (root / "flows" / "sleeper.py").write_text(SLEEPER)
    (root / "dockyard.yaml").write_text(SLEEPER_CONFIG)
    (root / "requirements.txt").write_text("six>=1.16\n")
    (root / ".git").mkdir()  # excluded by the default .dockerignore
    (root / ".git" / "secret").write_text("not for the image")
    return root


def _build(project: Path, tag: str, *args: str, env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    result = dockyard_build(*args, "--image", tag, "--base-image", BASE_IMAGE, cwd=project, env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"built {tag}" in result.stdout
    return elapsed


@pytest.fixture(scope="module")
def image(engine: None, image_project: Path) -> Iterator[str]:
    """Built from the examples entrypoint, as a user would: the module's shared image."""
    with cleanup() as tracker:
        tag = tracker.add("image", unique("img") + ":1")
        FIGURES["cold build (s)"] = _build(
            image_project, tag, "examples/hello_world.py:hello_world", "--interval", "2"
        )
        yield tag


@pytest.fixture(scope="module")
def sleeper_image(engine: None, image_project: Path, image: str) -> Iterator[str]:
    """From --config: a flow that runs until cancelled (shares the dependency layer)."""
    with cleanup() as tracker:
        tag = tracker.add("image", unique("sleeper") + ":1")
        _build(image_project, tag, "--config", "dockyard.yaml")
        yield tag


@pytest.fixture
def tracker() -> Iterator:
    with cleanup() as made:
        yield made


def _serving(port: int) -> None:
    wait_for(lambda: http_status(f"http://127.0.0.1:{port}/health") == 200, 90, "/health 200")


def _seconds_to_stop(container: str, *args: str) -> float:
    started = time.monotonic()
    docker("stop", *args, container, timeout=120)
    return time.monotonic() - started


def _exit_code(container: str) -> int:
    return int(docker("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip())


def test_image_serves_runs_and_stops_fast(image: str, tracker) -> None:
    port = free_port()
    volume = tracker.add("volume", unique("vol"))
    container = run_container(tracker, image, volume=volume, port=port)
    _serving(port)
    wait_for(lambda: "Hello world from dockyard!" in logs(container), 60, "a run's output")
    user = docker("exec", container, "id", "-u").stdout.strip()
    assert user == "10001"
    elapsed = _seconds_to_stop(container)  # docker's default -t 10
    FIGURES["docker stop, idle (s)"] = elapsed
    assert _exit_code(container) == 0
    assert "dockyard: stopped" in logs(container)
    assert elapsed < 10, "PID 1 did not handle SIGTERM: docker stop waited for SIGKILL"


def test_image_metadata(image: str, image_project: Path) -> None:
    info = json.loads(docker("image", "inspect", image).stdout)[0]
    config = info["Config"]
    labels = config["Labels"]
    assert labels["io.dockyard.deployments"] == "hello-world/hello-world"
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["org.opencontainers.image.version"] == "1"
    assert config["User"] == "10001:10001"
    assert "8080/tcp" in config["ExposedPorts"] and "/data" in config["Volumes"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Entrypoint"] == ["/opt/venv/bin/dockyard", "serve"]
    listing = docker(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "ls -A /app; cat /app/dockyard.yaml; /opt/venv/bin/python -c 'import six'",
    )
    assert ".git" not in listing.stdout.split()
    assert "entrypoint: examples/hello_world.py:hello_world" in listing.stdout
    base = json.loads(docker("image", "inspect", BASE_IMAGE).stdout)[0]
    FIGURES["image size (MB)"] = info["Size"] / 1e6
    FIGURES["base image size (MB)"] = base["Size"] / 1e6


def test_run_in_flight_is_cancelled_after_the_grace(sleeper_image: str, tracker) -> None:
    port = free_port()
    volume = tracker.add("volume", unique("vol"))
    container = run_container(
        tracker, sleeper_image, volume=volume, port=port, env={"DOCKYARD_API_TOKEN": TOKEN}
    )
    _serving(port)
    base = f"http://127.0.0.1:{port}/api"
    run = http_json(f"{base}/deployments/sleeper/sleeper/runs", "POST", {}, TOKEN)

    def running() -> bool:
        return http_json(f"{base}/runs/{run['id']}")["state"] == "Running"

    wait_for(running, 60, "the run to be Running")
    wait_for(lambda: "sleeper started" in logs(container), 30, "the run's output")
    # dockyard's grace is 3 s (+2 s kill delay); docker waits up to 30 s before SIGKILL.
    elapsed = _seconds_to_stop(container, "-t", "30")
    FIGURES["docker stop with a run in flight, grace 3 s (s)"] = elapsed
    assert _exit_code(container) == 0
    assert elapsed >= 3
    runs = state_json(sleeper_image, volume, "run", "ls")
    assert [r["state"] for r in runs if r["id"] == run["id"]] == ["Cancelled"]


def test_state_persists_in_a_volume_and_pause_on_shutdown(image: str, tracker) -> None:
    volume = tracker.add("volume", unique("vol"))
    first = run_container(tracker, image, volume=volume, port=free_port())
    wait_for(lambda: "Hello world from dockyard!" in logs(first), 60, "a first run")
    docker("stop", first, timeout=60)
    deployments = state_json(image, volume, "deployment", "ls")
    assert [(d["paused"], d["paused_reason"]) for d in deployments] == [(True, "shutdown")]
    completed = [
        r["id"] for r in state_json(image, volume, "run", "ls") if r["state"] == "Completed"
    ]
    assert completed
    docker("rm", first)

    port = free_port()
    second = run_container(
        tracker, image, volume=volume, port=port, env={"DOCKYARD_PAUSE_ON_SHUTDOWN": "false"}
    )
    _serving(port)
    resumed = http_json(f"http://127.0.0.1:{port}/api/deployments/hello-world/hello-world")
    assert resumed["paused"] is False  # a shutdown pause is undone by the next start
    wait_for(lambda: "Hello world from dockyard!" in logs(second), 60, "a run after restart")
    docker("stop", second, timeout=60)
    runs = {r["id"] for r in state_json(image, volume, "run", "ls", "--limit", "100")}
    assert set(completed) <= runs  # history survived docker rm + docker run
    deployments = state_json(image, volume, "deployment", "ls")
    assert [d["paused"] for d in deployments] == [False]


def test_read_only_root_with_writable_data_and_tmp(image: str, tracker) -> None:
    port = free_port()
    volume = tracker.add("volume", unique("vol"))
    container = run_container(
        tracker, image, "--read-only", "--tmpfs", "/tmp", volume=volume, port=port
    )
    _serving(port)
    wait_for(lambda: "Hello world from dockyard!" in logs(container), 60, "a run")
    docker("stop", container, timeout=60)
    assert _exit_code(container) == 0


def _layers(tag: str) -> list[str]:
    return list(json.loads(docker("image", "inspect", tag).stdout)[0]["RootFS"]["Layers"])


def test_code_only_change_reuses_the_dependency_layer(
    image: str, image_project: Path, tmp_path, tracker
) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(image_project, changed)
    flow_file = changed / "examples" / "hello_world.py"
    flow_file.write_text(flow_file.read_text().replace("Hello {name}", "Hi {name}"))
    args = ("examples/hello_world.py:hello_world", "--interval", "2")
    # Rebuild the original first: it comes from cache unless dockyard's own source
    # changed since the module's build (a wheel of an unreleased dockyard is in that layer).
    original = tracker.add("image", unique("original") + ":1")
    _build(image_project, original, *args)
    tag = tracker.add("image", unique("changed") + ":2")
    FIGURES["rebuild after a code-only change (s)"] = _build(changed, tag, *args)
    before, after = _layers(original), _layers(tag)
    base = len(_layers(BASE_IMAGE))
    # base layers, the user layer and the virtualenv layer are shared; /app differs.
    assert after[: base + 2] == before[: base + 2]
    assert after[base + 2] != before[base + 2]
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout
    assert "COPY dir:" in history or "COPY" in history


def test_push_to_a_loopback_registry_and_pull_back(
    image: str, image_project: Path, tracker
) -> None:
    with registry() as address:
        tag = tracker.add("image", f"{address}/{unique('pushed')}:1.0")
        result = dockyard_build(
            "examples/hello_world.py:hello_world",
            "--interval",
            "2",
            "--image",
            tag,
            "--base-image",
            BASE_IMAGE,
            "--push",
            cwd=image_project,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "pushed sha256:" in result.stdout
        docker("rmi", tag)
        docker("pull", tag, timeout=300)
        labels = json.loads(docker("image", "inspect", tag).stdout)[0]["Config"]["Labels"]
        assert labels["io.dockyard.deployments"] == "hello-world/hello-world"
        assert labels["org.opencontainers.image.version"] == "1.0"


@pytest.mark.parametrize("push", [False, True], ids=["local", "pushed"])
def test_build_json_is_one_document_on_stdout(
    image: str, image_project: Path, tracker, push: bool
) -> None:
    with contextlib.ExitStack() as stack:
        prefix = f"{stack.enter_context(registry())}/" if push else ""
        tag = tracker.add("image", f"{prefix}{unique('json')}:2.0")
        args = ["--config", "dockyard.yaml", "--image", tag, "--base-image", BASE_IMAGE, "--json"]
        result = dockyard_build(*args, *(["--push"] if push else []), cwd=image_project)
        assert result.returncode == 0, result.stderr[-3000:]
        document = json.loads(result.stdout)  # all of stdout: one JSON document
        info = json.loads(docker("image", "inspect", tag).stdout)[0]
    assert "building " + tag in result.stderr  # progress went to stderr
    assert document["image"] == tag
    assert document["image_id"] == info["Id"]
    assert document["size_bytes"] == info["Size"] > 0
    assert document["deployments"] == ["sleeper/sleeper"]
    assert document["labels"] == info["Config"]["Labels"]
    assert document["labels"]["org.opencontainers.image.version"] == "2.0"
    assert document["pushed"] is push
    if push:
        assert document["digest"].startswith("sha256:")
        assert any(d.endswith("@" + document["digest"]) for d in info["RepoDigests"])
    else:
        assert document["digest"] is None


def test_offline_build_installs_without_network(engine: None, image_project: Path, tracker) -> None:
    tag = tracker.add("image", unique("offline") + ":1")
    FIGURES["--offline build (s)"] = _build(
        image_project, tag, "examples/hello_world.py:hello_world", "--interval", "2", "--offline"
    )
    out = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        tag,
        "-c",
        "dockyard version && python -c 'import six'",
    )
    assert out.stdout.strip() == "0.1.0"
    port = free_port()
    container = run_container(tracker, tag, port=port)
    _serving(port)
    wait_for(lambda: "Hello world from dockyard!" in logs(container), 60, "a run")


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines, result.stdout
    assert lines[-1].startswith("dockyard: error: "), lines[-1]
    return lines[-1]


def test_missing_entrypoint_is_one_line(engine: None, image_project: Path) -> None:
    result = dockyard_build("examples/nope.py:hello", "--image", unique("x"), cwd=image_project)
    assert result.returncode == 2
    line = _error_line(result)
    assert "examples/nope.py" in line and "not found" in line
    assert len(result.stderr.strip().splitlines()) == 1


def test_broken_requirements_name_the_failing_step(
    engine: None, image_project: Path, tmp_path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(image_project, broken)
    (broken / "requirements.txt").write_text("dockyard-no-such-package-e2e==9.9.9\n")
    tag = unique("broken") + ":1"
    result = dockyard_build(
        "examples/hello_world.py:hello_world",
        "--image",
        tag,
        "--base-image",
        BASE_IMAGE,
        cwd=broken,
    )
    assert result.returncode == 1
    line = _error_line(result)
    assert "failed at step" in line and "pip install" in line
    assert "dockyard-no-such-package-e2e" in line
    assert docker("image", "inspect", tag, check=False).returncode != 0


def test_unreachable_engine_is_one_line(image_project: Path) -> None:
    result = dockyard_build(
        "examples/hello_world.py:hello_world",
        "--image",
        unique("x"),
        cwd=image_project,
        env={"DOCKER_HOST": "tcp://127.0.0.1:1"},
    )
    assert result.returncode == 1
    line = _error_line(result)
    assert "DOCKER_HOST" in line and "tcp://127.0.0.1:1" in line
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def runtime_image(engine: None) -> Iterator[str]:
    """The repository's Dockerfile on the local base image."""
    with cleanup() as tracker:
        yield build_runtime_image(tracker)


def test_runtime_image_serves_code_mounted_at_app(runtime_image: str, tmp_path, tracker) -> None:
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(REPO / "examples" / "hello_world.py", app)
    (app / "dockyard.yaml").write_text(
        "deployments:\n  - entrypoint: hello_world.py:hello_world\n    schedules: [{interval: 2}]\n"
    )
    os.chmod(app, 0o755)
    port = free_port()
    container = run_container(tracker, runtime_image, "-v", f"{app}:/app:ro", port=port)
    _serving(port)
    wait_for(lambda: "Hello world from dockyard!" in logs(container), 60, "a run")
    # The image's DOCKYARD_BUILD_REVISION (scripts/docker-build) is the metric's revision.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    revision = _label(runtime_image, "org.opencontainers.image.revision")
    assert f'revision="{revision}"' in metrics.split("dockyard_build_info{", 1)[1].split("}")[0]
    docker("stop", container, timeout=60)
    assert _exit_code(container) == 0
    empty = docker("run", "--rm", runtime_image, check=False, timeout=60)
    assert empty.returncode == 2 and "nothing to serve" in empty.stderr


def _label(image: str, name: str) -> str:
    return str(json.loads(docker("image", "inspect", image).stdout)[0]["Config"]["Labels"][name])


def test_runtime_image_oci_labels(runtime_image: str) -> None:
    info = json.loads(docker("image", "inspect", runtime_image).stdout)[0]
    labels = {
        k.removeprefix("org.opencontainers.image."): v for k, v in info["Config"]["Labels"].items()
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["title"] == project["name"] == "dockyard"
    assert labels["description"] == project["description"]
    assert labels["licenses"] == project["license"]
    assert labels["version"] == __version__
    assert labels["revision"] in (head, f"{head}-dirty")
    committed = subprocess.run(
        ["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["created"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(committed)))
    env = dict(item.split("=", 1) for item in info["Config"]["Env"])
    assert env["DOCKYARD_BUILD_REVISION"] == labels["revision"]


def test_runtime_image_holds_the_locked_versions(runtime_image: str) -> None:
    listing = docker(
        "run", "--rm", "--entrypoint", "/opt/venv/bin/python", runtime_image,
        "-m", "pip", "list", "--format", "json", "--disable-pip-version-check",
        timeout=60,
    )  # fmt: skip
    installed = {
        canonicalize_name(p["name"]): Version(p["version"]) for p in json.loads(listing.stdout)
    }
    installed.pop("dockyard")
    installed.pop("pip", None)  # the venv's own tools, not dependencies
    installed.pop("setuptools", None)
    assert installed == pins()


@pytest.mark.parametrize("case", sorted(CASES))
def test_dockerignore_matching_is_the_engines(engine: None, tmp_path, tracker, case: str) -> None:
    """The engine's own COPY keeps exactly what dockyard's matcher (the SDK's) keeps."""
    patterns, expected = CASES[case]
    (tmp_path / "ctx").mkdir()
    root = make_project(tmp_path / "ctx", patterns)
    tag = tracker.add("image", unique("ignore") + ":1")
    built = subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-f", "-", str(root)],
        input=b"FROM scratch\nCOPY . /ctx/\n",
        capture_output=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr.decode()[-800:]
    container = tracker.add("container", docker("create", tag, "/none").stdout.strip())
    exported = subprocess.run(["docker", "export", container], capture_output=True, timeout=120)
    with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
        copied = {
            m.name.removeprefix("ctx/") for m in tar if m.isfile() and m.name.startswith("ctx/")
        }
    assert copied == expected | {".dockerignore"}
    assert set(project_files(root)) == copied
