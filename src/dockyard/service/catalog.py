"""The deployments this serve process serves right now, by full name (in memory)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from dockyard.core.deployments import Deployment
from dockyard.errors import NotFoundError


class Catalog:
    """Served deployments; a new code revision adds, replaces or removes some."""

    def __init__(self, deployments: Iterable[Deployment] = ()) -> None:
        self._by_name = {d.full_name: d for d in deployments}
        self.version = 0
        """Counts changes (put, remove): the scheduler re-reads the catalog when it moved."""

    def get(self, name: str) -> Deployment:
        """The deployment, or ``NotFoundError`` listing what is served."""
        deployment = self._by_name.get(name)
        if deployment is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise NotFoundError(f"unknown deployment {name!r}; served here: {known}")
        return deployment

    def find(self, name: str) -> Deployment | None:
        return self._by_name.get(name)

    def put(self, deployment: Deployment) -> None:
        self._by_name[deployment.full_name] = deployment
        self.version += 1

    def remove(self, name: str) -> None:
        self._by_name.pop(name, None)
        self.version += 1

    def from_source(self, key: str) -> set[str]:
        """Names of the deployments made from git source ``key``."""
        return {n for n, d in self._by_name.items() if d.source_key == key}

    def names(self) -> list[str]:
        return list(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Deployment]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)
