"""What the orchestration client returns (Prefect's ``prefect.client.schemas.objects``).

A ``FlowRun`` and a ``DeploymentResponse`` carry the fields of Prefect's objects that a
serve process can fill, read from its API's JSON. Ids are dockyard's: a run's id, and
``"flow/deployment"`` for a deployment. A ``FlowRun`` is also the kind of object flow
hooks get (``dockyard.core.states.FlowRun``), with the run's state and times added. As in
Prefect's module, ``State``, ``StateType`` and ``TaskRun`` can be imported from here too.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dockyard.core.outcomes import State, StateType
from dockyard.core.states import FlowRun as HookFlowRun
from dockyard.core.states import RunState

if TYPE_CHECKING:
    from dockyard.engine.context import TaskRun

__all__ = ["DeploymentResponse", "FlowRun", "State", "StateType", "TaskRun"]


@dataclass(kw_only=True)
class FlowRun(HookFlowRun):
    """One flow run as the API last reported it; ``state`` tells how it is doing."""

    state: State
    flow_name: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_run_time: timedelta = timedelta(0)
    created: datetime | None = None

    @property
    def deployment_id(self) -> str | None:
        """The deployment's name, ``"flow/deployment"`` (dockyard's deployment id)."""
        return self.deployment

    @property
    def expected_start_time(self) -> datetime | None:
        return self.scheduled_at

    @property
    def state_type(self) -> StateType:
        return self.state.type

    @property
    def state_name(self) -> str:
        return self.state.name

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> FlowRun:
        """From ``GET /api/runs/{id}`` (or an item of ``GET /api/runs``)."""
        deployment = str(data["deployment"])
        return cls(
            id=str(data["id"]),
            name=data.get("name"),
            deployment=deployment,
            parameters=dict(data.get("parameters") or {}),
            attempt=int(data.get("attempt") or 1),
            scheduled_at=_time(data.get("scheduled_at")),
            tags=tuple(data.get("tags") or ()),
            state=run_state(data),
            flow_name=deployment.partition("/")[0],
            start_time=_time(data.get("started_at")),
            end_time=_time(data.get("ended_at")),
            total_run_time=timedelta(seconds=float(data.get("duration_seconds") or 0)),
            created=_time(data.get("created_at")),
        )


def run_state(data: Mapping[str, Any]) -> State:
    """The ``State`` of a run in the API's JSON: its type, message and when it began.

    A run read through the API holds no result data (``state.result()`` is None for a
    Completed run; a Failed, Crashed or Cancelled one raises with its message).
    """
    history = data.get("history") or []
    at = history[-1].get("at") if history else None
    return State(
        StateType(RunState(data["state"]).value.upper()),
        data.get("state_message"),
        timestamp=_time(at or data.get("ended_at") or data.get("started_at")),
    )


@dataclass
class DeploymentResponse:
    """A deployment of the serve process (Prefect's ``DeploymentResponse``)."""

    id: str
    """``"flow/deployment"``: what ``create_flow_run_from_deployment`` takes."""
    name: str
    flow_name: str
    paused: bool = False
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    version: str | None = None
    schedules: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    """The default parameters (filled by ``read_deployment``, not ``read_deployments``)."""
    parameter_openapi_schema: dict[str, Any] = field(default_factory=dict)
    entrypoint: str | None = None
    concurrency_limit: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> DeploymentResponse:
        """From ``GET /api/deployments/{flow}/{deployment}`` or an item of the list."""
        return cls(
            id=str(data["name"]),
            name=str(data["deployment"]),
            flow_name=str(data["flow_name"]),
            paused=bool(data.get("paused")),
            tags=list(data.get("tags") or []),
            description=data.get("description"),
            version=data.get("version"),
            schedules=list(data.get("schedules") or []),
            parameters=dict(data.get("parameters") or {}),
            parameter_openapi_schema=dict(data.get("parameter_schema") or {}),
            entrypoint=data.get("entrypoint"),
            concurrency_limit=data.get("concurrency_limit"),
        )


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def __getattr__(name: str) -> Any:
    """``TaskRun``, as in Prefect's module (on first use: it lives with the run contexts)."""
    if name == "TaskRun":
        return importlib.import_module("dockyard.engine.context").TaskRun
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
