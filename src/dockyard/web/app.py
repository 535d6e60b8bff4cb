"""``create_app(backend)``: probes, metrics and the API, served inside the serve process.

The app sees only the ``Backend`` protocol (``web.backend``), never the service itself.
Two pure ASGI middlewares answer before any route runs: ``web.browser`` (Host, Origin,
Content-Type) and ``web.limits`` (the size of request bodies).

The OpenAPI document names each operation after its handler (``list_runs``,
``trigger_run``), declares the bearer scheme on the routes that need a token and the errors
each route can answer. /docs and /redoc load their scripts from this server
(fastapi-offline ships them), so they work where no CDN can be reached.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from prometheus_client.exposition import gzip_accepted
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from dockyard._version import __version__
from dockyard.core.parameters import MAX_PARAMETER_BYTES
from dockyard.errors import (
    ConflictError,
    DockyardError,
    NotFoundError,
    ParameterError,
    StateStoreError,
    UsageError,
)
from dockyard.web.api import Responses, build_router, errors
from dockyard.web.auth import TokenGuard
from dockyard.web.backend import Backend
from dockyard.web.browser import BrowserGuard, HostPolicy
from dockyard.web.limits import MAX_BODY_BYTES, BodyLimit
from dockyard.web.problems import problem
from dockyard.web.schemas import Health, Ready

logger = logging.getLogger("dockyard.web")
TAGS = [
    {
        "name": "probes",
        "description": "Liveness, readiness and Prometheus metrics (GET or HEAD): no token, "
        "and any Host (a kubelet sends the pod's IP).",
    },
    {
        "name": "deployments",
        "description": "The deployments this process serves: schedules, next runs, "
        "parameters; pause and resume.",
    },
    {
        "name": "runs",
        "description": "Flow runs: list and inspect, start one ad hoc, cancel, read or "
        "follow its output, change its tags.",
    },
    {"name": "sources", "description": "Git sources of the served code; a push webhook."},
    {
        "name": "process",
        "description": "This serve process and the replicas sharing its state database.",
    },
]
METRICS_TYPES = {
    "text/plain": {"schema": {"type": "string"}},
    "application/openmetrics-text": {"schema": {"type": "string"}},
}
"""/metrics answers in the text format, or OpenMetrics when the scraper's Accept asks."""


def create_app(
    backend: Backend,
    guard: TokenGuard,
    webhook_secret: str | None = None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_parameter_bytes: int = MAX_PARAMETER_BYTES,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The FastAPI app of one serve process (OpenAPI at /docs and /openapi.json).

    Args:
        backend: The operations behind the routes (``service.ops.Operations``).
        guard: Who may change state; its ``host`` is the address the server listens on.
        webhook_secret: The git host's webhook secret (``X-Hub-Signature-256``).
        max_body_bytes: Larger request bodies are refused (413) before they are read.
        max_parameter_bytes: Larger ad-hoc run parameters (as JSON) are refused (422).
        allowed_hosts: ``Host`` names to answer to besides the loopback names and the
            listening address; ``"*"`` for any. ``None``: a loopback server answers to
            loopback names only, a server beyond loopback to any name.
    """
    app = FastAPIOffline(
        title="dockyard",
        version=__version__,
        description="Probes, metrics and the API of one dockyard serve process.",
        openapi_tags=TAGS,
        generate_unique_id_function=_operation_id,
    )
    _add_error_handlers(app)
    _add_probes(app, backend)
    router = build_router(backend, guard, webhook_secret, max_parameter_bytes=max_parameter_bytes)
    _declare_input_errors(router.routes)
    app.include_router(router, prefix="/api")
    hosts = HostPolicy.for_server(
        guard.host, loopback=guard.loopback_only, allowed_hosts=allowed_hosts
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    # Added last: runs first. With a token, a request without it is refused 401 anyway.
    app.add_middleware(BrowserGuard, hosts=hosts, json_only=not guard.configured)
    return app


def _declare_input_errors(routes: Sequence[BaseRoute]) -> None:
    """A route that validates its path, query or body declares the 422 it answers, and one
    that parses a JSON body the 400 of a body that does not parse: as ``Problem`` answers
    (where a route says nothing of 422, FastAPI would declare a model of its own)."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        declared = {int(code) for code in route.responses if str(code).isdigit()}
        takes_input = bool(get_flat_params(route.dependant)) or route.body_field is not None
        missing = {422} if takes_input else set()
        missing |= {400} if route.body_field is not None else set()
        if missing - declared:  # a new dict: routes may share one ``responses``
            route.responses = {**route.responses, **errors(*sorted(missing - declared))}


def _operation_id(route: APIRoute) -> str:
    """The handler's name: ``list_runs``, ``trigger_run``, ``head_health`` …"""
    return route.name


def _add_probes(app: FastAPI, backend: Backend) -> None:
    async def health() -> Any:
        """Liveness: 200 while the scheduler loop ticks within the threshold."""
        body = backend.health()
        return JSONResponse(
            body.model_dump(mode="json"), status_code=200 if body.status == "ok" else 503
        )

    async def ready() -> Any:
        """Readiness: 200 once deployments are loaded and the state store answers."""
        body = await backend.readiness()
        return JSONResponse(
            body.model_dump(mode="json"), status_code=200 if body.status == "ready" else 503
        )

    async def metrics(request: Request) -> Response:
        """The Prometheus page: OpenMetrics when ``Accept`` asks for it, else the text
        format; gzip when ``Accept-Encoding`` allows."""
        headers = {"Vary": "Accept, Accept-Encoding"}
        body, content_type = await backend.metrics_page(request.headers.get("accept"))
        if gzip_accepted(request.headers.get("accept-encoding", "")):
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        return Response(body, media_type=content_type, headers=headers)

    health_answers: Responses = {
        200: {"model": Health, "description": "The scheduler loop ticks"},
        503: {"model": Health, "description": "No tick within DOCKYARD_HEALTH_THRESHOLD"},
    }
    ready_answers: Responses = {
        200: {"model": Ready, "description": "Ready (``failing`` names broken deployments)"},
        503: {"model": Ready, "description": "Starting, draining or unavailable: see reason"},
    }
    page: Responses = {200: {"content": METRICS_TYPES, "description": "The metrics page"}}
    _probe(app, "/health", health, "health", health_answers, JSONResponse)
    _probe(app, "/ready", ready, "ready", ready_answers, JSONResponse)
    _probe(app, "/metrics", metrics, "metrics", page, Response)

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, str]:
        return {"name": "dockyard", "version": __version__, "docs": "/docs", "api": "/api"}


def _probe(
    app: FastAPI,
    path: str,
    handler: Callable[..., Any],
    name: str,
    answers: Responses,
    response_class: type[Response],
) -> None:
    """``GET path`` and ``HEAD path``: the same answer, without its body for HEAD (the
    server drops it; the headers, Content-Length included, stay those of GET)."""
    app.add_api_route(
        path, handler, methods=["GET"], name=f"get_{name}", tags=["probes"],
        response_class=response_class, responses=answers,
    )  # fmt: skip
    app.add_api_route(
        path, handler, methods=["HEAD"], name=f"head_{name}", tags=["probes"],
        response_class=Response, summary=f"Head {name.capitalize()}",
        description=f"``GET {path}`` without the body: same status and headers.",
        responses={code: {"description": a["description"]} for code, a in answers.items()},
    )  # fmt: skip


def _in_body(error: dict[str, object]) -> dict[str, Any]:
    """A parameter error's location inside the request body (query errors stay put)."""
    loc = error.get("loc")
    parts = list(loc) if isinstance(loc, (list, tuple)) else []
    if parts[:1] == ["query"]:
        return dict(error)
    return {**error, "loc": ["body", "parameters", *parts]}


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(ParameterError)
    async def bad_parameters(request: Request, exc: ParameterError) -> JSONResponse:
        return problem(422, str(exc), [_in_body(e) for e in exc.errors])

    @app.exception_handler(UsageError)
    async def bad_request(request: Request, exc: UsageError) -> JSONResponse:
        return problem(400, str(exc))

    @app.exception_handler(StateStoreError)
    async def store_down(request: Request, exc: StateStoreError) -> JSONResponse:
        return problem(503, str(exc))

    @app.exception_handler(DockyardError)
    async def dockyard_error(request: Request, exc: DockyardError) -> JSONResponse:
        return problem(400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        answer = problem(exc.status_code, str(exc.detail))
        answer.headers.update(exc.headers or {})
        return answer

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem(422, f"invalid request: {fields}", errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error answering %s %s", request.method, request.url.path)
        return problem(500, f"internal error ({type(exc).__name__}); see the serve process log")
