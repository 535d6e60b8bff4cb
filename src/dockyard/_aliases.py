"""Prefect's import paths for names dockyard has in one place, and clear errors for the
Prefect features it does not have.

``from dockyard.client.schemas.schedules import IntervalSchedule`` works like
``from prefect.client.schemas.schedules import ...``: a finder on ``sys.meta_path`` makes
each alias a small module that forwards to the module that has the names, instead of a
package of re-export files per alias. Unsupported features (blocks, variables, artifacts,
transactions, work pools...) import, and name the feature when one of their names is used.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

from dockyard.errors import UnsupportedFeature

ALIASES = {
    "dockyard.client.schemas": "dockyard.states",
    "dockyard.client.schemas.objects": "dockyard.states",
    "dockyard.client.schemas.schedules": "dockyard.schedules",
    "dockyard.server": "dockyard.states",
    "dockyard.server.schemas": "dockyard.states",
    "dockyard.server.schemas.schedules": "dockyard.schedules",
    "dockyard.server.schemas.states": "dockyard.states",
    "dockyard.runner": "dockyard.deployments",
    "dockyard.runner.storage": "dockyard.sources.repository",
    "dockyard.deployments.runner": "dockyard.deployments",
    "dockyard.utilities": "dockyard.engine.annotations",
    "dockyard.utilities.annotations": "dockyard.engine.annotations",
    "dockyard.logging.loggers": "dockyard.logging",
}
"""Prefect path (with ``dockyard`` for ``prefect``) → the dockyard module with its names."""

_STORE_IT_ELSEWHERE = "keep the value in an environment variable or a mounted file instead"
UNSUPPORTED = {
    "dockyard.blocks": f"Prefect blocks are not part of dockyard: {_STORE_IT_ELSEWHERE}",
    "dockyard.variables": f"Prefect variables are not part of dockyard: {_STORE_IT_ELSEWHERE}",
    "dockyard.artifacts": (
        "Prefect artifacts are not part of dockyard: log the content with get_run_logger()"
    ),
    "dockyard.transactions": (
        "Prefect transactions are not part of dockyard: use on_failure hooks to undo work"
    ),
    "dockyard.workers": (
        "Prefect workers and work pools are not part of dockyard: use `dockyard serve`"
    ),
    "dockyard.infrastructure": (
        "Prefect infrastructure blocks are not part of dockyard: use `dockyard build`"
    ),
    "dockyard.concurrency": (
        "Prefect global concurrency limits are not part of dockyard: use concurrency_limit"
    ),
    "dockyard.events": "Prefect events and automations are not part of dockyard yet",
    "dockyard.input": "pausing a flow run for input is not part of dockyard",
}
"""Module prefixes dockyard does not have → what the error says to do instead."""

UNSUPPORTED_NAMES = {
    "Transaction": "dockyard.transactions",
    "pause_flow_run": "dockyard.input",
    "suspend_flow_run": "dockyard.input",
    "resume_flow_run": "dockyard.input",
    "deploy": "dockyard.workers",
    "aserve": "dockyard.workers",
}
"""Top-level Prefect names dockyard does not have → the feature they belong to."""


def unsupported_message(module: str, name: str | None = None) -> str:
    prefix = next(p for p in UNSUPPORTED if module == p or module.startswith(p + "."))
    used = f"{module}.{name}" if name else module
    return f"{used}: {UNSUPPORTED[prefix]}"


def _unsupported_prefix(fullname: str) -> bool:
    return any(fullname == p or fullname.startswith(p + ".") for p in UNSUPPORTED)


class _Forwarding(types.ModuleType):
    """A module that hands out another module's names (and can hold sub-aliases)."""

    def __init__(self, name: str, target: str | None) -> None:
        super().__init__(name)
        self.__path__: list[str] = []
        self._target = target

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._target is None:
            raise UnsupportedFeature(unsupported_message(self.__name__, attr))
        return getattr(importlib.import_module(self._target), attr)

    def __dir__(self) -> list[str]:
        if self._target is None:
            return []
        return sorted(dir(importlib.import_module(self._target)))


class _AliasFinder:
    """A meta path finder and its loader (duck-typed: ``importlib.abc`` costs 15 ms)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in ALIASES or _unsupported_prefix(fullname):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)  # type: ignore[arg-type]
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _Forwarding(spec.name, ALIASES.get(spec.name))

    def exec_module(self, module: types.ModuleType) -> None:
        return None


_FINDER = _AliasFinder()


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once); real modules are found first."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
