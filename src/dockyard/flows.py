"""Prefect-compatible module path: ``from dockyard.flows import flow`` (``prefect.flows``)."""

from dockyard.api import Flow, flow
from dockyard.core.states import FlowRun, State

__all__ = ["Flow", "FlowRun", "State", "flow"]
