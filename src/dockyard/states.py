"""Prefect-compatible module path: ``from dockyard.states import State`` (``prefect.states``)."""

from dockyard.core.states import RunState, State

__all__ = ["RunState", "State"]
