"""run_deployment and get_client against a real serve process, from its own flow runs (with
the run's scoped token) and from outside (DOCKYARD_URL and the API token)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dockyard.client import Client
from dockyard.client.orchestration import get_client
from dockyard.core.states import RunState
from tests.helpers import (
    FLOWS,
    Served,
    dockyard_env,
    queue_run,
    serve_process,
    wait_for,
    webserver_url,
)

pytestmark = pytest.mark.slow

ADMIN = "admin-token-of-the-run-deployment-tests"
ENTRYPOINTS = ["target", "caller", "async_caller", "tagged_caller", "self_tagger", "token_holder"]
CONFIG = "deployments:\n" + "".join(
    f"  - entrypoint: flows/orchestration.py:{name}\n    name: {name.replace('_', '-')}\n"
    for name in ENTRYPOINTS
)
TERMINAL = {state.value for state in RunState if state.is_terminal}


@dataclass
class Server:
    served: Served
    url: str
    api: Client
    root: Path

    def start(self, flow: str, **parameters: Any) -> str:
        name = flow.replace("_", "-")
        return str(self.api.create_run(f"{name}/{name}", parameters)["id"])

    def finished(self, run_id: str) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            run = self.api.get_run(run_id)
            return run if run["state"] in TERMINAL else None

        return wait_for(ended, what=f"run {run_id} to end")

    def result(self, run_id: str) -> Any:
        run = self.finished(run_id)
        assert run["state"] == "Completed", run
        return run["result"]

    def path(self, stem: str) -> Path:
        return self.root / f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("run-deployment")
    shutil.copytree(FLOWS, root / "flows")
    (root / "dockyard.yaml").write_text(CONFIG)
    env = dockyard_env(DOCKYARD_API_TOKEN=ADMIN)
    with serve_process(["--config", "dockyard.yaml"], root, env=env) as served:
        url = webserver_url(served)
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="ready")
        with Client(url, SecretStr(ADMIN)) as api:
            yield Server(served, url, api, root)


def test_run_deployment_waits_for_the_run_and_returns_it_completed(server: Server) -> None:
    got = server.result(server.start("caller", value=21))

    assert got["state"] == "Completed" and got["completed"] and got["final"]
    assert got["deployment_id"] == "target/target"
    assert got["parameters"]["value"] == 21
    target = server.api.get_run(got["id"])
    assert (target["deployment"], target["state"]) == ("target/target", "Completed")
    assert target["parameters"]["value"] == 21  # the parameters reached the other run
    assert target["result"] == 42


def test_an_async_flow_awaits_run_deployment(server: Server) -> None:
    got = server.result(server.start("async_caller", value=5))

    assert got["state"] == "Completed"
    assert server.api.get_run(got["id"])["result"] == 10


@pytest.mark.parametrize("timeout", [0, 1])
def test_a_timeout_returns_the_run_before_it_ends(server: Server, timeout: float) -> None:
    release = server.path("release")

    got = server.result(server.start("caller", value=3, timeout=timeout, release=str(release)))

    assert got["state"] in ("Scheduled", "Pending", "Running") and not got["final"]
    assert server.api.get_run(got["id"])["state"] not in TERMINAL  # still waiting for release
    release.touch()
    assert server.finished(got["id"])["result"] == 6


def test_tags_given_and_of_the_tags_context_reach_the_run(server: Server) -> None:
    got = server.result(server.start("tagged_caller"))

    assert {"given", "from-context"} <= set(got["tags"])
    assert {"given", "from-context"} <= set(server.api.get_run(got["id"])["tags"])


def test_get_client_inside_a_run_sets_and_reads_its_tags(server: Server) -> None:
    run_id = server.start("self_tagger")

    got = server.result(run_id)

    assert got["id"] == run_id and got["tags"] == ["set-by-itself"]
    assert server.api.get_run(run_id)["tags"] == ["set-by-itself"]


def test_a_run_token_is_scoped_to_its_use_and_ends_with_its_run(server: Server) -> None:
    token_file = server.path("token")
    holder = server.start("token_holder", token_file=str(token_file), release="never")
    token = wait_for(lambda: token_file.exists() and token_file.read_text(), what="the token")
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=bearer, timeout=10) as http:
        assert http.get("/api/deployments").status_code == 200
        created = http.post("/api/deployments/target/target/runs", json={"parameters": {}})
        assert created.status_code == 201, created.text
        other = created.json()["id"]
        tagged = http.patch(f"/api/runs/{other}", json={"tags": ["by-run-token"]})
        assert tagged.status_code == 200, tagged.text
        refused = [
            "/api/deployments/target/target/pause",
            "/api/deployments/target/target/resume",
            f"/api/runs/{other}/cancel",
            "/api/shutdown",
            "/api/sources/sync",
        ]
        for path in refused:
            answer = http.post(path)
            assert answer.status_code == 403, (path, answer.text)
            assert token not in answer.text
        assert not server.api.get_deployment("target/target")["paused"]
        # Its own run it may cancel; then the token is dead.
        assert http.post(f"/api/runs/{holder}/cancel").status_code == 202
        assert server.finished(holder)["state"] == "Cancelled"
        after = http.post("/api/deployments/target/target/runs", json={"parameters": {}})
        assert after.status_code == 401 and "no longer valid" in after.json()["detail"]
        assert http.patch(f"/api/runs/{other}", json={"tags": []}).status_code == 401
        seen = [
            server.served.output(),
            http.get(f"/api/runs/{holder}").text,
            http.get(f"/api/runs/{holder}/logs").text,
            http.get("/api/runs", params={"limit": 500}).text,
            http.get("/metrics").text,
        ]
    assert all(token not in text for text in seen)
    assert server.finished(other)["state"] == "Completed"


def test_get_client_outside_a_run_round_trip(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_URL", server.url)
    monkeypatch.setenv("DOCKYARD_API_TOKEN", ADMIN)

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("target/target")
        assert (deployment.id, deployment.flow_name) == ("target/target", "target")
        assert set(deployment.parameter_openapi_schema["properties"]) == {"value", "release"}
        assert "target/target" in [d.id for d in client.read_deployments()]
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"value": 4}, tags=["sync"]
        )
        client.update_flow_run(run.id, tags=["sync", "updated"])
        read = client.read_flow_run(run.id)
        assert read.tags == ("sync", "updated") and read.parameters["value"] == 4
        assert run.id in [r.id for r in client.read_flow_runs(deployment="target/target")]
    assert server.finished(run.id)["state"] == "Completed"

    async def round_trip() -> Any:
        async with get_client() as client:
            run = await client.create_flow_run_from_deployment("target/target", tags=["async"])
            await client.update_flow_run(run.id, tags=["async", "updated"])
            return await client.read_flow_run(run.id)

    read = asyncio.run(round_trip())
    assert read.tags == ("async", "updated") and read.deployment_id == "target/target"
    assert server.finished(read.id)["state"] == "Completed"
    with get_client(sync_client=True) as client:
        done = client.read_flow_run(read.id)
    assert done.state.is_completed() and done.state.name == "Completed"
    assert done.end_time is not None and done.start_time is not None


def test_without_its_webserver_a_run_is_told_to_turn_it_on(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    args = ["flows/orchestration.py:caller", "--name", "caller", "--no-webserver"]
    with serve_process(args, tmp_path) as served:
        wait_for(lambda: _has_deployment(served, "caller/caller"), what="the deployment")
        run = queue_run(served.state_path, "caller/caller", {"timeout": 0})

        def ended() -> Any:
            found = [r for r in served.runs() if r.id == run.id and r.state.is_terminal]
            return found[0] if found else None

        failed = wait_for(ended, what="the run to end")
    assert failed.state is RunState.FAILED
    assert "webserver" in (failed.error or "") and "DOCKYARD_WEBSERVER=true" in failed.error


def _has_deployment(served: Served, name: str) -> bool:
    return served.state_path.exists() and served.deployment(name) is not None
