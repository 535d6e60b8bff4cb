"""Named policies and reasons (StrEnums, lowercase members) and the retry-delay rule.

Members compare equal to their string values, so they can be stored and sent as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, TypeVar

from dockyard.errors import UsageError

DEFAULT_CATCHUP_WINDOW_SECONDS = 3600.0
DEFAULT_CATCHUP_MAX = 10
MAX_CATCHUP_WINDOW_SECONDS = 366 * 86400.0
"""The longest catch-up window (one year): older slots are never run, only counted."""
MAX_CATCHUP_MAX = 1000
"""The most missed slots ``catchup: all`` runs after one downtime."""


class OverlapPolicy(StrEnum):
    """What to do when a slot comes due while an earlier run of the deployment is active."""

    ALLOW = "allow"
    """Start the new run as well."""
    SKIP = "skip"
    """Skip the new slot (counted as missed, reason overlap)."""
    CANCEL_PREVIOUS = "cancel-previous"
    """Cancel the active runs, then start the new one."""


class CatchupPolicy(StrEnum):
    """What to do with slots that fell due while the process was down."""

    LATEST = "latest"
    """Run the most recent missed slot once, if it is younger than the catch-up window."""
    NONE = "none"
    """Run none of them."""
    ALL = "all"
    """Run every missed slot inside the window, at most ``catchup_max`` (the newest)."""


class ShutdownPolicy(StrEnum):
    """What happens to a run still going when its serve process's shutdown grace ends."""

    CANCEL = "cancel"
    """Stop it: it ends Cancelled."""
    RESCHEDULE = "reschedule"
    """Stop it, end it Cancelled with the reason, and queue a new Pending run of it for
    another replica (for flows that are safe to repeat)."""


class Trigger(StrEnum):
    """Why a run exists."""

    SCHEDULE = "schedule"
    """A scheduled slot that fell due while the process was up."""
    CATCHUP = "catchup"
    """A slot missed while the process was down, run under the catch-up policy."""
    MANUAL = "manual"
    """An ad-hoc run (API, CLI)."""
    RETRY = "retry"
    """Another attempt of a failed run."""

    @property
    def is_scheduled(self) -> bool:
        return self in (Trigger.SCHEDULE, Trigger.CATCHUP)


class SkipReason(StrEnum):
    """Why a scheduled slot did not run when due (the ``reason`` label of the metric)."""

    OVERLAP = "overlap"
    """An earlier run was still active and the overlap policy is ``skip``."""
    DOWNTIME = "downtime"
    """It fell due while the process was down and the catch-up policy left it out."""
    PAUSED = "paused"
    """The deployment was paused."""
    LIMIT = "limit"
    """It waited for a free slot under the process limit."""


class PauseReason(StrEnum):
    """Who paused a deployment; decides whether a start undoes the pause."""

    USER = "user"
    """A person (``dockyard deployment pause`` or the API): never undone by a start."""
    SHUTDOWN = "shutdown"
    """A shutdown drain with ``pause_on_shutdown``: the next start resumes it."""
    CONFIG = "config"
    """The deployment's configuration says ``paused: true``."""


E = TypeVar("E", bound=StrEnum)


def policy(enum: type[E], field_name: str, value: Any) -> E:
    """Parse a policy name, with an error listing the valid ones."""
    try:
        return enum(str(value).lower())
    except ValueError:
        valid = ", ".join(e.value for e in enum)
        raise UsageError(f"{field_name}: {value!r} is not one of {valid}") from None


def check_catchup(window_seconds: object, most: object) -> None:
    """Refuse catch-up bounds that would make a tick walk years of slots."""
    if not isinstance(window_seconds, (int, float)) or not (
        0 < window_seconds <= MAX_CATCHUP_WINDOW_SECONDS
    ):
        raise UsageError(
            f"catchup_window: must be more than 0 and at most {MAX_CATCHUP_WINDOW_SECONDS:.0f} "
            f"seconds (366 days), got {window_seconds!r}"
        )
    if not isinstance(most, int) or not 0 <= most <= MAX_CATCHUP_MAX:
        raise UsageError(f"catchup_max: must be 0 to {MAX_CATCHUP_MAX}, got {most!r}")


def retry_delay(delay: float | Sequence[float], attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1 = the first retry).

    ``delay`` is one number for every retry, or a list giving the delay before each retry
    (the last entry repeats).
    """
    if isinstance(delay, (int, float)):
        return float(delay)
    if not delay:
        return 0.0
    return float(delay[min(max(attempt, 1), len(delay)) - 1])
