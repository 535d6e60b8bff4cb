"""Owner leases on a SQLite state file: held while the process lives, free after kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.errors import StateStoreError
from dockyard.store import open_store

SRC = Path(__file__).parents[2] / "src"


def test_a_live_owner_is_alive_for_others_and_a_killed_one_is_not(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with open_store(state) as mine:
        me = mine.take_lease()
        assert mine.take_lease() == me and mine.owner_alive(me)
        with open_store(state) as other:
            assert other.owner_alive(me)  # another process (or store) sees the lock held
            assert not other.owner_alive(None) and not other.owner_alive("never-was")
            assert not other.owner_alive("../escape")
        code = f"""
import os, sys
sys.path.insert(0, {str(SRC)!r})
from dockyard.store import open_store
print(open_store({str(state)!r}).take_lease(), flush=True)
os.kill(os.getpid(), 9)
"""
        killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL
        gone = killed.stdout.strip()
        assert (tmp_path / "state.db.owners" / f"{gone}.lock").exists()
        assert not mine.owner_alive(gone)
        assert not (tmp_path / "state.db.owners" / f"{gone}.lock").exists()
    with open_store(state) as later:
        assert not later.owner_alive(me)  # closed: released


def test_a_deleted_or_replaced_state_file_fails_ping(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with open_store(state) as store:
        store.ping()
        state.unlink()
        with pytest.raises(StateStoreError, match="was deleted while dockyard was running"):
            store.ping()
    with open_store(state) as store:
        replacement = tmp_path / "other.db"
        open_store(replacement).close()
        replacement.replace(state)
        with pytest.raises(StateStoreError, match="was replaced by another file"):
            store.ping()


def test_a_new_state_file_and_its_directory_are_private(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state.db"
    open_store(state).close()
    assert state.stat().st_mode & 0o777 == 0o600
    assert state.parent.stat().st_mode & 0o777 == 0o700
