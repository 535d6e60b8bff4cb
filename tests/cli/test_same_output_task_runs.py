"""``run inspect`` and ``run ls`` print a run's tags and task runs the same over ``--url``
and ``--state``: one real serve process whose run had real task runs (see
test_same_output.py for the comparison rules).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from dockyard.web.schemas import RunDetail, TaskRunOut
from tests.cli.test_same_output import FLOWS, Modes, _ready, same
from tests.helpers import dockyard_env, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow
CONFIG = """\
deployments:
  - entrypoint: "flows/task_reports.py:tasks"
    name: tasks
    tags: [team-a]
    catchup: none
"""


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Modes, str]]:
    """A serve process with one ended run of ``tasks/tasks`` (three task runs), retagged."""
    tmp = tmp_path_factory.mktemp("same-task-runs")
    shutil.copytree(FLOWS, tmp / "flows")
    (tmp / "dockyard.yaml").write_text(CONFIG)
    with serve_process(["--config", "dockyard.yaml"], tmp, env=dockyard_env()) as served:
        url = webserver_url(served)
        wait_for(lambda: _ready(url), timeout=30, what="/ready")
        with httpx.Client(base_url=url, timeout=10) as client:
            created = client.post("/api/deployments/tasks/tasks/runs", json={"tags": ["x"]})
            run_id = created.json()["id"]
            wait_for(
                lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "Completed",
                what="the run to complete",
            )
            client.patch(f"/api/runs/{run_id}", json={"tags": ["x", "checked"]})
        yield Modes(url, served.state_path), run_id


def test_run_inspect_shows_the_same_tags_and_task_runs(modes: tuple[Modes, str]) -> None:
    both, run_id = modes
    http, local = both.both_json("run", "inspect", run_id)
    same(http, local)
    assert set(local) == set(RunDetail.model_fields)
    assert local["tags"] == ["x", "checked"]
    assert [t["state"] for t in local["task_runs"]] == ["Completed", "Completed", "Failed"]
    assert {key for t in local["task_runs"] for key in t} == set(TaskRunOut.model_fields)

    http_text, local_text = both.both("run", "inspect", run_id)
    assert local_text == http_text
    assert "task runs" in local_text.splitlines()


def test_run_ls_shows_the_same_tags(modes: tuple[Modes, str]) -> None:
    both, _run_id = modes
    http, local = both.both_json("run", "ls")
    same(http, local)
    assert [r["tags"] for r in local] == [["x", "checked"]]
    assert local == http
