"""State objects: ``from dockyard.states import Completed, Failed`` (``prefect.states``)."""

from dockyard.core.outcomes import (
    AwaitingRetry,
    Cached,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    NotReady,
    Paused,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateType,
    TimedOut,
)
from dockyard.core.states import FlowRun, RunState
from dockyard.engine.context import TaskRun
from dockyard.engine.futures import resolve_futures_to_states

__all__ = [
    "AwaitingRetry",
    "Cached",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "FlowRun",
    "NotReady",
    "Paused",
    "Pending",
    "Retrying",
    "RunState",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "TaskRun",
    "TimedOut",
    "resolve_futures_to_states",
]
