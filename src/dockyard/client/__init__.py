"""Clients of a running ``dockyard serve`` process's HTTP API.

- ``dockyard.client.Client`` (``client.http``): the API as JSON, for the CLI and scripts.
- ``dockyard.client.orchestration.get_client()``: Prefect's client (``read_flow_run``,
  ``update_flow_run``, ``create_flow_run_from_deployment``, ...), async or sync; what
  ``run_deployment`` uses.

Names are imported on first use: a flow run's child that imports this package for
``get_client`` pays for httpx only when it makes a client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.client.http import (
        CONNECT_SECONDS,
        TIMEOUT_SECONDS,
        ApiError,
        AsyncApi,
        Client,
        ServerUnreachable,
    )

__all__ = [
    "CONNECT_SECONDS",
    "TIMEOUT_SECONDS",
    "ApiError",
    "AsyncApi",
    "Client",
    "ServerUnreachable",
]
_HTTP_NAMES = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name not in _HTTP_NAMES:
        raise AttributeError(f"module 'dockyard.client' has no attribute {name!r}")
    value = getattr(importlib.import_module("dockyard.client.http"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "http", "orchestration", "schemas"})
