"""``serve(*deployments)``: the Python entry to the serve process (Prefect-compatible)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from dockyard.core.deployments import Deployment
from dockyard.errors import DockyardError, UsageError
from dockyard.settings import Settings, load_settings


def configure_logging(level: str = "INFO") -> None:
    """dockyard's own log lines go to stdout, next to the runs' output (docker logs)."""
    root = logging.getLogger("dockyard")
    if not any(getattr(h, "_dockyard", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s dockyard: %(message)s", "%H:%M:%S")
        )
        handler._dockyard = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level.upper())


def check_unique(deployments: tuple[Deployment, ...] | list[Deployment]) -> None:
    seen: set[str] = set()
    for deployment in deployments:
        if deployment.full_name in seen:
            raise UsageError(
                f"deployment {deployment.full_name!r} is given twice; give each a different name"
            )
        seen.add(deployment.full_name)


def run_service(
    deployments: list[Deployment],
    settings: Settings,
    *,
    print_starting_message: bool = True,
    sources: Sequence[Any] = (),
) -> int:
    """Serve until stopped; returns the exit code."""
    from dockyard.service.lifecycle import ServeService

    configure_logging(settings.log_level)
    check_unique(deployments)
    service = ServeService(
        deployments, settings, starting_message=print_starting_message, sources=sources
    )
    return service.run()


def serve(
    *deployments: Deployment,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    webserver: bool = False,
    print_starting_message: bool = True,
    **kwargs: Any,
) -> None:
    """Serve several deployments in this process, each scheduled independently.

    Args:
        deployments: made with ``flow.to_deployment(...)``.
        limit: concurrent runs of this process; None uses the default (5), 0 means none.
        pause_on_shutdown: pause the schedules while the process is stopped (default),
            so slots that fall due meanwhile are skipped; False for restart-prone places.
        webserver: start the health/metrics/API webserver (also DOCKYARD_WEBSERVER=true).
        print_starting_message: print what is served at start.

    Blocks until SIGTERM/SIGINT, then drains and returns (exits non-zero on errors).
    """
    flags: dict[str, Any] = {"limit": limit, "webserver": webserver or None}
    if not pause_on_shutdown:
        flags["pause_on_shutdown"] = False
    flags.update({k: v for k, v in kwargs.items() if k in Settings.model_fields})
    try:
        settings = load_settings(flags)
        from dockyard.service.sourcing import plan_for_flows

        plans = plan_for_flows(list(deployments), settings.pull_interval)
        code = run_service(
            list(deployments),
            settings,
            print_starting_message=print_starting_message,
            sources=plans,
        )
    except DockyardError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    if code:
        sys.exit(code)
