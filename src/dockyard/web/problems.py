"""Error answers in the ``Problem`` shape, from route handlers and pure ASGI middleware alike."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python
from starlette.types import Receive, Scope, Send

from dockyard.core.parameters import scrub_text

RETRY_AFTER_SECONDS = 1
"""What a 503 asks a client to wait: start-up and store hiccups are mostly short."""


def problem(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """``{"detail": ..., "errors": [{"loc", "msg", "type"}]}`` with ``status`` (the
    ``schemas.Problem`` shape).

    Messages may quote what the client sent, so lone surrogates are replaced: an error
    answer must never fail to encode (that would turn a 4xx into a 500). A 503 (starting,
    or the state store unavailable) says when to try again (``Retry-After``).
    """
    body = to_jsonable_python({"detail": detail, "errors": errors or []}, fallback=str)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return JSONResponse(scrub_text(body), status_code=status, headers=headers)


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
