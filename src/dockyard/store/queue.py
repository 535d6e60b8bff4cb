"""The shared queue of Pending runs: taking runs to start, and cancel requests, in SQL.

Several replicas take from one queue. ``take_runs`` locks only the rows it takes
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serializes
writers instead), and the deployment rows of the deployments with a concurrency limit, so
that two replicas counting the same deployment's Running runs never both fill its last
place. Which runs fit is decided by ``core.planning.select_runs_to_start``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.core import planning
from dockyard.core.records import RunRecord, Takeable
from dockyard.core.states import RunState
from dockyard.store.schema import deployments, run_states, runs

NOTIFY_CHANNEL = "dockyard"
"""The PostgreSQL channel every replica listens on."""


def notify(conn: Connection, payload: str) -> None:
    """Tell every listening replica, when this transaction commits, that ``payload``
    changed (PostgreSQL only; elsewhere nobody listens)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, payload)))


def notify_if_waiting(conn: Connection, deployment: str) -> None:
    """``notify`` that a place is free, when runs of ``deployment`` wait for one."""
    if conn.dialect.name != "postgresql":
        return
    query = sa.select(runs.c.id).where(
        runs.c.deployment == deployment, runs.c.state == RunState.PENDING.value
    )
    if conn.execute(query.limit(1)).first() is not None:
        notify(conn, "work")


def take_runs(
    conn: Connection,
    owner: str,
    wanted: Sequence[Takeable],
    *,
    capacity: int,
    now: datetime,
    version: str,
) -> list[RunRecord]:
    """Move the Pending runs that fit to Running for ``owner``; return them (see
    ``StateStore.take_runs``). Runs inside the caller's write transaction."""
    if capacity <= 0 or not wanted:
        return []
    by_name = {w.deployment: w for w in wanted}
    limits: dict[str, int] = {
        w.deployment: w.concurrency_limit for w in wanted if w.concurrency_limit
    }
    running = _lock_and_count(conn, limits) if limits else {}
    open_names = [n for n in by_name if n not in limits or running.get(n, 0) < limits[n]]
    if not open_names:
        return []
    queued = _candidates(conn, open_names, capacity, limits, running)
    chosen = planning.select_runs_to_start(queued, running, limit=None, concurrency_limits=limits)[
        :capacity
    ]
    if not chosen:
        return []
    deployment_of = {q.id: q.deployment for q in queued}
    taken: list[str] = []
    for revision, ids in _by_revision(chosen, deployment_of, by_name).items():
        result = conn.execute(
            runs.update()
            .where(runs.c.id.in_(ids), runs.c.state == RunState.PENDING.value)
            .values(
                state=RunState.RUNNING.value, state_message=None, started_at=now,
                updated_at=now, owner=owner, code_revision=revision, dockyard_version=version,
                cancel_requested=None, pid=None, process=None,
            )
        )  # fmt: skip
        if result.rowcount == len(ids):
            taken.extend(ids)
        else:  # cannot happen under the row locks; stay correct if it does
            taken.extend(_now_running(conn, ids, owner))
    if not taken:
        return []
    conn.execute(
        run_states.insert(),
        [{"run_id": i, "state": RunState.RUNNING.value, "at": now, "message": None} for i in taken],
    )
    rows = conn.execute(sa.select(runs).where(runs.c.id.in_(taken))).mappings()
    found = {row["id"]: RunRecord.from_row(row) for row in rows}
    return [found[i] for i in chosen if i in found]


def _lock_and_count(conn: Connection, limits: Mapping[str, int]) -> dict[str, int]:
    """Lock the limited deployments' rows (other takers of them wait a moment) and count
    their Running runs across all replicas."""
    names = sorted(limits)  # one lock order for everyone: no deadlock between takers
    conn.execute(
        sa.select(deployments.c.name)
        .where(deployments.c.name.in_(names))
        .order_by(deployments.c.name)
        .with_for_update()
    ).all()
    query = (
        sa.select(runs.c.deployment, sa.func.count())
        .where(runs.c.state == RunState.RUNNING.value, runs.c.deployment.in_(names))
        .group_by(runs.c.deployment)
    )
    return {name: int(count) for name, count in conn.execute(query)}


def _candidates(
    conn: Connection,
    names: list[str],
    capacity: int,
    limits: Mapping[str, int],
    running: Mapping[str, int],
) -> list[planning.QueuedRun]:
    """The oldest Pending runs of ``names``, at most as many per deployment as could
    start, locked; rows another replica is taking are skipped."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=runs.c.deployment,
            order_by=(runs.c.scheduled_at, runs.c.created_at, runs.c.id),
        )
        .label("rank")
    )
    ranked = (
        sa.select(runs.c.id, runs.c.deployment, rank)
        .where(runs.c.state == RunState.PENDING.value, runs.c.deployment.in_(names))
        .subquery()
    )
    room = [
        sa.and_(
            ranked.c.deployment == name,
            ranked.c.rank <= _room(name, capacity, limits, running),
        )
        for name in names
    ]
    ids = sa.select(ranked.c.id).where(sa.or_(*room))
    query = (
        sa.select(runs.c.id, runs.c.deployment)
        .where(runs.c.id.in_(ids), runs.c.state == RunState.PENDING.value)
        .order_by(runs.c.scheduled_at, runs.c.created_at, runs.c.id)
        .with_for_update(skip_locked=True)
    )
    return [planning.QueuedRun(row.id, row.deployment) for row in conn.execute(query)]


def _room(name: str, capacity: int, limits: Mapping[str, int], running: Mapping[str, int]) -> int:
    limit = limits.get(name)
    if limit is None:
        return capacity
    return max(min(capacity, limit - running.get(name, 0)), 0)


def _by_revision(
    chosen: list[str], deployment_of: dict[str, str], by_name: dict[str, Takeable]
) -> dict[str | None, list[str]]:
    groups: dict[str | None, list[str]] = {}
    for run_id in chosen:
        groups.setdefault(by_name[deployment_of[run_id]].code_revision, []).append(run_id)
    return groups


def _now_running(conn: Connection, ids: list[str], owner: str) -> list[str]:
    query = sa.select(runs.c.id).where(
        runs.c.id.in_(ids), runs.c.state == RunState.RUNNING.value, runs.c.owner == owner
    )
    return list(conn.execute(query).scalars())


def request_cancel(conn: Connection, run_id: str, reason: str) -> bool:
    """Ask the owner of a Running run to stop it; False when it is not Running."""
    changed = conn.execute(
        runs.update()
        .where(
            runs.c.id == run_id,
            runs.c.state == RunState.RUNNING.value,
            runs.c.cancel_requested.is_(None),
        )
        .values(cancel_requested=reason)
    ).rowcount
    if changed:
        notify(conn, f"cancel:{run_id}")
    return bool(changed) or _already_requested(conn, run_id)


def _already_requested(conn: Connection, run_id: str) -> bool:
    query = sa.select(runs.c.id).where(
        runs.c.id == run_id,
        runs.c.state == RunState.RUNNING.value,
        runs.c.cancel_requested.is_not(None),
    )
    return conn.execute(query).first() is not None
