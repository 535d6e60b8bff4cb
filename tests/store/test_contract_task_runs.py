"""The store contract for a run's tags and task runs, on every backend (no mocks).

Like test_contract.py, every test takes ``store`` or ``open_backend`` (tests/store/conftest.py),
parametrized over the backends in ``BACKENDS``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from dockyard.core.records import TaskRunRecord
from dockyard.core.states import RunState
from dockyard.errors import NotFoundError
from dockyard.store.aio import AsyncStore
from dockyard.store.base import StateStore
from tests.store.support import DEP, T0, Opener, new_run

T1, T2, T3 = (T0 + timedelta(seconds=s) for s in (1, 2, 3))


def task(run_id: str, task_id: str = "t1", **fields: object) -> TaskRunRecord:
    values: dict[str, object] = {
        "id": task_id,
        "run_id": run_id,
        "name": f"say-{task_id}",
        "task_key": "say",
        "state": "Running",
        "started_at": T1,
    }
    values.update(fields)
    return TaskRunRecord(**values)  # type: ignore[arg-type]


# -- tags --------------------------------------------------------------------------------------


def test_a_run_keeps_its_tags_once_each_in_the_order_given(store: StateStore) -> None:
    tagged = store.create_run(new_run(tags=("etl", "nightly", "etl", "ünïcode")), now=T0)
    plain = store.create_run(new_run(), now=T0)

    assert tagged.tags == ("etl", "nightly", "ünïcode")
    assert plain.tags == ()
    assert store.get_run(tagged.id) == tagged
    listed = {r.id: r.tags for r in store.list_runs()}
    assert listed == {tagged.id: tagged.tags, plain.id: ()}
    light = {r.id: r.tags for r in store.runs_in_states([RunState.SCHEDULED], light=True)}
    assert light == listed


def test_a_claimed_slot_keeps_its_tags(store: StateStore) -> None:
    run = store.claim_slot(new_run(tags=("scheduled",)), now=T0)

    assert run is not None and run.tags == ("scheduled",)


def test_set_run_tags_replaces_them_and_nothing_else(store: StateStore) -> None:
    run = store.create_run(new_run(tags=("a", "b")), now=T0)

    changed = store.set_run_tags(run.id, ["c", "a", "c"])

    assert changed.tags == ("c", "a")
    assert changed == replace(run, tags=("c", "a"))  # no state, time or history change
    assert store.get_run(run.id).tags == ("c", "a")
    assert len(store.state_history(run.id)) == 1
    assert store.set_run_tags(run.id, []).tags == ()


def test_set_run_tags_refuses_unknown_runs_and_non_strings(store: StateStore) -> None:
    run = store.create_run(new_run(tags=("kept",)), now=T0)

    with pytest.raises(NotFoundError, match="unknown run 'nope'"):
        store.set_run_tags("nope", ["x"])
    with pytest.raises(ValueError, match="strings, not int"):
        store.set_run_tags(run.id, ["ok", 7])  # type: ignore[list-item]
    assert store.get_run(run.id).tags == ("kept",)


# -- task runs ---------------------------------------------------------------------------------


def test_saving_a_task_run_again_replaces_it(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    running = task(run.id)
    store.save_task_runs(run.id, [running])
    assert store.task_runs(run.id) == [running]

    done = replace(running, state="Failed", attempts=3, ended_at=T3, error="boom\nValueError: x")
    store.save_task_runs(run.id, [done])

    assert store.task_runs(run.id) == [done]


def test_task_runs_round_trip_every_field(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    cached = task(
        run.id, "c" * 64, name="n" * 200, task_key="k" * 200, state="Cached", attempts=0,
        ended_at=T1, error=None, cache_hit=True, flow_attempt=2,
    )  # fmt: skip
    store.save_task_runs(run.id, [cached])

    [back] = store.task_runs(run.id)

    assert back == cached
    assert back.started_at is not None and back.started_at.utcoffset() == timedelta(0)
    assert back.cache_hit is True


def test_task_runs_come_in_the_order_they_started_unstarted_last(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    later = task(run.id, "a-later", started_at=T3)
    pending = task(run.id, "b-pending", state="Pending", started_at=None)
    first = task(run.id, "z-first", started_at=T1)
    retried = task(run.id, "m-retry", started_at=T2, flow_attempt=2)
    store.save_task_runs(run.id, [later, pending])
    store.save_task_runs(run.id, [retried, first])

    assert [t.id for t in store.task_runs(run.id)] == ["z-first", "m-retry", "a-later", "b-pending"]


def test_task_runs_belong_to_their_run(store: StateStore) -> None:
    one = store.create_run(new_run(), now=T0)
    two = store.create_run(new_run(), now=T0)
    store.save_task_runs(one.id, [task(one.id, "same")])
    store.save_task_runs(two.id, [task(two.id, "same", state="Completed", ended_at=T2)])

    assert [t.state for t in store.task_runs(one.id)] == ["Running"]
    assert [t.state for t in store.task_runs(two.id)] == ["Completed"]
    assert store.task_runs(store.create_run(new_run(), now=T0).id) == []


def test_save_task_runs_refuses_bad_input_and_writes_none_of_it(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    other = store.create_run(new_run(), now=T0)

    with pytest.raises(NotFoundError, match="unknown run 'nope'"):
        store.save_task_runs("nope", [task("nope")])
    with pytest.raises(ValueError, match=f"belongs to run {other.id}, not {run.id}"):
        store.save_task_runs(run.id, [task(run.id, "ok"), task(other.id, "theirs")])
    with pytest.raises(ValueError, match="unknown state 'Exploded'"):
        store.save_task_runs(run.id, [task(run.id, "ok"), task(run.id, "x", state="Exploded")])
    with pytest.raises(NotFoundError, match="unknown run 'nope'"):
        store.task_runs("nope")
    assert store.task_runs(run.id) == [] and store.task_runs(other.id) == []
    store.save_task_runs(run.id, [])  # nothing to save is fine
    assert store.task_runs(run.id) == []


def test_task_runs_saved_by_one_instance_are_read_by_another(open_backend: Opener) -> None:
    writer, reader = open_backend(), open_backend()
    writer.upsert_deployment(DEP, "nightly", {}, now=T0)
    run = writer.create_run(new_run(tags=("shared",)), now=T0)
    records = [task(run.id, f"t{i}", started_at=T0 + timedelta(seconds=i)) for i in range(500)]
    writer.save_task_runs(run.id, records)

    assert reader.task_runs(run.id) == records
    assert reader.get_run(run.id).tags == ("shared",)


def test_the_async_store_has_the_same_calls(open_backend: Opener) -> None:
    async def go() -> None:
        store = await AsyncStore.open(open_backend)
        try:
            await store.upsert_deployment(DEP, "nightly", {}, now=T0)
            run = await store.create_run(new_run(tags=("a",)))
            assert (await store.set_run_tags(run.id, ("b", "c"))).tags == ("b", "c")
            await store.save_task_runs(run.id, (task(run.id),))
            assert [t.id for t in await store.task_runs(run.id)] == ["t1"]
        finally:
            await store.close()

    asyncio.run(go())
