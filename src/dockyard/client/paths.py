"""The paths and bodies of the API's requests (no httpx here: cheap to import)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dockyard.errors import UsageError


def deployment_path(name: str) -> str:
    flow, sep, deployment = name.partition("/")
    if not sep or not flow or not deployment or "/" in deployment:
        raise UsageError(f"deployment {name!r}: expected FLOW/DEPLOYMENT, e.g. hello/hello")
    return f"/deployments/{quote(flow, safe='')}/{quote(deployment, safe='')}"


def run_path(run_id: str) -> str:
    if not run_id.strip():
        raise UsageError("a run id is required")
    return f"/runs/{quote(run_id, safe='')}"


def run_body(parameters: dict[str, Any] | None, tags: list[str] | None) -> dict[str, Any]:
    """The body of ``POST …/runs`` (tags left out unless given: the deployment's apply)."""
    body: dict[str, Any] = {"parameters": parameters or {}}
    if tags is not None:
        body["tags"] = list(tags)
    return body
