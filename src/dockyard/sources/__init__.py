"""Where flow code comes from: git remotes, fetched into per-commit worktrees.

``GitSource`` is imported on first use, so a serve process without a git source never
loads it. git itself runs through ``sources.gitcli``, the one place that starts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.sources.credentials import GitCredentials
from dockyard.sources.errors import GitErrorKind, GitSyncError
from dockyard.sources.repository import GitRepository

if TYPE_CHECKING:
    from dockyard.sources.git import GitSource, SyncResult

__all__ = [
    "GitCredentials",
    "GitErrorKind",
    "GitRepository",
    "GitSource",
    "GitSyncError",
    "SyncResult",
]


def __getattr__(name: str) -> Any:
    if name in ("GitSource", "SyncResult"):
        from dockyard.sources import git

        return getattr(git, name)
    raise AttributeError(f"module 'dockyard.sources' has no attribute {name!r}")
