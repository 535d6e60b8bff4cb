"""The typed contract between the serve process and the processes it starts.

A run: the serve process hands an ``Executor`` a ``RunSpec`` and gets a ``RunHandle``; the
child reports ``ChildStarted`` (its rendered run name) before the flow's first line, and a
``ChildResult`` when the attempt ends. A code check: the serve process sends the probe a
``ProbeRequest`` and gets a ``ProbeResult`` holding deployment specs (JSON), so it never
imports the user's code itself. Every message crosses the process boundary as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from dockyard.core.records import TaskRunRecord
from dockyard.core.states import RunState

LineSink = Callable[[str, str], Awaitable[None] | None]
"""Called with (stream, line) for every line a run prints."""


def attempt_key(run_id: str, attempt: int) -> str:
    """The name an attempt's files share in a run directory (``<key>.result.json``, ...)."""
    return f"{run_id}-{attempt}"


@dataclass(frozen=True)
class RunSpec:
    """One attempt of one run, as the child needs it."""

    run_id: str
    deployment: str
    entrypoint: str
    base_dir: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1
    final_attempt: bool = True
    name: str | None = None
    """The run's name when it already has one; else the child renders ``flow_run_name``."""
    bound_instance: str | None = None
    enforce_parameter_schema: bool = True
    timeout_seconds: float | None = None
    scheduled_at: datetime | None = None
    hook: Literal["crashed"] | None = None
    """Run only these hooks (the attempt itself ended without the child reporting)."""
    tags: tuple[str, ...] = ()
    """The run's tags (``dockyard.runtime.flow_run.tags``; inherited by its task runs)."""
    deployment_parameters: Mapping[str, Any] = field(default_factory=dict)
    """The deployment's default parameters (``dockyard.runtime.deployment.parameters``)."""
    api_url: str | None = None
    """The serve process's API, for ``run_deployment`` and ``get_client`` inside the run."""
    api_token: str | None = field(default=None, repr=False)
    """A token valid for this run only, while it is active (never put in the environment)."""
    results_dir: str | None = None
    """Where cached task results live (shared by the runs of one state)."""
    trigger: str | None = None
    """What created the run: "schedule", "catchup", "api", ... (``flow_run.auto_scheduled``)."""

    @property
    def key(self) -> str:
        """A file-name-safe key, unique per attempt (and per hook run)."""
        suffix = f"-{self.hook}" if self.hook else ""
        return f"{attempt_key(self.run_id, self.attempt)}{suffix}"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["parameters"] = dict(self.parameters)
        data["deployment_parameters"] = dict(self.deployment_parameters)
        data["tags"] = list(self.tags)
        data["scheduled_at"] = self.scheduled_at.isoformat() if self.scheduled_at else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        values = {k: v for k, v in data.items() if k in _RUN_SPEC_FIELDS}
        scheduled = values.get("scheduled_at")
        values["scheduled_at"] = datetime.fromisoformat(scheduled) if scheduled else None
        values["tags"] = tuple(values.get("tags") or ())
        return cls(**values)


_RUN_SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(RunSpec))


@dataclass(frozen=True)
class ChildStarted:
    """Written by the child before the flow runs: the run's name is known from now on."""

    name: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChildStarted:
        name = data.get("name")
        return cls(name if isinstance(name, str) else None)


@dataclass(frozen=True)
class ChildResult:
    """How an attempt ended, as the child saw it (written just before it exits)."""

    state: RunState
    """Completed, Failed or Cancelled."""
    error: str | None = None
    retry: bool = False
    """Whether a Failed attempt may be retried (invalid parameters may not)."""
    result: str | None = None
    """A Completed run's return value, as ``core.results.encode_result`` keeps it."""

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "state": self.state.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChildResult:
        return cls(
            state=RunState(data["state"]),
            error=_text(data.get("error")),
            retry=bool(data.get("retry")),
            result=_text(data.get("result")),
        )


@dataclass(frozen=True)
class RunOutcome:
    """How a run's process ended, as the serve process saw it."""

    exit_code: int | None
    result: ChildResult | None
    """What the child reported, or None when it died without reporting."""
    task_runs: tuple[TaskRunRecord, ...] = ()
    """The attempt's task runs as last reported (a crash leaves some Running)."""


class RunHandle(Protocol):
    """A started run, whatever started it (a fresh interpreter today)."""

    @property
    def pid(self) -> int: ...

    @property
    def identity(self) -> str | None:
        """The process named for a later start (JSON), so it can be found and killed."""
        ...

    async def wait(self) -> RunOutcome: ...

    async def stop(self, kill_after: float) -> None: ...

    def kill(self) -> None: ...

    def started(self) -> ChildStarted | None: ...

    def cleanup(self) -> None: ...


class Executor(Protocol):
    """Starts runs: a ``RunSpec`` in, a ``RunHandle`` out."""

    async def start(self, spec: RunSpec, sink: LineSink) -> RunHandle: ...

    async def kill_leftovers(self, run_id: str, identity: str | None) -> int:
        """Kill what an attempt of ``run_id`` left running (a serve process that died)."""
        ...

    def reported(self, identity: str | None, run_id: str, attempt: int) -> ChildResult | None:
        """What an attempt of a serve process that died had reported before it ended."""
        ...

    def reported_task_runs(
        self, identity: str | None, run_id: str, attempt: int
    ) -> tuple[TaskRunRecord, ...]:
        """The task runs such an attempt had reported."""
        ...


@dataclass(frozen=True)
class EntrypointRequest:
    """One deployment to make from an entrypoint and deployment options (JSON-able)."""

    entrypoint: str
    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeRequest:
    """What a probe loads: entrypoints, or a dockyard.yaml, under ``root``.

    ``config`` is relative to ``root`` or absolute; its entrypoints are relative to the
    file's folder (``config_base="file"``) or to ``root`` (``"root"``: a local file whose
    ``source:`` names the repository the code is in).
    """

    root: str
    entrypoints: tuple[EntrypointRequest, ...] = ()
    config: str | None = None
    config_base: Literal["file", "root"] = "file"
    source_key: str | None = None
    revision: str | None = None

    def at(self, root: Path, revision: str) -> ProbeRequest:
        """The same request against another checkout (a new revision of a git source)."""
        return dataclasses.replace(self, root=str(root), revision=revision)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["entrypoints"] = [
            {"entrypoint": e.entrypoint, "name": e.name, "options": dict(e.options)}
            for e in self.entrypoints
        ]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProbeRequest:
        values = dict(data)
        values["entrypoints"] = tuple(EntrypointRequest(**e) for e in data.get("entrypoints", []))
        return cls(**values)


@dataclass(frozen=True)
class ProbeResult:
    """The deployments (``Deployment.to_spec()`` dicts) a revision defines, or why not."""

    ok: bool
    error: str | None = None
    exit_code: int = 1
    """The exit code the error deserves (2: bad input such as a missing entrypoint)."""
    error_type: str | None = None
    """The ``dockyard.errors`` class of the error (``EntrypointError``, ``ConfigError``...)."""
    deployments: tuple[Mapping[str, Any], ...] = ()

    @property
    def names(self) -> list[str]:
        return [f"{d['flow_name']}/{d['name']}" for d in self.deployments]

    def to_line(self) -> str:
        data = {**dataclasses.asdict(self), "deployments": list(self.deployments)}
        return json.dumps(data, default=str)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProbeResult:
        return cls(
            ok=bool(data.get("ok")),
            error=_text(data.get("error")),
            exit_code=int(data.get("exit_code") or 1),
            error_type=_text(data.get("error_type")),
            deployments=tuple(data.get("deployments") or ()),
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
