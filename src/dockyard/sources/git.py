"""Code from a git remote: one worktree per commit and an atomically swapped ``current`` link.

Layout under ``root`` (the shape of kubernetes/git-sync v4)::

    root/repo/             a no-checkout repository that only fetches
    root/revisions/<sha>/  one detached worktree per commit
    root/.complete/<sha>   written when that worktree is fully checked out
    root/current           relative symlink → revisions/<sha>
    root/gitconfig         private GIT_CONFIG_GLOBAL; the user's ~/.gitconfig is never read
    root/askpass.sh        answers git's credential prompts (the password from a pipe)

git runs through ``sources.gitcli`` (its own process group, killed at the sync's
deadline). Every method blocks; the service calls them in a worker thread. ``sync`` is
idempotent: whatever a killed or failed attempt left behind, the next one repairs it
(git-sync #105, #411).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import DockyardError
from dockyard.sources import credentials as creds
from dockyard.sources.errors import GitErrorKind, GitSyncError
from dockyard.sources.gitcli import GitCommandError, run_git
from dockyard.sources.repository import GitRepository

__all__ = [
    "GitErrorKind",
    "GitRepository",
    "GitSource",
    "GitSyncError",
    "SyncResult",
]

GITCONFIG = """# Written by dockyard; used as GIT_CONFIG_GLOBAL for its git commands only.
[init]
\tdefaultBranch = dockyard
[advice]
\tdetachedHead = false
[gc]
\tautoDetach = false
\tpruneExpire = now
[maintenance]
\tauto = false
[credential]
\thelper =
[safe]
\t# root may be a volume owned by another uid; only dockyard's commands see this.
\tdirectory = *
"""


@dataclass(frozen=True)
class SyncResult:
    """The outcome of one ``GitSource.sync``: the remote's commit and its checkout."""

    sha: str
    path: Path
    changed: bool
    duration_seconds: float


class GitSource:
    """Fetches a GitRepository into per-commit worktrees under ``root``.

    Args:
        repo: what to fetch (URL, ref, credentials, submodules).
        root: a directory owned by dockyard (may be a volume; it is never deleted).
        keep: how many of the newest revisions ``cleanup`` keeps besides current/acquired.
        timeout_seconds: the limit for one whole ``sync``; git is killed after it.
    """

    def __init__(
        self, repo: GitRepository, root: Path, *, keep: int = 3, timeout_seconds: float = 120
    ) -> None:
        if keep < 0 or timeout_seconds <= 0:
            raise ValueError("keep must be >= 0 and timeout_seconds > 0")
        self.repo = repo
        self.root = Path(root).absolute()
        self.keep = keep
        self.timeout_seconds = timeout_seconds
        self._repo_dir = self.root / "repo"
        self._revisions = self.root / "revisions"
        self._complete = self.root / ".complete"
        self._sync_lock = threading.RLock()  # sync and cleanup never overlap
        self._refs_lock = threading.Lock()  # acquire/release vs cleanup's choice
        self._refs: dict[str, int] = {}
        self._checked = False  # full sanity check done since start / last failure
        self._env: dict[str, str] = {}
        self._secrets: tuple[str, ...] = ()
        self._token: str | None = None
        self._deadline = 0.0

    def describe(self) -> str:
        """``<safe url> (<ref>)`` for logs and errors."""
        return f"{self.repo.safe_url} ({self.repo.ref})"

    # ── sync ────────────────────────────────────────────────────────────────
    def sync(self) -> SyncResult:
        """Fetch the ref and make sure ``revisions/<sha>`` is checked out; does not publish.

        Raises GitSyncError; the published revision is never touched.
        """
        with self._sync_lock:
            started = time.monotonic()
            self._deadline = started + self.timeout_seconds
            try:
                sha, path = self._sync_once()
            except BaseException:
                self._checked = False  # a failed or killed attempt: verify the repo next time
                _remove_locks(self._repo_dir / ".git")
                raise
            current = self.current()
            changed = current is None or current[0] != sha
            return SyncResult(sha, path, changed, time.monotonic() - started)

    def _sync_once(self) -> tuple[str, Path]:
        self._prepare()
        self._ensure_repo()
        sha = self._fetch_commit(self.repo.commit_sha) if self.repo.commit_sha else self._fetch()
        return sha, self._checkout(sha)

    def _prepare(self) -> None:
        """Write the private config files and read the credentials (again)."""
        for path in (self._repo_dir, self._revisions, self._complete):
            path.mkdir(parents=True, exist_ok=True)
        _write_if_changed(self.root / "gitconfig", GITCONFIG, 0o600)
        _write_if_changed(self.root / "askpass.sh", creds.ASKPASS_SCRIPT, 0o700)
        _remove_locks(self._repo_dir / ".git")  # left by a killed git; syncs are serialised
        token = None
        try:
            token = self.repo.credentials.read_token() if self.repo.credentials else None
        except DockyardError as exc:
            raise self._error("fetch", exc.message) from None
        self._secrets = tuple(s for s in (token,) if s)
        self._token = token or None
        self._env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(self.root / "gitconfig"),
            "GIT_ASKPASS": str(self.root / "askpass.sh"),
            "SSH_ASKPASS_REQUIRE": "never",
        }

    def _ensure_repo(self) -> None:
        git_dir = self._repo_dir / ".git"
        if self._checked and (git_dir / "HEAD").is_file():
            return
        if not self._repo_is_sane():
            self._reinit()
        # Relative submodule URLs resolve against origin; the URL never holds a secret.
        self._git("config", "remote.origin.url", self.repo.safe_url, op="init")
        self._checked = True

    def _repo_is_sane(self) -> bool:
        if not (self._repo_dir / ".git" / "HEAD").is_file():
            return False
        try:
            top = self._git("rev-parse", "--show-toplevel", op="check")
            self._git("fsck", "--connectivity-only", "--no-progress", "--no-dangling", op="check")
        except GitSyncError:
            return False
        return Path(top).resolve() == self._repo_dir.resolve()

    def _reinit(self) -> None:
        # Empty the directory but keep it: it may be a mount point.
        for child in self._repo_dir.iterdir():
            _remove(child)
        self._git("init", "--quiet", op="init")

    def _fetch(self) -> str:
        self._git(*_FETCH, "--depth", "1", "--end-of-options", self.repo.safe_url, self._refspec())
        return self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}", op="rev-parse")

    def _refspec(self) -> str:
        if self.repo.branch:
            return f"refs/heads/{self.repo.branch}"
        if self.repo.tag:
            return f"refs/tags/{self.repo.tag}"
        return "HEAD"

    def _fetch_commit(self, sha: str) -> str:
        if self._has_commit(sha):
            return sha  # a commit never changes: no network needed
        try:
            self._git(*_FETCH, "--depth", "1", "--end-of-options", self.repo.safe_url, sha)
        except GitSyncError as exc:
            if exc.kind is not GitErrorKind.ref_not_found:
                raise
            self._fetch_everything()  # the server refuses fetching by SHA
        if not self._has_commit(sha):
            raise self._error("fetch", f"commit {sha} not found on remote")
        return sha

    def _fetch_everything(self) -> None:
        unshallow = ["--unshallow"] if (self._repo_dir / ".git" / "shallow").exists() else []
        specs = ["+refs/heads/*:refs/dockyard/heads/*", "+refs/tags/*:refs/dockyard/tags/*"]
        self._git(*_FETCH, *unshallow, "--end-of-options", self.repo.safe_url, *specs)

    def _has_commit(self, sha: str) -> bool:
        try:
            self._git("cat-file", "-e", f"{sha}^{{commit}}", op="check")
        except GitSyncError:
            return False
        return True

    def _checkout(self, sha: str) -> Path:
        path = self._revisions / sha
        if (self._complete / sha).is_file() and path.is_dir():
            return path
        _remove(path)  # a leftover from a crashed attempt (git-sync #411)
        self._git("worktree", "prune", op="worktree")
        self._git("worktree", "add", "--detach", "--force", str(path), sha, op="worktree")
        if self.repo.include_submodules:
            # file:// submodules are refused by default since git 2.38.1; allow them
            # for this command only.
            args = ("submodule", "update", "--init", "--recursive", "--depth", "1")
            self._git("-c", "protocol.file.allow=always", *args, op="submodule", cwd=path)
        (self._complete / sha).touch()
        return path

    def _git(self, *args: str, op: str = "fetch", cwd: Path | None = None) -> str:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise self._error(op, self._timeout_detail())
        # The token reaches git through a pipe only this command inherits (see credentials).
        password = creds.password_pipe(self._token) if self._token else None
        env = {**self._env, **creds.child_env(self.repo.credentials, password)}
        fds = () if password is None else (password,)
        try:
            return run_git(
                args,
                cwd=cwd or self._repo_dir,
                env=env,
                timeout_seconds=remaining,
                pass_fds=fds,
            )
        except GitCommandError as exc:
            raise self._error(op, self._timeout_detail() if exc.timed_out else exc.detail) from None
        finally:
            if password is not None:
                os.close(password)

    def _timeout_detail(self) -> str:
        return f"Timeout: the command did not complete in {self.timeout_seconds:g} secs"

    def _error(self, op: str, detail: str) -> GitSyncError:
        return GitSyncError(
            op, self.repo.safe_url, detail, ref=self.repo.ref, secrets=self._secrets
        )

    # ── publish / current ───────────────────────────────────────────────────
    def publish(self, sha: str) -> Path:
        """Atomically point ``root/current`` at ``revisions/<sha>`` (a relative symlink)."""
        path = self._revisions / sha
        if not (self._complete / sha).is_file() or not path.is_dir():
            raise self._error("publish", f"revision {sha} is not checked out")
        tmp = self.root / f".current.{os.getpid()}.{threading.get_ident()}.tmp"
        _remove(tmp)
        os.symlink(os.path.join(self._revisions.name, sha), tmp)
        os.replace(tmp, self.root / "current")  # rename(2): readers see old or new, never none
        _fsync_dir(self.root)
        (self._complete / sha).touch()  # newest for cleanup's "keep N"
        return path

    def current(self) -> tuple[str, Path] | None:
        """The published ``(sha, path)``, or None before the first publish."""
        try:
            target = os.readlink(self.root / "current")
        except OSError:
            return None
        sha = os.path.basename(target)
        path = self._revisions / sha
        return (sha, path) if path.is_dir() else None

    # ── runs in progress and cleanup ────────────────────────────────────────
    def acquire(self, sha: str) -> Path:
        """Mark ``revisions/<sha>`` as used by a run, so cleanup keeps it; returns its path."""
        with self._refs_lock:
            path = self._revisions / sha
            if not (self._complete / sha).is_file():
                raise self._error("acquire", f"revision {sha} is gone")
            self._refs[sha] = self._refs.get(sha, 0) + 1
            return path

    def acquire_current(self) -> tuple[str, Path] | None:
        """Read ``current`` and acquire it in one step, so cleanup cannot slip between."""
        with self._refs_lock:
            current = self.current()
            if current is not None:
                self._refs[current[0]] = self._refs.get(current[0], 0) + 1
            return current

    def release(self, sha: str) -> None:
        """Undo one ``acquire``; releasing an unknown sha does nothing."""
        with self._refs_lock:
            count = self._refs.get(sha, 0) - 1
            if count > 0:
                self._refs[sha] = count
            else:
                self._refs.pop(sha, None)

    def cleanup(self) -> list[str]:
        """Delete revisions that are not current, not acquired and not among the newest
        ``keep``; then prune git's worktree records. Returns the deleted SHAs."""
        with self._sync_lock:
            with self._refs_lock:
                doomed = self._doomed()
                for sha in doomed:
                    (self._complete / sha).unlink(missing_ok=True)  # acquire now refuses it
            for sha in doomed:
                _remove(self._revisions / sha)
            if doomed and (self._repo_dir / ".git").is_dir():
                self._deadline = time.monotonic() + self.timeout_seconds
                self._git("worktree", "prune", op="cleanup")
            return doomed

    def _doomed(self) -> list[str]:
        if not self._revisions.is_dir():
            return []
        current = self.current()
        protected = set(self._refs) | ({current[0]} if current else set())
        complete: list[str] = []
        partial: list[str] = []
        for entry in self._revisions.iterdir():
            marker = self._complete / entry.name
            (complete if marker.is_file() else partial).append(entry.name)
        complete.sort(key=lambda sha: (self._complete / sha).stat().st_mtime, reverse=True)
        newest = set(complete[: self.keep])
        stale_markers = {m.name for m in self._complete.iterdir()} - set(complete) - protected
        for name in stale_markers:
            (self._complete / name).unlink(missing_ok=True)
        return [sha for sha in complete + partial if sha not in protected | newest]


_FETCH = ("fetch", "--prune", "--no-tags", "--no-auto-gc", "--no-progress")


def _remove_locks(git_dir: Path) -> None:
    """Delete ``*.lock`` files a killed git left behind (index, shallow, HEAD, refs)."""
    if not git_dir.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(git_dir):
        if dirpath == str(git_dir):
            dirnames[:] = [d for d in dirnames if d != "objects"]  # large, and holds no locks
        for name in filenames:
            if name.endswith(".lock"):
                Path(dirpath, name).unlink(missing_ok=True)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _write_if_changed(path: Path, text: str, mode: int) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
