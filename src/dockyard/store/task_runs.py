"""The queries of a flow run's task runs and tags, run inside the store's transactions.

A task run is keyed by its flow run and its own id: saving the same id again replaces
it (the process reports ``Running`` first and the final state later).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from dockyard.core.records import TASK_RUN_STATES, TaskRunRecord
from dockyard.store.schema import task_runs

_COLUMNS = tuple(c.name for c in task_runs.c)
_UPDATED = tuple(name for name in _COLUMNS if name not in ("run_id", "id"))


def upsert_task_runs(conn: Connection, run_id: str, records: Sequence[TaskRunRecord]) -> None:
    """Insert the task runs of ``run_id``, replacing those with the same id."""
    rows = [_row(run_id, record) for record in records]
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(task_runs)
    statement = statement.on_conflict_do_update(
        index_elements=[task_runs.c.run_id, task_runs.c.id],
        set_={name: statement.excluded[name] for name in _UPDATED},
    )
    conn.execute(statement, rows)


def select_task_runs(conn: Connection, run_id: str) -> list[TaskRunRecord]:
    """The task runs of ``run_id`` in the order they started (not started: last)."""
    c = task_runs.c
    query = sa.select(task_runs).where(c.run_id == run_id)
    query = query.order_by(c.started_at.is_(None), c.started_at, c.flow_attempt, c.id)
    return [TaskRunRecord(**row) for row in conn.execute(query).mappings()]


def _row(run_id: str, record: TaskRunRecord) -> dict[str, Any]:
    if record.run_id != run_id:
        raise ValueError(f"task run {record.id} belongs to run {record.run_id}, not {run_id}")
    if record.state not in TASK_RUN_STATES:
        raise ValueError(
            f"task run {record.id}: unknown state {record.state!r}; "
            f"use one of {sorted(TASK_RUN_STATES)}"
        )
    return {name: getattr(record, name) for name in _COLUMNS}
