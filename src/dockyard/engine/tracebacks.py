"""Tracebacks of a failed run that start at the user's code.

The frames of dockyard's own machinery (the child, the in-process runner, the flow and
task engines, the invoke layers) say nothing about why a flow failed: they are left out
of the traceback a run prints and stores, as Prefect leaves out its engine's. Each
exception of a chain ("During handling of the above exception…") is trimmed on its own;
one that has no user frame at all (a failure inside dockyard) keeps every frame.
"""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path

_DOCKYARD = str(Path(__file__).resolve().parents[1])
_STDLIB = tuple(
    {str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("stdlib", "platstdlib")}
)


def format_user_exception(exc: BaseException) -> str:
    """``exc`` formatted like ``traceback.format_exception``, minus dockyard's frames."""
    formatted = traceback.TracebackException.from_exception(exc)
    _trim_chain(formatted, set())
    return "".join(formatted.format())


def _trim_chain(exc: traceback.TracebackException, seen: set[int]) -> None:
    if id(exc) in seen:  # a chain may loop back on itself
        return
    seen.add(id(exc))
    exc.stack = traceback.StackSummary.from_list(user_frames(list(exc.stack)))
    for linked in (exc.__cause__, exc.__context__, *(getattr(exc, "exceptions", None) or ())):
        if linked is not None:
            _trim_chain(linked, seen)


def user_frames(frames: list[traceback.FrameSummary]) -> list[traceback.FrameSummary]:
    """The frames from the first user frame on, without the stretches of machinery between
    two user frames that pass through dockyard (a task called from the flow). The frames
    after the last user frame stay: they show where a call from the user's code failed."""
    users = [i for i, frame in enumerate(frames) if is_user_frame(frame.filename)]
    if not users:
        return frames
    kept = []
    for before, after in zip(users, users[1:], strict=False):
        kept.append(frames[before])
        between = frames[before + 1 : after]
        if not any(is_dockyard_frame(f.filename) for f in between):
            kept.extend(between)
    return kept + frames[users[-1] :]


def is_dockyard_frame(filename: str) -> bool:
    return _under(filename, (_DOCKYARD,))


def is_user_frame(filename: str) -> bool:
    """Neither dockyard's nor the standard library's (third-party packages count as the
    user's: the user called them)."""
    if filename.startswith("<frozen "):
        return False
    if is_dockyard_frame(filename):
        return False
    if "site-packages" in filename or "dist-packages" in filename:
        return True
    return not _under(filename, _STDLIB)


def _under(filename: str, roots: tuple[str, ...]) -> bool:
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return False
    return any(path == root or path.startswith(root + "/") for root in roots)
