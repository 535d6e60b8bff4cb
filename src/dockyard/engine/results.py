"""Cached task results on disk: one file per cache key (0600 in a 0700 folder), with an
expiry; shared by the runs of one state (``<state file>.results/``)."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger("dockyard.task_runs")
MISS = object()
"""What ``ResultStore.get`` returns when there is no usable entry."""


def results_dir(state_file: Path) -> Path:
    """The cached task results of the runs of one state file: ``<state>.results/``."""
    return state_file.with_name(state_file.name + ".results")


class ResultStore:
    """Cached results as files under ``directory`` (0700), one per cache key."""

    def __init__(self, directory: str | os.PathLike[str] | Callable[[], Path]) -> None:
        self._directory = directory
        self._resolved: Path | None = None

    @property
    def directory(self) -> Path:
        """The folder, worked out on first use (a script's is beside its state file)."""
        if self._resolved is None:
            given = self._directory
            self._resolved = given() if callable(given) else Path(given)
        return self._resolved

    def _path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()}.pickle"

    def get(self, key: str, now: datetime | None = None) -> Any:
        """The value stored under ``key``, or ``MISS`` (absent, expired or unreadable)."""
        try:
            with open(self._path(key), "rb") as fh:
                entry = pickle.load(fh)
        except FileNotFoundError:
            return MISS
        except Exception as exc:  # a corrupt entry is a miss, recomputed and rewritten
            logger.warning(
                "cached result for key %s unreadable (%s); running the task", key[:12], exc
            )
            return MISS
        if not isinstance(entry, dict) or entry.get("key") != key:
            return MISS
        expires = entry.get("expires")
        if expires is not None and expires <= (now or datetime.now(UTC)):
            return MISS
        return entry.get("value")

    def put(
        self, key: str, value: Any, expiration: timedelta | None, now: datetime | None = None
    ) -> bool:
        """Store ``value``; False (and a warning) when it cannot be pickled or written."""
        expires = (now or datetime.now(UTC)) + expiration if expiration is not None else None
        try:
            data = pickle.dumps({"key": key, "expires": expires, "value": value})
        except Exception as exc:
            logger.warning("result of type %s not cached: %s", type(value).__name__, exc)
            return False
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self._path(key))
        except OSError as exc:
            logger.warning("result not cached: cannot write %s: %s", self.directory, exc)
            return False
        return True
