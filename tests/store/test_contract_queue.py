"""The shared queue: taking Pending runs, concurrency limits across replicas, cancel
requests, and the cursor that only moves forward (every backend, real databases)."""

from __future__ import annotations

import threading
from datetime import timedelta

from dockyard.core.records import Takeable
from dockyard.core.states import RunState
from dockyard.store.base import StateStore
from tests.store.support import DEP, JOIN_TIMEOUT_SECONDS, T0, Opener, new_run

OTHER = "etl/other"


def _pending(store: StateStore, count: int, deployment: str = DEP, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + count):
        run = store.create_run(
            new_run(T0 + timedelta(seconds=i), deployment=deployment, state=RunState.PENDING),
            now=T0,
        )
        ids.append(run.id)
    return ids


def test_take_runs_moves_the_oldest_pending_to_running_for_the_owner(store: StateStore) -> None:
    ids = _pending(store, 3)
    taken = store.take_runs(
        "replica-a", [Takeable(DEP, code_revision="abc123")], capacity=2, now=T0, version="9.9"
    )
    assert [r.id for r in taken] == ids[:2]
    for run in taken:
        assert run.state is RunState.RUNNING
        assert (run.owner, run.code_revision, run.dockyard_version) == (
            "replica-a",
            "abc123",
            "9.9",
        )
        assert run.started_at == T0
        assert [e.state for e in store.state_history(run.id)] == [
            RunState.PENDING,
            RunState.RUNNING,
        ]
    assert store.get_run(ids[2]).state is RunState.PENDING


def test_take_runs_takes_only_wanted_deployments_and_nothing_without_capacity(
    store: StateStore,
) -> None:
    store.upsert_deployment(OTHER, "other", {}, now=T0)
    _pending(store, 2, deployment=OTHER)
    assert store.take_runs("a", [Takeable(DEP)], capacity=5, now=T0, version="1") == []
    assert store.take_runs("a", [Takeable(OTHER)], capacity=0, now=T0, version="1") == []
    assert len(store.take_runs("a", [Takeable(OTHER)], capacity=5, now=T0, version="1")) == 2


def test_concurrency_limit_counts_running_runs_of_every_owner(store: StateStore) -> None:
    store.upsert_deployment(OTHER, "other", {}, now=T0)
    _pending(store, 5)
    _pending(store, 2, deployment=OTHER, start=10)
    wanted = [Takeable(DEP, concurrency_limit=2), Takeable(OTHER)]
    first = store.take_runs(
        "a", [Takeable(DEP, concurrency_limit=2)], capacity=1, now=T0, version="1"
    )
    assert len(first) == 1
    # Replica b sees a's Running run: one place left for DEP; OTHER is not limited.
    second = store.take_runs("b", wanted, capacity=10, now=T0, version="1")
    assert sorted(r.deployment for r in second) == [DEP, OTHER, OTHER]
    assert store.take_runs("c", wanted, capacity=10, now=T0, version="1") == []
    store.transition(first[0].id, RunState.COMPLETED, at=T0, ended_at=T0)
    third = store.take_runs("c", wanted, capacity=10, now=T0, version="1")
    assert [r.deployment for r in third] == [DEP]


def test_concurrent_takers_never_exceed_the_limit_or_take_a_run_twice(
    open_backend: Opener,
) -> None:
    setup = open_backend()
    setup.upsert_deployment(DEP, "nightly", {}, now=T0)
    ids = _pending(setup, 40)
    stores = [open_backend() for _ in range(4)]
    taken: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def take(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
            for _ in range(5):
                runs = stores[index].take_runs(
                    f"r{index}", [Takeable(DEP, concurrency_limit=3)], capacity=2, now=T0,
                    version="1",
                )  # fmt: skip
                taken[index].extend(r.id for r in runs)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_SECONDS)
    assert not errors
    everything = [run_id for ids_ in taken for run_id in ids_]
    assert len(everything) == len(set(everything)) == 3  # the limit, across all four
    running = setup.runs_in_states([RunState.RUNNING])
    assert sorted(r.id for r in running) == sorted(everything)
    assert set(everything) <= set(ids)


def test_request_cancel_withdraws_waiting_runs_and_asks_the_owner_of_running_ones(
    store: StateStore,
) -> None:
    waiting, running = _pending(store, 2)
    [taken] = store.take_runs("owner-a", [Takeable(DEP)], capacity=1, now=T0, version="1")
    assert taken.id == waiting
    # The first one is Running for owner-a now; the second still waits.
    later = T0 + timedelta(seconds=5)
    withdrawn = store.request_cancel(running, "no longer needed", now=later)
    assert withdrawn.state is RunState.CANCELLED
    assert (withdrawn.state_message, withdrawn.ended_at) == ("no longer needed", later)
    asked = store.request_cancel(waiting, "stop it", now=later)
    assert asked.state is RunState.RUNNING and asked.cancel_requested == "stop it"
    assert store.get_run(waiting).cancel_requested == "stop it"
    again = store.request_cancel(waiting, "a second reason", now=later)
    assert again.cancel_requested == "stop it"  # the first reason stands
    store.transition(waiting, RunState.CANCELLED, at=later, ended_at=later)
    ended = store.request_cancel(waiting, "too late", now=later)
    assert ended.state is RunState.CANCELLED and ended.state_message is None


def test_cursor_only_moves_forward(store: StateStore) -> None:
    store.set_cursor(DEP, T0 + timedelta(minutes=5))
    record = store.set_cursor(DEP, T0)
    assert record.cursor == T0 + timedelta(minutes=5)
    assert store.set_cursor(DEP, T0 + timedelta(minutes=6)).cursor == T0 + timedelta(minutes=6)
    assert store.set_cursor(DEP, None).cursor is None


def test_take_runs_leaves_scheduled_runs_alone(store: StateStore) -> None:
    scheduled = store.create_run(new_run(T0, state=RunState.SCHEDULED), now=T0)
    assert store.take_runs("a", [Takeable(DEP)], capacity=3, now=T0, version="1") == []
    assert store.get_run(scheduled.id).state is RunState.SCHEDULED
