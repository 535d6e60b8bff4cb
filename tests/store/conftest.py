"""The backends the store contract runs against, and the fixtures that open them.

``BACKENDS`` maps a backend's id to a function that, given the test's ``tmp_path``, says how
to open stores on one fresh database of that backend. ``open_backend`` and ``store`` are
parametrized over it, so every test that takes them runs once per backend. PostgreSQL is
one more entry (a throwaway database on a server CI starts, behind a marker that skips it
where no server is configured).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.store import open_store
from dockyard.store.base import StateStore
from tests.store.support import DEP, T0, Opener


def _sqlite(tmp_path: Path) -> Opener:
    url = f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    return functools.partial(open_store, url)


BACKENDS: dict[str, Callable[[Path], Opener]] = {
    "sqlite": _sqlite,
}


@pytest.fixture(params=list(BACKENDS))
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Open (possibly several) stores on one database of the backend under test."""
    connect = BACKENDS[request.param](tmp_path)
    opened: list[StateStore] = []

    def opener(**kwargs: object) -> StateStore:
        store = connect(**kwargs)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def store(open_backend: Opener) -> StateStore:
    """A store of the backend under test, with the deployment ``DEP`` in it."""
    store = open_backend()
    store.upsert_deployment(DEP, "nightly", {"schedule": "0 * * * *"}, now=T0)
    return store
