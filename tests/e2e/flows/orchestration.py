"""Flows that start and read other runs through their serve process's API (``run_deployment``,
``get_client``), for tests/e2e/test_run_deployment.py. Each returns a dict: the test reads
it back as the run's ``result``."""

import threading
from pathlib import Path

from dockyard import flow, runtime, tags
from dockyard.client.orchestration import get_client
from dockyard.deployments import run_deployment
from dockyard.engine.context import api_access

WAIT_SECONDS = 60.0


def wait_for_file(path: str) -> None:
    """Block until the test creates ``path`` (at most WAIT_SECONDS)."""
    done = threading.Event()
    for _ in range(int(WAIT_SECONDS / 0.05)):
        if Path(path).exists():
            return
        done.wait(0.05)
    raise TimeoutError(f"{path} did not appear within {WAIT_SECONDS:g}s")


def summary(run) -> dict:
    return {
        "id": run.id,
        "state": run.state.name,
        "final": run.state.is_final(),
        "completed": run.state.is_completed(),
        "parameters": run.parameters,
        "tags": sorted(run.tags),
        "deployment_id": run.deployment_id,
    }


@flow
def target(value: int = 0, release: str = ""):
    """The deployment the others start: waits for ``release`` (when given), doubles."""
    if release:
        wait_for_file(release)
    return value * 2


@flow
def caller(value: int = 1, timeout: float | None = 60.0, release: str = ""):
    run = run_deployment(
        "target/target", parameters={"value": value, "release": release}, timeout=timeout
    )
    return summary(run)


@flow
async def async_caller(value: int = 1):
    run = await run_deployment("target/target", parameters={"value": value}, timeout=60)
    return summary(run)


@flow
def tagged_caller():
    with tags("from-context"):
        run = run_deployment("target/target", tags=["given"], timeout=0)
    return summary(run)


@flow
def self_tagger():
    """Sets its own tags with the sync client and reads them back with the async one."""
    import asyncio

    with get_client(sync_client=True) as client:
        client.update_flow_run(runtime.flow_run.id, tags=["set-by-itself"])

    async def read():
        async with get_client() as client:
            return await client.read_flow_run(runtime.flow_run.id)

    return summary(asyncio.run(read()))


@flow
def token_holder(token_file: str, release: str):
    """Hands its API token to the test (which checks what it may do), then waits."""
    access = api_access()
    Path(token_file).write_text(access.token if access and access.token else "")
    wait_for_file(release)
    return {"url": access.url if access else None}
