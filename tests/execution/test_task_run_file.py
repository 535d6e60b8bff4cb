"""Reading an attempt's task-runs file: untrusted lines on a real file, within limits."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dockyard.execution import task_run_file
from dockyard.execution.task_run_file import read_task_runs, task_runs_path

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RUN = "f" * 32


def line(task_id: str = "t1", state: str = "Running", **fields: Any) -> str:
    values = {"id": task_id, "run_id": RUN, "name": "say-0", "task_key": "say", "state": state,
              "started_at": T0.isoformat(), **fields}  # fmt: skip
    return json.dumps(values)


def read(tmp_path: Path, *lines: str, attempt: int = 1) -> list[Any]:
    path = tmp_path / "k.tasks.jsonl"
    path.write_text("".join(f"{text}\n" for text in lines))
    return list(read_task_runs(path, RUN, attempt))


def test_the_file_lives_beside_the_result() -> None:
    assert task_runs_path(Path("/w/run-2.result.json")) == Path("/w/run-2.tasks.jsonl")


def test_the_last_line_per_id_wins_in_first_seen_order(tmp_path: Path) -> None:
    later = (T0 + timedelta(seconds=2)).isoformat()
    records = read(
        tmp_path,
        line("a"),
        line("b"),
        line("a", "Completed", ended_at=later, attempts=2, cache_hit=True),
    )

    assert [(r.id, r.state) for r in records] == [("a", "Completed"), ("b", "Running")]
    assert (records[0].attempts, records[0].cache_hit) == (2, True)
    assert records[0].ended_at == T0 + timedelta(seconds=2)


def test_every_record_is_of_this_run_and_attempt(tmp_path: Path) -> None:
    [record] = read(tmp_path, line(run_id="someone-else", flow_attempt=9), attempt=3)

    assert (record.run_id, record.flow_attempt) == (RUN, 3)


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "{}",
        line(state="Exploded"),
        line(state=["Running"]),
        line(task_id=""),
        line(task_id="x" * 65),
        line(task_id=7),
        line(name=None),
        line(task_key={"k": 1}),
        line(attempts="3"),
        line(attempts=True),
        line(attempts=-1),
        line(cache_hit="yes"),
        line(error=["boom"]),
        line(started_at="yesterday"),
        line(started_at=12),
        '{"id": "t1", "name": "n", "task_key": "k", "state": "Running", "attempts": 1'
        + "9" * 5000
        + "}",
        line()[: len(line()) // 2],  # cut off by a kill in the middle of a write
    ],
)
def test_a_malformed_line_is_skipped_and_said(
    tmp_path: Path, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dockyard"):
        records = read(tmp_path, line("ok"), bad, "", line("ok2"))

    assert [r.id for r in records] == ["ok", "ok2"]
    assert f"run {RUN[:8]}: 1 malformed task run line(s) ignored" in caplog.messages


def test_times_are_aware_utc_and_texts_are_cut(tmp_path: Path) -> None:
    berlin = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    [record] = read(
        tmp_path,
        line(started_at="2024-05-01T12:00:00", ended_at=berlin.isoformat(), name="n" * 300,
             task_key="k" * 300, error="e" * 20_000),
    )  # fmt: skip

    assert record.started_at == T0 and record.started_at.tzinfo is UTC
    assert record.ended_at == T0 and record.ended_at.tzinfo is UTC
    assert (len(record.name), len(record.task_key)) == (200, 200)
    assert record.error == "e" * task_run_file.MAX_TASK_RUN_ERROR + "…"


def test_a_missing_or_empty_file_has_no_task_runs(tmp_path: Path) -> None:
    assert read_task_runs(tmp_path / "absent.tasks.jsonl", RUN, 1) == ()
    assert read(tmp_path) == []


def test_at_most_so_many_task_runs_are_read_and_the_rest_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(task_run_file, "MAX_TASK_RUNS", 3)
    lines = [line(f"t{i}") for i in range(5)] + [line("t0", "Completed")]
    with caplog.at_level(logging.WARNING, logger="dockyard"):
        records = read(tmp_path, *lines)

    assert [(r.id, r.state) for r in records] == [
        ("t0", "Completed"),  # a task run already known still gets its final line
        ("t1", "Running"),
        ("t2", "Running"),
    ]
    assert f"run {RUN[:8]} reported more than 3 task runs: 2 more were not recorded" in (
        caplog.messages
    )


def test_only_the_first_bytes_of_a_huge_file_are_read_and_that_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(task_run_file, "MAX_TASK_RUN_BYTES", 1 << 20)
    first = line("first")
    filler = line("filler", error="x" * 1000)
    count = (1 << 20) // len(filler) + 50  # well past the limit
    path = tmp_path / "huge.tasks.jsonl"
    with path.open("w") as fh:
        fh.write(first + "\n")
        for _ in range(count):
            fh.write(filler + "\n")
        fh.write(line("beyond") + "\n")
    assert path.stat().st_size > 1 << 20

    with caplog.at_level(logging.WARNING, logger="dockyard"):
        records = read_task_runs(path, RUN, 1)

    assert [r.id for r in records] == ["first", "filler"]
    assert any("over 1 MiB: only the first 1 MiB were read" in m for m in caplog.messages)
    assert not any("malformed" in m for m in caplog.messages)  # cut at a whole line
