"""How the serve process writes its log: one line per record, text or JSON, and the
line that says how a run ended.

Every line starts with an ISO-8601 UTC time and a level. dockyard's own records read
``2026-12-01T20:54:40.123Z INFO    dockyard: message``; a run's output line reads
``2026-12-01T20:54:40.456Z INFO    [etl/daily happy-otter] line`` (``[… stderr]`` for its
stderr). In JSON (``DOCKYARD_LOG_FORMAT=json``) each record is one object with ``ts``,
``level``, ``logger``, ``message`` and, where they apply, the run's fields (``RUN_FIELDS``)
and ``exc_info`` (the traceback as one string), for log systems that index fields.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from dockyard.core.records import RunRecord
from dockyard.core.states import RunState
from dockyard.engine.logs import record_level

logger = logging.getLogger("dockyard")

RUN_OUTPUT_LOGGER = "dockyard.runs"
"""The logger of the runs' output lines (a record per line, with ``stream``)."""
RUN_FIELDS = ("deployment", "run_id", "run_name", "stream", "state", "duration_s", "error",
              "attempts")  # fmt: skip
"""Fields a record may carry (``extra=``) that the JSON format writes as keys."""
LogFormat = Literal["text", "json"]
FAILURE_STATES = frozenset({RunState.FAILED, RunState.CRASHED})
"""A run ending in these is an ERROR in the log."""


def utc_time(record: logging.LogRecord) -> str:
    """``2026-12-01T20:54:40.123Z``: when the record was made, in UTC, to the millisecond."""
    return f"{_utc_second(int(record.created))}.{int(record.msecs):03d}Z"


@functools.lru_cache(maxsize=4)
def _utc_second(seconds: int) -> str:
    # Once per second, not once per line: a run's output is one record per line, formatted
    # on the event loop that also answers /health.
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}"


def run_fields(deployment: str, run_id: str, run_name: str | None, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a record about one run."""
    return {"deployment": deployment, "run_id": run_id, "run_name": run_name, **more}


def output_level(stream: str, line: str) -> int:
    """A run's output line as a log record: stdout is INFO; on stderr a run log record keeps
    its level and any other line (a traceback, a warning) is an ERROR."""
    if stream == "stdout":
        return logging.INFO
    return record_level(line) or logging.ERROR


def end_line(run: RunRecord, state: RunState, error: str | None, duration: float | None) -> str:
    """``run etl/daily happy-otter (3f2a9c1e) Failed in 0.4s after 3 attempts: ValueError:
    bad day``: how a run ended, in one line (the duration is its last attempt's)."""
    name = f" {run.name}" if run.name else ""
    how = f" in {duration:.1f}s" if duration is not None else ""
    if duration is None and state is RunState.CANCELLED and run.started_at is None:
        how = " before it started"
    tries = f" after {run.attempt} attempts" if run.attempt > 1 else ""
    said = f": {error}" if error else ""
    return f"run {run.deployment}{name} ({run.id[:8]}) {state.value}{how}{tries}{said}"


def last_line(text: str | None) -> str | None:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def log_end(run: RunRecord, state: RunState, error: str | None, duration: float | None) -> None:
    """The one log line of a run's end (ERROR for a failure), with its fields for JSON;
    ``duration`` is None for a run whose last attempt this process did not run."""
    level = logging.ERROR if state in FAILURE_STATES else logging.INFO
    error = last_line(error) if state is not RunState.COMPLETED else None
    fields = run_fields(
        run.deployment, run.id, run.name, state=state.value,
        duration_s=round(duration, 3) if duration is not None else None,
        error=error, attempts=run.attempt,
    )  # fmt: skip
    logger.log(level, "%s", end_line(run, state, error, duration), extra=fields)


class TextFormatter(logging.Formatter):
    """Time, level and source on every line, continuation lines of a record included."""

    def format(self, record: logging.LogRecord) -> str:
        head = f"{utc_time(record)} {record.levelname:<7} "
        stream = getattr(record, "stream", None)
        if stream is not None:  # a run's output line: as the run printed it
            name = getattr(record, "run_name", None) or str(getattr(record, "run_id", ""))[:8]
            tag = "" if stream == "stdout" else f" {stream}"
            return f"{head}[{getattr(record, 'deployment', '')} {name}{tag}] {record.getMessage()}"
        text = record.getMessage()
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}"
        return "\n".join(f"{head}{record.name}: {line}" for line in text.split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in RUN_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


def formatter(kind: LogFormat) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()
