"""``create_app(backend)``: probes, metrics and the API, served inside the serve process.

The app sees only the ``Backend`` protocol (``web.backend``), never the service itself.
Two pure ASGI middlewares answer before any route runs: ``web.browser`` (Host, Origin,
Content-Type) and ``web.limits`` (the size of request bodies).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from dockyard._version import __version__
from dockyard.core.parameters import MAX_PARAMETER_BYTES
from dockyard.errors import (
    DockyardError,
    NotFoundError,
    ParameterError,
    StateStoreError,
    UsageError,
)
from dockyard.web.api import build_router
from dockyard.web.auth import TokenGuard
from dockyard.web.backend import Backend
from dockyard.web.browser import BrowserGuard, HostPolicy
from dockyard.web.limits import MAX_BODY_BYTES, BodyLimit
from dockyard.web.problems import problem
from dockyard.web.schemas import Health, Problem, Ready

logger = logging.getLogger("dockyard.web")


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
    app = FastAPI(
        title="dockyard",
        version=__version__,
        description="Probes, metrics and the API of one dockyard serve process.",
        responses={503: {"model": Problem, "description": "Starting or shutting down"}},
    )
    _add_error_handlers(app)
    _add_probes(app, backend)
    router = build_router(backend, guard, webhook_secret, max_parameter_bytes=max_parameter_bytes)
    app.include_router(router, prefix="/api")
    hosts = HostPolicy.for_server(
        guard.host, loopback=guard.loopback_only, allowed_hosts=allowed_hosts
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    # Added last: runs first. With a token, a request without it is refused 401 anyway.
    app.add_middleware(BrowserGuard, hosts=hosts, json_only=not guard.configured)
    return app


def _add_probes(app: FastAPI, backend: Backend) -> None:
    @app.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["probes"])
    async def health() -> Any:
        """Liveness: 200 while the scheduler loop ticks within the threshold."""
        body = backend.health()
        return JSONResponse(
            body.model_dump(mode="json"), status_code=200 if body.status == "ok" else 503
        )

    @app.get("/ready", response_model=Ready, responses={503: {"model": Ready}}, tags=["probes"])
    async def ready() -> Any:
        """Readiness: 200 once deployments are loaded and the state store answers."""
        body = await backend.readiness()
        return JSONResponse(
            body.model_dump(mode="json"), status_code=200 if body.status == "ready" else 503
        )

    @app.get("/metrics", tags=["probes"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(await backend.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, str]:
        return {"name": "dockyard", "version": __version__, "docs": "/docs", "api": "/api"}


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
