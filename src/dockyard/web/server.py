"""uvicorn embedded in the serve process's event loop, with dockyard owning the signals."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from dockyard.errors import UsageError


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGTERM/SIGINT to the serve process (one owner)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases
        return None


def bind(host: str, port: int) -> socket.socket:
    """Listen on host:port now, so a taken port fails the start with a clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, so that asyncio turns on TCP_NODELAY for accepted connections:
    # without it every kept-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "free the port or choose another with --port / DOCKYARD_PORT"
        ) from None
    sock.setblocking(False)
    return sock


def make_server(app: object, *, log_level: str = "warning") -> EmbeddedServer:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level=log_level,
        log_config=None,  # its records go to dockyard's handler, in dockyard's format
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    return EmbeddedServer(config)
