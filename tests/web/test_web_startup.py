"""Before the first tick no endpoint answers 500: probes and API say "starting" (503)."""

import asyncio

import httpx
import pytest

from dockyard.execution.loading import load_flow
from dockyard.service.lifecycle import ServeService
from dockyard.settings import load_settings
from dockyard.web.app import create_app
from dockyard.web.auth import TokenGuard
from tests.helpers import FLOWS


@pytest.fixture
def app():
    flow = load_flow("behaviours.py:noop", FLOWS)  # the test process may import user code
    service = ServeService([flow.to_deployment("d")], load_settings({}))  # not started
    return create_app(service.ops, TokenGuard(token=None, token_file=None, host="127.0.0.1"))


def call(app, method: str, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8080"
        ) as client:
            return await client.request(method.upper(), path)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/health", 503),
        ("get", "/ready", 503),
        ("get", "/metrics", 200),
        ("get", "/api/deployments", 503),
        ("get", "/api/deployments/noop/d", 503),
        ("get", "/api/runs", 503),
        ("get", "/api/runs/abcdef123456", 503),
        ("get", "/api/runs/abcdef123456/logs", 503),
        ("post", "/api/deployments/noop/d/runs", 503),
        ("post", "/api/deployments/noop/d/pause", 503),
        ("post", "/api/runs/abcdef123456/cancel", 503),
        ("get", "/api/deployments/other/x", 404),
    ],
)
def test_endpoints_before_start(app, method, path, status):
    answer = call(app, method, path)
    assert answer.status_code == status, answer.text
    if status == 503:
        assert answer.json().get("reason") or answer.json().get("detail")
    if status == 503 and path.startswith("/api/"):
        assert answer.headers["retry-after"] == "1"  # when a client should try again
