"""What the webserver (and tests) ask of a serve process: probes and the API's operations.

``Operations`` implements ``web.backend.Backend``. It reads the process status, the
catalog and the store; the collaborators that exist only once the process has started
(store, supervisor, code sources) are attached by the lifecycle in ``attach``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from dockyard.core.parameters import check_values, merge_parameters
from dockyard.core.planning import describe_error
from dockyard.core.policies import PauseReason, Trigger
from dockyard.core.records import (
    DeploymentRecord,
    LogLine,
    RunRecord,
    StateEvent,
    TaskRunRecord,
)
from dockyard.core.schedules import schedule_from_dict, upcoming
from dockyard.core.states import RunState
from dockyard.errors import ConflictError, NotFoundError, ScheduleError, StateStoreError
from dockyard.metrics import Metrics
from dockyard.service.catalog import Catalog
from dockyard.service.code import CodeSupervisor
from dockyard.service.supervisor import RunSupervisor
from dockyard.settings import Settings
from dockyard.store.aio import AsyncStore
from dockyard.store.serving import live_deployments
from dockyard.web import shapes
from dockyard.web.backend import DeploymentView
from dockyard.web.schemas import Health, Ready, ReplicaOut, SourceOut

STORE_PING_SECONDS = 2.0
NEXT_RUNS = 5


@dataclass
class ProcessStatus:
    """Where the serve process is in its life; the lifecycle writes it, probes read it."""

    should_exit: bool = False
    force_exit: bool = False
    ready: bool = False
    draining: bool = False
    exit_code: int = 0
    started_at: datetime | None = None
    last_tick: datetime | None = None
    tick_started: datetime | None = None
    tick_error: str | None = None
    waiting_for: str | None = None
    """What start-up is waiting for (the database server), for /ready."""


class Operations:
    """Probes, metrics and the operations behind the HTTP API."""

    def __init__(
        self,
        status: ProcessStatus,
        settings: Settings,
        catalog: Catalog,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
        request_exit: Callable[[], None],
    ) -> None:
        self.status = status
        self.settings = settings
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self.wake = wake
        self._request_exit = request_exit
        self._store: AsyncStore | None = None
        self._supervisor: RunSupervisor | None = None
        self._code: CodeSupervisor | None = None

    def attach(self, store: AsyncStore, supervisor: RunSupervisor, code: CodeSupervisor) -> None:
        self._store, self._supervisor, self._code = store, supervisor, code

    @property
    def store(self) -> AsyncStore:
        """The store; 503 (StateStoreError) until the process has opened it."""
        if self._store is None:
            raise StateStoreError("the serve process is starting; try again in a moment")
        return self._store

    @property
    def supervisor(self) -> RunSupervisor:
        if self._supervisor is None:
            raise StateStoreError("the serve process is starting; try again in a moment")
        return self._supervisor

    # ── probes ──────────────────────────────────────────────────────────────────────
    def health(self) -> Health:
        """Liveness: the scheduler loop has ticked within the threshold."""
        last_tick = self.status.last_tick
        if last_tick is None:
            return Health(status="starting", reason="the scheduler has not ticked yet")
        age = (self.clock() - last_tick).total_seconds()
        threshold = self.settings.health_threshold
        # A tick waiting on a slow state store is alive: readiness reports the store.
        started = self.status.tick_started
        waiting = started is not None and started > last_tick
        if age > threshold and not waiting:
            reason = f"the scheduler loop last ticked {age:.0f}s ago (threshold {threshold:g}s)"
            return Health(status="stalled", reason=reason, last_tick=last_tick)
        return Health(
            status="ok", last_tick=last_tick, seconds_since_tick=age, draining=self.status.draining
        )

    async def readiness(self) -> Ready:
        """Readiness: deployments loaded, code current, scheduling works, store answers.

        Every check also sets ``dockyard_ready`` (``metrics_text`` checks before it renders).
        """
        ready = await self._readiness()
        self.metrics.set_ready(ready.status == "ready")
        return ready

    async def _readiness(self) -> Ready:
        status = self.status
        if status.draining:
            return Ready(status="draining", reason="the process is shutting down")
        if not status.ready:
            reason = status.waiting_for or "deployments are not loaded yet"
            return Ready(status="starting", reason=reason)
        if status.last_tick is None:  # ready promises a live /health: one tick first
            return Ready(status="starting", reason="the scheduler has not ticked yet")
        waiting = self._code.unready() if self._code is not None else None
        if waiting:
            return Ready(status="unavailable", reason=waiting)
        if status.tick_error:
            return Ready(status="unavailable", reason=f"scheduling fails: {status.tick_error}")
        try:
            await asyncio.wait_for(self.store.ping(), STORE_PING_SECONDS)
        except (TimeoutError, StateStoreError) as exc:
            reason = str(exc) or f"no answer within {STORE_PING_SECONDS:g}s"
            return Ready(status="unavailable", reason=f"state store unreachable: {reason}")
        # One deployment's broken schedule is not a reason to restart the process (which
        # would not fix it): still ready, naming it; the others go on being scheduled.
        failing = self.metrics.failing_deployments()
        if failing:
            names = ", ".join(sorted(failing))
            reason = f"{len(failing)} deployment(s) failing to schedule: {names}"
            return Ready(
                status="ready", reason=reason, deployments=len(self.catalog), failing=failing
            )
        return Ready(status="ready", deployments=len(self.catalog))

    async def metrics_text(self) -> bytes:
        """The Prometheus page, with readiness evaluated first: a scrape alone keeps
        ``dockyard_ready`` current (no one has to call /ready)."""
        await self.readiness()
        return self.metrics.render()

    async def metrics_page(self, accept: str | None) -> tuple[bytes, str]:
        """``metrics_text`` in the format ``accept`` asks for, with its content type."""
        await self.readiness()
        return self.metrics.exposition(accept)

    # ── deployments ─────────────────────────────────────────────────────────────────
    async def deployments(self, *, every: bool = False) -> list[DeploymentView]:
        """The served deployments (here or by a live replica); ``every``: all stored ones."""
        records = await self.store.list_deployments()
        served = await self._served()
        return [
            self._view(r, served=r.name in served) for r in records if every or r.name in served
        ]

    async def deployment(self, name: str) -> DeploymentView:
        if self._store is None:
            self.catalog.get(name)  # 404 for one not served here, even while starting
        record = await self.store.get_deployment(name)
        if record is None:
            self.catalog.get(name)  # 404 naming what is served here
            raise NotFoundError(f"deployment {name!r} is not registered yet")
        last = await self.store.list_runs(deployment=name, limit=1)
        served = name in self.catalog or name in await self._served()
        return self._view(record, last[0] if last else None, served=served)

    def _view(
        self, record: DeploymentRecord, last_run: RunRecord | None = None, *, served: bool = True
    ) -> DeploymentView:
        deployment = self.catalog.find(record.name)
        if deployment is None:  # served by another replica, or by none any more
            upcoming = _stored_upcoming(record, self.clock()) if served else []
            return DeploymentView(None, record, upcoming, last_run, served=served)
        error = self.metrics.failing_deployments().get(record.name)
        times: list[datetime] = []
        if error is None:
            try:
                times = self.next_fire_times(record.name)
            except Exception as exc:  # the same failure the next tick reports
                error = describe_error(exc)
        return DeploymentView(deployment, record, times, last_run, error)

    async def _served(self) -> set[str]:
        """What this process and the live replicas serve."""
        now = self.clock()
        rows, dead = await self.store.replica_rows(now, exclude=self._me())
        return set(self.catalog.names()) | live_deployments(
            rows, now, self.store.replica_timeout, dead
        )

    def _me(self) -> str | None:
        """This process's replica id: its catalog is newer than its own heartbeat row."""
        return self._supervisor.owner if self._supervisor is not None else None

    async def delete_deployment(self, name: str) -> int:
        """Remove a deployment that no live serve process serves, with its runs."""
        store = self.store
        if await store.get_deployment(name) is None:
            raise await self._unknown(name)
        if name in self.catalog:
            raise ConflictError(
                f"{name} is served by this serve process, which would register it again: "
                "remove it from its configuration and restart it first"
            )
        refused = await store.removal_refusal(name, self.clock(), exclude=self._me())
        if refused is not None:
            raise refused
        removed = 0  # a batch per store call: the tick's calls go in between
        while count := await store.delete_runs(name):
            removed += count
        return removed + await store.delete_deployment(name)

    async def _unknown(self, name: str) -> NotFoundError:
        known = ", ".join(r.name for r in await self.store.list_deployments()) or "none"
        return NotFoundError(f"unknown deployment {name!r}; known: {known}")

    def next_fire_times(self, name: str, count: int = NEXT_RUNS) -> list[datetime]:
        return upcoming(self.catalog.get(name).schedules, self.clock(), count)

    async def set_paused(self, name: str, paused: bool) -> None:
        self.catalog.get(name)
        reason = PauseReason.USER if paused else None
        await self.store.set_paused(name, paused, reason, now=self.clock())
        self.wake()

    # ── runs ────────────────────────────────────────────────────────────────────────
    async def trigger_run(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> RunRecord:
        """Create an ad-hoc run with parameters merged over the deployment's defaults, and
        ``tags`` after the deployment's.

        Parameters are checked against the JSON schema the probe reported, before anything
        is written; the run's child validates them again with the flow's own signature.
        """
        deployment = self.catalog.get(name)
        store = self.store
        params = merge_parameters(deployment.parameters, parameters or {})
        check_values(params, max_bytes=self.settings.max_parameter_bytes)
        if deployment.enforce_parameter_schema:
            from dockyard.core.schema_check import validate_against_schema  # jsonschema: on use

            params = validate_against_schema(
                deployment.parameter_schema, params, flow_name=deployment.flow_name,
                names_only=not deployment.validate_parameters,
            )  # fmt: skip
        # Pending in one write: the scheduler promotes a due Scheduled run on its own,
        # and could do so between two writes from here.
        new = deployment.new_run(params, self.clock(), Trigger.MANUAL)
        new = replace(new, tags=(*new.tags, *(tags or ())))
        run = await store.create_run(new)
        self.wake()
        return run

    async def cancel_run(self, run_id: str, reason: str = "cancelled on request") -> RunRecord:
        return await self.supervisor.cancel_run(run_id, reason)

    async def list_runs(
        self,
        *,
        deployment: str | None,
        states: list[RunState] | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[RunRecord], int]:
        if deployment is not None and await self.store.get_deployment(deployment) is None:
            raise await self._unknown(deployment)  # not an empty list: say so
        filters: dict[str, Any] = dict(
            deployment=deployment, states=states, since=since, until=until
        )
        runs = await self.store.list_runs(limit=limit, offset=offset, **filters)
        return runs, await self.store.count_runs(**filters)

    async def get_run(self, run_id: str) -> RunRecord:
        return await self.store.get_run(run_id)

    async def run_history(self, run_id: str) -> list[StateEvent]:
        return await self.store.state_history(run_id)

    async def run_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        return await self.store.task_runs(run_id)

    async def set_run_tags(self, run_id: str, tags: Sequence[str]) -> RunRecord:
        """Replace a run's tags (an attempt that starts later gets them)."""
        run = await self.store.get_run(run_id)
        return await self.store.set_run_tags(run.id, tags)

    async def run_logs(
        self, run_id: str, *, tail: int | None = None, after_seq: int | None = None
    ) -> list[LogLine]:
        return await self.store.get_logs(run_id, tail=tail, after_seq=after_seq)

    # ── the process ─────────────────────────────────────────────────────────────────
    def sources(self) -> list[SourceOut]:
        managers = self._code.managers.values() if self._code is not None else []
        return [SourceOut(**vars(m.status)) for m in managers]

    async def replicas(self) -> list[ReplicaOut]:
        """The replicas sharing the database, their state at this process's clock."""
        store = self.store
        records = await store.list_replicas()
        now = self.clock()
        return [shapes.replica(r, now, store.replica_timeout) for r in records]

    def trigger_sources(self) -> int:
        return self._code.trigger() if self._code is not None else 0

    def request_shutdown(self) -> None:
        self._request_exit()


def _stored_upcoming(record: DeploymentRecord, now: datetime) -> list[datetime]:
    """The next fire times of a deployment served elsewhere, from its stored schedules (as
    ``dockyard deployment`` computes them from the database); none if they do not parse."""
    try:
        schedules = [schedule_from_dict(s) for s in record.spec.get("schedules") or []]
    except ScheduleError:
        return []
    return upcoming(schedules, now, NEXT_RUNS)
