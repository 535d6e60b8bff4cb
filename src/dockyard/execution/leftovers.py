"""What a run leaves behind, found and killed: its process group and processes that escaped it.

Each run process starts a new session, so its pid is also its process-group id, and carries
``DOCKYARD_RUN_ID`` in its environment, which everything it starts inherits. When a run
ends (or a later start of dockyard finds it left Running by a serve process that was
killed) three things go: the group, every process whose environment names the run (a
double-forked daemon that left the group), and nothing else — a process is only taken
for the run's when its identity matches: the same boot, the same pid namespace and a
start time no earlier than the run's, so a reused pid is never hit.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_ID_ENV = "DOCKYARD_RUN_ID"
_PROC = Path("/proc")
_PR_SET_PDEATHSIG = 1
_PR_GET_CHILD_SUBREAPER = 37


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when the serve process that started it dies.

    SIGKILL, not SIGTERM: flow code may ignore or handle SIGTERM, and a run that outlived a
    ``kill -9`` of its serve process would run unsupervised (and again, on retry, next to
    the next start's attempt). What the run started itself is killed by the next start.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


@dataclass(frozen=True)
class ProcessIdentity:
    """A process named so that a later life of dockyard cannot mistake another for it."""

    boot: str
    pidns: str
    pid: int
    start: int  # clock ticks after boot (/proc/<pid>/stat field 22)
    result: str = ""
    """Where the attempt writes its result: read by a later start if the run reported."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> ProcessIdentity | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(
                str(data["boot"]), str(data["pidns"]), int(data["pid"]), int(data["start"]),
                str(data.get("result") or ""),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


@functools.cache
def _boot_id() -> str:
    return _read(_PROC / "sys/kernel/random/boot_id") or ""


@functools.cache
def _pid_namespace() -> str:
    try:
        return os.readlink(_PROC / "self/ns/pid")
    except OSError:
        return ""


def _stat(pid: int) -> tuple[int, int] | None:
    """(process-group id, start time) of ``pid``; None when it is gone or a zombie."""
    text = _read(_PROC / str(pid) / "stat")
    if text is None:
        return None
    # The fields after the command name, which is in parentheses and may hold spaces.
    fields = text.rpartition(")")[2].split()
    try:
        if fields[0] in ("Z", "X"):
            return None  # dead already: nothing to kill
        return int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None


def identify(pid: int) -> ProcessIdentity | None:
    """The identity of the live process ``pid`` (None off Linux or when it is gone)."""
    stat = _stat(pid)
    if stat is None:
        return None
    return ProcessIdentity(_boot_id(), _pid_namespace(), pid, stat[1])


def _names_run(pid: int, marker: bytes) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return marker in environ.split(b"\0")


def _pids() -> list[int]:
    try:
        return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return []


def _is_subreaper() -> bool:
    """Whether orphaned descendants of this process are re-parented to it (reaper.py)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        flag = ctypes.c_int(0)
        if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return flag.value != 0


def _descendants(root: int) -> list[int] | None:
    """Every live descendant of ``root`` (None where /proc does not list children)."""
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        tasks = _PROC / str(pid) / "task"
        try:
            threads = list(tasks.iterdir())
        except FileNotFoundError:
            continue  # gone meanwhile: so are its children's links to it
        except OSError:
            return None
        for task in threads:
            text = _read(task / "children")
            if text is None:
                if task.exists():
                    return None  # a kernel without CONFIG_PROC_CHILDREN
                continue  # the thread ended meanwhile
            for child in text.split():
                found.append(int(child))
                todo.append(int(child))
    return found


def _candidates() -> list[int]:
    """The processes that may belong to one of this process's runs.

    A subreaper's runs never leave its tree: an orphan is re-parented to the nearest
    subreaper. So only its descendants are read, not the whole of /proc (a run's end
    costs a few reads, not one per process of the machine).
    """
    if _is_subreaper():
        mine = _descendants(os.getpid())
        if mine is not None:
            return mine
    return _pids()


def find_leftovers(
    run_id: str, leader: ProcessIdentity | None, *, own_run: bool = False
) -> list[int]:
    """Live processes of run ``run_id``: its group (when ``leader`` is of this boot and
    namespace) and everything whose environment names the run. ``own_run``: a run this
    process started (only its descendants can be the run's), not one of an earlier life."""
    marker = f"{RUN_ID_ENV}={run_id}".encode()
    group = None
    if leader is not None and (leader.boot, leader.pidns) == (_boot_id(), _pid_namespace()):
        group = leader
    me = os.getpid()
    found: list[int] = []
    for pid in _candidates() if own_run else _pids():
        if pid == me:
            continue
        stat = _stat(pid)
        if stat is None:
            continue
        pgid, start = stat
        if group is not None and start < group.start:
            continue  # older than the run: not one of its descendants
        if (group is not None and pgid == group.pid) or _names_run(pid, marker):
            found.append(pid)
    return found


def kill_leftovers(
    run_id: str, leader: ProcessIdentity | None = None, *, own_run: bool = False
) -> int:
    """SIGKILL what ``find_leftovers`` finds; return how many processes were signalled."""
    killed = 0
    for pid in find_leftovers(run_id, leader, own_run=own_run):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed
