"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import FLOWS


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working directory holding a copy of tests/e2e/flows as ``flows/``.

    Tests run ``dockyard serve flows/behaviours.py:…`` in it; the state file and any
    marker files the flows write land next to it, in the test's own ``tmp_path``.
    """
    shutil.copytree(FLOWS, tmp_path / "flows")
    return tmp_path
