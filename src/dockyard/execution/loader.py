"""Turn CLI settings or a dockyard.yaml into deployments (loads the user's flows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.config import FileConfig, deployment_options, with_path
from dockyard.core.deployments import Deployment
from dockyard.errors import DockyardError, UsageError
from dockyard.settings import Settings


def _load(entrypoint: str, base_dir: Path) -> Any:
    from dockyard.execution.loading import load_flow

    flow = load_flow(entrypoint, base_dir)
    # Runs re-load the flow from here, so imports relative to the project root work.
    flow.source = str(base_dir.resolve())
    flow.entrypoint = entrypoint
    return flow


def from_settings(settings: Settings, base_dir: Path | None = None) -> list[Deployment]:
    """The single deployment that ``dockyard serve ENTRYPOINT [options]`` describes."""
    if not settings.entrypoint:
        raise UsageError(
            "give an ENTRYPOINT (path/to/file.py:flow_function) or --config dockyard.yaml"
        )
    flow = _load(settings.entrypoint, base_dir or Path.cwd())
    deployment = Deployment.from_flow(
        flow,
        name=settings.name,
        cron=settings.cron or None,
        interval=settings.interval or None,
        rrule=settings.rrule or None,
        timezone=settings.timezone,
        parameters=settings.params,
        tags=settings.tags,
        description=settings.description,
        version=settings.version,
        paused=settings.paused,
        concurrency_limit=settings.concurrency_limit,
        overlap=settings.overlap,
        catchup=settings.catchup,
    )
    return [deployment]


def from_config(
    config: FileConfig, config_path: Path, base_dir: Path | None = None
) -> list[Deployment]:
    """Every deployment of a dockyard.yaml; entrypoints are relative to the file
    (or to ``base_dir``: the checkout of the file's ``source:``)."""
    base_dir = base_dir or config_path.resolve().parent
    deployments = []
    for index, entry in enumerate(config.deployments):
        try:
            flow = _load(entry.entrypoint, base_dir)
            options = deployment_options(entry, index)
            deployments.append(Deployment.from_flow(flow, name=entry.name, **options))
        except DockyardError as exc:
            raise with_path(index, exc, config_path) from None
    return deployments
