"""Served deployments → API response models (records go through ``web.shapes``)."""

from __future__ import annotations

from dockyard.web import shapes
from dockyard.web.backend import DeploymentView
from dockyard.web.schemas import DeploymentDetail, DeploymentSummary

run_summary = shapes.run_summary
run_detail = shapes.run_detail
log_line = shapes.log_line


def deployment_summary(view: DeploymentView) -> DeploymentSummary:
    return shapes.deployment_summary(
        view.record, view.next_runs, view.deployment.spec(), error=view.error
    )


def deployment_detail(view: DeploymentView) -> DeploymentDetail:
    return shapes.deployment_detail(
        view.record, view.next_runs, view.last_run, view.deployment.spec(), error=view.error
    )
