"""Which deployments the serve processes sharing a database serve, and whether one may be
removed: from the replicas' heartbeat rows, over any ``StateStore``.

A replica whose heartbeat is recent is live, unless the store knows its process is gone
(``owner_alive``: a killed process's lease on a local file). The API (``service.ops``) and
the CLI's local reader (``cli.readers``) answer ``served`` and ``deployment rm`` with the
same rules from here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from dockyard.core.records import ReplicaRecord, RunRecord
from dockyard.core.states import RunState
from dockyard.errors import ConflictError
from dockyard.store.base import StateStore

MAX_RUNNING_CHECKED = 500
"""How many Running runs of a deployment ``removal_refusal`` looks at."""


def replica_rows(
    store: StateStore, now: datetime, exclude: str | None = None
) -> tuple[list[ReplicaRecord], set[str]]:
    """The replicas' rows (but ``exclude``'s: a process knows better than its own row what
    it serves), and the ids of those known gone despite a fresh heartbeat."""
    rows = [r for r in store.list_replicas() if r.id != exclude]
    timeout = store.replica_timeout
    fresh = [r for r in rows if r.state(now, timeout) == "live"]
    return rows, {r.id for r in fresh if not store.owner_alive(r.id)}


def removal_refusal(
    store: StateStore, name: str, now: datetime, exclude: str | None = None
) -> ConflictError | None:
    """Why deployment ``name`` must not be removed now, or None: a live replica serves it
    (it would register it again), or one of its runs is Running under a live owner."""
    rows, dead = replica_rows(store, now, exclude)
    refused = _served_by_live(name, rows, now, store.replica_timeout, dead)
    if refused is not None:
        return refused
    running = store.list_runs(deployment=name, states=[RunState.RUNNING], limit=MAX_RUNNING_CHECKED)
    for run in running:
        if store.owner_alive(run.owner):
            return ConflictError(_running_refusal(run))
    return None


def live_replicas(
    rows: Sequence[ReplicaRecord], now: datetime, timeout: float, dead: Collection[str] = ()
) -> list[ReplicaRecord]:
    """The live replicas among ``rows`` (``dead``: ids of processes known to be gone although
    their last heartbeat is recent, e.g. from their lease)."""
    return [r for r in rows if r.state(now, timeout) == "live" and r.id not in dead]


def live_deployments(
    rows: Sequence[ReplicaRecord], now: datetime, timeout: float, dead: Collection[str] = ()
) -> set[str]:
    """The deployments that live replicas serve."""
    return {name for r in live_replicas(rows, now, timeout, dead) for name in r.deployments}


def served_deployments(
    rows: Sequence[ReplicaRecord], now: datetime, timeout: float, dead: Collection[str] = ()
) -> set[str] | None:
    """What ``deployment ls`` counts as served: what the live replicas serve; while none
    runs, what the last ones to stop served (those seen within ``timeout`` of the last
    heartbeat); None when no replica has been seen for a day (nothing tells)."""
    if not rows:
        return None
    live = live_replicas(rows, now, timeout, dead)
    if live:
        return {name for r in live for name in r.deployments}
    last = max(r.last_seen for r in rows)
    recent = [r for r in rows if (last - r.last_seen).total_seconds() <= timeout]
    return {name for r in recent for name in r.deployments}


def _served_by_live(
    name: str, rows: Sequence[ReplicaRecord], now: datetime, timeout: float, dead: Collection[str]
) -> ConflictError | None:
    """Why deployment ``name`` must not be removed now: a live replica serves it (it would
    register it again), or None."""
    serving = [r.id for r in live_replicas(rows, now, timeout, dead) if name in r.deployments]
    if not serving:
        return None
    return ConflictError(
        f"{name} is served by a live serve process ({', '.join(serving)}), which would "
        "register it again: remove it from that process's configuration and restart it first"
    )


def _running_refusal(run: RunRecord) -> str:
    """Why a deployment must not be removed while ``run`` of it runs under a live owner."""
    return (
        f"run {run.id[:8]} of {run.deployment} is running (on {run.owner}): cancel it or "
        "let it end first"
    )
