"""Task runners: where submitted task runs execute (``dockyard.task_runners``).

``ThreadPoolTaskRunner(max_workers=)`` is every flow's default: a bounded pool of threads
inside the flow run's process, so cancelling the run (which ends the process) stops them.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
from collections.abc import Callable
from typing import Any, Self

from dockyard.core.outcomes import State


class ThreadPoolTaskRunner:
    """Runs submitted tasks on at most ``max_workers`` threads (Python's default if None)."""

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (isinstance(max_workers, bool) or max_workers < 1):
            raise ValueError(f"max_workers={max_workers!r}: use a whole number >= 1")
        self.max_workers = max_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def duplicate(self) -> Self:
        """A runner with the same settings for another flow run."""
        return type(self)(max_workers=self.max_workers)

    def __enter__(self) -> Self:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix="dockyard-task"
        )
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        stopping = exc_type is not None and not issubclass(exc_type, Exception)
        # A normal end waits for what was submitted (no task is lost); a cancelled run
        # does not wait: its process ends and takes the threads with it.
        pool.shutdown(wait=not stopping, cancel_futures=stopping)

    def submit(self, call: Callable[[], State]) -> concurrent.futures.Future[State]:
        """Run ``call`` (one task run, returning its final state) on a worker thread."""
        if self._pool is None:
            self.__enter__()
        assert self._pool is not None
        context = contextvars.copy_context()  # the flow run, tags, print routing
        return self._pool.submit(context.run, call)

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers!r})"


ConcurrentTaskRunner = ThreadPoolTaskRunner
"""Prefect 2's name for the thread pool runner."""
