"""Entrypoints (``path/to/file.py:flow``): parse them and import the flow they name.

Used by the serve process's probe and by each run's subprocess, so this module (and
``flows``/``parameters``) must import quickly: no web, database or docker imports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.errors import EntrypointError

if TYPE_CHECKING:
    from dockyard.core.flows import Flow


@dataclass(frozen=True)
class Entrypoint:
    """A flow's location: a ``.py`` file (relative to a code directory) and an attribute.

    ``attr`` may be dotted (``processor.process_batch``) to reach a flow on a
    module-level object.
    """

    path: str
    attr: str

    def __str__(self) -> str:
        return f"{self.path}:{self.attr}"


def parse_entrypoint(text: str) -> Entrypoint:
    """Parse ``path/to/file.py:func`` (the last ``:`` separates path and attribute)."""
    path, sep, attr = text.strip().rpartition(":")
    if not sep:
        raise EntrypointError(f"entrypoint {text!r} has no ':'; use path/to/file.py:flow_function")
    if not path or not attr:
        raise EntrypointError(
            f"entrypoint {text!r} is incomplete; use path/to/file.py:flow_function"
        )
    if not path.endswith(".py"):
        raise EntrypointError(f"entrypoint {text!r}: the path must be a .py file")
    if not all(part.isidentifier() for part in attr.split(".")):
        raise EntrypointError(f"entrypoint {text!r}: {attr!r} is not a Python name")
    return Entrypoint(path=path, attr=attr)


def load_flow(
    entrypoint: Entrypoint | str, base_dir: str | os.PathLike[str] = ".", *, as_main: bool = False
) -> Flow[..., Any]:
    """Import the entrypoint's file from ``base_dir`` and return the flow it names.

    The file is imported under a module name derived from its absolute path, so its
    ``if __name__ == "__main__":`` block does not run. With ``as_main=True`` it is
    imported as ``__mp_main__`` and also registered as ``sys.modules["__main__"]``, so
    objects pickled from a script's ``__main__`` unpickle (multiprocessing's spawn trick).
    ``base_dir`` and the file's directory go to the front of ``sys.path``.
    """
    ep = parse_entrypoint(entrypoint) if isinstance(entrypoint, str) else entrypoint
    base = Path(base_dir).resolve()
    file = (base / ep.path).resolve()
    if not file.is_file():
        raise EntrypointError(f"entrypoint file {ep.path!r} not found in {base}")
    module = import_file(file, base, display=ep.path, as_main=as_main)
    return _resolve_attr(module, ep)


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


def flows_in_module(module: types.ModuleType) -> dict[str, Flow[..., Any]]:
    """The module-level attributes of ``module`` that are flows, by attribute name."""
    from dockyard.core.flows import Flow

    return {name: obj for name, obj in vars(module).items() if isinstance(obj, Flow)}


def entrypoint_for(
    flow: Flow[..., Any], base_dir: str | os.PathLike[str] = "."
) -> Entrypoint | None:
    """Best-effort entrypoint of an already imported flow, relative to ``base_dir``.

    Finds the module-level name holding the flow (or, for a flow bound to an instance,
    the name holding that instance). Returns None if the file is outside ``base_dir`` or
    no module-level name refers to it (e.g. an instance created under ``__main__`` guard
    of a module imported under another name).
    """
    file = flow.source_file
    module = sys.modules.get(getattr(flow.fn, "__module__", "") or "")
    if file is None or module is None:
        return None
    try:
        rel = Path(file).resolve().relative_to(Path(base_dir).resolve())
    except ValueError:
        return None
    attr = _attr_name_in(module, flow)
    return Entrypoint(rel.as_posix(), attr) if attr else None


# ── helpers ────────────────────────────────────────────────────────────────────────


def _attr_name_in(module: types.ModuleType, flow: Flow[..., Any]) -> str | None:
    target = flow.bound_instance if flow.bound_instance is not None else flow
    for name, obj in vars(module).items():
        if obj is target:
            return f"{name}.{flow.fn.__name__}" if flow.bound_instance is not None else name
    return None


def _prepend_sys_path(*dirs: Path) -> None:
    for directory in reversed(dirs):
        entry = str(directory)
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def _resolve_attr(module: types.ModuleType, ep: Entrypoint) -> Flow[..., Any]:
    from dockyard.core.flows import Flow

    obj: Any = module
    for part in ep.attr.split("."):
        if not hasattr(obj, part):
            available = ", ".join(sorted(flows_in_module(module))) or "none"
            raise EntrypointError(
                f"{ep.path} has no flow {ep.attr!r}; flows defined there: {available}"
            )
        obj = getattr(obj, part)
    if not isinstance(obj, Flow):
        raise EntrypointError(f"{ep} is {_describe(obj)}, not a flow: decorate it with @flow")
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
