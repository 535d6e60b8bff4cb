"""What every benchmark script shares: bounded waits, failures, the run's environment."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not measure (printed as ``bench failed: …``, exit 1)."""


def wait_for(
    what: str, probe: Callable[[], T | None], deadline: float = 60.0, poll: float = 0.02
) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``deadline`` s."""
    end = time.monotonic() + deadline
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise BenchError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(poll)


def environment(**extra: Any) -> dict[str, Any]:
    """Where the figures were measured (compare figures from one machine only)."""
    from dockyard import __version__

    return {
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "dockyard": __version__,
        "executable": sys.executable,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }
