"""Records → API shapes: the CLI's local reader answers what the serve process answers.

A real SQLite store in ``tmp_path``; the server side is ``dockyard.web.views`` (what the
API sends today) over the served ``Deployment``, the local side is ``LocalReader`` over the
spec the store kept. Time is an argument: both use the same fixed "now".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.readers import LocalReader, stored_schedules, upcoming
from dockyard.core.deployments import Deployment
from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.core.records import NewRun, RunRecord
from dockyard.core.schedules import make_schedules
from dockyard.core.states import RunState
from dockyard.store import SqlStateStore, open_store
from dockyard.web import shapes, views
from dockyard.web.backend import DeploymentView

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
SCHEMA = {"type": "object", "properties": {"day": {"type": "string", "default": "today"}}}
DEPLOYMENT = Deployment(
    name="hourly",
    flow_name="etl",
    entrypoint="flows/etl.py:etl",
    base_dir="/srv/app",
    schedules=(*make_schedules(cron="0 * * * *", timezone="Europe/Berlin"),),
    parameters={"day": "monday"},
    tags=("etl", "team-a"),
    description="Hourly load",
    version="1.2",
    concurrency_limit=2,
    overlap=OverlapPolicy.SKIP,
    catchup=CatchupPolicy.NONE,
    parameter_schema=SCHEMA,
)
NAME = DEPLOYMENT.full_name


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    """The deployment as serve stores it, with one finished run that logged two lines."""
    with open_store(tmp_path / "state.db") as opened:
        opened.upsert_deployment(NAME, "etl", DEPLOYMENT.spec(), now=NOW)
        run = opened.create_run(
            NewRun(NAME, "etl", {"day": "monday"}, NOW, "manual", name="brave-otter", id="r1"),
            now=NOW,
        )
        finish(opened, run)
        opened.append_logs(run.id, [(NOW, "stdout", "hello"), (NOW, "stderr", "oops")])
        yield opened


def finish(store: SqlStateStore, run: RunRecord) -> None:
    later = NOW + timedelta(seconds=2)
    store.transition(run.id, RunState.PENDING, at=NOW)
    store.transition(run.id, RunState.RUNNING, at=NOW, started_at=NOW, pid=4242)
    store.transition(run.id, RunState.COMPLETED, at=later, ended_at=later, result="42")


def served(store: SqlStateStore, count: int = 5) -> DeploymentView:
    """What the serve process builds its answers from (its clock at NOW)."""
    record = store.get_deployment(NAME)
    assert record is not None
    last = store.list_runs(deployment=NAME, limit=1)
    return DeploymentView(DEPLOYMENT, record, upcoming(DEPLOYMENT.schedules, NOW, count), last[0])


def dumped(model: Any) -> Any:
    return model.model_dump(mode="json")


def test_the_local_deployment_list_is_the_servers(store: SqlStateStore) -> None:
    local = LocalReader(store, now=lambda: NOW).deployments()

    assert local == [dumped(views.deployment_summary(served(store)))]
    assert local[0]["next_run"] == "2024-05-01T13:00:00Z"


def test_the_local_deployment_detail_is_the_servers(store: SqlStateStore) -> None:
    local = LocalReader(store, now=lambda: NOW).deployment(NAME)

    assert local == dumped(views.deployment_detail(served(store)))
    assert local["next_runs"][:2] == ["2024-05-01T13:00:00Z", "2024-05-01T14:00:00Z"]
    assert (local["overlap"], local["catchup"], local["concurrency_limit"]) == ("skip", "none", 2)


def test_pausing_locally_answers_what_the_server_answers(store: SqlStateStore) -> None:
    local = LocalReader(store, now=lambda: NOW).set_paused(NAME, True)

    view = served(store)
    assert local == dumped(views.deployment_summary(view))
    assert (local["paused"], local["paused_reason"], local["next_run"]) == (True, "user", None)
    # Paused, the detail still lists the next fire times (the API does too).
    detail = LocalReader(store, now=lambda: NOW).deployment(NAME)
    assert detail == dumped(views.deployment_detail(view))
    assert len(detail["next_runs"]) == 5


def test_runs_and_logs_are_the_servers(store: SqlStateStore) -> None:
    reader = LocalReader(store, now=lambda: NOW)
    run = store.get_run("r1")
    lines = store.get_logs("r1")

    assert reader.runs(NAME, [RunState.COMPLETED], 10) == [dumped(views.run_summary(run))]
    assert reader.run("r1") == dumped(views.run_detail(run, store.state_history("r1")))
    assert reader.logs("r1", None) == [dumped(views.log_line(line)) for line in lines]
    assert reader.logs("r1", 1) == [
        {"seq": 2, "at": "2024-05-01T12:00:30Z", "stream": "stderr", "line": "oops"}
    ]
    assert "pid" not in reader.run("r1")


@pytest.mark.parametrize(
    ("shape", "args"),
    [
        (shapes.run_summary, ("run",)),
        (shapes.run_detail, ("run", "history")),
        (shapes.log_line, ("line",)),
    ],
)
def test_record_shapes_are_the_views(store: SqlStateStore, shape: Any, args: tuple[str]) -> None:
    values = {
        "run": store.get_run("r1"),
        "history": store.state_history("r1"),
        "line": store.get_logs("r1")[0],
    }
    view = getattr(views, shape.__name__)

    assert shape(*(values[a] for a in args)) == view(*(values[a] for a in args))


def test_the_served_spec_wins_over_the_stored_one(store: SqlStateStore) -> None:
    newer = DEPLOYMENT.with_options(tags=("etl",), version="1.3")
    record = store.get_deployment(NAME)
    assert record is not None
    times = upcoming(newer.schedules, NOW, 5)

    summary = shapes.deployment_summary(record, times, newer.spec())
    detail = shapes.deployment_detail(record, times, None, newer.spec())

    assert summary == views.deployment_summary(DeploymentView(newer, record, times))
    assert detail == views.deployment_detail(DeploymentView(newer, record, times))
    assert (summary.tags, summary.version) == (["etl"], "1.3")


def test_a_sparse_spec_gets_the_deployment_defaults(tmp_path: Path) -> None:
    with open_store(tmp_path / "state.db") as opened:
        opened.upsert_deployment("etl/bare", "etl", {}, now=NOW)
        detail = LocalReader(opened, now=lambda: NOW).deployment("etl/bare")

    assert detail == {
        "name": "etl/bare",
        "flow_name": "etl",
        "deployment": "bare",
        "schedules": [],
        "paused": False,
        "paused_reason": None,
        "tags": [],
        "description": None,
        "version": None,
        "next_run": None,
        "error": None,
        "served": True,  # no serve process seen: nothing says it is not
        "entrypoint": "",
        "parameters": {},
        "parameter_schema": {},
        "next_runs": [],
        "concurrency_limit": None,
        "overlap": "allow",
        "catchup": "latest",
        "last_run": None,
    }


@pytest.mark.parametrize(
    ("spec", "count"),
    [
        ({"schedules": [{"interval": 600.0}]}, 3),
        ({"schedules": [{"cron": "0 0 * * *"}, {"interval": 3600.0}]}, 3),
        ({"schedules": [{"every": "day"}]}, 0),  # an old or broken spec: no next runs
        ({}, 0),
    ],
)
def test_stored_schedules(spec: dict[str, Any], count: int) -> None:
    assert len(upcoming(stored_schedules(spec), NOW, 3)) == count
