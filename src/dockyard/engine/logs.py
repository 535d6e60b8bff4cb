"""Run logs: ``get_run_logger``, the console format of run records, ``log_prints``.

A run logger's records carry the run's name ("Flow run 'nimble-fox'", "Task run
'fetch-0'") and go to stderr as ``12:00:00.123 | INFO    | Flow run 'x' - message``. In a
served run stderr is the run's output, which the serve process stores as the run's logs.
``print`` is routed to the run logger while a flow or task with ``log_prints`` runs: the
switch is a context variable, so tasks running in other threads are unaffected.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

from dockyard.engine.context import FlowRunContext, TaskRunContext, get_run_context

FLOW_RUN_LOGGER = "dockyard.flow_runs"
TASK_RUN_LOGGER = "dockyard.task_runs"
CONSOLE_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(run_label)s - %(message)s"
PLAIN_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"
DATE_FORMAT = "%H:%M:%S"
_RECORD_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} \| (DEBUG|INFO|WARNING|ERROR|CRITICAL) *\| ")
"""The start of a line in ``CONSOLE_FORMAT`` / ``PLAIN_FORMAT``: a run log record."""

_prints_to: contextvars.ContextVar[logging.LoggerAdapter[logging.Logger] | None] = (
    contextvars.ContextVar("dockyard_prints_to", default=None)
)
_original_print = builtins.print
_plain_prints = False


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records name their run; ``extra`` given per call is kept too."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def run_logger_for(ctx: FlowRunContext | TaskRunContext, **extra: Any) -> RunLogger:
    if isinstance(ctx, TaskRunContext):
        run = ctx.task_run
        fields: dict[str, Any] = {
            "run_label": f"Task run {run.name!r}", "task_run_id": run.id,
            "task_run_name": run.name, "task_name": ctx.task.name,
        }  # fmt: skip
        if ctx.flow_run_context is not None:
            fields.update(_flow_fields(ctx.flow_run_context))
        return RunLogger(logging.getLogger(TASK_RUN_LOGGER), {**fields, **extra})
    fields = {
        **_flow_fields(ctx),
        "run_label": f"Flow run {ctx.flow_run.name or ctx.flow_run.id!r}",
    }
    return RunLogger(logging.getLogger(FLOW_RUN_LOGGER), {**fields, **extra})


def flow_run_logger(flow: Any, flow_run: Any) -> RunLogger:
    """The run logger of a flow run outside its scope (its first and last lines)."""
    fields = {
        "run_label": f"Flow run {flow_run.name or flow_run.id!r}", "flow_run_id": flow_run.id,
        "flow_run_name": flow_run.name, "flow_name": flow.name,
    }  # fmt: skip
    return RunLogger(logging.getLogger(FLOW_RUN_LOGGER), fields)


def _flow_fields(ctx: FlowRunContext) -> dict[str, Any]:
    run = ctx.flow_run
    return {"flow_run_id": run.id, "flow_run_name": run.name, "flow_name": ctx.flow.name}


def record_level(line: str) -> int | None:
    """The level of a run log record printed in this module's format, None for any other
    line (the serve process gives a run's output lines their level from it)."""
    match = _RECORD_LINE.match(line)
    return logging.getLevelNamesMapping()[match.group(1)] if match else None


def get_run_logger(context: FlowRunContext | TaskRunContext | None = None, **extra: Any) -> Any:
    """The logger of the current flow or task run (``MissingContextError`` outside one)."""
    return run_logger_for(context or get_run_context(), **extra)


def get_logger(name: str | None = None) -> logging.Logger:
    """A dockyard logger (``dockyard`` or ``dockyard.<name>``), as Prefect's ``get_logger``."""
    return logging.getLogger("dockyard" if not name else f"dockyard.{name}")


class _UserTracebacks(logging.Formatter):
    """A record's traceback starts at the user's code (``engine.tracebacks``)."""

    def formatException(self, ei: Any) -> str:
        if ei[1] is None:
            return super().formatException(ei)
        from dockyard.engine.tracebacks import format_user_exception

        return format_user_exception(ei[1]).rstrip("\n")


class _RunFormatter(_UserTracebacks):
    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "run_label"):
            record.run_label = record.name
        return super().format(record)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def show_run_logs(*, plain_loggers: bool = False) -> None:
    """Send run records to stderr unless someone configured their loggers already.

    ``plain_loggers``: also give the root logger a handler in the same format if it has
    none (a served run's child, whose output is the run's log).
    """
    for name in (FLOW_RUN_LOGGER, TASK_RUN_LOGGER):
        logger = logging.getLogger(name)
        if logger.handlers:
            continue
        handler = _Stderr()
        handler.setFormatter(_RunFormatter(CONSOLE_FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    root = logging.getLogger()
    if plain_loggers and not root.handlers:
        handler = _Stderr()
        handler.setFormatter(_UserTracebacks(PLAIN_FORMAT, DATE_FORMAT))
        root.addHandler(handler)


def keep_prints_plain() -> None:
    """Leave ``print`` alone even with ``log_prints`` (a served run: the serve process
    stores each printed line as it is and prefixes it with the run)."""
    global _plain_prints
    _plain_prints = True


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, **kw: Any
) -> None:
    target = _prints_to.get()
    if target is None or _plain_prints or file not in (None, sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, **kw)
        return
    target.info((sep if sep is not None else " ").join(map(str, args)))


@contextlib.contextmanager
def prints_logged(ctx: FlowRunContext | TaskRunContext, enabled: bool | None) -> Iterator[None]:
    """While active: ``print`` to stdout goes to ``ctx``'s run logger if ``enabled``.

    ``None`` keeps what the enclosing run chose (a task inherits its flow's setting).
    """
    if enabled is None:
        current = _prints_to.get()
        enabled = current is not None
    if builtins.print is not _print and builtins.print is _original_print:
        builtins.print = _print  # once per process; a no-op unless a run enables it
    token = _prints_to.set(run_logger_for(ctx) if enabled else None)
    try:
        yield
    finally:
        _prints_to.reset(token)
