"""``create_app(backend)``: probes, metrics and the API, served inside the serve process.

The app sees only the ``Backend`` protocol (``web.backend``), never the service itself.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from dockyard._version import __version__
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
from dockyard.web.schemas import Health, Problem, Ready

logger = logging.getLogger("dockyard.web")


def create_app(backend: Backend, guard: TokenGuard, webhook_secret: str | None = None) -> FastAPI:
    """The FastAPI app of one serve process (OpenAPI at /docs and /openapi.json)."""
    app = FastAPI(
        title="dockyard",
        version=__version__,
        description="Probes, metrics and the API of one dockyard serve process.",
        responses={503: {"model": Problem, "description": "Starting or shutting down"}},
    )
    _add_error_handlers(app)
    _add_probes(app, backend)
    app.include_router(build_router(backend, guard, webhook_secret), prefix="/api")
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
        return Response(backend.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, str]:
        return {"name": "dockyard", "version": __version__, "docs": "/docs", "api": "/api"}


def _problem(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse(
        Problem(detail=detail, errors=errors or []).model_dump(), status_code=status
    )


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
        return _problem(404, str(exc))

    @app.exception_handler(ParameterError)
    async def bad_parameters(request: Request, exc: ParameterError) -> JSONResponse:
        return _problem(422, str(exc), [_in_body(e) for e in exc.errors])

    @app.exception_handler(UsageError)
    async def bad_request(request: Request, exc: UsageError) -> JSONResponse:
        return _problem(400, str(exc))

    @app.exception_handler(StateStoreError)
    async def store_down(request: Request, exc: StateStoreError) -> JSONResponse:
        return _problem(503, str(exc))

    @app.exception_handler(DockyardError)
    async def dockyard_error(request: Request, exc: DockyardError) -> JSONResponse:
        return _problem(400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        answer = _problem(exc.status_code, str(exc.detail))
        answer.headers.update(exc.headers or {})
        return answer

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return _problem(422, f"invalid request: {fields}", errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error answering %s %s", request.method, request.url.path)
        return _problem(500, f"internal error ({type(exc).__name__}); see the serve process log")
