"""The serve process's log line formats, on records made here."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from dockyard.service.logfmt import JsonFormatter, TextFormatter, run_fields

CREATED = datetime(2026, 12, 1, 20, 54, 40, 123456, tzinfo=UTC).timestamp()


def record(message: str, *, name: str = "dockyard", exc: bool = False, **extra: object):
    exc_info = None
    if exc:
        try:
            raise ValueError("bad day")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), exc_info)
    made.created, made.msecs = CREATED, 123.0
    made.__dict__.update(extra)
    return made


def test_text_lines_start_with_the_utc_time_the_level_and_the_logger() -> None:
    line = TextFormatter().format(record("run ended"))
    assert line == "2026-12-01T20:54:40.123Z ERROR   dockyard: run ended"


def test_text_tracebacks_have_the_prefix_on_every_line() -> None:
    lines = TextFormatter().format(record("tick failed", exc=True)).splitlines()
    assert len(lines) > 2
    assert all(line.startswith("2026-12-01T20:54:40.123Z ERROR   dockyard: ") for line in lines)
    assert lines[-1].endswith("dockyard: ValueError: bad day")


def test_text_run_output_names_the_deployment_the_run_and_stderr() -> None:
    fields = run_fields("etl/daily", "3f2a9c1e" * 4, "happy-otter")
    out = TextFormatter().format(record("hello", name="dockyard.runs", stream="stdout", **fields))
    err = TextFormatter().format(record("oops", name="dockyard.runs", stream="stderr", **fields))
    assert out.endswith(" [etl/daily happy-otter] hello")
    assert err.endswith(" [etl/daily happy-otter stderr] oops")
    unnamed = run_fields("etl/daily", "3f2a9c1e" * 4, None)
    line = TextFormatter().format(record("hi", name="dockyard.runs", stream="stdout", **unnamed))
    assert line.endswith(" [etl/daily 3f2a9c1e] hi")  # before the run has its name


def test_json_is_one_object_with_the_fields_and_the_traceback_in_one_string() -> None:
    fields = run_fields("etl/daily", "3f2a9c1e" * 4, "happy-otter", state="Failed")
    line = JsonFormatter().format(record("run ended", exc=True, **fields))
    assert "\n" not in line
    data = json.loads(line)
    assert data.pop("exc_info").endswith("ValueError: bad day")
    assert data == {
        "ts": "2026-12-01T20:54:40.123Z", "level": "ERROR", "logger": "dockyard",
        "message": "run ended", "deployment": "etl/daily", "run_id": "3f2a9c1e" * 4,
        "run_name": "happy-otter", "state": "Failed",
    }  # fmt: skip
