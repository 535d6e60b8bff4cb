"""Git failures as one-line dockyard errors: what failed, why (a bounded kind), where,
and git's own stderr with every secret value replaced by ``***``."""

from __future__ import annotations

from enum import StrEnum

from dockyard.errors import DockyardError


class GitErrorKind(StrEnum):
    """Why a git operation failed; a bounded value for metrics labels."""

    unreachable = "remote unreachable"
    """The remote does not answer or is not a repository."""
    authentication = "authentication failed"
    """The remote refused the credentials, or none were given."""
    ref_not_found = "ref not found"
    """The branch, tag or commit does not exist on the remote (deleted?)."""
    timeout = "timed out"
    """The sync took longer than ``timeout_seconds``."""
    failed = "failed"
    """Anything else; git's stderr says what."""


_PATTERNS = [
    (GitErrorKind.timeout, ("timeout: the command",)),
    (
        GitErrorKind.authentication,
        (
            "authentication failed",
            "could not read username",
            "could not read password",
            "permission denied (publickey",
            "host key verification failed",
            "returned error: 401",
            "returned error: 403",
            "git token:",
        ),
    ),
    (
        GitErrorKind.ref_not_found,
        ("couldn't find remote ref", "not our ref", "unadvertised object", "not found on remote"),
    ),
    (
        GitErrorKind.unreachable,
        (
            "does not appear to be a git repository",
            "could not read from remote repository",
            "unable to access",
            "could not resolve host",
            "failed to connect",
            "connection refused",
            "repository not found",
        ),
    ),
]


def classify(stderr: str) -> GitErrorKind:
    """Map git's (C locale) stderr to an error kind."""
    text = stderr.lower()
    for kind, needles in _PATTERNS:
        if any(needle in text for needle in needles):
            return kind
    return GitErrorKind.failed


class GitSyncError(DockyardError):
    """A git operation failed. One line: operation, kind, remote (no secrets), git's stderr."""

    def __init__(
        self,
        operation: str,
        remote: str,
        detail: str,
        *,
        ref: str | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.operation = operation
        self.remote = remote
        self.kind = classify(detail)
        lines = (line.strip() for line in detail.splitlines())
        self.detail = mask(" | ".join(line for line in lines if line), secrets)[:1500]
        where = f"{remote} ({ref})" if ref else remote
        super().__init__(f"git {operation}: {self.kind} for {where}: {self.detail}")


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret value in ``text`` with ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
