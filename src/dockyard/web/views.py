"""Store records → API models; reads go through the serve process's database thread."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dockyard.core.states import RunState
from dockyard.errors import NotFoundError
from dockyard.web.schemas import (
    DeploymentDetail,
    DeploymentSummary,
    LogLineOut,
    RunDetail,
    RunList,
    RunSummary,
    StateEventOut,
)


def run_summary(run: Any) -> RunSummary:
    return RunSummary(
        id=run.id,
        deployment=run.deployment,
        name=run.name,
        state=run.state.value,
        state_message=run.state_message,
        trigger=run.trigger,
        attempt=run.attempt,
        scheduled_at=run.scheduled_at,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration_seconds=run.duration_seconds,
    )


def log_line(line: Any) -> LogLineOut:
    return LogLineOut(seq=line.seq, at=line.at, stream=line.stream, line=line.line)


class StoreReader:
    """Builds API answers from the store and the service's in-memory deployments."""

    def __init__(self, service: Any) -> None:
        self.service = service

    async def _db(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        return await self.service.query(fn, *args, **kwargs)

    def _summary_fields(self, record: Any) -> dict[str, Any]:
        deployment = self.service.deployments[record.name]
        upcoming = self.service.next_fire_times(record.name, 1)
        return {
            "name": record.name,
            "flow_name": deployment.flow_name,
            "deployment": deployment.name,
            "schedules": [s.to_dict() for s in deployment.schedules],
            "paused": record.paused,
            "paused_reason": record.paused_reason,
            "tags": list(deployment.tags),
            "description": deployment.description,
            "version": deployment.version,
            "next_run": None if record.paused or not upcoming else upcoming[0],
        }

    async def deployment_summaries(self) -> list[DeploymentSummary]:
        records = await self._db("list_deployments")
        served = [r for r in records if r.name in self.service.deployments]
        return [DeploymentSummary(**self._summary_fields(r)) for r in served]

    async def deployment_detail(self, name: str) -> DeploymentDetail:
        deployment = self.service._deployment(name)  # 404 for a deployment not served here
        record = await self._db("get_deployment", name)
        if record is None:
            raise NotFoundError(f"deployment {name!r} is not registered yet")
        last = await self._db("list_runs", deployment=name, limit=1)
        return DeploymentDetail(
            **self._summary_fields(record),
            entrypoint=deployment.entrypoint,
            parameters=dict(deployment.spec()["parameters"]),
            parameter_schema=dict(deployment.parameter_schema),
            next_runs=self.service.next_fire_times(name, 5),
            concurrency_limit=deployment.concurrency_limit,
            overlap=deployment.overlap.value,
            catchup=deployment.catchup.value,
            last_run=run_summary(last[0]) if last else None,
        )

    async def run_detail(self, run_id: str) -> RunDetail:
        run = await self._db("get_run", run_id)
        history = await self._db("state_history", run.id)
        return RunDetail(
            **run_summary(run).model_dump(),
            parameters=run.parameters,
            retries=run.retries,
            error=run.error,
            result=run.result,
            code_revision=run.code_revision,
            log_lines=run.log_lines,
            log_truncated=run.log_truncated,
            history=[
                StateEventOut(state=e.state.value, at=e.at, message=e.message) for e in history
            ],
        )

    async def run_list(
        self,
        deployment: str | None,
        states: list[RunState] | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> RunList:
        filters = {"deployment": deployment, "states": states, "since": since, "until": until}
        runs = await self._db("list_runs", limit=limit, offset=offset, **filters)
        total = await self._db("count_runs", **filters)
        return RunList(runs=[run_summary(r) for r in runs], total=total, limit=limit, offset=offset)
