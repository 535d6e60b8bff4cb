"""Constants and builders shared by the state store tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from dockyard.store import NewRun
from dockyard.store.base import StateStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEP = "etl/nightly"
JOIN_TIMEOUT_SECONDS = 60

Opener = Callable[..., StateStore]
"""Opens one more store on the database under test (fixture ``open_backend``); keyword
arguments such as ``max_log_lines`` go to the backend's open function."""


def new_run(scheduled_at: datetime = T0, **kwargs: object) -> NewRun:
    values: dict[str, object] = {
        "deployment": DEP,
        "flow_name": "nightly",
        "parameters": {"n": 1},
        "scheduled_at": scheduled_at,
        "trigger": "schedule",
    }
    values.update(kwargs)
    return NewRun(**values)  # type: ignore[arg-type]
