"""The git command line: the one place dockyard runs ``git`` (git sources and ``dockyard build``).

Each command runs in a process group of its own, so a timeout kills git with every helper
it started (``git-remote-http``, ``ssh``, ``upload-pack``), and without a controlling
terminal, so nothing can prompt. Messages are in the C locale (callers classify stderr),
and ``GIT_TERMINAL_PROMPT=0`` is always set. The environment is the process's own plus
``env``; file descriptors other than ``pass_fds`` are not inherited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["GitCommandError", "run_git"]

_FIXED_ENV = {"LANGUAGE": "C", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}


class GitCommandError(Exception):
    """A git command failed: it exited non-zero, ran out of time or could not start.

    ``detail`` is git's stderr (else its stdout, else the exit status) or what happened.
    """

    def __init__(self, command: str, detail: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{command}: {detail}")
        self.command = command
        self.detail = detail
        self.timed_out = timed_out


def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    timeout_seconds: float,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> str:
    """Run ``git ARGS`` in ``cwd`` and return its stdout, stripped.

    Raises GitCommandError; after ``timeout_seconds`` the command's process group is killed.
    """
    command = _name(args)
    try:
        process = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env={**os.environ, **_FIXED_ENV, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise GitCommandError(command, "git is not installed (not found on PATH)") from None
    except OSError as exc:
        raise GitCommandError(command, f"cannot start git: {exc.strerror}") from None
    with process:
        try:
            out, err = process.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            detail = f"Timeout: the command did not complete in {timeout_seconds:g} secs"
            raise GitCommandError(command, detail, timed_out=True) from None
        except BaseException:  # KeyboardInterrupt, a cancelled thread: leave nothing behind
            _kill_group(process)
            raise
    if process.returncode != 0:
        detail = _text(err) or _text(out) or f"exit status {process.returncode}"
        raise GitCommandError(command, detail)
    return _text(out)


def _name(args: Sequence[str]) -> str:
    """``git fetch`` for ``-c k=v -C dir fetch …``: the subcommand, for messages."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("-c", "-C") else rest[1:]
    return f"git {rest[0]}" if rest else "git"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone, with its whole group
        os.killpg(process.pid, signal.SIGKILL)
    # The group is dead, so its pipes close; a helper that left the group cannot hold us.
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=5)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace").strip()
