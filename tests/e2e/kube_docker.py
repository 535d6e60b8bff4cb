"""Run a pod the Helm chart rendered under Docker, with exactly the settings it declares.

No cluster can run on these machines (../shared/ENVIRONMENT.md), so the chart-and-image
tests take the rendered Deployment's pod template and do what a kubelet would do with
it, one Docker flag per field: image, command and args, env and envFrom (resolved from
the rendered ConfigMaps and Secrets), volumes (ConfigMap and Secret files written to a
directory and bind-mounted, emptyDir as tmpfs, a PersistentVolumeClaim as a named
volume, hostPath as a bind mount), the security context (user, groups, read-only root,
capabilities, no-new-privileges), resource limits, ports (published on 127.0.0.1) and
the grace period (``--stop-timeout``). A field this module does not understand fails
the test instead of being dropped, so the chart cannot declare something the test
silently ignores.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.docker_support import Cleanup, docker, http_status, unique, wait_for
from tests.helm.chart import find, secret_text
from tests.helpers import free_port

Manifest = dict[str, Any]

# Pod and container fields that change nothing under Docker on one machine (scheduling,
# service accounts, pull policy) or that the probes below use themselves.
_POD_IGNORED = {
    "affinity", "automountServiceAccountToken", "nodeSelector", "priorityClassName",
    "serviceAccountName", "tolerations", "topologySpreadConstraints", "imagePullSecrets",
    "securityContext", "volumes", "containers", "terminationGracePeriodSeconds",
    "enableServiceLinks",
}  # fmt: skip
_CONTAINER_IGNORED = {
    "name", "image", "imagePullPolicy", "livenessProbe", "readinessProbe", "startupProbe",
    "terminationMessagePolicy", "terminationMessagePath", "command", "args", "env",
    "envFrom", "ports", "resources", "securityContext", "volumeMounts", "workingDir",
}  # fmt: skip


def config_maps(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return {m["metadata"]["name"]: dict(m.get("data") or {}) for m in manifests
            if m.get("kind") == "ConfigMap"}  # fmt: skip


def secrets(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    """Every rendered Secret's keys and values (``data`` decoded, ``stringData`` as is)."""
    found: dict[str, dict[str, str]] = {}
    for m in manifests:
        if m.get("kind") == "Secret":
            keys = {*(m.get("data") or {}), *(m.get("stringData") or {})}
            found[m["metadata"]["name"]] = {key: secret_text(m, key) for key in keys}
    return found


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``256Mi``, ``1G``, ``1048576``) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12}  # fmt: skip
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    if not match or (match[2] and match[2] not in units):
        raise AssertionError(f"unknown memory quantity {quantity!r}")
    return int(float(match[1]) * units.get(match[2], 1))


def cpus(quantity: str) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass
class Pod:
    """One container of the chart's Deployment, run under Docker (``start``)."""

    manifests: list[Manifest]
    tracker: Cleanup
    workdir: Path
    extra_secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    """Secrets the user made before installing (an ``existingSecret``): name → key → value."""
    claims: dict[str, str] = field(default_factory=dict)
    """PersistentVolumeClaim name → Docker volume (made on first use, kept by the test)."""
    name: str = field(default_factory=lambda: unique("pod"))
    ports: dict[str, int] = field(default_factory=dict)
    """Container port (name and number, as strings) → host port on 127.0.0.1."""

    def __post_init__(self) -> None:
        self.deployment = find(self.manifests, "Deployment")
        self.spec: Manifest = self.deployment["spec"]["template"]["spec"]
        containers = self.spec["containers"]
        assert len(containers) == 1, "the chart's pod has one container"
        self.container: Manifest = containers[0]
        unknown = set(self.spec) - _POD_IGNORED
        unknown |= {f"container.{k}" for k in set(self.container) - _CONTAINER_IGNORED}
        assert not unknown, f"pod fields this test does not run: {sorted(unknown)}"
        self._config_maps = config_maps(self.manifests)
        self._secrets = {**secrets(self.manifests), **self.extra_secrets}

    # ── what a kubelet would do ─────────────────────────────────────────────────────
    @property
    def grace_seconds(self) -> int:
        return int(self.spec.get("terminationGracePeriodSeconds", 30))

    def env(self) -> dict[str, str]:
        """envFrom first, then env (which wins), with every reference resolved."""
        values: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                data = self._config_maps[source["configMapRef"]["name"]]
            else:
                data = self._secrets[source["secretRef"]["name"]]
            values.update({prefix + k: v for k, v in data.items()})
        for item in self.container.get("env", []):
            values[item["name"]] = self._env_value(item)
        return values

    def _env_value(self, item: Manifest) -> str:
        if "value" in item:
            return str(item["value"])
        ref = item["valueFrom"]
        if "configMapKeyRef" in ref:
            return self._config_maps[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
        if "secretKeyRef" in ref:
            return self._secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]]
        if ref.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            return self.name
        raise AssertionError(f"env {item['name']}: unsupported valueFrom {ref}")

    def _security(self) -> tuple[Manifest, Manifest]:
        return self.spec.get("securityContext") or {}, self.container.get("securityContext") or {}

    def _user_args(self) -> list[str]:
        pod, ctr = self._security()
        uid = ctr.get("runAsUser", pod.get("runAsUser"))
        gid = ctr.get("runAsGroup", pod.get("runAsGroup", uid))
        if ctr.get("runAsNonRoot", pod.get("runAsNonRoot")):
            assert uid not in (None, 0), "runAsNonRoot needs a numeric non-root runAsUser"
        args = ["--user", f"{uid}:{gid}"] if uid is not None else []
        groups = [pod["fsGroup"]] if "fsGroup" in pod else []
        for group in [*groups, *pod.get("supplementalGroups", [])]:
            args += ["--group-add", str(group)]
        if ctr.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        caps = ctr.get("capabilities") or {}
        args += [f"--cap-drop={c}" for c in caps.get("drop", [])]
        args += [f"--cap-add={c}" for c in caps.get("add", [])]
        if ctr.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        seccomp = (ctr.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        assert seccomp in (None, "RuntimeDefault"), f"seccomp {seccomp}: not run by this test"
        return args  # RuntimeDefault is Docker's default profile

    def _file_owner(self) -> tuple[int, int]:
        pod, ctr = self._security()
        uid = ctr.get("runAsUser", pod.get("runAsUser", 0))
        return 0, int(pod.get("fsGroup", ctr.get("runAsGroup", pod.get("runAsGroup", uid))))

    def _files(self, volume: str, data: dict[str, str], source: Manifest) -> Path:
        """A ConfigMap's or Secret's keys as files, as the kubelet projects them (the
        group is the fsGroup, as it makes them: readable by the pod's user only so)."""
        directory = self.workdir / f"{self.name}-{volume}"
        directory.mkdir(parents=True)
        os.chmod(directory, 0o755)
        mode = int(source.get("defaultMode", 0o644))
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        owner, group = self._file_owner()
        for item in items:
            path = directory / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]])
            os.chown(path, owner, group)
            os.chmod(path, int(item.get("mode", mode)) | (0o040 if group else 0))
        return directory

    def _mount_args(self) -> list[str]:
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        args: list[str] = []
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            target = mount["mountPath"]
            read_only = ",readonly" if mount.get("readOnly") else ""
            source = self._volume_source(mount["name"], volume)
            if source is None:  # emptyDir
                size = volume["emptyDir"].get("sizeLimit")
                limit = f",tmpfs-size={memory_bytes(size)}" if size else ""
                args += ["--mount", f"type=tmpfs,dst={target},tmpfs-mode=1777{limit}"]
                continue
            kind, path = source
            if mount.get("subPath"):
                assert kind == "bind", "subPath of a named volume is not run by this test"
                path = str(Path(path) / mount["subPath"])
            args += ["--mount", f"type={kind},src={path},dst={target}{read_only}"]
        return args

    def _volume_source(self, name: str, volume: Manifest) -> tuple[str, str] | None:
        if "emptyDir" in volume:
            return None
        if "configMap" in volume:
            source = volume["configMap"]
            directory = self._files(name, self._config_maps[source["name"]], source)
            return "bind", str(directory)
        if "secret" in volume:
            source = volume["secret"]
            directory = self._files(name, self._secrets[source["secretName"]], source)
            return "bind", str(directory)
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in self.claims:
                self.claims[claim] = self.tracker.add("volume", unique("pvc"))
            return "volume", self.claims[claim]
        if "hostPath" in volume:
            return "bind", volume["hostPath"]["path"]
        raise AssertionError(f"volume {name}: kind not run by this test: {sorted(volume)}")

    def _resource_args(self) -> list[str]:
        limits = (self.container.get("resources") or {}).get("limits") or {}
        args = []
        if "memory" in limits:
            args += ["--memory", str(memory_bytes(limits["memory"]))]
        if "cpu" in limits:
            args += ["--cpus", f"{cpus(limits['cpu']):g}"]
        return args

    def _port_args(self) -> list[str]:
        args = []
        for port in self.container.get("ports", []):
            number = int(port["containerPort"])
            host = free_port()
            self.ports[str(number)] = host
            if "name" in port:
                self.ports[port["name"]] = host
            args += ["-p", f"127.0.0.1:{host}:{number}"]
        return args

    def docker_run_args(self) -> list[str]:
        """``docker run`` arguments for this pod (everything but the image's own defaults)."""
        args = ["--name", self.name, "--hostname", self.name]
        args += ["--stop-timeout", str(self.grace_seconds)]
        args += self._user_args() + self._mount_args() + self._resource_args()
        args += self._port_args()
        for key, value in self.env().items():
            args += ["-e", f"{key}={value}"]
        if "workingDir" in self.container:
            args += ["-w", self.container["workingDir"]]
        command = list(self.container.get("command") or [])
        if command:
            args += ["--entrypoint", command[0]]
        return [*args, self.container["image"], *command[1:], *self.container.get("args", [])]

    def start(self) -> Pod:
        self.tracker.add("container", self.name)
        docker("run", "-d", *self.docker_run_args())
        return self

    # ── probes ──────────────────────────────────────────────────────────────────────
    def url(self, path: str = "", port: str = "http") -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def probe_url(self, which: str) -> str:
        """The URL of ``livenessProbe`` / ``readinessProbe`` / ``startupProbe``."""
        get = self.container[which]["httpGet"]
        assert get.get("scheme", "HTTP") == "HTTP"
        return self.url(get["path"], str(get["port"]))

    def probe_budget(self, which: str) -> float:
        """How long the kubelet lets the probe fail before acting on it (seconds)."""
        probe = self.container[which]
        period = probe.get("periodSeconds", 10)
        failures = probe.get("failureThreshold", 3)
        return float(probe.get("initialDelaySeconds", 0) + period * failures)

    def wait_started(self) -> float:
        """Wait as the kubelet would for the startup probe; return the seconds it took."""
        started = time.monotonic()
        budget = self.probe_budget("startupProbe")
        what = f"{self.name}: the startup probe within its {budget:g}s"
        wait_for(lambda: http_status(self.probe_url("startupProbe")) == 200, budget, what)
        return time.monotonic() - started

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: http_status(self.probe_url("readinessProbe")) == 200, timeout,
                 f"{self.name}: the readiness probe")  # fmt: skip

    def stop(self) -> tuple[float, int]:
        """``docker stop`` with the pod's grace (its --stop-timeout): (seconds, exit code)."""
        started = time.monotonic()
        docker("stop", self.name, timeout=self.grace_seconds + 60)
        elapsed = time.monotonic() - started
        code = docker("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip()
        return elapsed, int(code)
