"""The ``/api`` routes: deployments, runs and sources of this serve process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from dockyard.core.names import MAX_NAME_LENGTH
from dockyard.core.parameters import MAX_PARAMETER_BYTES, check_values, scrub_text
from dockyard.core.records import RunRecord
from dockyard.errors import ParameterError
from dockyard.web import views
from dockyard.web.auth import BEARER, TokenGuard
from dockyard.web.backend import Backend
from dockyard.web.schemas import (
    Accepted,
    CreateRun,
    DeploymentDetail,
    DeploymentRemoved,
    DeploymentSummary,
    Logs,
    Problem,
    ReplicaOut,
    RunDetail,
    RunList,
    RunSummary,
    SourceOut,
    StateFilter,
    UpdateRun,
)
from dockyard.web.webhook import Duplicate, WebhookAuth

FOLLOW_POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
NAME = Annotated[str, Path(min_length=1, max_length=MAX_NAME_LENGTH)]
Responses = dict[int | str, dict[str, Any]]
ERROR_CAUSES = {
    400: "A body that is not valid JSON, or a run id prefix that matches several runs",
    401: "A token is configured and the request has none or a wrong one (or a flow run's "
    "token after its run ended, or a webhook signature that does not match)",
    403: "A cross-origin request; no token configured on a server beyond loopback; or a flow "
    "run's token calling what only the API token may",
    404: "No such deployment or run",
    409: "A deployment that a live serve process serves, or with a run that is running",
    413: "Request body larger than DOCKYARD_MAX_REQUEST_BYTES",
    415: "A body that is not JSON, without a bearer token, on a server without a token",
    421: "Host is not a name this server answers to (DOCKYARD_ALLOWED_HOSTS)",
    422: "Invalid path, query or body; ``errors`` names each field",
    503: "The process is starting, or the state store (or the API token file) cannot be read",
}
"""What each error status of the API means; every route declares those it can answer."""


def errors(*codes: int) -> Responses:
    """OpenAPI ``responses`` for these error statuses, each a ``Problem``."""
    return {code: {"model": Problem, "description": ERROR_CAUSES[code]} for code in codes}


READ = errors(421, 503)
MUTATING = errors(401, 403, 413, 415, 421, 503)
"""Any mutating call: refused by the token guard, the browser guard or the body limit."""
RUN_READ = {**READ, **errors(400, 404, 422)}
Model = TypeVar("Model", bound=BaseModel)


def build_router(
    backend: Backend,
    guard: TokenGuard,
    webhook_secret: str | None,
    *,
    max_parameter_bytes: int = MAX_PARAMETER_BYTES,
) -> APIRouter:
    router = APIRouter()
    protected = [Security(BEARER), Depends(guard)]

    @router.get(
        "/deployments",
        response_model=list[DeploymentSummary],
        responses=READ,
        tags=["deployments"],
    )
    async def list_deployments(
        every: Annotated[
            bool,
            Query(
                alias="all",
                description="Also the deployments no live serve process serves (``served`` "
                "is false).",
            ),
        ] = False,
    ) -> Any:
        """The deployments this process, or another live replica, serves."""
        found = await backend.deployments(every=every)
        return [views.deployment_summary(view) for view in found]

    @router.get(
        "/deployments/{flow}/{deployment}",
        response_model=DeploymentDetail,
        responses={**READ, **errors(404, 422)},
        tags=["deployments"],
    )
    async def get_deployment(flow: NAME, deployment: NAME) -> Any:
        """One deployment: schedules, next 5 fire times, defaults, parameter schema, last run."""
        return views.deployment_detail(await backend.deployment(f"{flow}/{deployment}"))

    @router.delete(
        "/deployments/{flow}/{deployment}",
        response_model=DeploymentRemoved,
        dependencies=protected,
        responses={**MUTATING, **errors(404, 409, 422)},
        tags=["deployments"],
    )
    async def delete_deployment(flow: NAME, deployment: NAME) -> Any:
        """Remove a deployment no serve process serves any more, with its runs, their logs
        and task runs (409 while a live serve process serves it: it would come back)."""
        name = f"{flow}/{deployment}"
        return DeploymentRemoved(name=name, runs=await backend.delete_deployment(name))

    @router.post(
        "/deployments/{flow}/{deployment}/pause",
        response_model=DeploymentSummary,
        dependencies=protected,
        responses={**MUTATING, **errors(404, 422)},
        tags=["deployments"],
    )
    async def pause_deployment(flow: NAME, deployment: NAME) -> Any:
        """Pause the schedules (persisted; stays paused across restarts until resumed)."""
        await backend.set_paused(f"{flow}/{deployment}", True)
        return views.deployment_detail(await backend.deployment(f"{flow}/{deployment}"))

    @router.post(
        "/deployments/{flow}/{deployment}/resume",
        response_model=DeploymentSummary,
        dependencies=protected,
        responses={**MUTATING, **errors(404, 422)},
        tags=["deployments"],
    )
    async def resume_deployment(flow: NAME, deployment: NAME) -> Any:
        """Resume the schedules."""
        await backend.set_paused(f"{flow}/{deployment}", False)
        return views.deployment_detail(await backend.deployment(f"{flow}/{deployment}"))

    @router.post(
        "/deployments/{flow}/{deployment}/runs",
        response_model=RunDetail,
        status_code=201,
        dependencies=protected,
        responses={**MUTATING, **errors(404, 422)},
        tags=["runs"],
    )
    async def trigger_run(flow: NAME, deployment: NAME, body: CreateRun | None = None) -> Any:
        """Start an ad-hoc run; parameters merge over the deployment's defaults, and its tags
        are the deployment's plus ``tags``."""
        body = body or CreateRun()
        check_values(body.parameters, max_bytes=max_parameter_bytes)  # before anything is written
        run = await backend.trigger_run(f"{flow}/{deployment}", body.parameters, body.tags)
        return views.run_detail(run, await backend.run_history(run.id))

    _run_routes(router, backend, protected)
    _process_routes(router, backend, guard, webhook_secret)
    return router


def _run_routes(router: APIRouter, backend: Backend, protected: list[Any]) -> None:
    @router.get(
        "/runs", response_model=RunList, responses={**READ, **errors(404, 422)}, tags=["runs"]
    )
    async def list_runs(
        deployment: Annotated[str | None, Query(max_length=2 * MAX_NAME_LENGTH + 1)] = None,
        state: Annotated[
            list[StateFilter] | None, Query(description="Any of these states (any case).")
        ] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        """Runs, newest first, filtered by deployment (404 for an unknown one), state and
        creation time."""
        runs, total = await backend.list_runs(
            deployment=deployment, states=state or None, since=_utc("since", since),
            until=_utc("until", until), limit=limit, offset=offset,
        )  # fmt: skip
        return _answerable(RunList(runs=[views.run_summary(r) for r in runs], total=total,
                                   limit=limit, offset=offset))  # fmt: skip

    @router.get("/runs/{run_id}", response_model=RunDetail, responses=RUN_READ, tags=["runs"])
    async def get_run(run_id: NAME) -> Any:
        """One run with its state history, task runs, tags, parameters, error and result."""
        return await _run_detail(backend, await backend.get_run(run_id))

    @router.patch(
        "/runs/{run_id}",
        response_model=RunDetail,
        dependencies=protected,
        responses={**MUTATING, **errors(400, 404, 422)},
        tags=["runs"],
    )
    async def update_run(run_id: NAME, body: UpdateRun) -> Any:
        """Change a run: ``tags`` replaces its tags (an attempt that starts later gets them)."""
        run = await backend.get_run(run_id)
        if body.tags is not None:
            run = await backend.set_run_tags(run.id, body.tags)
        return await _run_detail(backend, run)

    @router.get(
        "/runs/{run_id}/logs",
        response_model=Logs,
        tags=["runs"],
        responses={
            **RUN_READ,
            200: {
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                "description": "The stored lines; with ``follow=true`` one JSON object per "
                'line: a stored line, ``{"keepalive": true}`` or, last, '
                '``{"end": true, "state": ...}``.',
            },
        },
    )
    async def get_run_logs(
        run_id: NAME,
        tail: Annotated[int | None, Query(ge=1, le=100_000)] = None,
        follow: bool = False,
    ) -> Any:
        """The run's stored output; ``follow=true`` streams NDJSON lines until the run ends."""
        run = await backend.get_run(run_id)
        if not follow:
            lines = await backend.run_logs(run.id, tail=tail)
            return Logs(run_id=run.id, lines=[views.log_line(line) for line in lines])
        return StreamingResponse(_follow(backend, run.id, tail), media_type="application/x-ndjson")

    @router.post(
        "/runs/{run_id}/cancel",
        response_model=RunSummary,
        status_code=202,
        dependencies=protected,
        responses={**MUTATING, **errors(400, 404, 422)},
        tags=["runs"],
    )
    async def cancel_run(run_id: NAME) -> Any:
        """Cancel a run: its process group is terminated and it ends Cancelled."""
        run = await backend.cancel_run(run_id, reason="cancelled through the API")
        return _answerable(views.run_summary(run))


def _process_routes(
    router: APIRouter, backend: Backend, guard: TokenGuard, webhook_secret: str | None
) -> None:
    protected = [Security(BEARER), Depends(guard)]
    webhook = WebhookAuth(webhook_secret)

    @router.get("/sources", response_model=list[SourceOut], responses=errors(421), tags=["sources"])
    async def list_sources() -> Any:
        """Git sources: current revision, last pull, last error (credentials never shown)."""
        return backend.sources()

    @router.get("/replicas", response_model=list[ReplicaOut], responses=READ, tags=["process"])
    async def list_replicas() -> Any:
        """The serve processes sharing this one's database: live, lost or stopped (those
        gone for a day are forgotten)."""
        return await backend.replicas()

    @router.post(
        "/sources/sync",
        response_model=Accepted,
        status_code=202,
        dependencies=[Security(BEARER)],  # or a webhook signature (X-Hub-Signature-256)
        responses={**MUTATING, 200: {"model": Duplicate, "description": "Seen before"}},
        tags=["sources"],
    )
    async def sync_sources(request: Request) -> Any:
        """Pull now; also a git host's push webhook (``X-Hub-Signature-256`` with a secret).

        A delivery seen before (the same ``X-GitHub-Delivery`` / ``X-Gitlab-Event-UUID``,
        or the same signed body) is answered 200 ``{"status": "duplicate"}`` and pulls
        nothing.
        """
        duplicate = await webhook.admit(request, guard)
        if duplicate is not None:
            return JSONResponse(duplicate.model_dump(), status_code=200)
        count = backend.trigger_sources()
        return Accepted(detail=f"pulling {count} source(s) now")

    @router.post(
        "/shutdown",
        response_model=Accepted,
        status_code=202,
        dependencies=protected,
        responses=MUTATING,
        tags=["process"],
    )
    async def shutdown() -> Any:
        """Start the same drain as SIGTERM."""
        backend.request_shutdown()
        return Accepted(detail="shutting down: draining runs in flight")


async def _run_detail(backend: Backend, run: RunRecord) -> RunDetail:
    history = await backend.run_history(run.id)
    return _answerable(views.run_detail(run, history, await backend.run_task_runs(run.id)))


async def _follow(backend: Backend, run_id: str, tail: int | None) -> AsyncIterator[bytes]:
    """Yield stored lines as NDJSON until the run is in a terminal state.

    A quiet run still gets a ``{"keepalive": true}`` line every KEEPALIVE_SECONDS, so
    proxies and clients can tell a silent run from a dead connection.
    """
    lines = await backend.run_logs(run_id, tail=tail)
    last, done, state, quiet = 0, False, "", 0.0
    while True:
        for line in lines:
            last = line.seq
            yield _ndjson(views.log_line(line).model_dump(mode="json"))
        quiet = 0.0 if lines else quiet + FOLLOW_POLL_SECONDS
        if done:
            yield _ndjson({"end": True, "state": state})
            return
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield _ndjson({"keepalive": True})
        run = await backend.get_run(run_id)
        done, state = run.state.is_terminal, run.state.value
        if not done:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
        lines = await backend.run_logs(run_id, after_seq=last)


def _utc(field: str, value: datetime | None) -> datetime | None:
    """A time filter in UTC; one without a UTC offset (or beyond year 1..9999) is a 422."""
    if value is None:
        return None
    if value.utcoffset() is None:
        msg = f"{value.isoformat()} needs a UTC offset, e.g. 2026-12-01T00:00:00Z"
        raise _query_error(field, msg, "timezone_aware")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        msg = f"{value.isoformat()} is outside the years 1 to 9999 in UTC"
        raise _query_error(field, msg, "datetime_range") from None


def _query_error(field: str, msg: str, kind: str) -> ParameterError:
    loc = ["query", field]
    return ParameterError(f"{field}: {msg}", [{"loc": loc, "msg": msg, "type": kind}])


def _answerable(model: Model) -> Model:
    """``model`` with text stored before parameters were checked made encodable as JSON."""
    data = model.model_dump(mode="json")
    clean = scrub_text(data)
    return model if clean is data else type(model).model_validate(clean)


def _ndjson(item: dict[str, Any]) -> bytes:
    return (json.dumps(item) + "\n").encode()
