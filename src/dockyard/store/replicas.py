"""The queries of the ``replicas`` table, run inside the store's transactions.

Each serve process sharing the database keeps one row: who it is (host, pid, version,
code revision, deployments) and when it last said so. Writing it is an UPDATE, then an
INSERT when there was no row: the same two statements on SQLite and PostgreSQL, and a
row's id is its process's own lease id, so two processes never insert the same one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.core.records import ReplicaRecord
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


def _values(replica: ReplicaRecord) -> dict[str, Any]:
    values = {name: getattr(replica, name) for name in ReplicaRecord.__dataclass_fields__}
    values["deployments"] = list(replica.deployments)
    return values
