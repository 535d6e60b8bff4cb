"""Prefect-compatible module path: ``from dockyard.client.schemas import FlowRun``
(``DeploymentResponse``, ``State``, ``StateType``, ``TaskRun`` as well)."""

from __future__ import annotations

from typing import Any

from dockyard.client.schemas import objects
from dockyard.client.schemas.objects import DeploymentResponse, FlowRun, State, StateType

__all__ = ["DeploymentResponse", "FlowRun", "State", "StateType", "TaskRun"]


def __getattr__(name: str) -> Any:
    return getattr(objects, name)
