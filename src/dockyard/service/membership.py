"""This replica among the others on one database: heartbeats, peers, wake-ups.

Every ``interval`` seconds the replica writes its row (``StateStore.heartbeat``) and reads
everyone's, which the metrics and shutdown use. A replica whose heartbeat is older than
``replica_timeout`` is lost, and its Running runs may be recovered by any live one — but
only by a replica that has itself been reaching the database for a whole timeout: after
an outage every heartbeat looks old, and nobody's runs are taken for crashed then.
Notifications from the database (PostgreSQL LISTEN) wake the scheduler at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from dockyard._version import __version__
from dockyard.core.records import ReplicaRecord
from dockyard.errors import StateStoreError
from dockyard.metrics import Metrics, count_replica_states
from dockyard.service.catalog import Catalog
from dockyard.service.throttle import WarningThrottle
from dockyard.store.aio import AsyncStore
from dockyard.store.base import Listening

logger = logging.getLogger("dockyard")


class Membership:
    """Heartbeats of this replica and what it knows of the others."""

    def __init__(
        self,
        store: AsyncStore,
        owner: str,
        catalog: Catalog,
        metrics: Metrics,
        runs_held: Callable[[], int],
        *,
        interval: float,
        timeout: float,
        clock: Callable[[], datetime],
        throttle: WarningThrottle,
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.owner = owner
        self.catalog = catalog
        self.runs_held = runs_held
        self.metrics = metrics
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.throttle = throttle
        self.wake = wake
        self.started_at = clock()
        self.peers: list[ReplicaRecord] = []
        """Every replica's row as last read (this one's included)."""
        self.joined = False
        """Whether it has served (joined the replicas): only then may its shutdown pause."""
        self.draining_since: datetime | None = None
        self.reachable_since: datetime | None = None
        """Since when every heartbeat succeeded (None right after a failed one)."""
        self._task: asyncio.Task[None] | None = None
        self._listening: Listening | None = None

    # ── heartbeats ────────────────────────────────────────────────────────────
    async def join(self) -> None:
        """Write the first heartbeat, start beating and listening."""
        await self.beat()
        self.joined = True
        loop = asyncio.get_running_loop()

        def heard(payload: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.wake)

        self._listening = self.store.listen(heard)
        self._task = asyncio.create_task(self._beat_forever(), name="dockyard-heartbeat")

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.beat()

    async def beat(self) -> bool:
        """Write this replica's row and read everyone's; False when the store failed."""
        now = self.clock()
        try:
            await self.store.heartbeat(self._record(now))
            self.peers = await self._alive(await self.store.list_replicas(), now)
        except StateStoreError as exc:
            self.reachable_since = None
            self.throttle.warn("heartbeat", f"heartbeat not written, retrying: {exc}")
            return False
        if self.reachable_since is None:
            self.reachable_since = now
            self.throttle.clear("heartbeat")
        self.metrics.replicas_seen(count_replica_states(self.peers, now, self.timeout))
        return True

    async def _alive(self, replicas: list[ReplicaRecord], now: datetime) -> list[ReplicaRecord]:
        """The rows, with those of processes known dead made lost: on a local file the lease
        tells at once (a ``kill -9`` a moment ago leaves a fresh heartbeat)."""
        if self.store.local_dir is None:
            return replicas
        known = []
        for r in replicas:
            fresh = r.id != self.owner and r.state(now, self.timeout) == "live"
            if fresh and not await self.store.owner_alive(r.id):
                r = replace(r, last_seen=now - timedelta(seconds=self.timeout + 1))
            known.append(r)
        return known

    def _record(self, now: datetime) -> ReplicaRecord:
        revisions = sorted({d.revision[:12] for d in self.catalog if d.revision})
        return ReplicaRecord(
            id=self.owner,
            host=socket.gethostname()[:200],
            pid=os.getpid(),
            version=__version__,
            code_revision=",".join(revisions)[:100] or None,
            deployments=tuple(self.catalog.names()),
            runs_held=self.runs_held(),
            started_at=self.started_at,
            last_seen=now,
            stopped_at=None,
            draining_since=self.draining_since,
        )

    def trusts_heartbeats(self, now: datetime) -> bool:
        """Whether this replica has reached the database long enough (a whole timeout)
        to take another replica's old heartbeat for its death."""
        since = self.reachable_since
        return since is not None and (now - since).total_seconds() >= self.timeout

    def served_since(self, name: str) -> datetime | None:
        """Since when another live replica has served deployment ``name`` (as last read)."""
        now = self.clock()
        starts = [
            r.started_at
            for r in self.peers
            if r.id != self.owner and name in r.deployments and r.state(now, self.timeout) == "live"
        ]
        return min(starts) if starts else None

    async def drain(self) -> set[str]:
        """Mark this replica draining (so that the others see it is going) and return the
        deployments another live replica, not draining itself, serves.

        Replicas stopping together each see the others draining and pause; in a rolling
        restart the one that stops sees the others live and leaves the schedules alone."""
        self.draining_since = self.clock()
        await self.beat()
        now = self.clock()
        replicas = await self._alive(await self.store.list_replicas(), now)
        return {
            name
            for r in replicas
            if r.id != self.owner
            and r.draining_since is None
            and r.state(now, self.timeout) == "live"
            for name in r.deployments
        }

    async def leave(self) -> None:
        """Stop beating and listening; mark this replica stopped (a clean shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listening is not None:
            await asyncio.to_thread(self._listening.close)
        try:
            await self.store.leave(self.owner, now=self.clock())
        except StateStoreError as exc:
            logger.warning("could not mark this replica stopped: %s", exc)
