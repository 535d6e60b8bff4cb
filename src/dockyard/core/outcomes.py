"""The state objects flow code sees and returns (Prefect's ``State``), and the rule that
turns what a flow returned into its final state (pure: no clock, no I/O).

``RunState`` (``core.states``) is what the store records for a flow run; a ``State`` here
is what a hook receives, what ``return_state=True`` returns and what a future reports:
a type, a name (``Cached`` and ``TimedOut`` are variants of Completed and Failed), a
message and the data (a result, or the exception).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from dockyard.core.states import RunState
from dockyard.errors import CancelledRun, CrashedRun, FailedRun, UnfinishedRun


class StateType(StrEnum):
    """The kind of a state; ``name`` may be a more specific variant of it."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"


FINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)
_RAISES = {
    StateType.FAILED: FailedRun,
    StateType.CRASHED: CrashedRun,
    StateType.CANCELLED: CancelledRun,
}


@dataclass
class StateDetails:
    """Which run a state belongs to (Prefect's ``state.state_details``)."""

    flow_run_id: str | None = None
    task_run_id: str | None = None
    scheduled_time: datetime | None = None
    cache_key: str | None = None


@dataclass(eq=False)
class State:
    """A state: ``type``, ``name`` (defaults to the type's title), ``message``, ``data``."""

    type: StateType
    message: str | None = None
    data: Any = field(default=None, repr=False)
    name: str = ""
    timestamp: datetime | None = None
    state_details: StateDetails = field(default_factory=StateDetails, repr=False)

    def __class_getitem__(cls, item: Any) -> Any:
        """``State[int]`` in annotations, as Prefect code writes it, is ``State``."""
        return cls

    def __post_init__(self) -> None:
        if isinstance(self.type, RunState):  # a flow run's stored state
            self.type = StateType(self.type.value.upper())
        self.type = StateType(self.type)
        if not self.name:
            self.name = self.type.value.title()

    def result(self, raise_on_failure: bool = True) -> Any:
        """The data of a Completed state; raise the failure for Failed, Crashed, Cancelled.

        A failure raises the exception the state holds, else ``FailedRun`` (or
        ``CrashedRun``, ``CancelledRun``) with the message; a state that is not final yet
        raises ``UnfinishedRun``. With ``raise_on_failure=False`` the data is returned.
        """
        if not raise_on_failure or self.type is StateType.COMPLETED:
            return self.data.result() if isinstance(self.data, State) else self.data
        if isinstance(self.data, BaseException):
            raise self.data
        error = _RAISES.get(self.type)
        if error is not None:
            raise error(self.message or f"run is in a {self.name} state")
        raise UnfinishedRun(f"run is in a {self.name} state, which has no result yet")

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in FINAL_TYPES

    def __repr__(self) -> str:
        shown = f", result={self.data!r}" if self.type is StateType.COMPLETED else ""
        return f"{self.name}(message={self.message!r}, type={self.type.value}{shown})"


def _maker(kind: StateType, default_name: str = "") -> Callable[..., State]:
    def make(message: str | None = None, data: Any = None, **fields: Any) -> State:
        fields.setdefault("name", default_name)
        fields.pop("type", None)
        return State(kind, message, data, **fields)

    make.__name__ = default_name or kind.value.title()
    make.__doc__ = f"A new {make.__name__} state (type {kind.value})."
    return make


Scheduled = _maker(StateType.SCHEDULED)
Pending = _maker(StateType.PENDING)
Running = _maker(StateType.RUNNING)
Completed = _maker(StateType.COMPLETED)
Failed = _maker(StateType.FAILED)
Cancelled = _maker(StateType.CANCELLED)
Cancelling = _maker(StateType.CANCELLING)
Crashed = _maker(StateType.CRASHED)
Paused = _maker(StateType.PAUSED)
AwaitingRetry = _maker(StateType.SCHEDULED, "AwaitingRetry")
Retrying = _maker(StateType.RUNNING, "Retrying")
Cached = _maker(StateType.COMPLETED, "Cached")
TimedOut = _maker(StateType.FAILED, "TimedOut")
NotReady = _maker(StateType.PENDING, "NotReady")


def _is_states(value: object) -> bool:
    return isinstance(value, (list, tuple, set)) and all(isinstance(s, State) for s in value)


def final_state(returned: Any) -> State:
    """The final state of a flow whose function returned ``returned`` (futures resolved).

    A returned ``State`` is the final state; a list, tuple or set of states decides it
    (any failed or crashed: Failed; else any cancelled: Cancelled; else any not final:
    Failed; else Completed); any other value makes a Completed state holding it. So a
    flow whose tasks failed but which returned normally is Completed.
    """
    if isinstance(returned, State):
        return returned
    if not _is_states(returned) or not returned:
        return Completed(data=returned)
    states: list[State] = list(returned)
    total = len(states)

    def count(kinds: Iterable[StateType]) -> int:
        return sum(1 for s in states if s.type in set(kinds))

    failed = count({StateType.FAILED, StateType.CRASHED})
    if failed:
        return Failed(f"{failed}/{total} states failed.", data=returned)
    cancelled = count({StateType.CANCELLED})
    if cancelled:
        return Cancelled(f"{cancelled}/{total} states cancelled.", data=returned)
    unfinished = total - count(FINAL_TYPES)
    if unfinished:
        return Failed(f"{unfinished}/{total} states are not final.", data=returned)
    return Completed("All states completed.", data=returned)


def describe(state: State) -> str:
    """``Completed()``, ``Failed('the message')``: how run logs name a final state."""
    return f"{state.name}({state.message!r})" if state.message else f"{state.name}()"


def state_message(state: State) -> str:
    """One line for a failed state: its exception's type and message, else its message."""
    if isinstance(state.data, BaseException):
        text = " ".join(str(state.data).split())
        name = type(state.data).__name__
        return f"{name}: {text}" if text else name
    return state.message or state.name
