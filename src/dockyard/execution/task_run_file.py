"""An attempt's task-runs file: where it lives beside the result, and how it is read.

The run's child appends one JSON line (``TaskRunRecord.to_json()``) per change of a task
run to ``<key>.tasks.jsonl`` (its envelope's ``task_runs_path``): ``Running`` when a task
run starts, its final state when it ends; the last line per id wins. The flow's own code
can write the file too, so the serve process reads it as untrusted input, within limits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from dockyard.core.records import TaskRunRecord

MAX_TASK_RUNS = 10_000
"""Task runs of one attempt that are read."""
MAX_TASK_RUN_BYTES = 8 * 1024 * 1024
"""Bytes of an attempt's task-runs file that are read (its first ones)."""
MAX_TASK_RUN_ERROR = 10_000
"""Characters of a task run's error that are kept."""
MAX_TASK_RUN_NAME = 200
MAX_TASK_RUN_ID = 64

logger = logging.getLogger("dockyard")


def task_runs_path(result_path: Path) -> Path:
    """``<key>.tasks.jsonl`` beside ``<key>.result.json``."""
    return result_path.with_name(result_path.name.removesuffix(".result.json") + ".tasks.jsonl")


def read_task_runs(path: Path, run_id: str, attempt: int) -> tuple[TaskRunRecord, ...]:
    """The task runs an attempt reported in ``path`` (JSON lines; the last one per id wins).

    The flow's own code can write this file, so it is read as untrusted input: at most
    ``MAX_TASK_RUN_BYTES`` and ``MAX_TASK_RUNS`` task runs, malformed lines skipped, texts
    cut to what the store keeps, and every record labelled with this run and attempt.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TASK_RUN_BYTES + 1)
    except OSError:
        return ()
    cut = len(data) > MAX_TASK_RUN_BYTES
    if cut:  # the last whole line within the limit
        data = data[: data.rfind(b"\n", 0, MAX_TASK_RUN_BYTES) + 1]
    found: dict[str, TaskRunRecord] = {}
    malformed = dropped = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        record = _task_run(line, run_id, attempt)
        if record is None:
            malformed += 1
        elif record.id in found or len(found) < MAX_TASK_RUNS:
            found[record.id] = record
        else:
            dropped += 1
    _warn_task_runs(run_id, cut=cut, malformed=malformed, dropped=dropped)
    return tuple(found.values())


def _task_run(line: bytes, run_id: str, attempt: int) -> TaskRunRecord | None:
    """One reported line as a record of this run and attempt; None if malformed."""
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            return None
        record = TaskRunRecord.from_json({**data, "run_id": run_id, "flow_attempt": attempt})
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    texts_ok = all(isinstance(v, str) for v in (record.id, record.name, record.task_key))
    if not texts_ok or not 0 < len(record.id) <= MAX_TASK_RUN_ID:
        return None
    if type(record.attempts) is not int or record.attempts < 0:
        return None
    if not isinstance(record.cache_hit, bool):
        return None
    if record.error is not None and not isinstance(record.error, str):
        return None
    return replace(
        record,
        name=record.name[:MAX_TASK_RUN_NAME],
        task_key=record.task_key[:MAX_TASK_RUN_NAME],
        started_at=_utc(record.started_at),
        ended_at=_utc(record.ended_at),
        error=_cut(record.error, MAX_TASK_RUN_ERROR),
    )


def _utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def _cut(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit] + "…"


def _warn_task_runs(run_id: str, *, cut: bool, malformed: int, dropped: int) -> None:
    run = run_id[:8]
    if cut:
        logger.warning(
            "run %s: its task runs file is over %d MiB: only the first %d MiB were read",
            run, MAX_TASK_RUN_BYTES >> 20, MAX_TASK_RUN_BYTES >> 20,
        )  # fmt: skip
    if dropped:
        logger.warning(
            "run %s reported more than %d task runs: %d more were not recorded",
            run, MAX_TASK_RUNS, dropped,
        )  # fmt: skip
    if malformed:
        logger.warning("run %s: %d malformed task run line(s) ignored", run, malformed)
