"""The run contexts flow code reads (``get_run_context``, ``tags``, ``dockyard.runtime``).

One ``FlowRunContext`` per flow run (and subflow run), one ``TaskRunContext`` per task
run, held in context variables so that each thread of a task runner sees its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dockyard.core.records import TaskRunRecord
from dockyard.core.states import FlowRun
from dockyard.errors import MissingContextError

if TYPE_CHECKING:
    from dockyard.core.flows import FlowDefinition
    from dockyard.core.tasks import TaskDefinition
    from dockyard.engine.results import ResultStore
    from dockyard.engine.runners import ThreadPoolTaskRunner


@dataclass(frozen=True)
class ApiAccess:
    """The serve process's API as a run may use it (a token scoped to the run)."""

    url: str
    token: str | None = field(default=None, repr=False)


class TaskRunRecorder:
    """Appends each task run's changes as JSON lines for the serve process; thread-safe."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, record: TaskRunRecord) -> None:
        if self.path is None:
            return
        line = json.dumps(record.to_json(), default=str) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)


@dataclass
class FlowRunContext:
    """The flow run being executed in this process (a subflow's is nested in its parent's)."""

    flow: FlowDefinition[..., Any]
    flow_run: FlowRun
    task_runner: ThreadPoolTaskRunner
    recorder: TaskRunRecorder
    results: ResultStore | None = None
    api: ApiAccess | None = None
    deployment_parameters: dict[str, Any] = field(default_factory=dict)
    parent: FlowRunContext | None = None
    _numbers: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The flow run active here, or None (Prefect's ``FlowRunContext.get()``)."""
        return _flow_run.get()

    @property
    def root(self) -> FlowRunContext:
        """The outermost flow run (the one the serve process knows)."""
        return self.parent.root if self.parent is not None else self

    def next_number(self, task_key: str) -> int:
        """0, 1, 2, ... per task within this flow run: the default task run name suffix."""
        with self._lock:
            number = self._numbers.get(task_key, 0)
            self._numbers[task_key] = number + 1
            return number


@dataclass
class TaskRun:
    """One task run (Prefect's ``task_run``, as hooks and ``retry_condition_fn`` get it)."""

    id: str
    name: str
    task_key: str
    parameters: dict[str, Any]
    tags: frozenset[str]
    flow_run_id: str | None
    run_count: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass
class TaskRunContext:
    """The task run being executed in this thread."""

    task: TaskDefinition[..., Any]
    task_run: TaskRun
    parameters: dict[str, Any]
    flow_run_context: FlowRunContext | None

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The task run active in this thread, or None (Prefect's ``TaskRunContext.get()``)."""
        return _task_run.get()

    @property
    def flow_run(self) -> FlowRun | None:
        """The flow run this task run belongs to."""
        return self.flow_run_context.flow_run if self.flow_run_context is not None else None


_flow_run: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "dockyard_flow_run", default=None
)
_task_run: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "dockyard_task_run", default=None
)
_tags: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "dockyard_tags", default=frozenset()
)


def flow_run_context() -> FlowRunContext | None:
    return _flow_run.get()


def task_run_context() -> TaskRunContext | None:
    return _task_run.get()


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The innermost run: the task run when called in a task, else the flow run."""
    current = _task_run.get() or _flow_run.get()
    if current is None:
        raise MissingContextError(
            "no flow or task run is active here: call this inside a @flow or @task function"
        )
    return current


@contextlib.contextmanager
def entered(var: contextvars.ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def in_flow_run(ctx: FlowRunContext) -> contextlib.AbstractContextManager[None]:
    return entered(_flow_run, ctx)


def in_task_run(ctx: TaskRunContext) -> contextlib.AbstractContextManager[None]:
    return entered(_task_run, ctx)


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """``with tags("etl", "daily"):`` tasks and runs created inside carry these tags."""
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"tags must be strings, got {type(name).__name__}")
    with entered(_tags, _tags.get() | frozenset(names)):
        yield _tags.get()


def current_tags() -> frozenset[str]:
    """The tags of every active ``tags(...)`` block in this context."""
    return _tags.get()


def api_access() -> ApiAccess | None:
    """How this flow run reaches its serve process's API, if it runs under one."""
    ctx = _flow_run.get()
    return ctx.root.api if ctx is not None else None
