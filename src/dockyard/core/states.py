"""Run states, the legal transitions between them (a pure table), and the run object
flow hooks receive (the ``State`` objects they receive are in ``core.outcomes``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    """The state of one flow run."""

    SCHEDULED = "Scheduled"
    """Created, not yet due (a scheduled slot, or a retry waiting for its delay)."""
    PENDING = "Pending"
    """Due and waiting for a free slot under the process or deployment limit."""
    RUNNING = "Running"
    """Its subprocess has been started."""
    COMPLETED = "Completed"
    """The flow returned."""
    FAILED = "Failed"
    """The flow raised, timed out or got invalid parameters, with no retries left."""
    CANCELLED = "Cancelled"
    """Stopped on request or by a shutdown drain."""
    CRASHED = "Crashed"
    """The process died without reporting (signal, OOM kill, serve process killed)."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED})
ACTIVE = frozenset({RunState.PENDING, RunState.RUNNING})

_ALLOWED: dict[RunState, frozenset[RunState]] = {
    RunState.SCHEDULED: frozenset({RunState.PENDING, RunState.CANCELLED}),
    RunState.PENDING: frozenset(
        {RunState.RUNNING, RunState.CANCELLED, RunState.FAILED, RunState.CRASHED}
    ),
    # Running -> Scheduled is a retry waiting for its delay.
    RunState.RUNNING: frozenset(
        {
            RunState.COMPLETED,
            RunState.FAILED,
            RunState.CANCELLED,
            RunState.CRASHED,
            RunState.SCHEDULED,
        }
    ),
    RunState.COMPLETED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
    RunState.CRASHED: frozenset(),
}


def can_transition(current: RunState, new: RunState) -> bool:
    """Whether a run in ``current`` may move to ``new``."""
    return new in _ALLOWED[current]


def parse_state(value: str) -> RunState:
    """Case-insensitive lookup of a state name, for CLI filters and API queries."""
    for state in RunState:
        if state.value.lower() == value.strip().lower():
            return state
    names = ", ".join(s.value for s in RunState)
    from dockyard.errors import UsageError

    raise UsageError(f"unknown run state {value!r}; use one of: {names}")


@dataclass
class FlowRun:
    """The run a hook is called for (Prefect's ``flow_run`` argument)."""

    id: str
    name: str | None
    deployment: str | None
    parameters: dict[str, Any]
    attempt: int = 1
    scheduled_at: datetime | None = None
    tags: tuple[str, ...] = ()
    trigger: str | None = None

    @property
    def auto_scheduled(self) -> bool:
        """Whether a schedule created the run (Prefect's ``flow_run.auto_scheduled``)."""
        return self.trigger in ("schedule", "catchup")

    @property
    def run_count(self) -> int:
        """Prefect's name for the attempt number."""
        return self.attempt
