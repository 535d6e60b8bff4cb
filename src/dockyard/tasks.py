"""Tasks: ``from dockyard import task`` (Prefect's ``prefect.tasks``).

``@task`` makes a function a ``Task``. Called inside a flow run it runs with its retries,
timeout, cache and hooks and returns its result (an exception after the last retry
propagates as in plain Python); ``submit`` returns a future run on the flow's task runner;
``map`` submits one run per item. Called outside any flow, a task runs on its own the same
way (retries, timeout, cache, hooks) and returns its result, as in Prefect 3.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar, overload

from dockyard.core.tasks import TaskDefinition, check_task_options, exponential_backoff
from dockyard.engine import tasks as _engine
from dockyard.engine.caching import task_input_hash
from dockyard.errors import UnsupportedFeature
from dockyard.execution.inprocess import script_results

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]

_engine.standalone_results = script_results  # a task outside a flow caches like a script


class Task(TaskDefinition[P, R]):
    """A task (see ``TaskDefinition`` for its options)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        options: dict[str, Any] = kwargs
        return_state = bool(options.pop("return_state", False))
        wait_for: Iterable[Any] | None = options.pop("wait_for", None)
        result: R = _engine.call(self, args, options, return_state=return_state, wait_for=wait_for)
        return result

    def submit(
        self,
        *args: Any,
        return_state: bool = False,
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run on the flow's task runner; returns a ``PrefectFuture`` (a State if told)."""
        return _engine.submit(self, args, kwargs, return_state=return_state, wait_for=wait_for)

    def map(
        self,
        *args: Any,
        return_state: bool = False,
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One submitted run per item of the iterable arguments (``unmapped`` ones repeat)."""
        return _engine.map_runs(self, args, kwargs, return_state=return_state, wait_for=wait_for)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """Prefect's background tasks (task workers) are not part of dockyard."""
        raise UnsupportedFeature(
            f"task {self.name!r}: .delay() needs Prefect task workers, which dockyard does not "
            "have; use .submit() inside a flow, or serve a flow that calls the task"
        )

    def serve(self, *args: Any, **kwargs: Any) -> Any:
        """Prefect's task workers are not part of dockyard."""
        raise UnsupportedFeature(
            f"task {self.name!r}: .serve() starts a Prefect task worker, which dockyard does "
            "not have; wrap the task in a @flow and serve that flow"
        )


@overload
def task(__fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a ``Task``: ``@task``, ``@task()`` or ``@task(retries=3, ...)``."""
    check_task_options("task", options)
    if __fn is not None:
        return Task(__fn, **options)
    return functools.partial(Task, **options)
