"""A bound on request bodies, enforced before the app reads one (pure ASGI middleware)."""

from __future__ import annotations

from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.web.problems import answer, field_error

MAX_BODY_BYTES = 1024 * 1024
"""The default bound on one request body (1 MiB)."""


class BodyLimit:
    """Answer 413 to a request whose body is larger than ``max_bytes``.

    A ``Content-Length`` over the limit is refused before anything is read. A body without
    one (chunked) is counted as it streams and refused as soon as it passes the limit, so
    one request never makes the process hold more than ``max_bytes`` of body. A body within
    the limit is handed to the app unchanged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, f"Content-Length is {declared}")
            return
        messages = await self._read(receive)
        if messages is None:
            await self._refuse(scope, receive, send, "the body streamed past the limit")
            return

        async def replay() -> Message:
            return messages.popleft() if messages else await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> deque[Message] | None:
        """The body's messages, or None as soon as they pass the limit."""
        messages: deque[Message] = deque()
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # the client went away: let the app see that
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, why: str) -> None:
        detail = (
            f"request body larger than {self.max_bytes} bytes: {why}; send a smaller one "
            "(the server's limit is DOCKYARD_MAX_REQUEST_BYTES)"
        )
        await answer(scope, receive, send, 413, detail, [field_error(["body"], why, "too_large")])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses it, or the body is counted as it streams
    return None
