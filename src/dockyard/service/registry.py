"""Registering served deployments in the state store: at start-up, on a new code revision,
and the pause a shutdown leaves behind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from dockyard.core.deployments import Deployment
from dockyard.core.planning import MISSED_COUNT_CAP
from dockyard.core.policies import PauseReason, SkipReason
from dockyard.core.schedules import count_fires
from dockyard.core.states import RunState
from dockyard.metrics import Metrics
from dockyard.service.catalog import Catalog
from dockyard.service.supervisor import RunSupervisor, Verdict
from dockyard.store.aio import AsyncStore

logger = logging.getLogger("dockyard")
CRASH_MESSAGE = "the serve process stopped while this run was running (killed or out of memory)"


class Registry:
    """Keeps the store's deployments in step with the catalog."""

    def __init__(
        self,
        store: AsyncStore,
        catalog: Catalog,
        supervisor: RunSupervisor,
        metrics: Metrics,
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.supervisor = supervisor
        self.metrics = metrics
        self.wake = wake

    async def adopt(self, deployments: Sequence[Deployment], now: datetime) -> None:
        """Start serving these deployments (at start-up, or from a new code revision)."""
        for deployment in deployments:
            self.catalog.put(deployment)
            await self._register(deployment, now)
            self.metrics.add_deployment(deployment.full_name)
        names = {d.full_name for d in deployments}
        await self._recover_crashed(names)
        await self._resume_after_shutdown(now, names)
        self.wake()

    async def replace_source(
        self, key: str, made: Sequence[Deployment], sha: str, now: datetime
    ) -> None:
        """Serve what revision ``sha`` of source ``key`` defines, instead of the last one's."""
        new = {d.full_name for d in made}
        old = self.catalog.from_source(key)
        for name in sorted(old - new):
            self.catalog.remove(name)
            logger.info(
                "%s is no longer defined by revision %s: not scheduled any more", name, sha[:12]
            )
        for name in sorted(new - old):
            logger.info("%s added by revision %s", name, sha[:12])
        await self.adopt(made, now)

    async def _register(self, deployment: Deployment, now: datetime) -> None:
        name = deployment.full_name
        record = await self.store.upsert_deployment(
            name, deployment.flow_name, deployment.spec(), now=now
        )
        if deployment.paused and not record.paused:
            await self.store.set_paused(name, True, PauseReason.CONFIG, now=now)
        elif not deployment.paused and record.paused and record.paused_reason == PauseReason.CONFIG:
            await self.store.set_paused(name, False, None, now=now)

    async def _recover_crashed(self, names: set[str]) -> None:
        """Runs left Running by a process that was killed end Crashed (or retry)."""
        verdict = Verdict(RunState.CRASHED, CRASH_MESSAGE, error=CRASH_MESSAGE, retry=True)
        for run in await self.store.runs_in_states([RunState.RUNNING]):
            deployment = self.catalog.find(run.deployment)
            if deployment is None or run.deployment not in names:
                continue
            if run.id in self.supervisor.active or await self.store.owner_alive(run.owner):
                continue  # ours, or another live serve process's on the same state
            how = await self.supervisor.recover(run, deployment, verdict)
            logger.warning("run %s of %s: %s", run.id[:8], run.deployment, how)

    async def _resume_after_shutdown(self, now: datetime, names: set[str]) -> None:
        """Schedules paused by the last shutdown resume; slots due meanwhile are skipped."""
        for record in await self.store.list_deployments():
            deployment = self.catalog.find(record.name)
            if deployment is None or record.paused_reason != PauseReason.SHUTDOWN:
                continue
            if record.name not in names:
                continue
            skipped = 0
            if record.cursor is not None:
                skipped = count_fires(deployment.schedules, record.cursor, now, MISSED_COUNT_CAP)
                self.metrics.slots_missed(record.name, SkipReason.PAUSED, skipped)
            await self.store.set_cursor(record.name, now)
            await self.store.set_paused(record.name, False, None, now=now)
            logger.info(
                "resumed %s (paused by the last shutdown); %d slot(s) skipped while it was down",
                record.name, skipped,
            )  # fmt: skip

    async def pause_for_shutdown(self, now: datetime) -> None:
        """Mark every served schedule paused ("shutdown") until the next start resumes it."""
        for record in await self.store.list_deployments():
            if record.name in self.catalog and not record.paused:
                await self.store.set_paused(record.name, True, PauseReason.SHUTDOWN, now=now)
        logger.info("paused %d schedule(s) until the next start", len(self.catalog))
