"""Errors dockyard raises on purpose.

Every message is one line that says what is wrong and how to fix it. The CLI maps
``UsageError`` to exit code 2 and every other ``DockyardError`` to exit code 1; the
HTTP API maps them to 4xx answers. No traceback is shown unless ``--debug``.
"""

from __future__ import annotations


class DockyardError(Exception):
    """Base class: a problem the user can act on."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(DockyardError):
    """Bad input from the user: a flag, a file, a schedule, a parameter (exit 2)."""

    exit_code = 2


class ScheduleError(UsageError):
    """An invalid cron, interval or rrule; the message names the bad field."""


class ParameterError(UsageError):
    """Parameters that do not match the flow's signature."""

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class EntrypointError(UsageError):
    """An entrypoint that cannot be parsed, found or imported."""


class ConfigError(UsageError):
    """An invalid dockyard.yaml or DOCKYARD_* setting; the message names the path."""


class NotFoundError(DockyardError):
    """An unknown deployment or run."""


class ConflictError(DockyardError):
    """A request the current state forbids, e.g. removing a deployment that a live serve
    process still serves (HTTP 409)."""


class StateStoreError(DockyardError):
    """The state database cannot be opened, read or written."""


class DatabaseUnavailable(StateStoreError):
    """The database server cannot be reached now (down, starting, unreachable): it may
    come back, unlike a wrong password or an unknown database."""


class UnsupportedFeature(UsageError, ImportError):
    """A Prefect feature dockyard does not have (blocks, variables, artifacts, ...)."""


# ── what flow code sees (Prefect's names, ``dockyard.exceptions``) ────────────────────


class RunError(Exception):
    """Base of the exceptions a flow's own code may catch about runs and their states."""


class FailedRun(RunError):
    """The result of a Failed state that holds no exception of its own."""


class CrashedRun(RunError):
    """The result of a Crashed state."""


class CancelledRun(RunError):
    """The result of a Cancelled state."""


class UnfinishedRun(RunError):
    """The result of a state that is not final yet (Pending, Running, Scheduled)."""


class UpstreamTaskError(RunError):
    """A task did not run because a task it waits for did not complete."""


class MissingContextError(RunError, RuntimeError):
    """A run-only function (``get_run_logger``, ``get_run_context``) called outside a run."""
