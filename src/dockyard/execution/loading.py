"""Importing user code: the flow an entrypoint names, and the deployments made from it.

Only ever used in a process that may hold the user's code: a run's child, the probe
subprocess, ``dockyard build`` and a user's own script calling ``flow.serve()``; never by
the serve process itself. It must import quickly: no web, database or docker imports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from dockyard.core.entrypoints import Entrypoint, parse_entrypoint
from dockyard.core.flows import FlowDefinition
from dockyard.errors import EntrypointError


def load_flow(
    entrypoint: Entrypoint | str, base_dir: str | os.PathLike[str] = ".", *, as_main: bool = False
) -> FlowDefinition[..., Any]:
    """Import the entrypoint's file from ``base_dir`` and return the flow it names.

    The file is imported under a module name derived from its absolute path, so its
    ``if __name__ == "__main__":`` block does not run. With ``as_main=True`` it is
    imported as ``__mp_main__`` and also registered as ``sys.modules["__main__"]``, so
    objects pickled from a script's ``__main__`` unpickle (multiprocessing's spawn trick).
    ``base_dir`` and the file's directory go to the front of ``sys.path``.
    """
    ep, obj = _load_attr(entrypoint, base_dir, as_main=as_main)
    if not isinstance(obj, FlowDefinition):
        raise EntrypointError(f"{ep} is {_describe(obj)}, not a flow: decorate it with @flow")
    return obj


def load_target(entrypoint: str, base_dir: str | os.PathLike[str] = ".") -> Any:
    """The flow, or the ``Deployment`` (``flow.to_deployment(...)`` at module level), that an
    entrypoint names; anything else is an EntrypointError."""
    from dockyard.core.deployments import Deployment

    ep, obj = _load_attr(entrypoint, base_dir)
    if not isinstance(obj, (FlowDefinition, Deployment)):
        raise EntrypointError(f"{ep} is {_describe(obj)}, not a flow: decorate it with @flow")
    return obj


def _load_attr(
    entrypoint: Entrypoint | str, base_dir: str | os.PathLike[str], *, as_main: bool = False
) -> tuple[Entrypoint, Any]:
    ep = parse_entrypoint(entrypoint) if isinstance(entrypoint, str) else entrypoint
    base = Path(base_dir).resolve()
    file = (base / ep.path).resolve()
    if not file.is_file():
        raise EntrypointError(f"entrypoint file {ep.path!r} not found in {base}")
    module = import_file(file, base, display=ep.path, as_main=as_main)
    return ep, _resolve_attr(module, ep)


def import_file(
    file: Path, base_dir: Path, *, display: str | None = None, as_main: bool = False
) -> types.ModuleType:
    """Import one Python file as a fresh module; import errors become ``EntrypointError``."""
    name = "__mp_main__" if as_main else module_name_for(file)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"cannot import {display or file}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    _prepend_sys_path(base_dir, file.parent)
    previous_main = sys.modules.get("__main__")
    sys.modules[name] = module
    if as_main:
        sys.modules["__main__"] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        if as_main and previous_main is not None:
            sys.modules["__main__"] = previous_main
        raise _import_error(exc, display or str(file), base_dir) from exc
    return module


def module_name_for(file: Path) -> str:
    """A unique, stable module name for a file (never ``__main__``)."""
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in file.stem)
    return f"_dockyard_user_{stem}_{digest}"


def flows_in_module(module: types.ModuleType) -> dict[str, FlowDefinition[..., Any]]:
    """The module-level attributes of ``module`` that are flows, by attribute name."""
    return {name: obj for name, obj in vars(module).items() if isinstance(obj, FlowDefinition)}


def source_file(fn: Any) -> str | None:
    """Absolute path of the file that defines ``fn``, if it has one."""
    try:
        path = inspect.getsourcefile(inspect.unwrap(fn))
    except (TypeError, OSError):
        return None
    return str(Path(path).resolve()) if path and Path(path).is_file() else None


def file_hash(fn: Any) -> str | None:
    """md5 of the file defining ``fn``: a flow's default version."""
    path = source_file(fn)
    if path is None:
        return None
    return hashlib.md5(Path(path).read_bytes(), usedforsecurity=False).hexdigest()


# ── helpers ────────────────────────────────────────────────────────────────────────


def _prepend_sys_path(*dirs: Path) -> None:
    for directory in reversed(dirs):
        entry = str(directory)
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def _resolve_attr(module: types.ModuleType, ep: Entrypoint) -> Any:
    obj: Any = module
    for part in ep.attr.split("."):
        if not hasattr(obj, part):
            available = ", ".join(sorted(flows_in_module(module))) or "none"
            raise EntrypointError(
                f"{ep.path} has no flow {ep.attr!r}; flows defined there: {available}"
            )
        obj = getattr(obj, part)
    return obj


def _describe(obj: Any) -> str:
    if inspect.isclass(obj):
        return "a class"
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return "a function"
    if inspect.ismodule(obj):
        return "a module"
    kind = type(obj).__name__
    return f"an {kind}" if kind[:1].lower() in "aeiou" else f"a {kind}"


def _import_error(exc: BaseException, display: str, base_dir: Path) -> EntrypointError:
    where = _error_location(exc, base_dir)
    suffix = f" ({where})" if where else ""
    detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    text = " ".join(text.split())  # one line, always
    return EntrypointError(f"importing {display} failed: {text}{suffix}")


def _error_location(exc: BaseException, base_dir: Path) -> str | None:
    """``file, line N`` of the deepest user-code frame (or of a SyntaxError)."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{_display_path(exc.filename, base_dir)}, line {exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if _is_under(f.filename, base_dir)]
    if not user:
        return None
    return f"{_display_path(user[-1].filename, base_dir)}, line {user[-1].lineno}"


def _is_under(filename: str, base_dir: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(base_dir)
    except (ValueError, OSError):
        return False
    return True


def _display_path(filename: str, base_dir: Path) -> str:
    try:
        return Path(filename).resolve().relative_to(base_dir).as_posix()
    except (ValueError, OSError):
        return filename
