"""Where a git source's checkouts live, and the ``GitRepository`` that settings describe."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.settings import Settings, state_path
from dockyard.sources.credentials import GitCredentials
from dockyard.sources.repository import GitRepository

if TYPE_CHECKING:
    from dockyard.config import SourceConfig


def checkout_root(base: Path, repo: GitRepository) -> Path:
    """Where a source's checkouts live: one directory per URL and ref."""
    digest = hashlib.sha256(f"{repo.safe_url}#{repo.ref}".encode()).hexdigest()[:12]
    return base / f"{repo.name.replace('/', '_')}-{digest}"


def sources_dir(settings: Settings) -> Path:
    """Checkouts live next to the state database unless DOCKYARD_SOURCE_DIR says where."""
    if settings.source_dir:
        return Path(settings.source_dir).expanduser()
    return state_path(settings).parent / "sources"


def repository_from_settings(settings: Settings) -> GitRepository:
    """The ``GitRepository`` that ``--source`` and the DOCKYARD_SOURCE_* settings describe."""
    token = settings.source_token.get_secret_value() if settings.source_token else None
    credentials = GitCredentials(
        username=settings.source_username,
        token=token,
        token_file=settings.source_token_file,
        ssh_key_file=settings.source_ssh_key_file,
        known_hosts_file=settings.source_known_hosts_file,
    )
    return GitRepository(
        settings.source or "",
        branch=settings.source_branch,
        tag=settings.source_tag,
        commit_sha=settings.source_commit,
        credentials=credentials,
        include_submodules=settings.source_submodules,
    )


def repository_from_config(source: SourceConfig) -> GitRepository:
    """The ``GitRepository`` a dockyard.yaml ``source:`` block names."""
    branch, commit = source.branch, source.commit
    if source.ref and _is_sha(source.ref):
        commit = commit or source.ref
    elif source.ref:
        branch = branch or source.ref
    creds = source.credentials.model_dump() if source.credentials else None
    return GitRepository(
        source.url,
        branch=branch,
        tag=source.tag,
        commit_sha=commit,
        credentials=GitCredentials(**creds) if creds else None,
        include_submodules=source.include_submodules,
    )


def _is_sha(ref: str) -> bool:
    return len(ref) == 40 and all(c in "0123456789abcdef" for c in ref.lower())
