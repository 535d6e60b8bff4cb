"""The serve process's side of git sources: pull loops, probing revisions, swapping deployments.

Each ``SourcePlan`` gets a ``SourceManager`` task. A new revision is loaded by a probe
subprocess, which returns the deployments it defines as specs; only then is it published
and its deployments swapped in (added, removed or changed without a restart). Runs in
progress keep the revision they started with. The serve process never imports the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.core.deployments import Deployment, check_unique
from dockyard.errors import DockyardError
from dockyard.execution.process import probe
from dockyard.execution.spec import ProbeRequest, ProbeResult
from dockyard.metrics import Metrics
from dockyard.settings import Settings
from dockyard.sources.manager import SourceManager
from dockyard.sources.repository import GitRepository

if TYPE_CHECKING:  # sources.git is imported only when there is a git source
    from dockyard.service.registry import Registry  # and the store by the lifecycle
    from dockyard.sources.git import GitSource

logger = logging.getLogger("dockyard")


@dataclass(frozen=True)
class SourcePlan:
    """One git source, and what a probe must load from each revision of it."""

    repo: GitRepository
    root: Path
    pull_interval: float
    request: ProbeRequest
    """Loaded against each revision's directory (``ProbeRequest.at``)."""

    @property
    def key(self) -> str:
        return str(self.repo.name)


def deployments_of(result: ProbeResult) -> list[Deployment]:
    """The deployments a successful probe returned."""
    made = [Deployment.from_spec(spec) for spec in result.deployments]
    check_unique(made)  # two deployments with one name: refused, not one dropped
    return made


class CodeSupervisor:
    """Pull loops of the git sources a serve process was given."""

    def __init__(
        self,
        plans: list[SourcePlan],
        settings: Settings,
        metrics: Metrics,
        *,
        work_dir: Path,
        clock: Callable[[], datetime],
        on_give_up: Callable[[], None],
    ) -> None:
        self.plans = plans
        self.settings = settings
        self.metrics = metrics
        self.work_dir = work_dir
        self.clock = clock
        self.on_give_up = on_give_up
        self.managers: dict[str, SourceManager] = {}
        self.registry: Registry | None = None
        self._probed: dict[tuple[str, str], ProbeResult] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._started_at = clock()

    async def start(self, registry: Registry) -> None:
        """Serve the last published revision of each source, then start its pull loop."""
        self.registry = registry
        self._started_at = self.clock()
        if self.plans:
            from dockyard.sources.git import GitSource
        for plan in self.plans:
            source = GitSource(plan.repo, plan.root)
            manager = SourceManager(
                source,
                pull_interval=plan.pull_interval,
                check=functools.partial(self._check, plan),
                publish=functools.partial(self._publish, plan),
                metrics=self.metrics,
                clock=self.clock,
            )
            self.managers[plan.key] = manager
            self.metrics.add_source(plan.key)  # its counters from 0, before any pull
            await self._serve_last_good(plan, source, manager)
            self._tasks.append(asyncio.create_task(manager.run(self._stop)))
        if self.plans:
            self._tasks.append(asyncio.create_task(self._first_revision_watchdog()))

    async def _serve_last_good(
        self, plan: SourcePlan, source: GitSource, manager: SourceManager
    ) -> None:
        """After a restart, serve the revision published last time while pulling."""
        current = await asyncio.to_thread(source.current)
        if current is None:
            return
        sha, path = current
        try:
            problem = await self._check(plan, path, sha)
            if problem:
                raise DockyardError(problem)
            await self._publish(plan, sha, path)
        except DockyardError as exc:
            logger.warning("the last published revision %s does not load: %s", sha[:12], exc)
            return
        manager.status.revision = sha
        self.metrics.code_serving(plan.key, sha)

    async def _check(self, plan: SourcePlan, path: Path, sha: str) -> str | None:
        """Load the revision in a probe; None if it defines its deployments cleanly."""
        request = plan.request.at(path, sha)
        limit = self.settings.source_check_timeout
        result = await probe(request, work_dir=self.work_dir, limit_seconds=limit)
        if not result.ok:
            return result.error or "the code did not load"
        self._probed[(plan.key, sha)] = result
        return None

    async def _publish(self, plan: SourcePlan, sha: str, path: Path) -> None:
        """Swap in the deployments revision ``sha`` defines (as the probe reported them)."""
        result = self._probed.pop((plan.key, sha), None)
        if result is None:
            raise DockyardError(f"revision {sha[:12]} was not checked before publishing")
        made = [_with_origin(d, plan) for d in deployments_of(result)]
        assert self.registry is not None
        await self.registry.replace_source(plan.key, made, sha, self.clock())

    async def _first_revision_watchdog(self) -> None:
        """Give up at start-up when no source produced a good revision in time."""
        deadline = self.settings.source_startup_timeout
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while loop.time() < end:
            if all(m.status.revision for m in self.managers.values()):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.2)
            if self._stop.is_set():
                return
        failing = [m.status for m in self.managers.values() if not m.status.revision]
        detail = "; ".join(f"{s.url}: {s.last_error or 'no good revision'}" for s in failing)
        logger.error("no good code revision after %gs, giving up: %s", deadline, detail)
        self.on_give_up()

    def unready(self) -> str | None:
        """Why the code sources make the process unready, or None."""
        now = self.clock()
        limit = self.settings.source_staleness
        for manager in self.managers.values():
            status = manager.status
            if not status.revision:
                why = status.last_error or "first pull in progress"
                return f"no good revision of {status.url} yet: {why}"
            # A revision kept from before a restart counts as stale from start-up on.
            age = (now - (status.last_success_at or self._started_at)).total_seconds()
            if age > limit:
                if status.last_success_at:
                    what = f"last good pull of {status.url} was"
                else:
                    what = f"no good pull of {status.url} since start-up"
                return f"{what} {age:.0f}s ago (limit {limit:g}s): {status.last_error}"
        return None

    def hold(self, deployment: Deployment, hold: bool) -> None:
        """A run keeps its revision's files until it ends (old revisions are cleaned up)."""
        manager = self.managers.get(deployment.source_key or "")
        if manager is None or deployment.revision is None:
            return
        if hold:
            manager.source.acquire(deployment.revision)
        else:
            manager.source.release(deployment.revision)

    def trigger(self) -> int:
        """Pull every source now (webhook, SIGHUP, API); returns how many."""
        for manager in self.managers.values():
            manager.trigger()
        return len(self.managers)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _with_origin(deployment: Deployment, plan: SourcePlan) -> Deployment:
    return deployment.with_options(repository=plan.repo, checkout_root=str(plan.root))
