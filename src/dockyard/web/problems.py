"""Error answers in the ``Problem`` shape, from route handlers and pure ASGI middleware alike."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from dockyard.core.parameters import scrub_text
from dockyard.web.schemas import Problem


def problem(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """``{"detail": ..., "errors": [{"loc", "msg", "type"}]}`` with ``status``.

    Messages may quote what the client sent, so lone surrogates are replaced: an error
    answer must never fail to encode (that would turn a 4xx into a 500).
    """
    body = Problem(detail=detail, errors=errors or []).model_dump(mode="json")
    return JSONResponse(scrub_text(body), status_code=status)


def field_error(loc: list[str], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


async def answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    """Send a Problem answer from ASGI middleware (before the app saw the request)."""
    await problem(status, detail, errors)(scope, receive, send)
