"""Run loggers: ``from dockyard.logging import get_run_logger`` (``prefect.logging``)."""

from dockyard.engine.logs import get_logger, get_run_logger

__all__ = ["get_logger", "get_run_logger"]
