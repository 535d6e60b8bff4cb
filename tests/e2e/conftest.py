"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.docker_support import FIGURES
from tests.helpers import FLOWS


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working directory holding a copy of tests/e2e/flows as ``flows/``.

    Tests run ``dockyard serve flows/behaviours.py:…`` in it; the state file and any
    marker files the flows write land next to it, in the test's own ``tmp_path``.
    """
    shutil.copytree(FLOWS, tmp_path / "flows")
    return tmp_path


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    """Print what a Docker module measured (tests/e2e/docker_support.FIGURES), for the
    README's tables: run with -s. Each module prints (and clears) its own."""
    yield
    if FIGURES:
        print("\n".join(f"FIGURE {k}: {v:.2f}" for k, v in FIGURES.items()))
        FIGURES.clear()
