"""Prefect-compatible module path: ``from dockyard.deployments import RunnerDeployment``."""

from dockyard.core.deployments import Deployment
from dockyard.core.policies import CatchupPolicy, OverlapPolicy

RunnerDeployment = Deployment

__all__ = ["CatchupPolicy", "Deployment", "OverlapPolicy", "RunnerDeployment"]
