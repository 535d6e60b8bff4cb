"""Futures of submitted task runs, and what resolves them (``dockyard.futures``).

A ``PrefectFuture`` wraps the ``concurrent.futures.Future`` of a task run's final
``State``: ``wait``, ``result`` (raising the task's error unless
``raise_on_failure=False``), ``state`` while it is still running. ``wait`` and
``as_completed`` work over several; the ``resolve_*`` helpers replace futures found in
arguments and return values (lists, tuples, sets and dict values, nested).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from dockyard.core.outcomes import Pending, State


class PrefectFuture:
    """The future of one task run: ``task_run_id``, ``state``, ``wait()``, ``result()``."""

    def __init__(
        self,
        task_run_id: str,
        inner: concurrent.futures.Future[State],
        live: Callable[[], State] | None = None,
    ) -> None:
        self.task_run_id = task_run_id
        self._inner = inner
        self._live = live

    @property
    def state(self) -> State:
        """The final state once done; before that the task run's current state."""
        if self._inner.done() and not self._inner.cancelled():
            return self._inner.result()
        return self._live() if self._live is not None else Pending()

    def done(self) -> bool:
        return self._inner.done()

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the task run is final, or ``timeout`` seconds have passed."""
        concurrent.futures.wait([self._inner], timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """The task's return value; its exception if it failed (unless told not to).

        ``TimeoutError`` when it is not final within ``timeout`` seconds.
        """
        try:
            state = self._inner.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"task run {self.task_run_id} did not finish within {timeout} seconds"
            ) from None
        return state.result(raise_on_failure=raise_on_failure)

    def add_done_callback(self, fn: Callable[[PrefectFuture], Any]) -> None:
        self._inner.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        return f"PrefectFuture(task_run_id={self.task_run_id!r}, state={self.state!r})"


class PrefectFutureList(list[PrefectFuture]):
    """What ``task.map`` returns: a list of futures with ``wait()`` and ``result()``."""

    def wait(self, timeout: float | None = None) -> None:
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[Any]:
        """Every future's result, in order (``TimeoutError`` if not all finish in time)."""
        done = wait(self, timeout=timeout)
        if done.not_done:
            raise TimeoutError(
                f"{len(done.not_done)} of {len(self)} task runs did not finish in time"
            )
        return [f.result(raise_on_failure=raise_on_failure) for f in self]


class DoneAndNotDoneFutures(NamedTuple):
    done: set[PrefectFuture]
    not_done: set[PrefectFuture]


def wait(futures: Iterable[PrefectFuture], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait for every future, or until ``timeout``; say which are done and which not."""
    items = list(futures)
    inner = {f._inner: f for f in items}
    done, not_done = concurrent.futures.wait(list(inner), timeout=timeout)
    return DoneAndNotDoneFutures({inner[f] for f in done}, {inner[f] for f in not_done})


def as_completed(
    futures: Iterable[PrefectFuture], timeout: float | None = None
) -> Iterator[PrefectFuture]:
    """Yield the futures as they finish; ``TimeoutError`` if some are not done in time."""
    items = list(futures)
    inner = {f._inner: f for f in items}
    try:
        for finished in concurrent.futures.as_completed(list(inner), timeout=timeout):
            yield inner[finished]
    except concurrent.futures.TimeoutError:
        raise TimeoutError("some task runs did not finish in time") from None


def visit(expr: Any, fn: Callable[[Any], Any]) -> Any:
    """``expr`` with ``fn`` applied to every leaf of its lists, tuples, sets and dicts."""
    if isinstance(expr, list):
        return [visit(item, fn) for item in expr]
    if isinstance(expr, tuple) and not hasattr(expr, "_fields"):
        return tuple(visit(item, fn) for item in expr)
    if isinstance(expr, (set, frozenset)):
        return type(expr)(visit(item, fn) for item in expr)
    if isinstance(expr, dict):
        return {key: visit(value, fn) for key, value in expr.items()}
    return fn(expr)


def resolve_futures_to_states(expr: Any) -> Any:
    """``expr`` with each future replaced by its final state (waiting for it)."""
    return visit(expr, lambda v: v.state if _waited(v) else v)


def resolve_futures_to_results(expr: Any) -> Any:
    """``expr`` with each future replaced by its result (raising a failed task's error)."""
    return visit(expr, lambda v: v.result() if isinstance(v, PrefectFuture) else v)


def _waited(value: Any) -> bool:
    if isinstance(value, PrefectFuture):
        value.wait()
        return True
    return False
