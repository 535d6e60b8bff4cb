"""helm/dockyard: rendered by Helm's engine for the values users give, linted, validated
against Kubernetes 1.37's schemas, and checked for what a user relies on.

No cluster and no Docker: rendering is in-process (tests/helm/chart.py). The container's
behaviour under these settings is tested by running the rendered pod spec under Docker.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard import __version__
from dockyard.config import load_config
from dockyard.settings import Settings
from tests.helm import chart
from tests.helm.chart import (
    CHART,
    CHART_MANAGED,
    container,
    container_env,
    find,
    mounted_file,
    pod_spec,
    render,
    render_error,
)

REPO = CHART.parents[1]
K8S_VERSION = "1.37"

FLOW = """from dockyard import flow


@flow(log_prints=True)
def etl(day: str = "today") -> str:
    print(f"loading {day}")
    return day
"""

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "git-token": {
        "settings": {
            "source": "https://git.example.com/team/flows.git",
            "sourceBranch": "main",
            "entrypoint": "flows/etl.py:etl",
            "interval": [3600],
        },
        "sourceCredentials": {
            "existingSecret": "dockyard-git",
            "tokenKey": "token",
            "webhookSecretKey": "webhook",
        },
    },
    "configmap-config": {
        "config": {
            "dockyardYaml": {
                "deployments": [
                    {
                        "entrypoint": "etl.py:etl",
                        "name": "nightly",
                        "schedules": [{"cron": "0 2 * * *"}],
                    }
                ]
            },
            "flows": {"etl.py": FLOW},
        },
    },
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus"}},
            "dashboard": {"enabled": True},
        },
    },
    "postgresql-3-replicas": {
        "replicaCount": 3,
        "database": {"existingSecret": "dockyard-db", "key": "url"},
    },
    "ingress": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [
                {"host": "dockyard.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
            ],
            "tls": [{"secretName": "dockyard-tls", "hosts": ["dockyard.example.com"]}],
        },
        "settings": {"allowedHosts": ["dockyard.example.com"]},
    },
}
"""The values of the matrix: what a user gives for each way of running dockyard."""

EXISTING_SECRETS = {"dockyard-git", "dockyard-db", "dockyard-tls"}
"""Secrets the cases name that the user creates (the chart only refers to them)."""


@pytest.fixture(autouse=True)
def _helm() -> None:
    chart.require_helm()


# ── the matrix: renders, lints, validates ─────────────────────────────────────────────


@pytest.mark.parametrize("case", CASES)
def test_renders_lints_and_validates(case: str) -> None:
    values = CASES[case]
    manifests = render(values)
    assert manifests, "nothing rendered"

    report = chart.require_helm().lint(CHART, values, strict=True, kube_version=f"v{K8S_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report

    for manifest in manifests:
        if manifest["kind"] in chart.MONITORING_KINDS:
            check_monitoring_object(manifest)
            continue
        assert validate(manifest) == K8S_VERSION
    check_references(manifests)


def validate(manifest: dict[str, Any]) -> str:
    try:
        import kubernetes_validate
    except ImportError as exc:
        chart.unavailable(f"kubernetes-validate is not installed ({exc})")
    where = f"{manifest['kind']}/{manifest['metadata']['name']}"
    try:
        version: str = kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise AssertionError(
            f"{where} is not valid Kubernetes {K8S_VERSION}: {path}: {exc.message}"
        ) from None
    return version


def check_monitoring_object(manifest: dict[str, Any]) -> None:
    """The monitoring.coreos.com/v1 fields the operator requires (no bundled schema)."""
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", manifest["metadata"]["name"])
    spec = manifest["spec"]
    if manifest["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"], "a ServiceMonitor without a selector"
        assert spec["endpoints"] and all("port" in e for e in spec["endpoints"])
        return
    assert spec["groups"], "a PrometheusRule without groups"
    for group in spec["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            assert isinstance(rule["expr"], str | int) and str(rule["expr"]).strip()


def check_references(manifests: list[dict[str, Any]]) -> None:
    """Every name the pod refers to is rendered, or one of the user's Secrets."""
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    spec = pod_spec(manifests)
    if spec["serviceAccountName"] != "default":
        assert ("ServiceAccount", spec["serviceAccountName"]) in names
    for source in container(manifests).get("envFrom", []):
        assert ("ConfigMap", source["configMapRef"]["name"]) in names
    for volume in spec["volumes"]:
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in names
        if "secret" in volume:
            secret = volume["secret"]["secretName"]
            assert ("Secret", secret) in names or secret in EXISTING_SECRETS, secret
        if "persistentVolumeClaim" in volume:
            assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names
    mounted = {m["name"] for m in container(manifests)["volumeMounts"]}
    assert mounted == {v["name"] for v in spec["volumes"]}, "a volume without a mount or back"


# ── what each case gives the container ─────────────────────────────────────────────────


def test_defaults_one_pod_on_sqlite_with_a_generated_token() -> None:
    manifests = render()
    assert chart.kinds(manifests) == [
        "ConfigMap/dockyard-env",
        "Deployment/dockyard",
        "PersistentVolumeClaim/dockyard-data",
        "Secret/dockyard-api-token",
        "Service/dockyard",
        "ServiceAccount/dockyard",
    ]
    assert container_env(manifests) == {
        "DOCKYARD_HOST": "0.0.0.0",
        "DOCKYARD_PORT": "8080",
        "DOCKYARD_WEBSERVER": "true",
        "DOCKYARD_STATE": "/data/state.db",
        "DOCKYARD_API_TOKEN_FILE": "/var/run/secrets/dockyard/api/token",
        "DOCKYARD_PAUSE_ON_SHUTDOWN": "false",
        "DOCKYARD_SHUTDOWN_GRACE": "25",
        "DOCKYARD_KILL_DELAY": "5",
    }
    deployment = find(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    spec = pod_spec(manifests)
    data = next(v for v in spec["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == "dockyard-data"
    pvc = find(manifests, "PersistentVolumeClaim")["spec"]
    assert pvc["accessModes"] == ["ReadWriteOnce"]
    assert pvc["resources"]["requests"]["storage"] == "1Gi"
    assert spec["terminationGracePeriodSeconds"] == 40  # 25 + 5 + 10
    assert "topologySpreadConstraints" not in spec
    dockyard = container(manifests)
    assert dockyard["image"] == f"dockyard:{__version__}"
    assert "command" not in dockyard and "args" not in dockyard  # the image's ENTRYPOINT serves
    assert mounts(manifests) == {
        "/tmp": False,
        "/data": False,
        "/var/run/secrets/dockyard/api": True,
    }
    assert mounted_file(manifests, "/var/run/secrets/dockyard/api/token") == (
        "Secret",
        "dockyard-api-token",
        "token",
    )


def mounts(manifests: list[dict[str, Any]]) -> dict[str, bool]:
    """mountPath → read-only, of the dockyard container."""
    return {m["mountPath"]: m.get("readOnly", False) for m in container(manifests)["volumeMounts"]}


def test_git_source_with_a_token_secret() -> None:
    manifests = render(CASES["git-token"])
    env = container_env(manifests)
    assert env["DOCKYARD_SOURCE"] == "https://git.example.com/team/flows.git"
    assert env["DOCKYARD_SOURCE_BRANCH"] == "main"
    assert env["DOCKYARD_ENTRYPOINT"] == "flows/etl.py:etl"
    assert env["DOCKYARD_SOURCE_TOKEN_FILE"] == "/var/run/secrets/dockyard/source/token"
    assert "DOCKYARD_SOURCE_SSH_KEY_FILE" not in env and "DOCKYARD_SOURCE_TOKEN" not in env
    assert mounted_file(manifests, env["DOCKYARD_SOURCE_TOKEN_FILE"]) == (
        "Secret",
        "dockyard-git",
        "token",
    )
    assert chart.volume_mode(manifests, "source-credentials") == 0o400
    assert mounts(manifests)["/var/run/secrets/dockyard/source"] is True
    # No _FILE variant exists for the webhook secret: a secretKeyRef, never a value.
    assert env["DOCKYARD_SOURCE_WEBHOOK_SECRET"] == {
        "secretKeyRef": {"name": "dockyard-git", "key": "webhook"}
    }


def test_ssh_key_and_known_hosts_are_mounted_files() -> None:
    values = {
        "settings": {"source": "git@git.example.com:team/flows.git"},
        "sourceCredentials": {
            "existingSecret": "git-ssh",
            "sshKeyKey": "id_ed25519",
            "knownHostsKey": "known_hosts",
        },
    }
    manifests = render(values)
    env = container_env(manifests)
    assert mounted_file(manifests, env["DOCKYARD_SOURCE_SSH_KEY_FILE"]) == (
        "Secret",
        "git-ssh",
        "id_ed25519",
    )
    assert mounted_file(manifests, env["DOCKYARD_SOURCE_KNOWN_HOSTS_FILE"]) == (
        "Secret",
        "git-ssh",
        "known_hosts",
    )
    assert "DOCKYARD_SOURCE_TOKEN_FILE" not in env
    assert "DOCKYARD_SOURCE_WEBHOOK_SECRET" not in env


def test_configmap_config_with_a_flow_file_loads(tmp_path: Path) -> None:
    manifests = render(CASES["configmap-config"])
    env = container_env(manifests)
    assert env["DOCKYARD_CONFIG"] == "/etc/dockyard/dockyard.yaml"
    assert mounts(manifests)["/etc/dockyard"] is True
    kind, name, key = mounted_file(manifests, env["DOCKYARD_CONFIG"])
    files = find(manifests, kind, name)["data"]
    assert key == "dockyard.yaml"
    assert files["etl.py"] == FLOW
    # What the pod sees at /etc/dockyard, read by dockyard's own config loader.
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    config = load_config(tmp_path / "dockyard.yaml")
    assert [d.name for d in config.deployments] == ["nightly"]
    for deployment in config.deployments:
        assert (tmp_path / deployment.entrypoint.partition(":")[0]).is_file()


def test_config_as_text_is_the_file_as_given() -> None:
    text = "# ours\ndeployments:\n  - entrypoint: etl.py:etl\n    name: nightly\n"
    manifests = render({"config": {"dockyardYaml": text, "flows": {"etl.py": FLOW}}})
    assert find(manifests, "ConfigMap", "dockyard-config")["data"]["dockyard.yaml"] == text


def test_without_dockyard_yaml_the_image_config_serves() -> None:
    manifests = render({"image": {"repository": "registry.example/etl", "tag": "2026.1"}})
    assert "DOCKYARD_CONFIG" not in container_env(manifests)
    assert "/etc/dockyard" not in mounts(manifests)
    assert container(manifests)["image"] == "registry.example/etl:2026.1"


def test_monitoring_objects_target_the_service() -> None:
    manifests = render(CASES["monitoring"])
    service = find(manifests, "Service")
    monitor = find(manifests, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("http", "/metrics")]
    assert monitor["spec"]["endpoints"][0]["port"] in port_names
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["default"]}

    rule = find(manifests, "PrometheusRule")
    shipped = yaml.safe_load((CHART / "files" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]

    dashboard = find(manifests, "ConfigMap", "dockyard-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped_dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert json.loads(dashboard["data"]["dockyard.json"]) == shipped_dashboard


def test_rendered_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        chart.unavailable("promtool is not installed (Debian package prometheus)")
    rule = find(render(CASES["monitoring"]), "PrometheusRule")
    file = tmp_path / "rules.yml"
    file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("chart_file", "canonical"),
    [
        ("alerts.yml", "docker/prometheus/alerts.yml"),
        ("dashboard.json", "docker/grafana/dashboards/dockyard.json"),
    ],
)
def test_monitoring_files_are_the_shipped_ones(chart_file: str, canonical: str) -> None:
    source = REPO / canonical
    if not source.is_file():
        pytest.skip(f"{canonical} does not exist yet: the chart ships a placeholder")
    assert (CHART / "files" / chart_file).read_text() == source.read_text(), (
        f"helm/dockyard/files/{chart_file} differs from {canonical}: copy it over"
    )


def test_postgresql_with_three_replicas() -> None:
    manifests = render(CASES["postgresql-3-replicas"])
    deployment = find(manifests, "Deployment")["spec"]
    assert deployment["replicas"] == 3
    assert deployment["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert not [m for m in manifests if m["kind"] == "PersistentVolumeClaim"]
    spec = pod_spec(manifests)
    data = next(v for v in spec["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "emptyDir": {}}
    env = container_env(manifests)
    assert "DOCKYARD_DATABASE_URL" not in env
    assert mounted_file(manifests, env["DOCKYARD_DATABASE_URL_FILE"]) == (
        "Secret",
        "dockyard-db",
        "url",
    )
    assert chart.volume_mode(manifests, "database-url") == 0o400
    pod_labels = deployment["template"]["metadata"]["labels"]
    pdb = find(manifests, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    [spread] = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    # The first start may wait for the database as well as the first clone.
    assert container(manifests)["startupProbe"]["failureThreshold"] == math.ceil(
        (300 + 300 + 30) / 5
    )


def test_one_replica_has_no_pdb_or_spread() -> None:
    for values in ({}, {"database": {"existingSecret": "db"}}):
        manifests = render(values)
        assert "PodDisruptionBudget" not in {m["kind"] for m in manifests}
        assert "topologySpreadConstraints" not in pod_spec(manifests)


def test_ingress_routes_to_the_service_port() -> None:
    manifests = render(CASES["ingress"])
    service = find(manifests, "Service")
    ingress = find(manifests, "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"secretName": "dockyard-tls", "hosts": ["dockyard.example.com"]}]
    [rule] = ingress["rules"]
    assert rule["host"] == "dockyard.example.com"
    [path] = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    # dockyard answers only the Host names it is told (DNS rebinding): the Ingress host.
    assert container_env(manifests)["DOCKYARD_ALLOWED_HOSTS"] == "dockyard.example.com"


# ── probes, ports, grace, security ─────────────────────────────────────────────────────


@pytest.mark.parametrize("case", CASES)
def test_probes_point_at_the_port_dockyard_listens_on(case: str) -> None:
    manifests = render(CASES[case])
    dockyard = container(manifests)
    env = container_env(manifests)
    [port] = dockyard["ports"]
    assert port["name"] == "http" and port["containerPort"] == int(env["DOCKYARD_PORT"])
    assert env["DOCKYARD_HOST"] == "0.0.0.0"  # the kubelet probes the pod's IP
    probes = {name: dockyard[f"{name}Probe"] for name in ("liveness", "readiness", "startup")}
    assert {n: p["httpGet"]["path"] for n, p in probes.items()} == {
        "liveness": "/health",  # never /ready: a git or database outage must not restart pods
        "readiness": "/ready",
        "startup": "/health",
    }
    assert {p["httpGet"]["port"] for p in probes.values()} == {"http"}
    live = probes["liveness"]
    assert (live["periodSeconds"], live["failureThreshold"], live["timeoutSeconds"]) == (10, 3, 5)
    ready = probes["readiness"]
    assert (ready["periodSeconds"], ready["failureThreshold"]) == (5, 2)
    service = find(manifests, "Service")["spec"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["ports"]] == [
        ("http", 8080, "http")
    ]


def test_startup_probe_covers_the_first_clone() -> None:
    probe = container(render())["startupProbe"]
    assert probe["periodSeconds"] == 5
    assert probe["failureThreshold"] == math.ceil((300 + 30) / 5)
    slow = {"settings": {"sourceStartupTimeout": 900}}
    probe = container(render(slow))["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 900 + 30
    # A longer period keeps the same time budget.
    longer = {"probes": {"startup": {"periodSeconds": 10}}}
    probe = container(render(longer))["startupProbe"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (10, 33)


def test_probe_overrides_merge_over_the_chart() -> None:
    values = {"probes": {"liveness": {"failureThreshold": 6}, "readiness": {"periodSeconds": 15}}}
    dockyard = container(render(values))
    live = dockyard["livenessProbe"]
    assert live["failureThreshold"] == 6
    assert live["httpGet"] == {"path": "/health", "port": "http"}
    assert dockyard["readinessProbe"]["periodSeconds"] == 15
    assert dockyard["readinessProbe"]["httpGet"]["path"] == "/ready"


@pytest.mark.parametrize(
    ("values", "seconds"),
    [
        ({}, 40),
        ({"settings": {"shutdownGrace": 60, "killDelay": 2.5}}, 73),  # ceil(72.5 + 10) … 73
        ({"settings": {"shutdownGrace": 0, "killDelay": 0}, "shutdownMargin": 3}, 3),
        ({"terminationGracePeriodSeconds": 120}, 120),
        ({"terminationGracePeriodSeconds": 35}, 35),  # exactly 25 + 5 + 5 is enough
    ],
)
def test_termination_grace(values: dict[str, Any], seconds: int) -> None:
    manifests = render(values)
    assert pod_spec(manifests)["terminationGracePeriodSeconds"] == seconds
    env = container_env(manifests)
    drain = float(env["DOCKYARD_SHUTDOWN_GRACE"]) + float(env["DOCKYARD_KILL_DELAY"])
    assert seconds >= drain


@pytest.mark.parametrize("case", CASES)
def test_security_context(case: str) -> None:
    manifests = render(CASES[case])
    spec = pod_spec(manifests)
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False  # no DOCKYARD_PORT=tcp://… from a Service
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(manifests)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    account = find(manifests, "ServiceAccount", spec["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    # The read-only root leaves /tmp and /data writable, and nothing else.
    writable = {path for path, read_only in mounts(manifests).items() if not read_only}
    assert writable == {"/tmp", "/data"}
    tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"] == {"sizeLimit": "256Mi"}
    assert container(manifests)["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_scrape_annotations() -> None:
    annotations = find(render(), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"
    values = {"metrics": {"annotations": False}, "podAnnotations": {"team": "data"}}
    annotations = find(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert not [k for k in annotations if k.startswith("prometheus.io/")]
    assert annotations["team"] == "data"


# ── checksum, secrets ──────────────────────────────────────────────────────────────────


def checksum(values: dict[str, Any]) -> str:
    deployment = find(render(values), "Deployment")
    value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    return value


def test_checksum_changes_with_the_config_only() -> None:
    base = CASES["configmap-config"]
    first = checksum(base)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert checksum(base) == first, "the same values must not roll the pods"
    unrelated = {**base, "resources": {"requests": {"cpu": "1"}}, "podLabels": {"team": "data"}}
    assert checksum(unrelated) == first
    assert checksum({**base, "settings": {"limit": 2}}) != first
    flows = {**base["config"], "flows": {"etl.py": FLOW + "\n# changed\n"}}
    assert checksum({**base, "config": flows}) != first
    assert checksum({}) != checksum({"settings": {"logLevel": "DEBUG"}})


def test_generated_token_only_without_an_existing_secret() -> None:
    manifests = render()
    secret = find(manifests, "Secret", "dockyard-api-token")
    token = chart.secret_text(secret, "token")
    assert re.fullmatch(r"[A-Za-z0-9]{32}", token)
    assert token != chart.secret_text(find(render(), "Secret"), "token"), "not random"

    manifests = render({"apiToken": {"existingSecret": "team-token", "key": "api"}})
    assert "Secret" not in {m["kind"] for m in manifests}
    env = container_env(manifests)
    assert mounted_file(manifests, env["DOCKYARD_API_TOKEN_FILE"]) == (
        "Secret",
        "team-token",
        "api",
    )
    assert chart.volume_mode(manifests, "api-token") == 0o400

    manifests = render({"apiToken": {"generate": False}})
    assert "Secret" not in {m["kind"] for m in manifests}
    assert "DOCKYARD_API_TOKEN_FILE" not in container_env(manifests)
    assert "/var/run/secrets/dockyard/api" not in mounts(manifests)


def test_no_secret_value_in_a_configmap_or_env_value() -> None:
    values = {
        **CASES["postgresql-3-replicas"],
        **CASES["git-token"],
        "extraEnv": [{"name": "TEAM", "value": "data"}],
    }
    manifests = render(values)
    token = chart.secret_text(find(manifests, "Secret", "dockyard-api-token"), "token")
    configmaps = [m for m in manifests if m["kind"] == "ConfigMap"]
    plain = [v["value"] for v in container(manifests)["env"] if "value" in v]
    for text in [*chart.strings(configmaps), *plain, *chart.strings(pod_spec(manifests))]:
        assert token not in text
    env = container_env(manifests)
    for name in (
        "DOCKYARD_API_TOKEN",
        "DOCKYARD_DATABASE_URL",
        "DOCKYARD_SOURCE_TOKEN",
        "PGPASSWORD",
    ):
        assert name not in env
    assert isinstance(env["DOCKYARD_SOURCE_WEBHOOK_SECRET"], dict)
    for name, value in env.items():
        if name.endswith("_FILE"):
            kind, _, _ = mounted_file(manifests, value)
            assert kind == "Secret", f"{name} names a file that is not from a Secret"


def test_notes_say_how_to_reach_dockyard() -> None:
    text = chart.notes(name="prod")
    assert "kubectl --namespace default port-forward service/prod-dockyard 8080:8080" in text
    for path in ("/docs", "/metrics", "/health"):
        assert f"http://127.0.0.1:8080{path}" in text
    assert "get secret prod-dockyard-api-token -o jsonpath='{.data.token}' | base64 -d" in text
    assert "WARNING" not in text
    text = chart.notes({"apiToken": {"generate": False}})
    assert "WARNING: no API token" in text and "get secret" not in text


def test_names_follow_the_release() -> None:
    manifests = render(CASES["configmap-config"], name="prod")
    assert chart.kinds(manifests) == [
        "ConfigMap/prod-dockyard-config",
        "ConfigMap/prod-dockyard-env",
        "Deployment/prod-dockyard",
        "PersistentVolumeClaim/prod-dockyard-data",
        "Secret/prod-dockyard-api-token",
        "Service/prod-dockyard",
        "ServiceAccount/prod-dockyard",
    ]
    check_references(manifests)
    assert find(render({"fullnameOverride": "sched"}), "Deployment")["metadata"]["name"] == "sched"


def test_image_tag_and_digest() -> None:
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == __version__
    digest = "sha256:" + "ab" * 32
    image = container(render({"image": {"repository": "reg.example/dockyard", "digest": digest}}))
    assert image["image"] == f"reg.example/dockyard@{digest}"
    args = {"args": ["--limit", "2"], "command": ["/opt/venv/bin/dockyard", "serve"]}
    dockyard = container(render(args))
    assert (dockyard["command"], dockyard["args"]) == (args["command"], args["args"])


# ── values that must fail, with the message that says what to do ──────────────────────


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            {"replicaCount": 3},
            [
                "replicaCount 3 needs PostgreSQL: set database.existingSecret",
                "SQLite on a volume serves one replica",
            ],
            id="replicas-on-sqlite",
        ),
        pytest.param(
            {"settings": {"shutdownGrace": -1}},
            ["at '/settings/shutdownGrace': minimum: got -1, want 0"],
            id="negative-grace",
        ),
        pytest.param(
            {"terminationGracePeriodSeconds": 34},
            [
                "terminationGracePeriodSeconds 34 is shorter than settings.shutdownGrace 25"
                " + settings.killDelay 5 + 5 s",
                "raise it to at least 35",
            ],
            id="grace-longer-than-the-pod-allows",
        ),
        pytest.param(
            {"settings": {"shutdownGrace": 100}, "terminationGracePeriodSeconds": 60},
            ["terminationGracePeriodSeconds 60 is shorter", "at least 110"],
            id="grace-raised-over-the-pod",
        ),
        pytest.param(
            {"replicas": 3},
            ["additional properties 'replicas' not allowed"],
            id="unknown-top-level-key",
        ),
        pytest.param(
            {"settings": {"shutdown_grace": 10}},
            ["at '/settings': additional properties 'shutdown_grace' not allowed"],
            id="unknown-settings-key",
        ),
        pytest.param(
            {"persistence": {"sise": "5Gi"}},
            ["at '/persistence': additional properties 'sise' not allowed"],
            id="unknown-persistence-key",
        ),
        pytest.param(
            {"settings": {"overlap": "cancel"}},
            ["at '/settings/overlap'", "cancel-previous"],
            id="wrong-enum",
        ),
        pytest.param(
            {"settings": {"logLevel": "verbose"}},
            ["at '/settings/logLevel'"],
            id="wrong-log-level",
        ),
        pytest.param(
            {"settings": {"cron": "0 * * * *"}},
            ["at '/settings/cron': got string, want null or array"],
            id="cron-not-a-list",
        ),
        pytest.param(
            {
                "settings": {"config": "dockyard.yaml"},
                "config": {"dockyardYaml": "deployments: []"},
            },
            ['settings.config "dockyard.yaml" and config.dockyardYaml both name', "give one"],
            id="two-configs",
        ),
        pytest.param(
            {"sourceCredentials": {"tokenKey": "token"}},
            ["set it to the Secret's name"],
            id="credential-key-without-secret",
        ),
    ],
)
def test_bad_values_fail_with_the_message(values: dict[str, Any], expected: list[str]) -> None:
    message = render_error(values)
    for part in expected:
        assert part in message, message


# ── settings: one key per DOCKYARD_* setting, and the env dockyard reads back ─────────


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def test_settings_keys_cover_every_setting_once() -> None:
    keys = {snake(k) for k in chart_values()["settings"]}
    fields = set(Settings.model_fields)
    assert keys.isdisjoint(CHART_MANAGED), keys & CHART_MANAGED
    assert keys | CHART_MANAGED == fields, (
        f"settings without a chart key: {sorted(fields - keys - CHART_MANAGED)}; "
        f"keys without a setting: {sorted((keys | CHART_MANAGED) - fields)}"
    )


def test_schema_and_readme_list_every_settings_key() -> None:
    keys = list(chart_values()["settings"])
    schema = json.loads((CHART / "values.schema.json").read_text())
    settings_schema = schema["properties"]["settings"]
    assert settings_schema["additionalProperties"] is False
    assert list(settings_schema["properties"]) == keys
    readme = (CHART / "README.md").read_text()
    for key in keys:
        row = f"| `settings.{key}` | `DOCKYARD_{snake(key).upper()}` |"
        assert row in readme, f"README.md's settings table has no row {row}"
    lines = (CHART / "values.yaml").read_text().splitlines()
    for key in keys:
        index = lines.index(
            f"  {key}: " + yaml.safe_dump(chart_values()["settings"][key]).split("\n")[0]
        )
        assert lines[index - 1].lstrip().startswith("#"), f"settings.{key} has no comment"


SAMPLES: dict[str, tuple[Any, Any]] = {
    "config": ("dockyard.yaml", "dockyard.yaml"),
    "limit": (3, 3),
    "pauseOnShutdown": (True, True),
    "shutdownGrace": (12.5, 12.5),
    "killDelay": (2, 2.0),
    "misfireGrace": (20, 20.0),
    "heartbeat": (2, 2.0),
    "healthThreshold": (45, 45.0),
    "maxLogLines": (5000, 5000),
    "logLevel": ("debug", "DEBUG"),
    "logFormat": ("JSON", "json"),
    "executor": ("FRESH", "fresh"),
    "retentionDays": (7.5, 7.5),
    "retentionRuns": (500, 500),
    "debug": (True, True),
    "replicaTimeout": (40, 40.0),
    "databaseWait": (0, 0.0),
    "maxRequestBytes": (2097152, 2097152),
    "maxParameterBytes": (1048576, 1048576),
    "allowedHosts": (
        ["dockyard.example.com", "*.internal"],
        ["dockyard.example.com", "*.internal"],
    ),
    "source": ("https://git.example.com/team/flows.git", "https://git.example.com/team/flows.git"),
    "sourceBranch": ("release/2026", "release/2026"),
    "sourceTag": ("v1.2.0", "v1.2.0"),
    "sourceCommit": ("0123456789abcdef0123456789abcdef01234567",) * 2,
    "sourcePullInterval": (30.5, 30.5),
    "sourceUsername": ("ci-bot", "ci-bot"),
    "sourceSubmodules": (True, True),
    "sourceCheckTimeout": (90, 90.0),
    "sourceStartupTimeout": (600, 600.0),
    "sourceStaleness": (1800, 1800.0),
    "sourceDir": ("/data/checkouts", "/data/checkouts"),
    "entrypoint": ("flows/etl.py:etl", "flows/etl.py:etl"),
    "name": ("nightly-etl", "nightly-etl"),
    "cron": (["0 2 * * *", "30 14 * * 1-5"], ["0 2 * * *", "30 14 * * 1-5"]),
    "interval": ([3600, 0.5], [3600.0, 0.5]),
    "rrule": (["FREQ=DAILY;BYHOUR=9", "FREQ=WEEKLY;BYDAY=MO"],) * 2,
    "timezone": ("Europe/Berlin", "Europe/Berlin"),
    "params": ({"day": "2026-01-01", "retries": 2, "nested": {"a": [1, 2]}},) * 2,
    "tags": (["etl", "nightly"], ["etl", "nightly"]),
    "description": ('Loads the warehouse: every night, "quoted"',) * 2,
    "version": ("1.2.3", "1.2.3"),
    "paused": (True, True),
    "concurrencyLimit": (2, 2),
    "overlap": ("cancel-previous", "cancel-previous"),
    "catchup": ("all", "all"),
}
"""A value for every settings key and what dockyard's Settings reads back from the env."""


def test_every_setting_reaches_dockyard_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = set(chart_values()["settings"])
    assert set(SAMPLES) == keys, f"give SAMPLES a value for {sorted(keys ^ set(SAMPLES))}"
    env = container_env(render({"settings": {k: given for k, (given, _) in SAMPLES.items()}}))
    for name in list(os.environ):
        if name.startswith("DOCKYARD_") or name == "PGPASSWORD":
            monkeypatch.delenv(name)
    for name, value in env.items():
        assert isinstance(value, str), name
        monkeypatch.setenv(name, value)
    settings = Settings()
    for key, (_, expected) in SAMPLES.items():
        assert getattr(settings, snake(key)) == expected, f"settings.{key} → {env!r}"
    assert settings.host == "0.0.0.0" and settings.port == 8080 and settings.webserver is True
    assert settings.state == "/data/state.db"


def test_null_settings_are_not_set() -> None:
    env = container_env(render({"settings": {"limit": None, "cron": [], "params": {}}}))
    assert not {"DOCKYARD_LIMIT", "DOCKYARD_CRON", "DOCKYARD_PARAMS"} & set(env)
    env = container_env(render({"settings": {"limit": 0, "debug": False, "databaseWait": 0}}))
    assert (env["DOCKYARD_LIMIT"], env["DOCKYARD_DEBUG"], env["DOCKYARD_DATABASE_WAIT"]) == (
        "0",
        "false",
        "0",
    )
