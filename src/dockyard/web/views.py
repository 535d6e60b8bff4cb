"""Served deployments → API response models (records go through ``web.shapes``)."""

from __future__ import annotations

from typing import Any

from dockyard.web import shapes
from dockyard.web.backend import DeploymentView
from dockyard.web.schemas import DeploymentDetail, DeploymentSummary

run_summary = shapes.run_summary
run_detail = shapes.run_detail
log_line = shapes.log_line


def deployment_summary(view: DeploymentView) -> DeploymentSummary:
    return shapes.deployment_summary(
        view.record, view.next_runs, _spec(view), error=view.error, served=view.served
    )


def deployment_detail(view: DeploymentView) -> DeploymentDetail:
    return shapes.deployment_detail(
        view.record, view.next_runs, view.last_run, _spec(view), error=view.error,
        served=view.served,
    )  # fmt: skip


def _spec(view: DeploymentView) -> dict[str, Any] | None:
    """The served deployment's spec; None (the stored one) for one not served here."""
    return view.deployment.spec() if view.deployment is not None else None
