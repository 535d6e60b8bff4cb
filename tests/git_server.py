"""Test helpers for git: upstream repositories made with the git CLI, and a loopback
smart-HTTP git server (``git http-backend`` behind HTTP Basic auth).

Every git command here runs with a fixed identity and without the user's or the
system's git config, so tests behave the same on every machine.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str | Path, cwd: Path | None = None) -> str:
    """Run the git CLI for a test and return its stdout; fail loudly on errors."""
    done = subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(map(str, args))} failed: {done.stderr}")
    return done.stdout.strip()


class Upstream:
    """A non-bare repository that tests commit to and dockyard fetches from."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--initial-branch", branch, cwd=path)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write ``files`` (relative path → content), commit them, return the SHA."""
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            git("add", name, cwd=self.path)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.path)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return git("rev-parse", ref, cwd=self.path)

    def git(self, *args: str | Path) -> str:
        return git(*args, cwd=self.path)

    def rewrite_branch(self, branch: str, files: dict[str, str]) -> str:
        """Replace ``branch`` by a new root commit, as a force-push of unrelated history does."""
        self.git("checkout", "--quiet", "--orphan", "rewrite-tmp")
        self.git("rm", "-r", "--quiet", "--cached", ".")
        sha = self.commit(files, "rewritten")
        self.git("branch", "--force", "-M", "rewrite-tmp", branch)
        return sha


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class GitHttpServer:
    """Serves the bare repositories under ``project_root`` over smart HTTP.

    Every request needs HTTP Basic auth whose password equals ``token`` (change it to
    simulate rotation). ``users`` records the user names clients sent; ``leaks`` records
    any process command line or request URL that contained the token while git ran.
    """

    def __init__(self, project_root: Path, token: str) -> None:
        self.project_root = project_root
        self.token = token
        self.users: list[str] = []
        self.leaks: list[str] = []
        self.requests = 0
        self._server: WSGIServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.requests += 1
        self._check_leaks(environ)
        user = self._authorised(environ.get("HTTP_AUTHORIZATION", ""))
        if user is None:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"authentication required\n"]
        self.users.append(user)
        return self._backend(environ, user, start_response)

    def _authorised(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user if password == self.token else None

    def _check_leaks(self, environ: dict[str, Any]) -> None:
        where = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
        if self.token in where:
            self.leaks.append(f"url: {where}")
        # The client's git processes are alive while they wait for this answer.
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if self.token in text:
                    self.leaks.append(f"argv: {text}")

    def _backend(self, environ: dict[str, Any], user: str, start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "REMOTE_USER": user,
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=cgi, capture_output=True, timeout=60
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode().split("\r\n") if line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        start_response(status, [(k, v) for k, v in headers if k.lower() != "status"])
        return [payload]

    @contextlib.contextmanager
    def running(self) -> Iterator[GitHttpServer]:
        """Serve on 127.0.0.1 (a free port) in a thread until the block ends."""
        self._server = make_server("127.0.0.1", 0, self, handler_class=_QuietHandler)
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=10)


def bare_clone(upstream: Upstream, project_root: Path, name: str = "repo.git") -> Path:
    """A bare copy of ``upstream`` under ``project_root`` (what the HTTP server serves)."""
    target = project_root / name
    git("clone", "--quiet", "--bare", upstream.path, target)
    return target
