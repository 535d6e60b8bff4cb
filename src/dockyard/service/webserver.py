"""The webserver of the serve process: listen early, serve the API, stop last."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from dockyard.settings import Settings
from dockyard.web.app import create_app
from dockyard.web.auth import TokenGuard
from dockyard.web.backend import Backend
from dockyard.web.server import EmbeddedServer, bind, make_server

logger = logging.getLogger("dockyard")
STOP_SECONDS = 10.0


class Webserver:
    """uvicorn in the serve process's loop, answering for ``backend``."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
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

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, STOP_SECONDS)
