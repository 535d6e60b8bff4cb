"""The serve process's side of git sources: pull loops, checks, swapping deployments.

Mixed into ``ServeService``. Each ``SourcePlan`` gets a ``SourceManager`` task; a good
new revision is turned into deployments (``plan.build``) and swapped in: added,
removed or changed deployments take effect without a restart, and runs in progress
keep the revision they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from dockyard.core.deployments import Deployment
from dockyard.errors import DockyardError
from dockyard.execution.process import probe
from dockyard.service.serving import check_unique
from dockyard.service.sourcing import SourcePlan

logger = logging.getLogger("dockyard")


class CodeSources:
    """Pull loops of the git sources a serve process was given."""

    plans: list[SourcePlan]
    managers: dict[str, Any]
    deployments: dict[str, Deployment]
    settings: Any
    metrics: Any
    _work_dir: Path | None
    _source_tasks: list[asyncio.Task[None]]
    _sources_stop: asyncio.Event | None

    async def start_sources(self) -> None:
        from dockyard.sources.git import GitSource
        from dockyard.sources.manager import SourceManager

        self._sources_stop = asyncio.Event()
        self._sources_started_at = self.clock()  # type: ignore[attr-defined]
        for plan in self.plans:
            source = GitSource(plan.repo, plan.root)
            manager = SourceManager(
                source,
                pull_interval=plan.pull_interval,
                check=functools.partial(self._check_revision, plan),
                publish=functools.partial(self._publish_revision, plan),
                metrics=self.metrics,
                clock=self.clock,  # type: ignore[attr-defined]
            )
            self.managers[plan.key] = manager
            await self._serve_last_good(plan, source, manager)
            self._source_tasks.append(asyncio.create_task(manager.run(self._sources_stop)))
        if self.plans:
            self._source_tasks.append(asyncio.create_task(self._first_revision_watchdog()))

    async def _serve_last_good(self, plan: SourcePlan, source: Any, manager: Any) -> None:
        """After a restart, serve the revision published last time while pulling."""
        current = await asyncio.to_thread(source.current)
        if current is None:
            return
        sha, path = current
        try:
            await self._publish_revision(plan, sha, path)
        except DockyardError as exc:
            logger.warning("the last published revision %s does not load: %s", sha[:12], exc)
            return
        manager.status.revision = sha
        self.metrics.code_serving(plan.key, sha)

    async def _check_revision(self, plan: SourcePlan, path: Path) -> str | None:
        assert self._work_dir is not None
        spec = {"path": str(path), **plan.probe_spec}
        result = await probe(
            spec, work_dir=self._work_dir, limit_seconds=self.settings.source_check_timeout
        )
        return None if result.ok else (result.error or "the code did not load")

    async def _publish_revision(self, plan: SourcePlan, sha: str, path: Path) -> None:
        """Make the deployments from revision ``sha`` and swap them in."""
        made = await asyncio.to_thread(plan.build, Path(path), sha)
        check_unique(made)  # two deployments with one name: refused, not one dropped
        new = {d.full_name: d for d in made}
        old = {n for n, d in self.deployments.items() if d.source_key == plan.key}
        for name in sorted(old - set(new)):
            del self.deployments[name]
            logger.info(
                "%s is no longer defined by revision %s: not scheduled any more", name, sha[:12]
            )
        for name in sorted(set(new) - old):
            logger.info("%s added by revision %s", name, sha[:12])
        await self.adopt(list(new.values()), self.clock())  # type: ignore[attr-defined]

    async def _first_revision_watchdog(self) -> None:
        """Give up at start-up when no source produced a good revision in time."""
        deadline = self.settings.source_startup_timeout
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while loop.time() < end:
            if all(m.status.revision for m in self.managers.values()):
                return
            await asyncio.sleep(0.2)
        failing = [m.status for m in self.managers.values() if not m.status.revision]
        detail = "; ".join(f"{s.url}: {s.last_error or 'no good revision'}" for s in failing)
        logger.error("no good code revision after %gs, giving up: %s", deadline, detail)
        self.exit_code = 1  # type: ignore[attr-defined]
        self.handle_exit()  # type: ignore[attr-defined]

    def sources_unready(self) -> str | None:
        """Why the code sources make the process unready, or None."""
        now: datetime = self.clock()  # type: ignore[attr-defined]
        for manager in self.managers.values():
            status = manager.status
            if not status.revision:
                why = status.last_error or "first pull in progress"
                return f"no good revision of {status.url} yet: {why}"
            # A revision kept from before a restart counts as stale from start-up on.
            since = status.last_success_at or getattr(self, "_sources_started_at", now)
            age = (now - since).total_seconds()
            if age > self.settings.source_staleness:
                if status.last_success_at:
                    what = f"last good pull of {status.url} was"
                else:
                    what = f"no good pull of {status.url} since start-up"
                return (
                    f"{what} {age:.0f}s ago "
                    f"(limit {self.settings.source_staleness:g}s): {status.last_error}"
                )
        return None

    def _hold_revision(self, deployment: Deployment, hold: bool) -> None:
        """A run keeps its revision's files until it ends (old revisions are cleaned up)."""
        manager = self.managers.get(deployment.source_key or "")
        if manager is None or deployment.revision is None:
            return
        if hold:
            manager.source.acquire(deployment.revision)
        else:
            manager.source.release(deployment.revision)

    def trigger_sources(self) -> int:
        """Pull every source now (webhook, SIGHUP, API); returns how many."""
        for manager in self.managers.values():
            manager.trigger()
        return len(self.managers)

    async def stop_sources(self) -> None:
        if self._sources_stop is not None:
            self._sources_stop.set()
        for task in self._source_tasks:
            task.cancel()
        for task in self._source_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
