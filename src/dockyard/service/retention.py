"""Run history retention: the serve process prunes old finished runs, at start and hourly.

A finished run (Completed, Failed, Cancelled, Crashed) goes, with its logs, state history
and task runs, once it was created more than ``DOCKYARD_RETENTION_DAYS`` days ago or is
not among the newest ``DOCKYARD_RETENTION_RUNS`` finished runs of its deployment (0 turns
either rule off). A run that has not finished is never pruned.

Pruning runs in its own task, off the scheduling tick: one store call removes one short
batch (``StateStore.prune_runs``), so a large backlog is worked through in many small
transactions with the tick's store calls in between. Replicas sharing a database each
prune; the store makes that safe (each run is removed once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from dockyard.errors import StateStoreError
from dockyard.metrics import Metrics
from dockyard.service.throttle import WarningThrottle
from dockyard.settings import Settings
from dockyard.store.aio import AsyncStore

logger = logging.getLogger("dockyard")

PRUNE_INTERVAL_SECONDS = 3600.0
"""How often the serve process prunes, after the pass at start."""


class Retention:
    """Prunes the finished runs that the retention settings no longer keep."""

    def __init__(
        self,
        store: AsyncStore,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        throttle: WarningThrottle,
        interval: float = PRUNE_INTERVAL_SECONDS,
    ) -> None:
        self.store = store
        self.days = settings.retention_days
        self.keep = settings.retention_runs or None
        self.metrics = metrics
        self.clock = clock
        self.throttle = throttle
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.days or self.keep)

    def start(self) -> None:
        """Prune now, then every ``interval`` seconds, in a task of its own."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._prune_forever(), name="dockyard-retention")

    async def stop(self) -> None:
        """Stop pruning (a batch under way still commits: it is one transaction)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _prune_forever(self) -> None:
        while True:
            await self.prune(self.clock())
            await asyncio.sleep(self.interval)

    async def prune(self, now: datetime) -> int:
        """Remove, batch after batch, what retention no longer keeps at ``now``; how many
        runs went. A failing store is reported (throttled) and tried again next time."""
        cutoff = now - timedelta(days=self.days) if self.days else None
        removed = 0
        try:
            while count := await self.store.prune_runs(created_before=cutoff, keep=self.keep):
                removed += count
                self.metrics.runs_pruned.inc(count)
        except StateStoreError as exc:
            self.throttle.warn("retention", f"pruning old runs failed, trying again later: {exc}")
        else:
            self.throttle.clear("retention")
        if removed:
            logger.info("pruned %d finished run(s) with their logs (%s)", removed, self._rules())
        return removed

    def _rules(self) -> str:
        rules = []
        if self.days:
            rules.append(f"older than {self.days:g} day(s)")
        if self.keep:
            rules.append(f"beyond the newest {self.keep} per deployment")
        return " or ".join(rules)
