"""Every example serves and runs, as a Prefect user would start it after changing the import."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.core.states import RunState
from dockyard.store import open_store
from tests.helpers import dockyard_env, queue_run, serve_process, wait_for

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).parents[2] / "examples"


def _deployments(state: Path) -> list[str]:
    if not state.exists():
        return []
    with open_store(state) as store:
        return [d.name for d in store.list_deployments()]


def _runs(state: Path, deployment: str) -> list:
    with open_store(state) as store:
        return store.list_runs(deployment=deployment, limit=100)


@pytest.mark.parametrize(
    ("script", "deployments", "parameters"),
    [
        ("hello_world.py", ["hello-world/my-first-deployment"], {}),
        ("serve_two_flows.py", ["fast-flow/fast", "slow-flow/sleeper"], {"sleep": 0}),
        ("data_processor.py", ["process-batch/batch-processor"], {"batch_id": "b-7"}),
        ("repo_info.py", ["get-repo-info/my-first-deployment"], {}),
    ],
)
def test_example_script_serves_and_runs(tmp_path, script, deployments, parameters):
    shutil.copy(EXAMPLES / script, tmp_path / script)
    state = tmp_path / "state.db"
    out_path = tmp_path / "out.log"
    env = dockyard_env(DOCKYARD_STATE=str(state))
    with open(out_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, script], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: sorted(_deployments(state)) == deployments, what="deployments registered")
        wait_for(lambda: "serving" in out_path.read_text(), what="startup")
        for name in deployments:
            params = parameters if name != "fast-flow/fast" else {}
            queue_run(state, name, params)
        for name in deployments:
            wait_for(
                lambda name=name: any(r.state is RunState.COMPLETED for r in _runs(state, name)),
                what=f"a completed run of {name}",
            )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = out_path.read_text()
    if script == "data_processor.py":
        # The instance's configuration (set in __init__ in the script) reached the run.
        assert "API URL: https://staging.example.com" in output
        assert "Processing batch b-7" in output
    if script == "hello_world.py":
        assert "Goodbye world!" in output  # the deployment's default parameters applied


def test_example_config_serves_every_deployment(tmp_path):
    config = EXAMPLES / "dockyard.yaml"
    with serve_process(["--config", str(config)], tmp_path) as served:
        wait_for(lambda: "serving 5 deployment" in served.output(), what="startup")
        names = _deployments(served.state_path)
        assert len(names) == 5
        for name in names:
            queue_run(served.state_path, name, {"sleep": 0} if "sleeper" in name else None)
        for name in names:
            wait_for(
                lambda name=name: any(
                    r.state is RunState.COMPLETED for r in _runs(served.state_path, name)
                ),
                what=f"a completed run of {name}",
            )
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
