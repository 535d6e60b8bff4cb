"""Credentials for fetching code from git, and how they reach the git child process.

The token never goes into argv, a URL, an environment or a file that dockyard writes:
git asks for it through ``GIT_ASKPASS``, a static script that reads it from a pipe
whose read end only the git command inherits (``$DOCKYARD_GIT_PASSWORD_FD``). Flow code
can read the environment and command line of every process of its user in ``/proc``;
a pipe it holds no end of is out of that reach. Token sources are read again before
every fetch, so a rotated token file is picked up without a restart.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.errors import UsageError

DEFAULT_USERNAME = "x-access-token"

PASSWORD_COPIES = 16
"""Lines of the password pipe: one per prompt (a fetch, each submodule's fetch)."""

# git runs this for "Username for '…':" and "Password for '…':" prompts (the prompt is $1).
# `read` and `printf` are shell builtins: the password is in no process's argv.
ASKPASS_SCRIPT = """#!/bin/sh
# Written by dockyard. Answers git's credential prompts: the user name from the
# environment, the password from the pipe git inherited; the secret is never stored here.
case "$1" in
  Username*) printf '%s\\n' "${DOCKYARD_GIT_USERNAME:-x-access-token}" ;;
  *)
    password=
    if [ -n "${DOCKYARD_GIT_PASSWORD_FD:-}" ]; then
      IFS= read -r password < "/dev/fd/$DOCKYARD_GIT_PASSWORD_FD" || true
    fi
    printf '%s\\n' "$password" ;;
esac
"""

# Prefect-style dict keys → GitCredentials fields.
_KEYS = {
    "access_token": "token",
    "token": "token",
    "password": "token",
    "username": "username",
    "token_env": "token_env",
    "token_file": "token_file",
    "ssh_key_file": "ssh_key_file",
    "known_hosts_file": "known_hosts_file",
}


_KEPT: dict[str, str] = {}
"""Tokens named by ``token_env``, kept here once their variables leave the environment."""


def keep_token_envs(credentials: Iterable[GitCredentials | None]) -> list[str]:
    """Keep the tokens of these credentials' ``token_env`` variables in memory, so the
    variables can be removed from the environment runs inherit; returns their names."""
    names = sorted({c.token_env for c in credentials if c is not None and c.token_env})
    for name in names:
        if os.environ.get(name):
            _KEPT[name] = os.environ[name]
    return names


@dataclass(frozen=True, repr=False)
class GitCredentials:
    """How to authenticate to a git remote.

    Args:
        username: HTTP user name; ``x-access-token`` when only a token is given.
        token: a literal token or password (from Python code).
        token_env: the name of an environment variable that holds the token.
        token_file: a file that holds the token; read again before every fetch.
        ssh_key_file: a private key for ``ssh://`` and ``user@host:path`` remotes.
        known_hosts_file: the known_hosts file to check the SSH host key against.
    """

    username: str | None = None
    token: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    ssh_key_file: str | None = None
    known_hosts_file: str | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("token", "token_env", "token_file") if getattr(self, k) is not None]
        if len(given) > 1:
            raise UsageError(
                f"git credentials: give only one of token, token_env, token_file (got {given})"
            )

    def __repr__(self) -> str:
        fields = {
            "username": self.username,
            "token": None if self.token is None else "***",
            "token_env": self.token_env,
            "token_file": self.token_file,
            "ssh_key_file": self.ssh_key_file,
            "known_hosts_file": self.known_hosts_file,
        }
        shown = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
        return f"GitCredentials({shown})"

    @classmethod
    def from_value(cls, value: object) -> GitCredentials | None:
        """Accept None, a GitCredentials, or a Prefect-style dict such as
        ``{"access_token": "…"}`` or ``{"username": "…", "password": "…"}``."""
        if value is None or isinstance(value, GitCredentials):
            return value
        if not isinstance(value, Mapping):
            raise UsageError(
                f"git credentials must be a dict or GitCredentials, not {type(value).__name__}"
            )
        unknown = sorted(str(k) for k in value if k not in _KEYS)
        if unknown:
            raise UsageError(
                f"unknown git credentials key(s) {', '.join(unknown)}; "
                f"use {', '.join(sorted(_KEYS))}"
            )
        fields: dict[str, str] = {}
        for key, raw in value.items():
            if raw is None:
                continue
            name = _KEYS[key]
            if name in fields:
                raise UsageError(f"git credentials: {key!r} repeats a token given by another key")
            fields[name] = _plain(raw, key)
        return cls(**fields)

    @property
    def has_token(self) -> bool:
        return any(v is not None for v in (self.token, self.token_env, self.token_file))

    def read_token(self) -> str | None:
        """The current token: the literal, or the env var / file read now."""
        if self.token is not None:
            return self.token
        if self.token_env is not None:
            token = os.environ.get(self.token_env) or _KEPT.get(self.token_env)
            if not token:
                raise UsageError(f"git token: environment variable {self.token_env} is not set")
            return token.strip()
        if self.token_file is not None:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError as exc:
                raise UsageError(
                    f"git token: cannot read {self.token_file}: {exc.strerror}"
                ) from None
        return None

    def ssh_command(self) -> str | None:
        """``GIT_SSH_COMMAND`` for a key file, or None to use ssh's defaults."""
        if self.ssh_key_file is None and self.known_hosts_file is None:
            return None
        parts = ["ssh"]
        if self.ssh_key_file is not None:
            parts += ["-i", self.ssh_key_file, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts_file is not None:
            parts += ["-o", f"UserKnownHostsFile={self.known_hosts_file}"]
        parts += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
        return shlex.join(parts)


def merge_url_userinfo(
    credentials: GitCredentials | None, username: str | None, password: str | None
) -> GitCredentials | None:
    """Fold ``user:token@`` taken out of an https URL into the credentials."""
    if username is None and password is None:
        return credentials
    base = credentials or GitCredentials()
    if password is not None and base.has_token:
        raise UsageError(
            "git source: a password/token is given both in the URL and in credentials; keep one"
        )
    return GitCredentials(
        username=base.username or username,
        token=password if password is not None else base.token,
        token_env=base.token_env,
        token_file=base.token_file,
        ssh_key_file=base.ssh_key_file,
        known_hosts_file=base.known_hosts_file,
    )


def child_env(credentials: GitCredentials | None, password_fd: int | None) -> dict[str, str]:
    """Variables that tell git's askpass script and ssh where the credentials are."""
    env = {"DOCKYARD_GIT_PASSWORD_FD": "" if password_fd is None else str(password_fd)}
    username = credentials.username if credentials else None
    env["DOCKYARD_GIT_USERNAME"] = username or DEFAULT_USERNAME
    if credentials and credentials.token_env:
        env[credentials.token_env] = ""  # git gets it from the pipe, not from its environment
    ssh = credentials.ssh_command() if credentials else None
    # BatchMode: ssh must fail, not prompt for a passphrase or a host key.
    env["GIT_SSH_COMMAND"] = ssh or os.environ.get("GIT_SSH_COMMAND") or "ssh -o BatchMode=yes"
    return env


def password_pipe(token: str) -> int:
    """The read end of a pipe that holds ``token`` once per line, ``PASSWORD_COPIES`` times.

    Written in full before git starts, so nothing waits on git. The caller passes the
    read end to one git command only and closes it afterwards.
    """
    read_end, write_end = os.pipe()
    try:
        os.set_blocking(write_end, False)
        line = (token + "\n").encode()
        with contextlib.suppress(BlockingIOError):  # a full pipe: fewer prompts answered
            for _ in range(PASSWORD_COPIES):
                os.write(write_end, line)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return read_end


def _plain(raw: Any, key: str) -> str:
    if hasattr(raw, "get_secret_value"):  # pydantic SecretStr, Prefect Secret-like
        raw = raw.get_secret_value()
    if isinstance(raw, str | os.PathLike):
        return os.fspath(raw)
    raise UsageError(f"git credentials: {key!r} must be a string, not {type(raw).__name__}")
