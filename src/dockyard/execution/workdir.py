"""The private directory that holds one serve process's run specs and results.

Each serve process makes a ``dockyard-runs-*`` directory, mode 0700 (the specs hold the
runs' parameters), beside its state file (``<state>.owners/``; under the temporary
directory when the state is not a local file), and holds an exclusive lock on a file
inside it for its whole life. The kernel drops the lock when the process dies, even by
``kill -9``, so a later start removes every such directory whose lock it can take —
after its recovery has read what those runs reported. A directory in use is never
touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path

PREFIX = "dockyard-runs-"
_LOCK = ".lock"


def _lock(path: Path, *, wait: bool) -> int | None:
    """An fd holding an exclusive lock on ``path``; None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _abandoned(parent: Path, besides: Path | None = None) -> Generator[tuple[Path, int]]:
    """The run directories under ``parent`` (but ``besides``) that no live process holds,
    each with an fd locking it while the caller looks (closed once the caller moves on)."""
    for path in sorted(parent.glob(f"{PREFIX}*")):
        if path == besides:
            continue
        try:
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
            fd = _lock(path / _LOCK, wait=False)
        except OSError:
            continue
        if fd is None:
            continue  # a live serve process uses it
        try:
            yield path, fd
        finally:
            os.close(fd)


def clean_stale(parent: Path) -> list[Path]:
    """Remove the run directories under ``parent`` that no live process holds."""
    removed: list[Path] = []
    for path, _fd in _abandoned(parent):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def find_abandoned(beside: Path, name: str) -> Path | None:
    """The file ``name`` in a run directory next to ``beside`` whose process died, if any."""
    with contextlib.closing(_abandoned(beside.parent, beside)) as abandoned:
        for path, _fd in abandoned:
            if (path / name).is_file():
                return path / name
    return None


class WorkDir:
    """This process's run directory; ``close()`` removes it."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd

    @classmethod
    def create(cls, parent: Path | None = None, *, clean: bool = True) -> WorkDir:
        """Make this process's directory (after removing dead ones, with ``clean``)."""
        parent = Path(parent or tempfile.gettempdir())
        if clean:
            clean_stale(parent)
        # Locked before it gets the name clean_stale looks for: never seen unlocked.
        staging = Path(tempfile.mkdtemp(prefix=".dockyard-new-", dir=parent))  # mode 0700
        fd = _lock(staging / _LOCK, wait=True)
        assert fd is not None
        final = parent / f"{PREFIX}{secrets.token_hex(8)}"
        staging.rename(final)
        return cls(final, fd)

    def clean_stale(self) -> list[Path]:
        """Remove the directories of dead processes beside this one."""
        return clean_stale(self.path.parent)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None
