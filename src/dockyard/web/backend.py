"""What the webserver needs from the serve process, declared here and nowhere else.

The web package never imports the service: ``create_app`` takes any object with these
methods (``service.ops.Operations`` in the serve process, a fake in tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dockyard.core.deployments import Deployment
from dockyard.core.records import DeploymentRecord, LogLine, RunRecord, StateEvent, TaskRunRecord
from dockyard.core.states import RunState
from dockyard.web.schemas import Health, Ready, ReplicaOut, SourceOut


@dataclass(frozen=True)
class DeploymentView:
    """A deployment with its stored state, next slots and latest run."""

    deployment: Deployment | None
    """As this process serves it; None for one it does not serve (its stored spec is shown)."""
    record: DeploymentRecord
    next_runs: Sequence[datetime]
    last_run: RunRecord | None = None
    error: str | None = None
    """Why its schedules fail (it is not being scheduled), or None."""
    served: bool = True
    """Whether a live serve process (this one or another replica) serves it."""


class Backend(Protocol):
    """The operations behind the probes, ``/metrics`` and ``/api``.

    Reads and writes raise ``NotFoundError`` (404), ``ParameterError`` (422),
    ``UsageError`` (400) and ``StateStoreError`` (503, also while starting).
    """

    def health(self) -> Health: ...

    async def readiness(self) -> Ready: ...

    async def metrics_page(self, accept: str | None) -> tuple[bytes, str]:
        """The Prometheus page in the format the ``Accept`` header asks for, and its content
        type (readiness evaluated first, for ``dockyard_ready``)."""
        ...

    async def deployments(self, *, every: bool = False) -> list[DeploymentView]:
        """The served deployments; ``every``: also those no serve process serves any more."""
        ...

    async def delete_deployment(self, name: str) -> int:
        """Remove a deployment no live serve process serves, with its runs; how many runs
        went. ``ConflictError`` (409) while one serves it or one of its runs is running."""
        ...

    async def deployment(self, name: str) -> DeploymentView: ...

    async def set_paused(self, name: str, paused: bool) -> None: ...

    async def trigger_run(
        self, name: str, parameters: dict[str, Any], tags: Sequence[str] | None = None
    ) -> RunRecord:
        """An ad-hoc run: ``parameters`` over the defaults, ``tags`` after the deployment's."""
        ...

    async def cancel_run(self, run_id: str, reason: str) -> RunRecord: ...

    async def list_runs(
        self,
        *,
        deployment: str | None,
        states: list[RunState] | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[RunRecord], int]: ...

    async def get_run(self, run_id: str) -> RunRecord: ...

    async def run_history(self, run_id: str) -> list[StateEvent]: ...

    async def run_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """The run's task runs, in the order they started."""
        ...

    async def set_run_tags(self, run_id: str, tags: Sequence[str]) -> RunRecord:
        """Replace the run's tags (the run afterwards)."""
        ...

    async def run_logs(
        self, run_id: str, *, tail: int | None = None, after_seq: int | None = None
    ) -> list[LogLine]: ...

    def sources(self) -> list[SourceOut]: ...

    async def replicas(self) -> list[ReplicaOut]:
        """The serve processes sharing the database, the oldest started first."""
        ...

    def trigger_sources(self) -> int: ...

    def request_shutdown(self) -> None: ...
