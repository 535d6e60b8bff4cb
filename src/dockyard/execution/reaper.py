"""Reaping orphans when dockyard is PID 1 or a child subreaper.

Processes that a flow double-forks are re-parented to us (we ask the kernel to make
us a subreaper), and as PID 1 in a container every orphan is. When they exit they
become zombies that only we can collect. asyncio waits on the runs' own pids, so we
must not reap those: we look for zombie children in /proc and reap only the others.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Collection
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Ask Linux to re-parent orphaned descendants to this process."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def reap_orphans(own_children: Collection[int]) -> list[int]:
    """Reap zombie children that are not among ``own_children``; return their pids."""
    reaped: list[int] = []
    for pid in _children(os.getpid()):
        if pid in own_children or not _is_zombie(pid):
            continue
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if done:
            reaped.append(pid)
    return reaped
