"""The webserver of the serve process: listen early, serve the API, stop last."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from dockyard.settings import Settings
from dockyard.web.app import create_app
from dockyard.web.auth import RunTokens, TokenGuard
from dockyard.web.backend import Backend
from dockyard.web.server import EmbeddedServer, bind, make_server

logger = logging.getLogger("dockyard")
STOP_SECONDS = 10.0


class Webserver:
    """uvicorn in the serve process's loop, answering for ``backend``."""

    def __init__(
        self, backend: Backend, settings: Settings, run_tokens: RunTokens | None = None
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.run_tokens = run_tokens
        self.port: int | None = None
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen before start-up, so probes answer (503 "starting") from the first moment."""
        settings = self.settings
        if not settings.webserver:
            return
        host = settings.host
        sock = bind(host, settings.port)
        token = settings.api_token
        guard = TokenGuard(
            token=token.get_secret_value() if token else None,
            token_file=settings.api_token_file,
            host=host,
            run_tokens=self.run_tokens,
        )
        secret = settings.source_webhook_secret
        app = create_app(
            self.backend, guard, secret.get_secret_value() if secret else None,
            max_body_bytes=settings.max_request_bytes,
            max_parameter_bytes=settings.max_parameter_bytes,
            allowed_hosts=settings.allowed_hosts or None,
        )  # fmt: skip
        self._server = make_server(app)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        self.port = sock.getsockname()[1]
        logger.info("webserver listening on http://%s:%d", host, self.port)
        if token is None and not guard.loopback_only and not settings.api_token_file:
            logger.warning(
                "no API token set and listening on %s: mutating API calls are refused (403); "
                "set DOCKYARD_API_TOKEN or DOCKYARD_API_TOKEN_FILE",
                host,
            )

    @property
    def url(self) -> str | None:
        """Where this process's own runs reach the webserver (loopback when it listens on all
        addresses); None while it does not listen."""
        if self.port is None:
            return None
        return f"http://{_local_host(self.settings.host)}:{self.port}"

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, STOP_SECONDS)


def _local_host(host: str) -> str:
    if host in ("", "0.0.0.0", "localhost"):
        return "127.0.0.1"  # bind() listens on IPv4 for these
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
