"""Where flow code comes from: git remotes, fetched into per-commit worktrees."""

from dockyard.sources.credentials import GitCredentials
from dockyard.sources.errors import GitErrorKind, GitSyncError
from dockyard.sources.git import GitSource, SyncResult
from dockyard.sources.repository import GitRepository

__all__ = [
    "GitCredentials",
    "GitErrorKind",
    "GitRepository",
    "GitSource",
    "GitSyncError",
    "SyncResult",
]
