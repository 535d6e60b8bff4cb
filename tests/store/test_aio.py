"""``AsyncStore``, the serve process's store: the same calls, awaited, on its own thread."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.core.records import NewRun
from dockyard.core.states import RunState
from dockyard.store.aio import AsyncStore
from tests.store.support import DEP, T0, Opener


def test_claim_is_pending_in_one_write_once_per_slot_then_close(open_backend: Opener) -> None:
    async def go() -> str:
        store = await AsyncStore.open(open_backend)
        await store.upsert_deployment(DEP, "nightly", {}, now=T0)
        slot = NewRun(DEP, "nightly", {"n": 1}, T0, "schedule", state=RunState.PENDING)

        run = await store.claim_slot(slot)
        assert run is not None
        assert run.state is RunState.PENDING
        history = await store.state_history(run.id)
        assert [event.state for event in history] == [RunState.PENDING]

        again = NewRun(DEP, "nightly", {"n": 2}, T0, "schedule", state=RunState.PENDING)
        assert await store.claim_slot(again) is None
        assert await store.count_runs() == 1

        await store.close()
        with pytest.raises(RuntimeError):  # the database thread is gone
            await store.count_runs()
        return store.database

    database = asyncio.run(go())
    reopened = open_backend()  # what it wrote is stored, once
    assert reopened.database == database
    assert [r.state for r in reopened.list_runs()] == [RunState.PENDING]
