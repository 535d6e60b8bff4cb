"""Prefect-compatible module path: ``from dockyard.flows import flow`` (``prefect.flows``)."""

from dockyard.api import Flow, flow
from dockyard.core.outcomes import State
from dockyard.core.states import FlowRun

__all__ = ["Flow", "FlowRun", "State", "flow"]
