"""Keeping dockyard's secrets away from flow code: the runs' environment, and the serve
process's own ``/proc`` files.

A run or probe is a child of the serve process, so it can read
``/proc/<ppid>/environ`` and ``/proc/<ppid>/cmdline``. Those show the memory the
kernel set up at exec: deleting ``os.environ`` entries does not change them. So
``protect_process`` overwrites the secret values in that memory itself, and marks
the process non-dumpable, which makes its ``/proc`` files unreadable to other
processes of the same non-root user (root still reads them: hence the overwrite).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

SECRET_ENV = frozenset(
    {
        "DOCKYARD_API_TOKEN",
        "DOCKYARD_SOURCE_TOKEN",
        "DOCKYARD_SOURCE_WEBHOOK_SECRET",
        "DOCKYARD_DATABASE_URL",
        "PGPASSWORD",
    }
)
"""dockyard's own secrets: flow code (and what it logs) never sees them. The state
database's URL and libpq's PGPASSWORD are among them: settings keep both for the store."""
_HIDDEN: set[str] = set()
"""Variables the user named as secrets (a git source's ``token_env``), hidden like those."""
URL_ENV = frozenset({"DOCKYARD_SOURCE"})
"""Variables that hold a URL whose ``user:token@`` part is a secret."""

_PR_SET_DUMPABLE = 4
# scheme://userinfo@ — userinfo holds no '/', '@' or whitespace.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*)(?::[^/@\s]*)?@")


def strip_userinfo(text: str) -> str:
    """``text`` with the credentials of every URL in it removed.

    http(s) URLs lose the whole ``user:token@`` (as ``GitRepository.safe_url``); other
    schemes keep the login (``ssh://git@host``) and lose only the password.
    """

    def clean(match: re.Match[str]) -> str:
        scheme, user = match["scheme"], match["user"]
        if scheme.lower() in ("http://", "https://") or not user:
            return scheme
        return f"{scheme}{user}@"

    return _USERINFO.sub(clean, text)


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a run or probe: this process's, minus dockyard's secrets, plus
    ``extra``. URL variables are kept without their credentials."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV and k not in _HIDDEN}
    for name in URL_ENV & env.keys():
        env[name] = strip_userinfo(env[name])
    env.update(extra or {})
    return env


def protect_process(hide: Iterable[str] = ()) -> None:
    """Make this process's secrets unreadable to the processes it starts.

    ``hide`` names more variables to treat as secrets from now on (the caller has kept
    their values where it needs them).

    Call once settings have been read (they come from the environment, which this
    empties of secrets). Marks the process non-dumpable, overwrites the secret values
    in the environment and argument blocks that ``/proc/<pid>/environ`` and
    ``/proc/<pid>/cmdline`` show, and removes them from ``os.environ``. Calling it again
    is harmless; on systems other than Linux it does nothing.
    """
    _HIDDEN.update(hide)
    if not sys.platform.startswith("linux"):
        for name in _HIDDEN:
            os.environ.pop(name, None)
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    args, env = _blocks()
    _rewrite_block(*env, _clean_variable)
    _rewrite_block(*args, strip_userinfo)
    for name in SECRET_ENV | _HIDDEN:
        os.environ.pop(name, None)  # unsetenv(3): libc's environ no longer points at it
    for name in URL_ENV & os.environ.keys():
        if (clean := strip_userinfo(os.environ[name])) != os.environ[name]:
            os.environ[name] = clean


def hide_argv_credentials() -> None:
    """Remove the passwords of URLs in this process's arguments from what ``ps`` and
    ``/proc/<pid>/cmdline`` show (``--database-url postgresql://user:pw@…``), at once."""
    if sys.platform.startswith("linux"):
        args, _ = _blocks()
        _rewrite_block(*args, strip_userinfo)


def _clean_variable(entry: str) -> str:
    name, sep, value = entry.partition("=")
    if not sep:
        return entry
    if name in SECRET_ENV or name in _HIDDEN:
        return f"{name}="
    if name in URL_ENV:
        return f"{name}={strip_userinfo(value)}"
    return entry


def _blocks() -> tuple[tuple[int, int], tuple[int, int]]:
    """``((arg_start, arg_end), (env_start, env_end))`` of this process, from
    /proc/self/stat (fields 48-51; zeros where the kernel does not show them)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        # Fields after the command name (in parentheses, may hold anything) start at 3.
        fields = [int(f) for f in stat.rpartition(")")[2].split()[45:49]]
    except (OSError, ValueError):
        return (0, 0), (0, 0)
    if len(fields) != 4:
        return (0, 0), (0, 0)
    return (fields[0], fields[1]), (fields[2], fields[3])


def _rewrite_block(start: int, end: int, clean: Callable[[str], str]) -> None:
    """Apply ``clean`` to each NUL-terminated string of the block, in place.

    A cleaned string is never longer than the original; the bytes it frees become
    NULs, so ``/proc`` shows the shorter string (and empty strings after it).
    """
    if not start or end <= start:
        return
    block = ctypes.string_at(start, end - start)
    offset = 0
    for raw in block.split(b"\0"):
        text = raw.decode("utf-8", "surrogateescape")
        cleaned = clean(text).encode("utf-8", "surrogateescape")
        if cleaned != raw and len(cleaned) <= len(raw):
            ctypes.memmove(start + offset, cleaned + b"\0" * (len(raw) - len(cleaned)), len(raw))
        offset += len(raw) + 1


def stamp_variable(name: str, value: str) -> bool:
    """Write ``value`` over ``name``'s value in this process's exec-time environment block
    (what ``/proc/<pid>/environ`` shows), which must hold a value at least as long.

    A process forked without exec keeps its parent's block: the warm executor's children
    name their run there, so that ``leftovers`` finds what a run left behind. False when
    the block holds no such variable (or off Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    _args, env = _blocks()
    prefix, stamped = f"{name}=", False

    def stamp(entry: str) -> str:
        nonlocal stamped
        if entry.startswith(prefix) and len(value) <= len(entry) - len(prefix):
            stamped = True
            return prefix + value
        return entry

    _rewrite_block(*env, stamp)
    return stamped
