"""``GitRepository``: what users write to serve flows from git (Prefect-compatible)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from dockyard.errors import UsageError
from dockyard.sources.credentials import GitCredentials, merge_url_userinfo

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?!//)(?P<path>.+)$")
_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_HTTP = ("http", "https")


class GitRepository:
    """A git remote and the ref to serve from it.

    Args:
        url: ``https://…``, ``ssh://…``, ``user@host:path``, ``file://…`` or a local path.
            ``https://user:token@host/…`` is accepted; the userinfo is moved into
            ``credentials`` and never passed to git.
        branch: a branch name.
        commit_sha: a full commit SHA (40 or 64 hex digits).
        credentials: a GitCredentials, a Prefect-style dict, or None.
        include_submodules: also check out submodules (recursively, shallow).
        tag: a tag name (keyword only).

    At most one of branch, tag and commit_sha; with none, the remote's default branch.
    """

    def __init__(
        self,
        url: str | Path,
        branch: str | None = None,
        commit_sha: str | None = None,
        credentials: GitCredentials | dict[str, object] | None = None,
        include_submodules: bool = False,
        *,
        tag: str | None = None,
    ) -> None:
        refs = [
            name for name, v in (("branch", branch), ("tag", tag), ("commit_sha", commit_sha)) if v
        ]
        if len(refs) > 1:
            raise UsageError(
                f"git source: give at most one of branch, tag, commit_sha (got {refs})"
            )
        if commit_sha and not _FULL_SHA.match(commit_sha.lower()):
            raise UsageError(
                f"git source: commit_sha must be a full 40-hex SHA, not {commit_sha!r}"
            )
        safe_url, username, password = _split_userinfo(str(url))
        self.url = safe_url
        self.branch = branch or None
        self.tag = tag or None
        self.commit_sha = commit_sha.lower() if commit_sha else None
        self.credentials = merge_url_userinfo(
            GitCredentials.from_value(credentials), username, password
        )
        self.include_submodules = include_submodules

    @property
    def safe_url(self) -> str:
        """The URL without any user name or token; the one dockyard passes to git."""
        return self.url

    @property
    def ref(self) -> str:
        """``branch X``, ``tag X``, ``commit X`` or ``HEAD`` (the default branch)."""
        if self.branch:
            return f"branch {self.branch}"
        if self.tag:
            return f"tag {self.tag}"
        if self.commit_sha:
            return f"commit {self.commit_sha}"
        return "HEAD"

    @property
    def name(self) -> str:
        """A short stable label for metrics: ``host/path`` without ``.git``."""
        url = self.url
        scp = _SCP_LIKE.match(url) if "://" not in url else None
        if scp:
            label = f"{scp['host']}/{scp['path']}"
        elif "://" in url:
            parts = urlsplit(url)
            label = f"{parts.netloc.rpartition('@')[2]}{parts.path}"
        else:
            label = url
        label = label.rstrip("/")
        return label.removesuffix(".git").rstrip("/") or label

    def __repr__(self) -> str:
        extra = f", credentials={self.credentials!r}" if self.credentials else ""
        subs = ", include_submodules=True" if self.include_submodules else ""
        return f"GitRepository({self.url!r}, ref={self.ref!r}{extra}{subs})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GitRepository):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self.url, self.ref, self.credentials, self.include_submodules)


def _split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``(url without secrets, username, password)``; local paths become absolute."""
    if "://" not in url:
        if _SCP_LIKE.match(url) and not Path(url).exists():
            return url, None, None  # ssh: the user part is the ssh login, not a secret
        return str(Path(url).expanduser().absolute()), None, None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme.lower() in _HTTP:
        clean = urlunsplit(parts._replace(netloc=host))
        return clean, _unquote(parts.username), _unquote(parts.password)
    # ssh://user:pass@host: keep the ssh login, drop the password.
    login = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{login}{host}")), None, None


def _unquote(value: str | None) -> str | None:
    return None if value is None else unquote(value)
