"""One scheduling tick's writes in one transaction (``claim_slots``) and the light read of
the deployments a scheduler polls (``deployment_states``): every backend, real databases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from dockyard.core.records import Takeable, slot_key
from dockyard.core.states import RunState
from dockyard.errors import NotFoundError
from dockyard.store.base import DeploymentState, StateStore, TakeRequest
from tests.store.support import DEP, JOIN_TIMEOUT_SECONDS, T0, Opener, new_run

OTHER = "etl/other"
MINUTE = timedelta(minutes=1)


def pending(minutes: int = 0, **kwargs: object):  # type: ignore[no-untyped-def]
    return new_run(T0 + minutes * MINUTE, state=RunState.PENDING, **kwargs)


def take(capacity: int = 5, wanted: tuple[str, ...] = (DEP,)) -> TakeRequest:
    return TakeRequest("replica-a", [Takeable(d) for d in wanted], capacity, T0, "9.9")


def test_claims_new_slots_once_and_moves_the_cursor(store: StateStore) -> None:
    earlier = store.claim_slot(pending(0), now=T0)  # another process's claim
    assert earlier is not None
    runs = [pending(0), pending(1)]
    result = store.claim_slots(runs, cursors={DEP: T0 + MINUTE}, now=T0)
    assert result.run_ids == (runs[1].run_id,) and result.taken == ()
    assert store.count_runs() == 2
    claimed = store.get_run(runs[1].run_id)
    assert (claimed.state, claimed.slot_key) == (RunState.PENDING, slot_key(DEP, T0 + MINUTE))
    assert [e.state for e in store.state_history(claimed.id)] == [RunState.PENDING]
    record = store.get_deployment(DEP)
    assert record is not None and record.cursor == T0 + MINUTE
    again = store.claim_slots([pending(1)], cursors={DEP: T0}, now=T0)  # a slower replica
    assert again.run_ids == ()
    record = store.get_deployment(DEP)
    assert record is not None and record.cursor == T0 + MINUTE  # only forward


def test_take_in_the_same_write_starts_the_oldest_first_the_new_runs_among_them(
    store: StateStore,
) -> None:
    waiting = store.create_run(pending(-5), now=T0)
    runs = [pending(0), pending(1)]
    result = store.claim_slots(runs, cursors={DEP: T0 + MINUTE}, take=take(capacity=2), now=T0)
    assert [r.id for r in result.taken] == [waiting.id, runs[0].run_id]
    for run in result.taken:
        assert (run.state, run.owner, run.dockyard_version) == (
            RunState.RUNNING,
            "replica-a",
            "9.9",
        )
    assert store.get_run(runs[1].run_id).state is RunState.PENDING
    history = store.state_history(runs[0].run_id)
    assert [e.state for e in history] == [RunState.PENDING, RunState.RUNNING]


def test_an_unknown_deployment_writes_nothing(store: StateStore) -> None:
    with pytest.raises(NotFoundError, match="etl/missing"):
        store.claim_slots(
            [pending(0), pending(1, deployment="etl/missing")], cursors={DEP: T0}, take=take()
        )
    with pytest.raises(NotFoundError, match="etl/missing"):
        store.claim_slots([], cursors={"etl/missing": T0})
    assert store.count_runs() == 0
    record = store.get_deployment(DEP)
    assert record is not None and record.cursor is None


def test_nothing_to_write_is_fine(store: StateStore) -> None:
    result = store.claim_slots([], cursors={}, take=take())
    assert (result.run_ids, result.taken) == ((), ())


def test_two_replicas_claiming_the_same_slots_each_slot_runs_once(open_backend: Opener) -> None:
    open_backend().upsert_deployment(DEP, "nightly", {}, now=T0)
    stores = [open_backend(), open_backend()]
    barrier = threading.Barrier(len(stores))
    won: list[list[str]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def tick(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
            for minute in range(0, 40, 4):  # one tick claims four slots
                runs = [pending(minute + i) for i in range(4)]
                result = stores[index].claim_slots(runs, cursors={DEP: T0 + minute * MINUTE})
                won[index].extend(store_key(stores[index], i) for i in result.run_ids)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_SECONDS)
        assert not thread.is_alive()
    assert errors == []
    claimed = won[0] + won[1]
    assert len(claimed) == len(set(claimed)) == 40
    assert stores[0].count_runs() == 40


def store_key(store: StateStore, run_id: str) -> str:
    return store.get_run(run_id).slot_key or ""


def test_deployment_states_is_the_pause_state_and_cursor_by_name(store: StateStore) -> None:
    store.upsert_deployment(OTHER, "other", {"big": "x" * 1000}, now=T0)
    store.set_paused(OTHER, True, now=T0)
    store.set_cursor(DEP, T0)
    assert store.deployment_states() == [
        DeploymentState(DEP, False, None, T0),
        DeploymentState(OTHER, True, "user", None),
    ]
    assert store.deployment_states([OTHER, "etl/missing"]) == [
        DeploymentState(OTHER, True, "user", None)
    ]
    assert store.deployment_states([]) == []
