"""helm/dockyard rendered with Helm's own engine (PyPI helm-python-sdk, Helm's Go SDK).

For tests/helm/test_chart.py and for the tests that run the rendered container under
Docker. Rendering is offline and in-process: no cluster, and ``lookup`` finds nothing (so
the API token Secret holds a fresh random token each render). ``Chart.render`` applies
values.schema.json itself, as ``helm install`` does: a value the schema refuses raises.
"""

from __future__ import annotations

import base64
import functools
import os
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "dockyard"

CHART_MANAGED = frozenset(
    {
        # Fixed by the chart: the container listens on 0.0.0.0:8080 (the probes' port), serves
        # the API, keeps its state (or local files, with PostgreSQL) under /data.
        "host",
        "port",
        "webserver",
        "state",
        # Secrets: only ever mounted files (*_FILE) from Secrets, or a secretKeyRef.
        "database_url",
        "database_url_file",
        "pg_password",
        "api_token",
        "api_token_file",
        "source_token",
        "source_token_file",
        "source_ssh_key_file",
        "source_known_hosts_file",
        "source_webhook_secret",
        # Set by the image's own build (its ENV), like the image's version: not a value.
        "build_revision",
    }
)
"""Settings fields that are not keys under values ``settings``: the chart sets them itself
(from ``config``, ``database``, ``apiToken``, ``sourceCredentials``) or never (the plain
secret values). Every other Settings field is a ``settings`` key."""

MONITORING_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})
"""Kinds of monitoring.coreos.com/v1: kubernetes-validate has no schema for them."""


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail under CI=true, where these tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the chart tests must run; pip install -e '.[test]')")
    pytest.skip(reason)


def require_helm() -> ModuleType:
    """``helm_python``, loaded with its native library; skip (fail under CI) without it."""
    try:
        import helm_python
        from helm_python.errors import HelmLibraryError
    except ImportError as exc:
        unavailable(f"helm-python-sdk is not installed ({exc})")
    try:
        _chart()
    except HelmLibraryError as exc:
        unavailable(f"helm-python-sdk cannot load Helm's library: {exc}")
    return helm_python


@functools.cache
def _chart() -> Any:
    import helm_python

    return helm_python.Chart.load(CHART)


def render_files(
    values: Mapping[str, Any] | None = None,
    *,
    name: str = "dockyard",
    namespace: str = "default",
    upgrade: bool = False,
) -> dict[str, str]:
    """Every template's output by path (``dockyard/templates/…``), NOTES.txt included."""
    require_helm()
    rendered: dict[str, str] = _chart().render(
        dict(values) if values is not None else None,
        name=name,
        namespace=namespace,
        is_install=not upgrade,
        is_upgrade=upgrade,
    )
    return rendered


def render(
    values: Mapping[str, Any] | None = None, *, name: str = "dockyard", namespace: str = "default"
) -> list[dict[str, Any]]:
    """The rendered manifests, parsed (empty documents dropped, NOTES.txt left out)."""
    files = render_files(values, name=name, namespace=namespace)
    manifests = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return manifests


def notes(values: Mapping[str, Any] | None = None, *, name: str = "dockyard") -> str:
    """The rendered NOTES.txt (what ``helm install`` prints)."""
    files = render_files(values, name=name)
    return next(text for path, text in files.items() if path.endswith("NOTES.txt"))


def render_error(values: Mapping[str, Any] | None) -> str:
    """The message of a render (or values.schema.json validation) that fails."""
    helm = require_helm()
    try:
        render(values)
    except helm.errors.HelmError as exc:
        return str(exc)
    raise AssertionError(f"the chart rendered without an error for {values!r}")


def find(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one manifest of ``kind`` (named ``name``, when given)."""
    found = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    if len(found) != 1:
        have = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)
        wanted = f"{kind}/{name}" if name else kind
        raise AssertionError(f"{len(found)} manifests match {wanted}; rendered: {have}")
    return found[0]


def kinds(manifests: list[dict[str, Any]]) -> list[str]:
    """``Kind/name`` of every manifest, sorted."""
    return sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)


def pod_spec(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(manifests, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The dockyard container of the Deployment."""
    containers = pod_spec(manifests)["containers"]
    assert [c["name"] for c in containers] == ["dockyard"]
    first: dict[str, Any] = containers[0]
    return first


def container_env(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The environment the container gets, as the kubelet builds it: every key of the
    ``envFrom`` ConfigMaps, then ``env`` (which wins). A plain value is a string; a
    ``valueFrom`` stays the dict it is (``{"secretKeyRef": {...}}``)."""
    env: dict[str, Any] = {}
    spec = container(manifests)
    for source in spec.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref is not None, f"envFrom other than a rendered ConfigMap: {source}"
        data = find(manifests, "ConfigMap", ref["name"]).get("data") or {}
        env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in spec.get("env", []):
        env[var["name"]] = var["value"] if "value" in var else var["valueFrom"]
    return env


def mounted_file(manifests: list[dict[str, Any]], path: str) -> tuple[str, str, str]:
    """What provides the file at ``path`` in the container: ``(kind, object name, key)``
    with kind ``Secret`` or ``ConfigMap``, resolved through volumeMounts, the volume's
    ``items`` (or all its keys) and ``subPath``."""
    spec = pod_spec(manifests)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container(manifests).get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if not path.startswith(root + "/"):
            continue
        relative = posixpath.relpath(path, root)
        if mount.get("subPath"):
            relative = posixpath.join(mount["subPath"], relative)
        volume = volumes[mount["name"]]
        for kind, field, name_key in (
            ("Secret", "secret", "secretName"),
            ("ConfigMap", "configMap", "name"),
        ):
            if field in volume:
                source = volume[field]
                for item in source.get("items") or []:
                    if item["path"] == relative:
                        return kind, source[name_key], item["key"]
                if not source.get("items"):
                    return kind, source[name_key], relative
        raise AssertionError(f"{path} is on volume {mount['name']} that no Secret/ConfigMap holds")
    raise AssertionError(f"nothing is mounted at {path}")


def volume_mode(manifests: list[dict[str, Any]], volume: str) -> int:
    """The file mode of a Secret/ConfigMap volume's files."""
    source = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == volume)
    inner = source.get("secret") or source.get("configMap") or {}
    mode: int = inner.get("defaultMode", 0o644)
    return mode


def secret_text(manifest: dict[str, Any], key: str) -> str:
    """A rendered Secret's value (``data`` is base64, ``stringData`` is not)."""
    if key in (manifest.get("stringData") or {}):
        text: str = manifest["stringData"][key]
        return text
    return base64.b64decode(manifest["data"][key]).decode()


def strings(node: Any) -> Iterator[str]:
    """Every string in a parsed manifest (keys and values), for leak checks."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
