"""The serve process never imports the user's code: a probe subprocess loads it, the runs'
children run it. Checked from outside: the user's module records every process that
imports it, and the serve process is never among them."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.helpers import dockyard_env, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow

FLOW = """
import helpers
from dockyard import flow


@flow(flow_run_name=helpers.run_name)
def f(day: str = helpers.DAY):
    print(f"running for {day}")
    return day
"""
HELPERS = """
import os

DAY = "monday"


def run_name(parameters):
    return f"for-{parameters['day']}"


with open(os.environ["IMPORT_LOG"], "a") as log:
    log.write(f"{os.getpid()}\\n")
"""
CONFIG = """
deployments:
  - entrypoint: flows/f.py:f
    name: daily
    schedules: [{cron: "0 0 * * *"}]
"""


@pytest.mark.parametrize("how", ["entrypoint", "config"])
def test_local_code_is_loaded_by_a_probe_and_run_by_children(tmp_path: Path, how: str) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text(FLOW)
    (tmp_path / "flows" / "helpers.py").write_text(HELPERS)
    (tmp_path / "dockyard.yaml").write_text(CONFIG)
    log = tmp_path / "imported-by.txt"
    args = (
        ["flows/f.py:f", "--interval", "3600"]
        if how == "entrypoint"
        else ["--config", "dockyard.yaml"]
    )
    name = "f/f" if how == "entrypoint" else "f/daily"
    env = dockyard_env(IMPORT_LOG=str(log))
    with serve_process(args, tmp_path, env=env) as served:
        with httpx.Client(base_url=webserver_url(served), timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            shown = client.get(f"/api/deployments/{name}").json()
            assert shown["parameter_schema"]["properties"]["day"]["default"] == "monday"
            flow_path, deployment = name.split("/")
            created = client.post(
                f"/api/deployments/{flow_path}/{deployment}/runs",
                json={"parameters": {"day": "friday"}},
            )
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            done = wait_for(
                lambda: (
                    (r := client.get(f"/api/runs/{run_id}").json())["state"] == "Completed" and r
                ),
                what="the run to complete",
            )
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    assert done["name"] == "for-friday"  # rendered in the run's own process
    assert f"[{name} for-friday] running for friday" in served.output()
    importers = {int(pid) for pid in log.read_text().split()}
    assert len(importers) >= 2  # the probe and the run
    assert served.process.pid not in importers
