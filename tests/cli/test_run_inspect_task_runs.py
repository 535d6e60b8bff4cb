"""``dockyard run inspect`` of a run with tags and task runs, from a real state file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockyard.core.records import NewRun, TaskRunRecord
from dockyard.store import open_store
from tests.cli.test_cli import dockyard

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RUN_ID = "ab" * 16
TRACEBACK = "Traceback (most recent call last):\n  File x, line 1\nValueError: [bold]bad row[/bold]"


def state_with_task_runs(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    with open_store(path) as store:
        store.upsert_deployment("etl/hourly", "etl", {}, now=T0)
        new = NewRun("etl/hourly", "etl", {}, T0, "manual", id=RUN_ID, tags=("etl", "team-a"))
        store.create_run(new, now=T0)
        store.save_task_runs(
            RUN_ID,
            [
                TaskRunRecord("t2", RUN_ID, "load-0", "load", "Failed", attempts=3,
                              started_at=T0 + timedelta(seconds=1),
                              ended_at=T0 + timedelta(seconds=3.5), error=TRACEBACK),
                TaskRunRecord("t1", RUN_ID, "extract-0", "extract", "Cached", attempts=0,
                              started_at=T0, ended_at=T0, cache_hit=True),
                TaskRunRecord("t3", RUN_ID, "save-0", "save", "Crashed"),
            ],
        )  # fmt: skip
    return path


def test_inspect_shows_tags_and_a_task_runs_table(tmp_path: Path) -> None:
    result = dockyard("run", "inspect", RUN_ID[:8], "--state", str(state_with_task_runs(tmp_path)))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "tags        etl, team-a" in lines
    table = lines[lines.index("task runs") + 1 :]
    assert [line.split() for line in table] == [
        ["NAME", "STATE", "ATTEMPTS", "DURATION", "CACHED", "ERROR"],
        ["extract-0", "Cached", "0", "0.0s", "yes", "-"],
        ["load-0", "Failed", "3", "2.5s", "no", "ValueError:", "[bold]bad", "row[/bold]"],
        ["save-0", "Crashed", "1", "-", "no", "-"],
    ]


def test_inspect_json_has_tags_and_task_runs(tmp_path: Path) -> None:
    state = state_with_task_runs(tmp_path)
    result = dockyard("run", "inspect", RUN_ID, "--state", str(state), "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tags"] == ["etl", "team-a"]
    assert [(t["name"], t["duration_seconds"]) for t in data["task_runs"]] == [
        ("extract-0", 0.0),
        ("load-0", 2.5),
        ("save-0", None),
    ]
    assert data["task_runs"][1]["error"] == TRACEBACK
