"""Which serve processes using a SQLite state file are alive: one locked file each.

A serve process takes a lease before it starts runs: it creates ``<owner>.lock`` in the
``<state file>.owners`` directory and holds an exclusive ``flock`` on it for its whole
life. Each run it starts records that owner. The kernel drops the lock when the process
dies — ``kill -9`` included, and across containers that share the volume — so another
process may take over a Running run only when it can take its owner's lock: a second
serve process on the same file never marks the first one's live runs Crashed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import socket
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class FileLeases:
    """Owner leases of one state file, kept in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.owner: str | None = None
        self._fd: int | None = None

    def acquire(self) -> str:
        """Take this process's lease (once); return its owner id."""
        if self.owner is not None:
            return self.owner
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        host = _SAFE.sub("-", socket.gethostname())[:40] or "host"
        owner = f"{host}-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(self.directory / f"{owner}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.owner, self._fd = owner, fd
        return owner

    def alive(self, owner: str) -> bool:
        """Whether the process that took ``owner``'s lease still runs."""
        if owner == self.owner:
            return True
        if not owner or _SAFE.search(owner):
            return False  # not an id this module made
        path = self.directory / f"{owner}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            path.unlink(missing_ok=True)  # its owner is gone, and so is the need for the file
            return False
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is None or self.owner is None:
            return
        with contextlib.suppress(OSError):
            (self.directory / f"{self.owner}.lock").unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None
        self.owner = None
