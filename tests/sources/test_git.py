"""GitSource against real repositories in tmp_path, a loopback git HTTP server, no mocks."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import UsageError
from dockyard.sources import (
    GitCredentials,
    GitErrorKind,
    GitRepository,
    GitSource,
    GitSyncError,
)
from dockyard.sources.errors import classify, mask
from tests.git_server import GitHttpServer, Upstream, bare_clone, git


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HOME in tmp_path; every test checks that syncs leave ~/.gitconfig alone."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    yield home
    assert not (home / ".gitconfig").exists() or (home / ".gitconfig").read_text() == BAD_CONFIG
    assert not (home / ".config" / "git").exists()


BAD_CONFIG = "this is [not a valid git config\n"


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "upstream")
    repo.commit({"flow.py": "VERSION = 1\n"}, "first")
    return repo


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


def read(path: Path, name: str = "flow.py") -> str:
    return (path / name).read_text()


def lock_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.lock")]


# ── sync, change detection, publish ─────────────────────────────────────────


def test_first_sync_then_new_commit_then_no_change(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path), root)
    first = source.sync()
    assert first.sha == upstream.head() and first.changed
    assert read(first.path) == "VERSION = 1\n"
    assert first.path == root / "revisions" / first.sha
    source.publish(first.sha)

    second_sha = upstream.commit({"flow.py": "VERSION = 2\n"})
    second = source.sync()
    assert (second.sha, second.changed) == (second_sha, True)
    assert read(second.path) == "VERSION = 2\n"
    assert read(first.path) == "VERSION = 1\n"  # the old revision is untouched
    source.publish(second.sha)

    again = source.sync()
    assert (again.sha, again.changed, again.path) == (second_sha, False, second.path)
    assert again.duration_seconds > 0


def test_publish_swaps_a_relative_symlink(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(f"file://{upstream.path}"), root)
    assert source.current() is None
    old = source.sync()
    source.publish(old.sha)
    upstream.commit({"flow.py": "VERSION = 2\n"})
    new = source.sync()
    assert source.current() == (old.sha, old.path)  # sync does not publish
    assert source.publish(new.sha) == new.path
    assert os.readlink(root / "current") == f"revisions/{new.sha}"
    assert source.current() == (new.sha, new.path)
    assert read(root / "current") == "VERSION = 2\n"
    assert read(old.path) == "VERSION = 1\n"
    assert [p.name for p in root.iterdir() if p.name.startswith(".current")] == []


def test_publish_refuses_a_revision_that_was_not_synced(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path), root)
    source.sync()
    with pytest.raises(GitSyncError, match="not checked out"):
        source.publish("0" * 40)


def test_force_push_to_unrelated_history_is_followed(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path, branch="main"), root)
    source.publish(source.sync().sha)
    rewritten = upstream.rewrite_branch("main", {"other.py": "REWRITTEN = True\n"})
    result = source.sync()
    assert (result.sha, result.changed) == (rewritten, True)
    assert read(result.path, "other.py") == "REWRITTEN = True\n"
    assert not (result.path / "flow.py").exists()


def test_deleted_branch_is_ref_not_found(upstream: Upstream, root: Path) -> None:
    upstream.git("branch", "feature")
    source = GitSource(GitRepository(upstream.path, branch="feature"), root)
    good = source.sync()
    source.publish(good.sha)
    upstream.git("branch", "-D", "feature")
    with pytest.raises(GitSyncError) as caught:
        source.sync()
    assert caught.value.kind is GitErrorKind.ref_not_found
    assert "not found" in str(caught.value) and "branch feature" in str(caught.value)
    assert source.current() == (good.sha, good.path)


def test_tag_ref_peels_annotated_tags(upstream: Upstream, root: Path) -> None:
    tagged = upstream.head()
    upstream.git("tag", "-a", "v1", "-m", "release 1")
    upstream.commit({"flow.py": "VERSION = 2\n"})
    result = GitSource(GitRepository(upstream.path, tag="v1"), root).sync()
    assert result.sha == tagged and read(result.path) == "VERSION = 1\n"


def test_commit_sha_ref(upstream: Upstream, root: Path) -> None:
    old = upstream.head()
    upstream.commit({"flow.py": "VERSION = 2\n"})
    upstream.commit({"flow.py": "VERSION = 3\n"})
    source = GitSource(GitRepository(upstream.path, commit_sha=old), root)
    result = source.sync()
    assert result.sha == old and read(result.path) == "VERSION = 1\n"
    source.publish(old)
    assert source.sync().changed is False  # already present: no fetch at all


def test_commit_sha_falls_back_when_the_server_refuses_sha_fetches(
    upstream: Upstream, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = upstream.head()
    upstream.commit({"flow.py": "VERSION = 2\n"})
    # Protocol v0 without allowReachableSHA1InWant refuses unadvertised SHAs, as many
    # servers do. GIT_CONFIG_COUNT reaches dockyard's git through the environment.
    upstream.git("config", "uploadpack.allowReachableSHA1InWant", "false")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "0")
    result = GitSource(GitRepository(f"file://{upstream.path}", commit_sha=old), root).sync()
    assert result.sha == old and read(result.path) == "VERSION = 1\n"
    assert git("rev-parse", "refs/dockyard/heads/main", cwd=root / "repo") == upstream.head()


def test_unknown_commit_sha_is_ref_not_found(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path, commit_sha="1" * 40), root)
    with pytest.raises(GitSyncError) as caught:
        source.sync()
    assert caught.value.kind is GitErrorKind.ref_not_found


# ── failures keep the published revision ───────────────────────────────────


@pytest.mark.parametrize("bad", ["missing-path", "http://127.0.0.1:1/x.git"])
def test_unreachable_remote_keeps_current(
    upstream: Upstream, root: Path, tmp_path: Path, bad: str
) -> None:
    good = GitSource(GitRepository(upstream.path), root)
    published = good.sync()
    good.publish(published.sha)
    url = str(tmp_path / bad) if bad == "missing-path" else bad
    source = GitSource(GitRepository(url), root)
    with pytest.raises(GitSyncError) as caught:
        source.sync()
    assert caught.value.kind is GitErrorKind.unreachable
    assert str(caught.value).startswith("git fetch: remote unreachable for ")
    assert "\n" not in str(caught.value)
    assert source.current() == (published.sha, published.path)
    assert read(root / "current") == "VERSION = 1\n"


def test_fifty_failed_syncs_leave_current_and_no_locks(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path), root)
    published = source.sync()
    source.publish(published.sha)
    shutil.rmtree(upstream.path)
    for _ in range(50):
        with pytest.raises(GitSyncError):
            source.sync()
    assert source.current() == (published.sha, published.path)
    assert read(published.path) == "VERSION = 1\n"
    assert lock_files(root) == []


def test_lock_files_of_a_killed_git_do_not_break_the_next_sync(
    upstream: Upstream, root: Path
) -> None:
    source = GitSource(GitRepository(upstream.path), root)
    source.publish(source.sync().sha)
    git_dir = root / "repo" / ".git"
    for name in ("index.lock", "shallow.lock", "HEAD.lock", "refs/heads/main.lock"):
        (git_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (git_dir / name).write_text("")
    for worktree in (git_dir / "worktrees").iterdir():
        (worktree / "index.lock").write_text("")
    new = upstream.commit({"flow.py": "VERSION = 2\n"})
    assert source.sync().sha == new
    assert lock_files(root) == []


def test_a_half_made_worktree_is_rebuilt(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path), root)
    sha = source.sync().sha
    (root / ".complete" / sha).unlink()  # as if killed before the checkout finished
    (root / "revisions" / sha / "flow.py").unlink()
    result = GitSource(GitRepository(upstream.path), root).sync()
    assert read(result.path) == "VERSION = 1\n"


def test_a_corrupt_repository_is_wiped_and_fetched_again(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path), root)
    published = source.sync()
    source.publish(published.sha)
    shutil.rmtree(root / "repo" / ".git" / "objects")
    (root / "repo" / ".git" / "objects").mkdir()
    new = upstream.commit({"flow.py": "VERSION = 2\n"})
    result = GitSource(GitRepository(upstream.path), root).sync()  # a restarted process
    assert result.sha == new and read(result.path) == "VERSION = 2\n"
    assert read(root / "current") == "VERSION = 1\n"


def test_a_remote_that_never_answers_times_out(root: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.git"
        source = GitSource(GitRepository(url), root, timeout_seconds=1)
        started = time.monotonic()
        with pytest.raises(GitSyncError) as caught:
            source.sync()
    assert caught.value.kind is GitErrorKind.timeout
    assert time.monotonic() - started < 15
    assert lock_files(root) == []


def test_ssh_never_prompts(root: Path) -> None:
    source = GitSource(GitRepository("ssh://git@127.0.0.1:1/x.git"), root, timeout_seconds=30)
    with pytest.raises(GitSyncError) as caught:
        source.sync()
    assert caught.value.kind is GitErrorKind.unreachable


# ── revisions in use, cleanup ───────────────────────────────────────────────


def make_revisions(source: GitSource, upstream: Upstream, count: int) -> list[str]:
    shas = []
    for n in range(count):
        upstream.commit({"flow.py": f"VERSION = {n + 10}\n"})
        shas.append(source.sync().sha)
        source.publish(shas[-1])
        time.sleep(0.01)  # distinct mtimes
    return shas


def test_acquired_revision_survives_cleanup_until_released(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path), root, keep=1)
    oldest = source.sync().sha
    source.publish(oldest)
    assert source.acquire(oldest) == root / "revisions" / oldest
    source.acquire(oldest)  # two runs
    shas = make_revisions(source, upstream, 3)
    deleted = source.cleanup()
    assert oldest not in deleted and (root / "revisions" / oldest / "flow.py").exists()
    assert sorted(deleted) == sorted(shas[:2])  # keep=1 keeps the newest (also current)
    source.release(oldest)
    assert source.cleanup() == []
    source.release(oldest)
    assert source.cleanup() == [oldest]
    assert sorted(p.name for p in (root / "revisions").iterdir()) == [shas[-1]]
    assert git("worktree", "list", "--porcelain", cwd=root / "repo").count("worktree ") == 2
    with pytest.raises(GitSyncError, match="gone"):
        source.acquire(oldest)


def test_acquire_current_pins_the_published_revision(upstream: Upstream, root: Path) -> None:
    source = GitSource(GitRepository(upstream.path), root, keep=0)
    assert source.acquire_current() is None
    first = source.sync()
    source.publish(first.sha)
    assert source.acquire_current() == (first.sha, first.path)
    upstream.commit({"flow.py": "VERSION = 2\n"})
    source.publish(source.sync().sha)
    assert source.cleanup() == []  # the run on the first revision still holds it
    source.release(first.sha)
    assert source.cleanup() == [first.sha]


@pytest.mark.parametrize("keep", [0, 2, 4])
def test_cleanup_keeps_the_newest_n_and_current(upstream: Upstream, root: Path, keep: int) -> None:
    source = GitSource(GitRepository(upstream.path), root, keep=keep)
    shas = make_revisions(source, upstream, 5)
    source.publish(shas[1])  # an older revision is current again: it is never deleted
    source.cleanup()
    newest_first = [shas[1], shas[4], shas[3], shas[2], shas[0]]
    left = {p.name for p in (root / "revisions").iterdir()}
    assert left == {shas[1], *newest_first[:keep]}


# ── credentials over HTTP ──────────────────────────────────────────────────


class WatchingServer(GitHttpServer):
    """Also records the token in any process's environment while git waits for an answer:
    flow code can read the environment of every process of its user in /proc."""

    def _check_leaks(self, environ: dict[str, Any]) -> None:
        super()._check_leaks(environ)
        for path in Path("/proc").glob("[0-9]*/environ"):
            with contextlib.suppress(OSError):
                if self.token.encode() in path.read_bytes():
                    self.leaks.append(f"environ of {path.parent.name}")


@pytest.fixture
def http_remote(upstream: Upstream, tmp_path: Path) -> Iterator[GitHttpServer]:
    project = tmp_path / "served"
    project.mkdir()
    bare_clone(upstream, project)
    server = WatchingServer(project, token=f"tok-{secrets.token_hex(12)}")
    with server.running():
        yield server


def push(upstream: Upstream, server: GitHttpServer, files: dict[str, str]) -> str:
    sha = upstream.commit(files)
    upstream.git("push", "--quiet", "--force", server.project_root / "repo.git", "HEAD:main")
    return sha


def assert_token_absent(token: str, root: Path, *texts: str) -> None:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert token.encode() not in path.read_bytes(), path
    for text in texts:
        assert token not in text


@pytest.mark.parametrize("how", ["literal", "token_env", "token_file", "url"])
def test_token_sources_authenticate(
    http_remote: GitHttpServer,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    token = http_remote.token
    url = f"{http_remote.url}/repo.git"
    credentials: GitCredentials | None = None
    if how == "literal":
        credentials = GitCredentials(token=token)
    elif how == "token_env":
        monkeypatch.setenv("DOCKYARD_TEST_TOKEN", token)
        credentials = GitCredentials.from_value({"token_env": "DOCKYARD_TEST_TOKEN"})
    elif how == "token_file":
        (tmp_path / "token").write_text(token + "\n")
        credentials = GitCredentials(token_file=str(tmp_path / "token"))
    else:
        url = f"http://robot:{token}@{url.removeprefix('http://')}"
    repo = GitRepository(url, branch="main", credentials=credentials)
    assert token not in repo.safe_url and token not in repr(repo)
    result = GitSource(repo, root).sync()
    assert read(result.path) == "VERSION = 1\n"
    assert http_remote.users and set(http_remote.users) == {
        "robot" if how == "url" else "x-access-token"
    }
    assert http_remote.leaks == []
    assert_token_absent(token, root)


def test_rotated_token_file_is_read_before_every_fetch(
    http_remote: GitHttpServer, upstream: Upstream, root: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(http_remote.token)
    creds = {"username": "deploy", "token_file": str(token_file)}
    source = GitSource(GitRepository(f"{http_remote.url}/repo.git", credentials=creds), root)
    source.publish(source.sync().sha)
    old_token = http_remote.token
    http_remote.token = f"tok-{secrets.token_hex(12)}"  # the server rotates first …
    new_sha = push(upstream, http_remote, {"flow.py": "VERSION = 2\n"})
    with pytest.raises(GitSyncError) as caught:
        source.sync()
    assert caught.value.kind is GitErrorKind.authentication
    token_file.write_text(http_remote.token)  # … then the mounted secret follows
    assert source.sync().sha == new_sha
    assert http_remote.leaks == []
    assert_token_absent(old_token, root, str(caught.value))
    assert_token_absent(http_remote.token, root)


def test_wrong_token_is_an_authentication_error_without_the_token(
    http_remote: GitHttpServer, root: Path
) -> None:
    wrong = f"wrong-{secrets.token_hex(12)}"
    repo = GitRepository(f"{http_remote.url}/repo.git", credentials={"access_token": wrong})
    source = GitSource(repo, root)
    with pytest.raises(GitSyncError) as caught:
        source.sync()
    message = str(caught.value)
    assert caught.value.kind is GitErrorKind.authentication
    assert "authentication failed" in message and http_remote.url in message
    assert_token_absent(wrong, root, message, repr(caught.value), repr(repo))
    assert_token_absent(http_remote.token, root, message)
    assert http_remote.leaks == []


def test_no_credentials_fails_without_prompting(http_remote: GitHttpServer, root: Path) -> None:
    source = GitSource(GitRepository(f"{http_remote.url}/repo.git"), root, timeout_seconds=30)
    with pytest.raises(GitSyncError) as caught:
        source.sync()
    assert caught.value.kind is GitErrorKind.authentication


# ── submodules, global config ───────────────────────────────────────────────


@pytest.mark.parametrize("relative", [False, True])
def test_submodules_are_checked_out(
    upstream: Upstream, root: Path, tmp_path: Path, relative: bool
) -> None:
    sub = Upstream(tmp_path / "sub")
    sub.commit({"lib.py": "LIB = 'sub'\n"})
    upstream.git(
        "-c", "protocol.file.allow=always", "submodule", "add", f"file://{sub.path}", "vendor/lib"
    )
    if relative:
        upstream.git("config", "-f", ".gitmodules", "submodule.vendor/lib.url", "../sub")
        upstream.git("add", ".gitmodules")
    upstream.commit({}, "add submodule")
    repo = GitRepository(upstream.path, include_submodules=True)
    result = GitSource(repo, root).sync()
    assert read(result.path / "vendor" / "lib", "lib.py") == "LIB = 'sub'\n"
    plain = GitSource(GitRepository(upstream.path), tmp_path / "plain").sync()
    assert not (plain.path / "vendor" / "lib" / "lib.py").exists()


def test_the_users_global_git_config_is_neither_read_nor_written(
    upstream: Upstream, root: Path, home: Path
) -> None:
    (home / ".gitconfig").write_text(BAD_CONFIG)  # git would refuse to run if it read it
    before = (home / ".gitconfig").stat().st_mtime_ns
    source = GitSource(GitRepository(upstream.path), root)
    source.publish(source.sync().sha)
    upstream.commit({"flow.py": "VERSION = 2\n"})
    source.sync()
    source.cleanup()
    assert (home / ".gitconfig").read_text() == BAD_CONFIG
    assert (home / ".gitconfig").stat().st_mtime_ns == before
    assert "dockyard" in (root / "gitconfig").read_text()


# ── pure pieces: tables ──────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("url", "safe", "name", "username", "token"),
    [
        ("https://user:tok@host/x.git", "https://host/x.git", "host/x", "user", "tok"),
        ("https://tok@host:8443/org/x", "https://host:8443/org/x", "host:8443/org/x", "tok", None),
        ("https://host/org/x.git/", "https://host/org/x.git/", "host/org/x", None, None),
        ("https://u%40corp:p%2Fw@h/x", "https://h/x", "h/x", "u@corp", "p/w"),
        ("ssh://git:pw@host/x.git", "ssh://git@host/x.git", "host/x", None, None),
        ("git@github.com:org/x.git", "git@github.com:org/x.git", "github.com/org/x", None, None),
        ("file:///srv/repo.git", "file:///srv/repo.git", "/srv/repo", None, None),
        ("/srv/code", "/srv/code", "/srv/code", None, None),
    ],
)
def test_repository_urls(
    url: str, safe: str, name: str, username: str | None, token: str | None
) -> None:
    repo = GitRepository(url)
    assert (repo.safe_url, repo.name) == (safe, name)
    creds = repo.credentials
    assert (creds.username if creds else None, creds.token if creds else None) == (username, token)


@pytest.mark.parametrize(
    ("kwargs", "ref"),
    [
        ({}, "HEAD"),
        ({"branch": "main"}, "branch main"),
        ({"tag": "v1"}, "tag v1"),
        ({"commit_sha": "A" * 40}, "commit " + "a" * 40),
    ],
)
def test_repository_refs(kwargs: dict[str, str], ref: str) -> None:
    assert GitRepository("/srv/code", **kwargs).ref == ref


@pytest.mark.parametrize(
    "kwargs",
    [
        {"branch": "main", "tag": "v1"},
        {"branch": "main", "commit_sha": "a" * 40},
        {"commit_sha": "abc123"},
        {"credentials": {"access_token": "x", "token_file": "/t"}},
    ],
)
def test_repository_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        GitRepository("/srv/code", **kwargs)  # type: ignore[arg-type]


def test_url_token_and_credentials_token_conflict() -> None:
    with pytest.raises(UsageError, match="both in the URL"):
        GitRepository("https://u:t@h/x", credentials={"token_env": "T"})
    assert GitRepository("https://u@h/x", credentials={"token_env": "T"}).credentials == (
        GitCredentials(username="u", token_env="T")
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ({"access_token": "t"}, GitCredentials(token="t")),
        ({"username": "u", "password": "p"}, GitCredentials(username="u", token="p")),
        ({"token_env": "GH_TOKEN"}, GitCredentials(token_env="GH_TOKEN")),
        ({"token_file": "/run/t"}, GitCredentials(token_file="/run/t")),
        (
            {"ssh_key_file": "/k", "known_hosts_file": "/kh"},
            GitCredentials(ssh_key_file="/k", known_hosts_file="/kh"),
        ),
        (GitCredentials(token="t"), GitCredentials(token="t")),
    ],
)
def test_credentials_from_value(value: object, expected: GitCredentials | None) -> None:
    assert GitCredentials.from_value(value) == expected


def test_credentials_unknown_keys_are_named() -> None:
    with pytest.raises(UsageError, match="unknown git credentials key.*passwd.*user\\b"):
        GitCredentials.from_value({"user": "u", "passwd": "p"})


def test_credentials_repr_hides_the_token() -> None:
    text = repr(GitCredentials(username="u", token="s3cr3t-value"))
    assert "s3cr3t-value" not in text and "***" in text and "'u'" in text


def test_ssh_command_pins_key_and_known_hosts() -> None:
    creds = GitCredentials(ssh_key_file="/keys/id ed", known_hosts_file="/keys/known")
    assert creds.ssh_command() == (
        "ssh -i '/keys/id ed' -o IdentitiesOnly=yes -o UserKnownHostsFile=/keys/known"
        " -o StrictHostKeyChecking=yes -o BatchMode=yes"
    )


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("fatal: Authentication failed for 'https://h/x/'", GitErrorKind.authentication),
        (
            "fatal: could not read Username for 'https://h': No such device",
            GitErrorKind.authentication,
        ),
        ("git@h: Permission denied (publickey).", GitErrorKind.authentication),
        ("fatal: couldn't find remote ref refs/heads/gone", GitErrorKind.ref_not_found),
        (
            "error: Server does not allow request for unadvertised object a1",
            GitErrorKind.ref_not_found,
        ),
        (
            "fatal: unable to access 'https://h/': Could not resolve host: h",
            GitErrorKind.unreachable,
        ),
        ("fatal: '/x' does not appear to be a git repository", GitErrorKind.unreachable),
        ('Timeout: the command "git fetch" did not complete in 1 secs.', GitErrorKind.timeout),
        ("fatal: something else", GitErrorKind.failed),
    ],
)
def test_classify(stderr: str, kind: GitErrorKind) -> None:
    assert classify(stderr) is kind


def test_error_text_masks_secrets_and_is_one_line() -> None:
    error = GitSyncError(
        "fetch",
        "https://h/x.git",
        "fatal: Authentication failed\nremote: bad token s3cr3t for s3cr3t-long\n",
        ref="branch main",
        secrets=("s3cr3t", "s3cr3t-long"),
    )
    assert str(error) == (
        "git fetch: authentication failed for https://h/x.git (branch main): "
        "fatal: Authentication failed | remote: bad token *** for ***"
    )
    assert mask("a-b-a", ("a",)) == "***-b-***"
