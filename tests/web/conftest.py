"""A started serve service (real SQLite store in ``tmp_path``) behind the real app.

``serving(...)`` starts the service's store and registry (no scheduling loop: a run the
API creates stays Pending) and yields an httpx client on ``create_app``'s ASGI app.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.execution.loading import load_flow
from dockyard.service.lifecycle import ServeService
from dockyard.settings import load_settings
from dockyard.store.aio import AsyncStore
from dockyard.web.app import create_app
from dockyard.web.auth import TokenGuard

FLOW_SOURCE = """\
from dockyard import flow


@flow
def anything(data=None, **extra):
    return None
"""
RUNS = "/api/deployments/anything/d/runs"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCKYARD_* of the developer's shell; load_flow's sys.path edits are undone."""
    for key in [k for k in os.environ if k.startswith("DOCKYARD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(sys, "path", list(sys.path))


@dataclass
class Served:
    client: httpx.AsyncClient
    service: ServeService

    @property
    def store(self) -> AsyncStore:
        assert self.service.store is not None
        return self.service.store

    async def run_count(self) -> int:
        return await self.store.count_runs()


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path,
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    deployment: str = "d",
    base_url: str = "http://127.0.0.1:8080",
    **app_options: Any,
) -> AsyncIterator[Served]:
    """The ``anything/<deployment>`` deployment served by a started service."""
    (tmp_path / "web_flows.py").write_text(FLOW_SOURCE)
    flow = load_flow("web_flows.py:anything", tmp_path)  # the test process may import user code
    settings = load_settings({"state": str(tmp_path / "state.db"), "webserver": False})
    service = ServeService(
        [flow.to_deployment(deployment)], settings, handle_signals=False, starting_message=False
    )
    guard = TokenGuard(token=token, token_file=None, host=host)
    app = create_app(service.ops, guard, **app_options)
    await service.startup()
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield Served(client, service)
    finally:
        await service.shutdown()
