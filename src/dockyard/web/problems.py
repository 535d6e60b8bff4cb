"""Error answers in the ``Problem`` shape, from route handlers and pure ASGI middleware alike."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python
from starlette.types import Receive, Scope, Send

from dockyard.core.parameters import scrub_text


def problem(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """``{"detail": ..., "errors": [{"loc", "msg", "type"}]}`` with ``status`` (the
    ``schemas.Problem`` shape).

    Messages may quote what the client sent, so lone surrogates are replaced: an error
    answer must never fail to encode (that would turn a 4xx into a 500).
    """
    body = to_jsonable_python({"detail": detail, "errors": errors or []}, fallback=str)
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
