"""Removing runs: retention (old finished runs) and ``deployment rm``, in short batches.

The queries here run inside the store's transactions. A run goes with everything that
points at it (its state history, log lines, task runs and slot row), in one transaction,
so no half-removed run is ever seen. One call removes at most a batch: a few hundred runs,
and no more log lines than ``LOG_BUDGET`` (a single run over it goes alone), so that even
a huge backlog never holds a long write transaction; callers call again until nothing is
left.

Several replicas may prune at once. On PostgreSQL the candidate rows are locked with
``FOR UPDATE SKIP LOCKED``: a replica skips the runs another one is removing instead of
waiting for (or deadlocking with) it. SQLite's write transactions are serialized anyway
(``BEGIN IMMEDIATE``), and the clause is not rendered there.

A pruned slot row does not make its slot claimable again: the planner only plans slots
after the deployment's cursor, which has passed every slot that has a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.core.states import TERMINAL
from dockyard.store.schema import deployments, run_logs, run_states, runs, slots, task_runs

BATCH_RUNS = 200
"""The most runs one call removes."""
LOG_BUDGET = 20_000
"""The most log lines one call removes (a single run with more is removed alone)."""
_FINISHED = sorted(state.value for state in TERMINAL)


def delete_runs(conn: Connection, ids: Sequence[str]) -> int:
    """Delete the runs ``ids`` and the rows that point at them; how many runs went."""
    if not ids:
        return 0
    for table in (task_runs, run_logs, run_states, slots):
        conn.execute(table.delete().where(table.c.run_id.in_(ids)))
    return int(conn.execute(runs.delete().where(runs.c.id.in_(ids))).rowcount)


def within_budget(
    rows: Sequence[sa.Row[str, int]], budget: int | None = None, *, first: bool = True
) -> tuple[list[str], int]:
    """The ids of the first ``rows`` (id, log lines) whose log lines fit in ``budget``
    (the first one always, with ``first``), and the log lines they hold."""
    budget = LOG_BUDGET if budget is None else budget
    picked: list[str] = []
    lines = 0
    for run_id, log_lines in rows:
        if lines + log_lines > budget and (picked or not first):
            break
        picked.append(run_id)
        lines += log_lines
    return picked, lines


def _candidates(query: sa.Select[str, int], limit: int) -> sa.Select[str, int]:
    """``query`` limited, in a fixed order, its rows locked unless another writer holds them."""
    return (
        query.order_by(runs.c.created_at, runs.c.id).limit(limit).with_for_update(skip_locked=True)
    )


def deployment_batch(conn: Connection, name: str, limit: int) -> list[str]:
    """Up to ``limit`` runs of deployment ``name``, whatever their state, oldest first."""
    query = sa.select(runs.c.id, runs.c.log_lines).where(runs.c.deployment == name)
    return within_budget(conn.execute(_candidates(query, limit)).all())[0]


def retention_batch(
    conn: Connection, *, created_before: datetime | None, keep: int | None, limit: int
) -> list[str]:
    """Up to ``limit`` finished runs, oldest first, that were created before
    ``created_before`` or are not among the newest ``keep`` finished runs of their deployment."""
    if created_before is None and not keep:
        return []
    names = list(conn.execute(sa.select(deployments.c.name).order_by(deployments.c.name)).scalars())
    picked: list[str] = []
    budget = LOG_BUDGET
    for name in names:
        room = limit - len(picked)
        if room <= 0 or budget <= 0:
            break
        expired = _expired(conn, name, created_before, keep)
        if expired is None:
            continue
        query = sa.select(runs.c.id, runs.c.log_lines).where(
            runs.c.deployment == name, runs.c.state.in_(_FINISHED), expired
        )
        rows = conn.execute(_candidates(query, room)).all()
        ids, lines = within_budget(rows, budget, first=not picked)
        picked += ids
        budget -= lines
        if len(ids) < len(rows):
            break  # the log budget is spent
    return picked


def _expired(
    conn: Connection, name: str, created_before: datetime | None, keep: int | None
) -> sa.ColumnElement[bool] | None:
    """Which finished runs of ``name`` retention removes, or None for none of them."""
    conditions: list[sa.ColumnElement[bool]] = []
    if created_before is not None:
        conditions.append(runs.c.created_at < created_before)
    if keep:
        newest = (
            sa.select(runs.c.created_at, runs.c.id)
            .where(runs.c.deployment == name, runs.c.state.in_(_FINISHED))
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .offset(keep - 1)
            .limit(1)
        )
        last_kept = conn.execute(newest).first()
        if last_kept is not None:
            at, run_id = last_kept
            conditions.append(
                sa.or_(runs.c.created_at < at, sa.and_(runs.c.created_at == at, runs.c.id < run_id))
            )
    return sa.or_(*conditions) if conditions else None
