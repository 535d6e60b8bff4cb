"""Exceptions flow code may catch: ``from dockyard.exceptions import FailedRun``."""

from dockyard.errors import (
    CancelledRun,
    CrashedRun,
    DockyardError,
    FailedRun,
    MissingContextError,
    ParameterError,
    RunError,
    UnfinishedRun,
    UnsupportedFeature,
    UpstreamTaskError,
)

PrefectException = RunError
ParameterTypeError = ParameterError

__all__ = [
    "CancelledRun",
    "CrashedRun",
    "DockyardError",
    "FailedRun",
    "MissingContextError",
    "ParameterError",
    "ParameterTypeError",
    "PrefectException",
    "RunError",
    "UnfinishedRun",
    "UnsupportedFeature",
    "UpstreamTaskError",
]
