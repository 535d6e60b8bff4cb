"""Keeping one code source current: pull on an interval or on demand, check, publish.

A new revision is checked in a probe subprocess before it is published; a bad one is
refused and the last good revision keeps serving. After start-up a failing remote never
stops the process: it retries with exponential backoff and jitter, and readiness
reports a pull that is too old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError

logger = logging.getLogger("dockyard")

MAX_BACKOFF_SECONDS = 300.0


@dataclass
class SourceStatus:
    """What ``GET /api/sources`` shows about one source."""

    name: str
    url: str
    ref: str | None
    revision: str | None = None
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    refused_revision: str | None = None
    consecutive_failures: int = 0
    next_attempt_at: datetime | None = None


def backoff_seconds(interval: float, failures: int, *, rng: random.Random | None = None) -> float:
    """Wait before the next attempt after ``failures`` failures in a row (with jitter)."""
    if failures <= 0:
        return interval
    base = min(interval * (2 ** min(failures - 1, 16)), max(MAX_BACKOFF_SECONDS, interval))
    jitter = (rng or random).uniform(0.8, 1.2)
    return max(1.0, base * jitter) if interval >= 1 else base * jitter


class SourceManager:
    """Runs the pull loop of one ``GitSource``; calls ``publish`` for each good revision."""

    def __init__(
        self,
        source: Any,
        *,
        pull_interval: float,
        check: Callable[[Path, str], Awaitable[str | None]],
        publish: Callable[[str, Path], Awaitable[None]],
        metrics: Any,
        clock: Callable[[], datetime],
    ) -> None:
        self.source = source
        self.pull_interval = pull_interval
        self.check = check
        self.publish = publish
        self.metrics = metrics
        self.clock = clock
        repo = source.repo
        self.status = SourceStatus(name=repo.name, url=repo.safe_url, ref=repo.ref)
        self._trigger = asyncio.Event()
        self._lock = asyncio.Lock()

    def trigger(self) -> None:
        """Pull now (webhook, SIGHUP, API), instead of waiting for the interval."""
        self._trigger.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Pull until ``stop`` is set."""
        while not stop.is_set():
            await self.sync_once()
            delay = backoff_seconds(self.pull_interval, self.status.consecutive_failures)
            self.status.next_attempt_at = self.clock() + _seconds(delay)
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._trigger.wait()),
            ]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), delay
                )
            for waiter in waiters:
                waiter.cancel()
            self._trigger.clear()

    async def sync_once(self) -> bool:
        """One pull: fetch, check a new revision, publish it. True if it ended well."""
        async with self._lock:
            started = self.clock()
            self.status.last_attempt_at = started
            try:
                result = await asyncio.to_thread(self.source.sync)
                published = await self._maybe_publish(result)
            except _Refused as exc:
                self._failed(str(exc), "refused")
                return False
            except DockyardError as exc:
                self._failed(str(exc), "error")
                return False
            finally:
                elapsed = (self.clock() - started).total_seconds()
                self.metrics.code_sync_duration(self.status.name, elapsed)
            self._succeeded(result.sha, "success" if published else "noop")
            return True

    async def _maybe_publish(self, result: Any) -> bool:
        current = self.source.current()
        if current is not None and current[0] == result.sha:
            return False
        if result.sha == self.status.refused_revision:
            raise _Refused(self.status.last_error or f"revision {result.sha[:12]} was refused")
        problem = await self.check(result.path, result.sha)
        if problem:
            self.status.refused_revision = result.sha
            self.metrics.code_load_failure(self.status.name)
            message = f"revision {result.sha[:12]} of {self.status.url} refused: {problem}"
            logger.error("%s; still serving %s", message, self._serving())
            raise _Refused(message)
        # Deployments first: if they cannot be made, the published revision stays.
        try:
            await self.publish(result.sha, result.path)
        except DockyardError as exc:
            self.status.refused_revision = result.sha
            self.metrics.code_load_failure(self.status.name)
            message = f"revision {result.sha[:12]} of {self.status.url} refused: {exc}"
            logger.error("%s; still serving %s", message, self._serving())
            raise _Refused(message) from None
        await asyncio.to_thread(self.source.publish, result.sha)
        self.status.refused_revision = None
        await asyncio.to_thread(self.source.cleanup)
        logger.info("now serving revision %s of %s", result.sha[:12], self.status.url)
        return True

    def _serving(self) -> str:
        current = self.source.current()
        return f"revision {current[0][:12]}" if current else "nothing yet"

    def _succeeded(self, sha: str, result: str) -> None:
        if self.status.consecutive_failures:
            logger.info("pull of %s works again", self.status.url)
        self.status.revision = sha
        self.status.last_success_at = self.clock()
        self.status.last_error = None
        self.status.refused_revision = None  # the remote is back on a good revision
        self.status.consecutive_failures = 0
        self.metrics.code_sync(self.status.name, result, sha, self.status.last_success_at)

    def _failed(self, error: str, result: str) -> None:
        self.status.consecutive_failures += 1
        self.status.last_error = error
        self.metrics.code_sync(self.status.name, result, None, None)
        failures = self.status.consecutive_failures
        # Log the first failure and then every tenth, not every attempt (a refused
        # revision was logged when it was refused).
        if (failures == 1 and result != "refused") or failures % 10 == 0:
            logger.warning(
                "pull of %s failed (%d in a row; serving %s): %s",
                self.status.url,
                failures,
                self._serving(),
                error,
            )


class _Refused(DockyardError):
    """A revision failed its check (already logged)."""


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)
