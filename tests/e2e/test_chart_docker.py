"""The Helm chart and the image agree: the rendered pod runs under Docker as rendered.

The chart is rendered by Helm's own engine (tests/helm/chart.py); tests/e2e/kube_docker.py
runs its Deployment's container with exactly the image, command, env (from the rendered
ConfigMaps and Secrets), mounts, security context, ports, probes and grace period it
declares. Two cases: one replica on SQLite with the PersistentVolumeClaim as a named
volume, and three replicas against one PostgreSQL server, as the chart renders them.
"""

from __future__ import annotations

import collections
import itertools
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.docker_support import (
    FIGURES,
    Cleanup,
    bridge_gateway,
    build_runtime_image,
    cleanup,
    engine_problem,
    http_json,
    http_status,
    logs,
    state_json,
    unavailable,
    wait_for,
)
from tests.e2e.kube_docker import Pod, secrets
from tests.helm.chart import find, render, require_helm
from tests.helpers import FLOWS, read_ledger
from tests.pg import PgServer, running_server

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(900)]

RELEASE = "flows"
FLOW_FILE = """\
import time

from dockyard import flow


@flow(log_prints=True)
def quick():
    print("quick ran")


@flow(log_prints=True)
def sleeper(seconds: float = 600):
    print("sleeper started")
    time.sleep(seconds)
"""
CONFIG = {
    "deployments": [
        {"entrypoint": "chartflows.py:quick", "name": "quick", "schedules": [{"interval": 2}]},
        {"entrypoint": "chartflows.py:sleeper", "name": "sleeper"},
    ]
}


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[str, str]]:
    """The runtime image (repository, tag), as a user would point the chart at it."""
    require_helm()
    problem = engine_problem()
    if problem:
        unavailable(problem)
    with cleanup() as tracker:
        repository, _, tag = build_runtime_image(tracker, "chart").rpartition(":")
        yield repository, tag


@pytest.fixture
def tracker() -> Iterator[Cleanup]:
    with cleanup() as made:
        yield made


def _image_values(image: tuple[str, str]) -> dict[str, Any]:
    return {"image": {"repository": image[0], "tag": image[1], "pullPolicy": "Never"}}


def _runs(pod: Pod, **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return list(http_json(pod.url(f"/api/runs?{query}"))["runs"])


def _api_token(manifests: list[dict[str, Any]]) -> str:
    """The token the chart generated (what `kubectl get secret` shows the user)."""
    generated = [values["token"] for values in secrets(manifests).values() if "token" in values]
    assert len(generated) == 1, "the chart generates one API token Secret"
    return generated[0]


def test_one_replica_on_sqlite_serves_drains_and_keeps_its_state(
    image: tuple[str, str], tracker: Cleanup, tmp_path: Path
) -> None:
    values = {
        **_image_values(image),
        "settings": {"shutdownGrace": 3, "killDelay": 2},
        "config": {"dockyardYaml": CONFIG, "flows": {"chartflows.py": FLOW_FILE}},
    }
    manifests = render(values, name=RELEASE)
    pod = Pod(manifests, tracker, tmp_path).start()
    FIGURES["chart pod: start → startup probe (s)"] = pod.wait_started()
    assert http_status(pod.probe_url("livenessProbe")) == 200
    pod.wait_ready()

    wait_for(lambda: _runs(pod, deployment="quick/quick", state="Completed"), 60, "a run")
    assert "quick ran" in logs(pod.name)
    # The API token came from the generated Secret through its mounted file: a caller on
    # Docker's bridge (not loopback, as from another pod) needs it to start a run.
    start = pod.url("/api/deployments/sleeper/sleeper/runs")
    assert http_status_of_post(start, token=None) == 401
    run = http_json(start, "POST", {}, _api_token(manifests))
    wait_for(lambda: http_json(pod.url(f"/api/runs/{run['id']}"))["state"] == "Running", 60,
             "the ad-hoc run to be Running")  # fmt: skip

    elapsed, code = pod.stop()
    FIGURES["chart pod: docker stop with a run in flight (s)"] = elapsed
    assert code == 0, logs(pod.name)[-2000:]
    assert elapsed < pod.grace_seconds, "the drain ended before the kubelet's SIGKILL"
    (volume,) = pod.claims.values()
    runs = state_json(f"{image[0]}:{image[1]}", volume, "run", "ls", "--limit", "200")
    states = {r["id"]: r["state"] for r in runs}
    assert states[run["id"]] == "Cancelled"
    assert "Completed" in states.values()

    # The next pod (Recreate: the old one is gone) finds the history on the claim.
    again = Pod(manifests, tracker, tmp_path, claims=dict(pod.claims)).start()
    again.wait_started()
    listed = {r["id"] for r in _runs(again, limit="200")}
    assert set(states) <= listed


def http_status_of_post(url: str, token: str | None) -> int | None:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


REPLICAS_CONFIG = {
    "deployments": [
        {
            "entrypoint": "replicas.py:tick",
            "name": "every-second",
            "schedules": [{"interval": 1}],
            "parameters": {"seconds": 0.2},
        },  # fmt: skip
    ]
}


def test_three_replicas_on_postgresql_run_every_slot_once(
    image: tuple[str, str], tracker: Cleanup, tmp_path: Path
) -> None:
    gateway = bridge_gateway()
    ledger_dir = tmp_path / "ledger"
    ledger_dir.mkdir()
    ledger_dir.chmod(0o777)
    with running_server(also_listen=gateway) as pg:
        database = pg.create_database()
        db_secret = {"dockyard-db": {"url": pg.url(database, host=gateway)}}
        values = {
            **_image_values(image),
            "replicaCount": 3,
            "database": {"existingSecret": "dockyard-db", "key": "url"},
            "settings": {"shutdownGrace": 5, "killDelay": 2, "replicaTimeout": 15},
            "config": {
                "dockyardYaml": REPLICAS_CONFIG,
                "flows": {"replicas.py": (FLOWS / "replicas.py").read_text()},
            },
            "extraEnv": [{"name": "LEDGER", "value": "/ledger/ledger.txt"}],
            "extraVolumes": [{"name": "ledger", "hostPath": {"path": str(ledger_dir)}}],
            "extraVolumeMounts": [{"name": "ledger", "mountPath": "/ledger"}],
        }
        manifests = render(values, name=RELEASE)
        assert find(manifests, "Deployment")["spec"]["replicas"] == 3
        pods = [Pod(manifests, tracker, tmp_path, extra_secrets=db_secret) for _ in range(3)]
        for pod in pods:
            pod.start()
        for pod in pods:
            pod.wait_started()
            pod.wait_ready()
        replicas = http_json(pods[0].url("/api/replicas"))
        live = [r for r in replicas if r["state"] == "live"]
        assert len(live) == 3, replicas

        def ended() -> list[str]:
            return [line.slot for line in read_ledger(ledger_dir / "ledger.txt")
                    if line.kind == "end"]  # fmt: skip

        wait_for(lambda: len(ended()) >= 15, 90, "15 slots run")
        outage = datetime.now(UTC)
        _database_outage_is_not_a_restart(pg, pods)
        for pod in pods:
            elapsed, code = pod.stop()
            assert code == 0 and elapsed < pod.grace_seconds, logs(pod.name)[-2000:]

        lines = read_ledger(ledger_dir / "ledger.txt")
        begun = [line for line in lines if line.kind == "begin"]
        twice = [s for s, n in collections.Counter(b.slot for b in begun).items() if n > 1]
        assert twice == [], "a slot ran twice"
        assert len({b.run_id for b in begun}) == len(begun), "a run was started twice"
        # No slot was skipped: one run per second from the first to the last.
        # (Slots that fell due during the outage are missed by design: up to its start.)
        seconds = sorted(datetime.fromisoformat(b.slot.replace("Z", "+00:00")) for b in begun)
        seconds = [at for at in seconds if at < outage]
        gaps = [b for a, b in itertools.pairwise(seconds) if (b - a).total_seconds() != 1]
        assert gaps == [], f"slots missing before {gaps}"
        completed = pg.query(database, "SELECT id, owner FROM runs WHERE state = 'Completed'")
        assert {str(row[0]) for row in completed} == {
            line.run_id for line in lines if line.kind == "end"
        }, "every Completed run ran its flow exactly once, and every run that ended is Completed"
        FIGURES["chart pods: replicas that ran runs"] = float(len({row[1] for row in completed}))


def _database_outage_is_not_a_restart(pg: PgServer, pods: list[Pod]) -> None:
    """With the database down, every pod turns unready and stays live (the kubelet takes it
    out of the Service but does not restart it); once it is back, every pod is ready again."""
    pg.stop()
    for pod in pods:
        wait_for(lambda p=pod: http_status(p.probe_url("readinessProbe")) == 503, 60,
                 f"{pod.name}: unready while the database is down")  # fmt: skip
    for _ in range(5):  # a few probe rounds, all while the database stays down
        for pod in pods:
            assert http_status(pod.probe_url("livenessProbe")) == 200, logs(pod.name)[-2000:]
            assert http_status(pod.probe_url("readinessProbe")) == 503
        time.sleep(1)
    pg.start()
    for pod in pods:
        pod.wait_ready(timeout=90)
