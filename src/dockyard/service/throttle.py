"""Log a repeated warning once, then a periodic summary, never once per tick."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass


@dataclass
class _Entry:
    last_logged: float
    suppressed: int = 0


class WarningThrottle:
    """``warn(key, message)`` logs the first time, then at most every ``every`` seconds."""

    def __init__(self, logger: logging.Logger, every: float = 300.0) -> None:
        self.logger = logger
        self.every = every
        self._entries: dict[str, _Entry] = {}

    def warn(self, key: str, message: str, now: float | None = None) -> bool:
        """Log ``message`` unless it was logged under ``key`` recently; True if logged."""
        at = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(at)
            self.logger.warning("%s", message)
            return True
        if at - entry.last_logged < self.every:
            entry.suppressed += 1
            return False
        repeated = f" (and {entry.suppressed} more like it in the last {self.every:g}s)"
        self.logger.warning("%s%s", message, repeated if entry.suppressed else "")
        self._entries[key] = _Entry(at)
        return True

    def clear(self, key: str) -> None:
        """Forget ``key`` (the condition ended), so a recurrence is logged at once."""
        self._entries.pop(key, None)
