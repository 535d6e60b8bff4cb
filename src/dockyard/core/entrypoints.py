"""Entrypoints (``path/to/file.py:flow``): parsing only (importing one is ``execution.loading``)."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.errors import EntrypointError


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
