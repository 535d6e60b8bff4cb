"""The queries of the ``replicas`` table, run inside the store's transactions.

Each serve process sharing the database keeps one row: who it is (host, pid, version,
code revision, deployments) and when it last said so. Writing it is an UPDATE, then an
INSERT when there was no row: the same two statements on SQLite and PostgreSQL, and a
row's id is its process's own lease id, so two processes never insert the same one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.core.records import ReplicaRecord, RunRecord
from dockyard.errors import ConflictError
from dockyard.store.schema import replicas

PRUNE_AFTER = timedelta(days=1)
"""Rows whose last heartbeat is older than this are deleted (at any replica's heartbeat)."""


def upsert_replica(conn: Connection, replica: ReplicaRecord) -> None:
    """Write the replica's row; an existing row keeps its ``started_at``."""
    values = _values(replica)
    del values["started_at"]
    changed = conn.execute(
        replicas.update().where(replicas.c.id == replica.id).values(values)
    ).rowcount
    if changed == 0:
        conn.execute(replicas.insert().values(_values(replica)))


def prune_replicas(conn: Connection, now: datetime) -> int:
    """Delete the rows of replicas not seen for ``PRUNE_AFTER``; how many went."""
    query = replicas.delete().where(replicas.c.last_seen < now - PRUNE_AFTER)
    return int(conn.execute(query).rowcount)


def mark_left(conn: Connection, replica_id: str, now: datetime) -> None:
    """A clean shutdown: stopped (and last seen) at ``now``. An unknown id is left alone."""
    query = replicas.update().where(replicas.c.id == replica_id)
    conn.execute(query.values(stopped_at=now, last_seen=now))


def select_replicas(conn: Connection) -> list[ReplicaRecord]:
    """Every row, the oldest replica first."""
    query = sa.select(replicas).order_by(replicas.c.started_at, replicas.c.id)
    return [ReplicaRecord.from_row(row) for row in conn.execute(query).mappings()]


def live_deployments(
    rows: Sequence[ReplicaRecord], now: datetime, timeout: float, dead: Collection[str] = ()
) -> set[str]:
    """The deployments that live replicas serve (``dead``: ids of processes known to be gone
    although their last heartbeat is recent, e.g. from their lease)."""
    live = [r for r in rows if r.state(now, timeout) == "live" and r.id not in dead]
    return {name for r in live for name in r.deployments}


def served_deployments(
    rows: Sequence[ReplicaRecord], now: datetime, timeout: float, dead: Collection[str] = ()
) -> set[str] | None:
    """What ``deployment ls`` counts as served: what the live replicas serve; while none
    runs, what the last ones to stop served (those seen within ``timeout`` of the last
    heartbeat); None when no replica has been seen for a day (nothing tells)."""
    if not rows:
        return None
    live = live_deployments(rows, now, timeout, dead)
    if live or any(r.state(now, timeout) == "live" and r.id not in dead for r in rows):
        return live
    last = max(r.last_seen for r in rows)
    recent = [r for r in rows if (last - r.last_seen).total_seconds() <= timeout]
    return {name for r in recent for name in r.deployments}


def removal_refused(
    name: str, rows: Sequence[ReplicaRecord], now: datetime, timeout: float, dead: Collection[str]
) -> ConflictError | None:
    """Why deployment ``name`` must not be removed now: a live replica serves it (it would
    register it again), or None."""
    serving = [
        r.id
        for r in rows
        if name in r.deployments and r.state(now, timeout) == "live" and r.id not in dead
    ]
    if not serving:
        return None
    return ConflictError(
        f"{name} is served by a live serve process ({', '.join(serving)}), which would "
        "register it again: remove it from that process's configuration and restart it first"
    )


def running_refusal(run: RunRecord) -> str:
    """Why a deployment must not be removed while ``run`` of it runs under a live owner."""
    return (
        f"run {run.id[:8]} of {run.deployment} is running (on {run.owner}): cancel it or "
        "let it end first"
    )


def _values(replica: ReplicaRecord) -> dict[str, Any]:
    values = {name: getattr(replica, name) for name in ReplicaRecord.__dataclass_fields__}
    values["deployments"] = list(replica.deployments)
    return values
