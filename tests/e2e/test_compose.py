"""compose.yaml under docker-compose on a real Docker engine, as users run it.

Debian has only the v1 tool (docker-compose 1.29), which reads the Compose-spec file with
``-f compose.yaml``. Every test uses a project name of its own and free host ports, and
always ends with ``down -v``. The dockyard service runs the runtime image (the repository's
Dockerfile on the local base image); Prometheus runs from a test image holding Debian's
``/usr/bin/prometheus`` (no registry here: prom/prometheus cannot be pulled). Grafana has no
image here: its service is checked through ``docker-compose config`` and the files it mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.e2e.docker_support import (
    BASE_IMAGE,
    FIGURES,
    REPO,
    bridge_gateway,
    build_runtime_image,
    cleanup,
    docker,
    engine_problem,
    http_json,
    http_status,
    state_json,
    unavailable,
    unique,
    wait_for,
)
from tests.helpers import free_port
from tests.pg import running_server

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(900)]

COMPOSE_FILE = REPO / "compose.yaml"
EXAMPLES_CONFIG = REPO / "examples" / "dockyard.yaml"
PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
# For the test only (a second -f): users keep the file's 30 s healthcheck interval.
FAST_HEALTHCHECK = "services:\n  dockyard:\n    healthcheck:\n      interval: 1s\n"


@pytest.fixture(scope="module")
def compose_tool() -> None:
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed: run scripts/ci-docker.sh")


@pytest.fixture(scope="module")
def engine(compose_tool: None) -> None:
    problem = engine_problem()
    if problem:
        unavailable(problem)


@pytest.fixture(scope="module")
def runtime_image(engine: None) -> Iterator[str]:
    """The repository's Dockerfile on the local base image."""
    with cleanup() as tracker:
        yield build_runtime_image(tracker)


PROMETHEUS_DOCKERFILE = f"""\
FROM {BASE_IMAGE}
COPY prometheus /bin/prometheus
RUN mkdir -p /prometheus /etc/prometheus && chown 65534:65534 /prometheus
USER 65534
WORKDIR /prometheus
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/bin/prometheus"]
"""


@pytest.fixture(scope="module")
def prometheus_image(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Test infrastructure, not product: Debian's Prometheus laid out as prom/prometheus is
    (entrypoint /bin/prometheus, a /prometheus owned by nobody, running as nobody)."""
    if not PROMETHEUS_BINARY.exists():
        unavailable(f"{PROMETHEUS_BINARY} is missing: `apt-get install -y prometheus` (.ci/run)")
    context = tmp_path_factory.mktemp("prometheus-image")
    shutil.copy(PROMETHEUS_BINARY, context / "prometheus")
    (context / "Dockerfile").write_text(PROMETHEUS_DOCKERFILE)
    with cleanup() as tracker:
        tag = tracker.add("image", unique("prometheus") + ":1")
        docker("build", "-q", "-t", tag, str(context), timeout=600)
        version = docker("run", "--rm", tag, "--version", check=False, timeout=60)
        assert version.returncode == 0 and "prometheus, version" in version.stdout, (
            f"the host's {PROMETHEUS_BINARY} does not run in {BASE_IMAGE}: {version.stderr}"
        )
        yield tag


class Project:
    """One compose project: ``docker-compose -f compose.yaml [-f override] -p NAME``."""

    def __init__(self, files: list[Path], env: dict[str, str]) -> None:
        self.name = unique("compose")
        self.command = ["docker-compose", *(f for p in files for f in ("-f", str(p))),
                        "-p", self.name]  # fmt: skip
        self.env = env

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> str:
        result = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)}: {result.stderr[-2000:]}")
        return result.stdout

    def container(self, service: str) -> str:
        ids = self.run("ps", "-q", service).split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def logs(self) -> str:
        return self.run("logs", "--no-color", "--tail", "60", check=False, timeout=60)


def compose_env(**variables: str) -> dict[str, str]:
    """The caller's environment without any variable compose.yaml reads, plus ``variables``."""
    ours = ("DOCKYARD_", "PROMETHEUS_", "GRAFANA_", "COMPOSE_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(ours)}, **variables}


@contextlib.contextmanager
def project(tmp_path: Path, **variables: str) -> Iterator[Project]:
    override = tmp_path / "healthcheck.override.yaml"
    override.write_text(FAST_HEALTHCHECK)
    made = Project([COMPOSE_FILE, override], compose_env(**variables))
    try:
        yield made
    except BaseException:
        print(f"--- docker-compose logs of {made.name}:\n{made.logs()}")
        raise
    finally:
        made.run("down", "-v", "--timeout", "45", check=False, timeout=240)


def config(*args: str) -> dict[str, Any]:
    """``docker-compose -f compose.yaml [args] config``, parsed."""
    env = compose_env(DOCKYARD_IMAGE="dockyard:config-check")
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), *args, "config"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = yaml.safe_load(result.stdout)
    return parsed


def seconds(duration: str) -> float:
    """A compose duration as docker-compose config prints it: ``40s``, ``1m30s``, ``2h``."""
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in duration:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * units[char]
            number = ""
    return total


def binds(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: container path → host path (short and long syntax)."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume["type"] == "bind":
                found[volume["target"]] = Path(volume["source"])
        else:
            source, target = volume.split(":")[:2]
            if source.startswith("/"):
                found[target] = Path(source)
    return found


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """Where a path inside the container is on the host, through the service's binds."""
    wanted = PurePosixPath(container_path)
    for target, source in binds(service).items():
        if wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents:
            return source / wanted.relative_to(target)
    raise AssertionError(f"{container_path} is not on a bind mount of {service.get('image')}")


def flag(command: list[str], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} in {command}"
    return values[0]


def test_config_is_valid_and_consistent(compose_tool: None) -> None:
    plain = config()
    monitoring = config("--profile", "monitoring")
    services = monitoring["services"]
    assert set(plain["services"]) == set(services) == {"dockyard", "prometheus", "grafana"}
    assert "profiles" not in services["dockyard"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    for name, service in services.items():  # nothing published beyond this machine
        assert service["ports"], name
        assert all(port.startswith("127.0.0.1:") for port in service["ports"]), name
        assert set(service.get("depends_on", {})) <= set(services)
        assert all(source.exists() for source in binds(service).values()), (name, binds(service))

    dockyard = services["dockyard"]
    env = dockyard["environment"]
    drain = float(env["DOCKYARD_SHUTDOWN_GRACE"]) + float(env["DOCKYARD_KILL_DELAY"])
    assert seconds(dockyard["stop_grace_period"]) > drain
    assert dockyard["read_only"] is True and "/tmp" in dockyard["tmpfs"]
    assert dockyard["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim"
    assert dockyard["healthcheck"]["interval"] == "30s"

    # Prometheus: its flags name mounted files, the scrape config finds dockyard by the
    # service's name and port, and every rule file it loads is mounted.
    prometheus = services["prometheus"]
    command = prometheus["command"]
    assert flag(command, "web.listen-address").endswith(":9090")
    assert flag(command, "storage.tsdb.path") == "/prometheus"
    assert any(str(v).endswith(":/prometheus:rw") for v in prometheus["volumes"])
    scrape = yaml.safe_load(host_path(prometheus, flag(command, "config.file")).read_text())
    rule_files = scrape["rule_files"]
    assert rule_files and all(host_path(prometheus, f).is_file() for f in rule_files)
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "dockyard"]
    (dns,) = job["dns_sd_configs"]
    assert dns["names"] == ["dockyard"] and dns["type"] == "A"
    assert any(port.endswith(f":{dns['port']}/tcp") for port in dockyard["ports"])

    # Grafana: provisioned from mounted files, its datasource is compose's Prometheus, and
    # every dashboard the providers point at is JSON.
    grafana = services["grafana"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")
    sources = [
        s
        for f in sorted((provisioning / "datasources").glob("*.y*ml"))
        for s in yaml.safe_load(f.read_text())["datasources"]
    ]
    assert [s["url"] for s in sources if s["type"] == "prometheus"] == [
        f"http://prometheus:{flag(command, 'web.listen-address').rsplit(':', 1)[1]}"
    ]
    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert providers
    for provider in providers:
        folder = host_path(grafana, provider["options"]["path"])
        dashboards = sorted(folder.glob("*.json"))
        assert dashboards, f"no dashboard in {folder}"
        for dashboard in dashboards:
            assert json.loads(dashboard.read_text())["panels"], dashboard


def _healthy(made: Project) -> str:
    """The dockyard container, once Docker reports it healthy."""
    container = made.container("dockyard")

    def status() -> bool:
        state = docker("inspect", "--format", "{{json .State}}", container).stdout
        parsed = json.loads(state)
        assert parsed["Status"] == "running", f"dockyard is {parsed['Status']}"
        return bool(parsed["Health"]["Status"] == "healthy")

    wait_for(status, 90, "the dockyard container to be healthy")
    return container


def _completed_runs(api: str) -> list[dict[str, Any]]:
    return list(http_json(f"{api}/runs?state=Completed&limit=500")["runs"])


def test_up_healthy_runs_stop_and_up_again_keeps_the_runs(
    runtime_image: str, tmp_path: Path
) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    examples = {d["name"] for d in yaml.safe_load(EXAMPLES_CONFIG.read_text())["deployments"]}
    grace = seconds(config()["services"]["dockyard"]["stop_grace_period"])
    with project(tmp_path, DOCKYARD_IMAGE=runtime_image, DOCKYARD_HOST_PORT=str(port)) as made:
        made.run("config", "-q")
        made.run("up", "-d", "--no-build", "dockyard")
        first = _healthy(made)
        assert http_status(f"http://127.0.0.1:{port}/health") == 200
        served = {d["deployment"]: d["name"] for d in http_json(f"{api}/deployments")}
        assert set(served) == examples  # the examples mounted at /app
        completed = wait_for(lambda: _completed_runs(api), 90, "a run to complete")
        assert {r["deployment"] for r in completed} <= set(served.values())

        started = time.monotonic()
        made.run("stop", "dockyard", timeout=grace + 60)  # Docker's wait: stop_grace_period
        elapsed = time.monotonic() - started
        state = json.loads(docker("inspect", "--format", "{{json .State}}", first).stdout)
        assert state["ExitCode"] == 0 and not state["OOMKilled"]
        assert elapsed < grace - 5, f"stop took {elapsed:.1f}s of a {grace:.0f}s grace"
        FIGURES["docker-compose stop (s)"] = elapsed
        # DOCKYARD_PAUSE_ON_SHUTDOWN=false (compose restarts the service): the schedules
        # are not paused while it is down, so slots missed meanwhile follow `catchup`.
        stored = state_json(runtime_image, f"{made.name}_dockyard-data", "deployment", "ls")
        assert {d["name"]: d["paused"] for d in stored} == dict.fromkeys(served.values(), False)

        made.run("rm", "-f", "dockyard")  # a new container; the named volume stays
        made.run("up", "-d", "--no-build", "dockyard")
        second = _healthy(made)
        assert second != first
        listed = {r["id"] for r in _completed_runs(api)}
        assert {r["id"] for r in completed} <= listed


def _health(container: str) -> str:
    state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
    assert state["Status"] == "running", f"{container} is {state['Status']}"
    return str(state["Health"]["Status"])


def _free_range(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (compose's `A-B` range)."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise AssertionError(f"no {count} consecutive free ports")


def _dockyard_target(prometheus: str, address: str) -> dict[str, Any] | None:
    try:
        targets = http_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
    except (OSError, ValueError):
        return None
    for target in targets:
        if target["labels"]["job"] == "dockyard" and target["labels"]["instance"] == address:
            return target if target["health"] == "up" else None
    return None


def _series(prometheus: str, query: str) -> list[dict[str, Any]]:
    answer = http_json(f"{prometheus}/api/v1/query?query={query}")
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_monitoring_profile_prometheus_scrapes_dockyard(
    runtime_image: str, prometheus_image: str, tmp_path: Path
) -> None:
    port, prometheus_port = free_port(), free_port()
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    variables = {
        "DOCKYARD_IMAGE": runtime_image,
        "DOCKYARD_HOST_PORT": str(port),
        "PROMETHEUS_IMAGE": prometheus_image,
        "PROMETHEUS_HOST_PORT": str(prometheus_port),
    }
    with project(tmp_path, **variables) as made:
        made.run("--profile", "monitoring", "up", "-d", "--no-build", "dockyard", "prometheus")
        container = _healthy(made)
        networks = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
        address = json.loads(networks.stdout)[f"{made.name}_default"]["IPAddress"]
        # Found through Docker's DNS (dns_sd_configs), scraped on the container's port.
        target = wait_for(
            lambda: _dockyard_target(prometheus, f"{address}:8080"), 120, "the dockyard target up"
        )
        assert target["scrapeUrl"] == f"http://{address}:8080/metrics"
        assert target["lastError"] == ""
        version = http_json(f"http://127.0.0.1:{port}/")["version"]
        info = wait_for(lambda: _series(prometheus, "dockyard_info"), 60, "dockyard_info")
        assert [s["metric"]["version"] for s in info] == [version]

        alerts = REPO / "docker" / "prometheus" / "alerts.yml"
        shipped = {g["name"] for g in yaml.safe_load(alerts.read_text())["groups"]}
        groups = http_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in groups} == shipped
        assert all(g["file"] == "/etc/prometheus/alerts.yml" for g in groups)
        assert all(r["health"] != "err" for g in groups for r in g["rules"]), groups


def test_scaled_to_three_replicas_on_postgresql_each_one_scraped(
    runtime_image: str, prometheus_image: str, tmp_path: Path
) -> None:
    """What compose.yaml's header promises: `--scale dockyard=3` with a database URL and a
    port range; Prometheus finds every replica through Docker's DNS."""
    first, prometheus_port = _free_range(3), free_port()
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    gateway = bridge_gateway()
    with running_server(also_listen=gateway) as pg:
        database = pg.create_database()
        variables = {
            "DOCKYARD_IMAGE": runtime_image,
            "DOCKYARD_HOST_PORT": f"{first}-{first + 2}",
            "DOCKYARD_DATABASE_URL": pg.url(database, host=gateway),
            "PROMETHEUS_IMAGE": prometheus_image,
            "PROMETHEUS_HOST_PORT": str(prometheus_port),
        }
        with project(tmp_path, **variables) as made:
            made.run("--profile", "monitoring", "up", "-d", "--no-build", "--scale",
                     "dockyard=3", "dockyard", "prometheus")  # fmt: skip
            ids = made.run("ps", "-q", "dockyard").split()
            assert len(ids) == 3
            for container in ids:
                wait_for(lambda c=container: _health(c) == "healthy", 120, f"{container} healthy")

            def replicas() -> list[dict[str, Any]]:
                listed = http_json(f"http://127.0.0.1:{first}/api/replicas")
                return [r for r in listed if r["state"] == "live"]

            wait_for(lambda: len(replicas()) == 3, 60, "3 live replicas in /api/replicas")

            def scraped() -> list[dict[str, Any]] | None:
                targets = http_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
                up = [t for t in targets if t["labels"]["job"] == "dockyard"
                      and t["health"] == "up"]  # fmt: skip
                return up if len(up) == 3 else None

            assert len(wait_for(scraped, 120, "3 dockyard targets up")) == 3

            def live_in_prometheus() -> bool:
                found = _series(prometheus, 'max(dockyard_replicas{state="live"})')
                return bool(found) and float(found[0]["value"][1]) == 3

            wait_for(live_in_prometheus, 60, "3 live replicas in dockyard_replicas")
        stored = pg.query(database, "SELECT count(*) FROM replicas")
        assert int(str(stored[0][0])) == 3
