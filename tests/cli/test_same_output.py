"""``--url`` and ``--state`` print the same thing: one real serve process, one database.

A real `dockyard serve` runs a flow to completion; then every read command runs twice as
a real CLI subprocess, once against the serve process's API (``--url``) and once against
its state database (``--state``), and the two outputs are compared: the same keys, the
same values, the same tables. Every wait has a deadline.

What only the live process knows is computed by the local reader (``next_run`` and
``next_runs`` from the stored schedules at its own clock). The schedules here fire once a
year and once a day at midnight UTC, so both clocks see the same next fire times.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.web.schemas import DeploymentDetail, DeploymentSummary, LogLineOut, RunDetail
from tests.helpers import dockyard_env, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow
FLOWS = Path(__file__).parent.parent / "e2e" / "flows"
CLI_TIMEOUT_SECONDS = 60
HELLO = "hello/hello"
NIGHTLY = "noop/nightly"
CONFIG = """\
deployments:
  - entrypoint: "flows/behaviours.py:hello"
    name: hello
    schedules: [{cron: "0 0 1 1 *", timezone: Europe/Berlin}]
    parameters: {name: dock}
    tags: [same, output]
    description: printed twice
    version: "7"
    concurrency_limit: 2
    overlap: skip
    catchup: none
  - entrypoint: "flows/behaviours.py:noop"
    name: nightly
    schedules: [{interval: 86400}]
    paused: true
    catchup: none
"""
LIVE_ONLY: frozenset[str] = frozenset()
"""Fields whose values may differ between the modes: none (see the module docstring)."""


@dataclass
class Modes:
    """The same serve process, seen through its API and through its database."""

    url: str
    state: Path

    def both(self, *args: str) -> tuple[str, str]:
        """``dockyard ARGS`` over ``--url`` and over ``--state``: the two stdouts."""
        return cli(*args, "--url", self.url), cli(*args, "--state", str(self.state))

    def both_json(self, *args: str) -> tuple[Any, Any]:
        http, local = self.both(*args, "--json")
        return json.loads(http), json.loads(local)


def cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env=dockyard_env(COLUMNS="200"),
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Modes]:
    """A serve process with one Completed run of ``hello/hello`` that printed two lines."""
    tmp = tmp_path_factory.mktemp("same-output")
    shutil.copytree(FLOWS, tmp / "flows")
    (tmp / "dockyard.yaml").write_text(CONFIG)
    with serve_process(["--config", "dockyard.yaml"], tmp, env=dockyard_env()) as served:
        url = webserver_url(served)
        wait_for(lambda: _ready(url), timeout=30, what="/ready")
        watched = cli("deployment", "run", HELLO, "--param", "count=2", "--watch", "--url", url)
        assert watched.splitlines()[-1].endswith("ended Completed"), watched
        yield Modes(url, served.state_path)


def same(http: Any, local: Any) -> None:
    """Equal but for LIVE_ONLY fields, with the same keys at every level."""
    if isinstance(http, dict):
        assert isinstance(local, dict) and set(local) == set(http)
        for key in set(http) - LIVE_ONLY:
            same(http[key], local[key])
    elif isinstance(http, list):
        assert isinstance(local, list) and len(local) == len(http)
        for h, loc in zip(http, local, strict=True):
            same(h, loc)
    else:
        assert local == http


def test_run_ls_inspect_and_logs(modes: Modes) -> None:
    http, local = modes.both_json("run", "ls")
    same(http, local)
    [run] = http
    assert (run["deployment"], run["state"]) == (HELLO, "Completed")

    http, local = modes.both_json("run", "inspect", run["id"][:8])
    same(http, local)
    assert set(local) == set(RunDetail.model_fields)  # not the store's RunRecord fields
    assert local["parameters"] == {"name": "dock", "count": 2}
    assert [e["state"] for e in local["history"]][-1] == "Completed"

    http, local = modes.both_json("run", "logs", run["id"])
    same(http, local)
    assert [line["line"] for line in local] == ["hello dock #0", "hello dock #1"]
    assert {key for line in local for key in line} == set(LogLineOut.model_fields)

    same(*modes.both_json("run", "logs", run["id"], "--tail", "1"))
    same(*modes.both_json("run", "ls", "--deployment", HELLO, "--status", "completed"))


def test_deployment_ls_and_inspect(modes: Modes) -> None:
    http, local = modes.both_json("deployment", "ls")
    same(http, local)
    assert [d["name"] for d in local] == [HELLO, NIGHTLY]
    assert {key for d in local for key in d} == set(DeploymentSummary.model_fields)
    hello, nightly = local
    assert hello["next_run"] is not None and hello["next_run"].endswith(":00:00Z")
    assert (nightly["paused"], nightly["paused_reason"], nightly["next_run"]) == (
        True,
        "config",
        None,
    )

    for name in (HELLO, NIGHTLY):
        http, local = modes.both_json("deployment", "inspect", name)
        same(http, local)
        assert set(local) == set(DeploymentDetail.model_fields)
    assert len(local["next_runs"]) == 5  # listed while paused, as the API does
    hello = modes.both_json("deployment", "inspect", HELLO)[1]
    assert hello["entrypoint"] == "flows/behaviours.py:hello"
    assert (hello["overlap"], hello["catchup"], hello["concurrency_limit"]) == ("skip", "none", 2)
    assert hello["last_run"]["state"] == "Completed"
    assert set(hello["parameter_schema"]["properties"]) == {"name", "count"}


def test_pause_and_resume_answer_the_same(modes: Modes) -> None:
    try:
        http, local = modes.both_json("deployment", "pause", HELLO)
        same(http, local)
        assert (local["paused"], local["paused_reason"], local["next_run"]) == (True, "user", None)
        assert set(local) == set(DeploymentSummary.model_fields)
    finally:
        http, local = modes.both_json("deployment", "resume", HELLO)
    same(http, local)
    assert (local["paused"], local["paused_reason"]) == (False, None)
    assert local["next_run"] is not None


@pytest.mark.parametrize(
    "args",
    [
        ("deployment", "ls"),
        ("deployment", "inspect", HELLO),
        ("deployment", "inspect", NIGHTLY),
        ("run", "ls"),
    ],
)
def test_tables_print_the_same(modes: Modes, args: tuple[str, ...]) -> None:
    http, local = modes.both(*args)

    assert local == http
    assert local.strip()


def test_run_detail_and_logs_print_the_same(modes: Modes) -> None:
    [run] = modes.both_json("run", "ls")[0]
    for args in (("run", "inspect", run["id"]), ("run", "logs", run["id"])):
        http, local = modes.both(*args)
        assert local == http
    assert local.splitlines() == ["hello dock #0", "hello dock #1"]
