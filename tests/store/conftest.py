"""The backends the store contract runs against, and the fixtures that open them.

``BACKENDS`` maps a backend's id to a function that, given the test's request and
``tmp_path``, says how to open stores on one fresh database of that backend. ``open_backend``
and ``store`` are parametrized over it, so every test that takes them runs once per backend:

- ``sqlite``: a new file in ``tmp_path``;
- ``postgresql``: a new database on the test session's private server (tests/pg.py), copied
  from a template database migrated once per session, dropped after the test. Where
  PostgreSQL is not installed these tests skip (they fail when ``CI`` is set).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.store import open_store
from dockyard.store.base import StateStore
from tests.pg import (  # noqa: F401 (fixtures the store tests use)
    PgServer,
    pg_database,
    pg_migrated_template,
    pg_private_server,
    pg_server,
)
from tests.store.support import DEP, T0, Opener


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    url = f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    return functools.partial(open_store, url)


def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    server: PgServer = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("pg_migrated_template")
    name = server.create_database(template=template)
    request.addfinalizer(functools.partial(server.drop_database, name))
    return functools.partial(open_store, server.url(name))


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Opener]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=list(BACKENDS))
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Open (possibly several) stores on one database of the backend under test."""
    connect = BACKENDS[request.param](request, tmp_path)
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
