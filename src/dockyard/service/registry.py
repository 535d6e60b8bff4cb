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
        await self.recover_lost(names, trust_heartbeats=False)  # left by a killed process
        await self.resume_after_shutdown(now, names)
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

    async def recover_lost(self, names: set[str] | None = None, *, trust_heartbeats: bool) -> int:
        """Conclude the Running runs whose owner is gone; return how many.

        An owner is gone when ``owner_alive`` says so. Where that rests on heartbeats
        (no lock files: PostgreSQL), only a replica that ``trust_heartbeats`` judges.
        Two replicas recovering the same run is harmless: one transition wins.
        """
        if self.store.local_dir is None and not trust_heartbeats:
            return 0
        verdict = Verdict(RunState.CRASHED, CRASH_MESSAGE, error=CRASH_MESSAGE, retry=True)
        alive: dict[str | None, bool] = {}
        recovered = 0
        for light in await self.store.runs_in_states([RunState.RUNNING], light=True):
            deployment = self.catalog.find(light.deployment)
            if deployment is None or (names is not None and light.deployment not in names):
                continue
            if light.id in self.supervisor.active:
                continue
            if light.owner not in alive:
                alive[light.owner] = await self.store.owner_alive(light.owner)
            if alive[light.owner]:
                continue  # another live serve process's run
            run = await self.store.get_run(light.id)
            ended = verdict
            if run.cancel_requested:  # cancelled while its replica was dying: not retried
                reason = run.cancel_requested
                ended = Verdict(RunState.CANCELLED, reason, error=reason)
            try:
                how = await self.supervisor.recover(run, deployment, ended)
            except ValueError:
                continue  # another replica recovered it first
            recovered += 1
            logger.warning("run %s of %s: %s", run.id[:8], run.deployment, how)
        return recovered

    async def resume_after_shutdown(self, now: datetime, names: set[str] | None = None) -> None:
        """Schedules paused by a shutdown resume (those in ``names``, else every served
        one): this process serves them now. Slots due meanwhile are skipped."""
        for record in await self.store.deployment_states():  # once a heartbeat: no specs
            deployment = self.catalog.find(record.name)
            if deployment is None or record.paused_reason != PauseReason.SHUTDOWN:
                continue
            if names is not None and record.name not in names:
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

    async def pause_for_shutdown(self, now: datetime, served_elsewhere: set[str]) -> None:
        """Mark the served schedules paused ("shutdown") until the next start resumes them,
        except those another live replica serves: a rolling restart leaves none paused."""
        paused = 0
        for record in await self.store.deployment_states():
            if record.name not in self.catalog or record.paused:
                continue
            if record.name in served_elsewhere:
                continue
            await self.store.set_paused(record.name, True, PauseReason.SHUTDOWN, now=now)
            paused += 1
        kept = len(self.catalog) - paused
        elsewhere = f"; {kept} kept running by other replicas" if served_elsewhere else ""
        logger.info("paused %d schedule(s) until the next start%s", paused, elsewhere)
