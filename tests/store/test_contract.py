"""The state store contract: what every backend must do, on a real database (no mocks).

Every test here takes ``store`` or ``open_backend`` (tests/store/conftest.py), which are
parametrized over the backends in ``BACKENDS``: a new backend (PostgreSQL next) is one more
entry there and runs this whole module unchanged. Tests of one backend's own behaviour
(SQLite files, pragmas, migrations of an old file) live in that backend's module.
"""

from __future__ import annotations

import inspect
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dockyard.core.states import RunState
from dockyard.errors import NotFoundError, UsageError
from dockyard.store import (
    PAUSED_BY_CONFIG,
    PAUSED_BY_SHUTDOWN,
    PAUSED_BY_USER,
    SqlStateStore,
    open_store,
    slot_key,
)
from dockyard.store.base import StateStore
from tests.store.support import DEP, JOIN_TIMEOUT_SECONDS, T0, Opener, new_run

# -- the protocol ------------------------------------------------------------------------------


def _protocol_methods() -> list[str]:
    return sorted(
        name
        for name, value in vars(StateStore).items()
        if not name.startswith("_") and inspect.isfunction(value)
    )


def test_sql_state_store_is_a_state_store_for_the_type_checker(tmp_path: Path) -> None:
    # mypy checks this assignment against the Protocol's members and their signatures.
    store: StateStore = open_store(tmp_path / "state.db")
    try:
        assert isinstance(store, SqlStateStore)
    finally:
        store.close()


def test_backend_has_every_protocol_member_with_a_compatible_signature(
    store: StateStore,
) -> None:
    backend = type(store)
    methods = _protocol_methods()
    assert "claim_slot" in methods and "transition" in methods  # the listing itself works
    kinds = {"str": str, "float": float}
    assert set(StateStore.__annotations__) == {"database", "replica_timeout"}
    for attribute, annotation in StateStore.__annotations__.items():
        assert isinstance(getattr(store, attribute), kinds[annotation]), attribute
    for name in methods:
        assert callable(getattr(backend, name, None)), f"{backend.__name__} lacks {name}"
        wanted = inspect.signature(getattr(StateStore, name), eval_str=True)
        actual = inspect.signature(getattr(backend, name), eval_str=True)
        where = f"{backend.__name__}.{name}{actual} vs StateStore.{name}{wanted}"
        assert actual.return_annotation == wanted.return_annotation, where
        for param in wanted.parameters.values():
            got = actual.parameters.get(param.name)
            assert got is not None, f"{where}: no parameter {param.name}"
            assert got.kind == param.kind, f"{where}: {param.name} is {got.kind.description}"
            assert got.default == param.default, f"{where}: default of {param.name}"
            if param.name != "self":
                assert got.annotation == param.annotation, f"{where}: type of {param.name}"
        for extra in actual.parameters.values():
            if extra.name in wanted.parameters:
                continue
            optional = extra.default is not inspect.Parameter.empty or extra.kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            )
            assert optional, f"{where}: extra parameter {extra.name} must be optional"


# -- deployments -------------------------------------------------------------------------------


def test_upsert_inserts_active_then_updates_spec_only(store: StateStore) -> None:
    record = store.get_deployment(DEP)
    assert record is not None
    assert (record.paused, record.paused_reason, record.cursor) == (False, None, None)
    store.set_paused(DEP, True, PAUSED_BY_USER, now=T0 + timedelta(minutes=1))
    store.set_cursor(DEP, T0 + timedelta(hours=1))

    later = T0 + timedelta(days=1)
    updated = store.upsert_deployment(DEP, "nightly2", {"schedule": "@daily"}, now=later)

    assert updated.flow_name == "nightly2"
    assert updated.spec == {"schedule": "@daily"}
    assert (updated.paused, updated.paused_reason) == (True, PAUSED_BY_USER)
    assert updated.cursor == T0 + timedelta(hours=1)
    assert (updated.created_at, updated.updated_at) == (T0, later)


def test_list_deployments_sorted_by_name(store: StateStore) -> None:
    store.upsert_deployment("a/first", "first", {}, now=T0)
    store.upsert_deployment("z/last", "last", {}, now=T0)
    assert [d.name for d in store.list_deployments()] == ["a/first", DEP, "z/last"]


def test_set_paused_records_reason_and_keeps_the_first_one(store: StateStore) -> None:
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    paused = store.set_paused(DEP, True, PAUSED_BY_CONFIG, now=t1)
    assert (paused.paused, paused.paused_reason, paused.paused_at) == (True, PAUSED_BY_CONFIG, t1)

    # A shutdown drain must not turn an existing pause into one that serve resumes.
    again = store.set_paused(DEP, True, PAUSED_BY_SHUTDOWN, now=t2)
    assert (again.paused_reason, again.paused_at) == (PAUSED_BY_CONFIG, t1)

    resumed = store.set_paused(DEP, False, None, now=t2)
    assert (resumed.paused, resumed.paused_reason, resumed.paused_at) == (False, None, None)
    assert store.set_paused(DEP, True, None, now=t2).paused_reason == PAUSED_BY_USER
    with pytest.raises(ValueError, match="unknown pause reason"):
        store.set_paused(DEP, True, "bored", now=t2)


def test_unknown_deployment_error_lists_known_ones(store: StateStore) -> None:
    store.upsert_deployment("a/b", "b", {}, now=T0)
    message = f"unknown deployment 'x/y'; known: a/b, {DEP}"
    with pytest.raises(NotFoundError, match=f"^{message}$"):
        store.set_paused("x/y", True, PAUSED_BY_USER, now=T0)
    with pytest.raises(NotFoundError, match="known: a/b"):
        store.set_cursor("x/y", T0)
    with pytest.raises(NotFoundError, match="unknown deployment 'x/y'"):
        store.create_run(new_run(deployment="x/y"))
    assert store.get_deployment("x/y") is None


# -- slots -------------------------------------------------------------------------------------


def test_slot_key_is_deterministic_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert slot_key(DEP, datetime(2024, 5, 1, 14, 0, tzinfo=plus2)) == (
        "etl/nightly:2024-05-01T12:00:00.000000Z"
    )
    assert slot_key(DEP, T0) == slot_key(DEP, T0.astimezone(plus2))


def test_claim_slot_twice_second_gets_none(store: StateStore) -> None:
    first = store.claim_slot(new_run(), now=T0)
    assert first is not None
    assert first.slot_key == slot_key(DEP, T0)
    assert first.state is RunState.SCHEDULED
    assert store.claim_slot(new_run(), now=T0) is None
    assert store.count_runs() == 1
    assert store.claim_slot(new_run(T0 + timedelta(hours=1))) is not None


def test_claim_slot_from_two_store_instances_one_wins(open_backend: Opener) -> None:
    first, second = open_backend(), open_backend()
    first.upsert_deployment(DEP, "nightly", {}, now=T0)
    results = [first.claim_slot(new_run()), second.claim_slot(new_run())]
    assert sum(r is not None for r in results) == 1
    assert second.count_runs() == 1


def test_concurrent_claims_each_slot_exactly_once(open_backend: Opener) -> None:
    slots_count = 50
    open_backend().upsert_deployment(DEP, "nightly", {}, now=T0)
    stores = [open_backend(), open_backend()]
    barrier = threading.Barrier(len(stores))
    won: list[list[str]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def claim_all(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
            for minute in range(slots_count):
                run = stores[index].claim_slot(new_run(T0 + timedelta(minutes=minute)))
                if run is not None:
                    won[index].append(run.slot_key or "")
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_SECONDS)
        assert not thread.is_alive()
    assert errors == []
    claimed = won[0] + won[1]
    assert sorted(claimed) == sorted({*claimed})
    assert len(claimed) == slots_count
    assert stores[0].count_runs() == slots_count


# -- runs and transitions ----------------------------------------------------------------------


def test_create_run_defaults(store: StateStore) -> None:
    run = store.create_run(new_run(trigger="manual", name="by-hand", retries=2), now=T0)
    assert run.id and run.slot_key is None and run.trigger == "manual"
    assert (run.name, run.retries, run.attempt, run.parameters) == ("by-hand", 2, 1, {"n": 1})
    assert (run.created_at, run.updated_at, run.started_at, run.duration_seconds) == (
        T0,
        T0,
        None,
        None,
    )
    assert (run.log_lines, run.log_truncated, run.code_revision) == (0, 0, None)
    assert store.get_run(run.id) == run


def test_transition_updates_fields_and_history(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    t1, t2, t3 = (T0 + timedelta(seconds=s) for s in (1, 2, 5))
    store.transition(run.id, RunState.PENDING, at=t1, message="waiting for a free slot")
    store.transition(run.id, RunState.RUNNING, at=t2, started_at=t2, pid=4321, code_revision="c1")
    done = store.transition(run.id, RunState.COMPLETED, at=t3, ended_at=t3, result="42")

    assert done.state is RunState.COMPLETED
    assert (done.pid, done.code_revision, done.result, done.state_message) == (
        4321,
        "c1",
        "42",
        None,
    )
    assert (done.updated_at, done.duration_seconds) == (t3, 3.0)
    history = store.state_history(run.id)
    assert [(e.state, e.at, e.message) for e in history] == [
        (RunState.SCHEDULED, T0, None),
        (RunState.PENDING, t1, "waiting for a free slot"),
        (RunState.RUNNING, t2, None),
        (RunState.COMPLETED, t3, None),
    ]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], RunState.RUNNING),
        ([], RunState.COMPLETED),
        ([RunState.PENDING], RunState.SCHEDULED),
        ([RunState.PENDING, RunState.RUNNING, RunState.FAILED], RunState.RUNNING),
        ([RunState.CANCELLED], RunState.CANCELLED),
    ],
)
def test_illegal_transition_raises_and_changes_nothing(
    store: StateStore, path: list[RunState], illegal: RunState
) -> None:
    run = store.create_run(new_run(), now=T0)
    for state in path:
        store.transition(run.id, state, at=T0)
    with pytest.raises(ValueError, match=f"run {run.id}: cannot go from .* to {illegal}"):
        store.transition(run.id, illegal, at=T0 + timedelta(seconds=9))
    assert len(store.state_history(run.id)) == 1 + len(path)


def test_transition_seen_by_another_instance_is_not_repeated(open_backend: Opener) -> None:
    first, second = open_backend(), open_backend()
    first.upsert_deployment(DEP, "nightly", {}, now=T0)
    run = first.create_run(new_run(), now=T0)
    first.transition(run.id, RunState.PENDING, at=T0)
    second.transition(run.id, RunState.RUNNING, at=T0)
    with pytest.raises(ValueError, match="cannot go from Running to Running"):
        first.transition(run.id, RunState.RUNNING, at=T0)
    assert [e.state for e in first.state_history(run.id)].count(RunState.RUNNING) == 1


def test_transition_and_update_refuse_unknown_fields_and_runs(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    with pytest.raises(TypeError, match="state"):
        store.transition(run.id, RunState.PENDING, at=T0, state="Running")
    with pytest.raises(TypeError, match="error"):
        store.update_run(run.id, error="x")
    with pytest.raises(NotFoundError, match="unknown run 'nope'"):
        store.transition("nope", RunState.PENDING, at=T0)
    updated = store.update_run(run.id, pid=7, name="renamed", code_revision="abc")
    assert (updated.pid, updated.name, updated.code_revision) == (7, "renamed", "abc")


def test_get_run_by_prefix(store: StateStore) -> None:
    for run_id in ("abcdef01" + "0" * 24, "abcdef02" + "0" * 24, "123456ff" + "0" * 24):
        store.create_run(new_run(id=run_id), now=T0)
    assert store.get_run("123456").id.startswith("123456ff")
    assert store.get_run("abcdef01").id.startswith("abcdef01")
    with pytest.raises(UsageError, match="'abcdef' matches several runs"):
        store.get_run("abcdef")
    with pytest.raises(NotFoundError, match="unknown run 'fedcba'"):
        store.get_run("fedcba")
    with pytest.raises(NotFoundError, match="at least 6 characters"):
        store.get_run("12345")
    with pytest.raises(NotFoundError):
        store.get_run("1234%_")


def test_list_and_count_runs_filters(store: StateStore) -> None:
    store.upsert_deployment("other/dep", "other", {}, now=T0)
    ids = []
    for hour in range(6):
        deployment = DEP if hour % 2 == 0 else "other/dep"
        run = store.create_run(new_run(deployment=deployment), now=T0 + timedelta(hours=hour))
        ids.append(run.id)
    store.transition(ids[0], RunState.PENDING, at=T0)
    store.transition(ids[3], RunState.CANCELLED, at=T0)

    def listed(**kwargs: object) -> list[str]:
        return [r.id for r in store.list_runs(**kwargs)]  # type: ignore[arg-type]

    assert listed() == ids[::-1]
    assert listed(order="asc") == ids
    assert listed(deployment=DEP, order="asc") == [ids[0], ids[2], ids[4]]
    assert listed(states=[RunState.PENDING, RunState.CANCELLED]) == [ids[3], ids[0]]
    assert listed(states=[]) == []
    assert listed(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4)) == [ids[3], ids[2]]
    assert listed(limit=2, offset=1) == [ids[4], ids[3]]
    assert listed(limit=2, offset=1, order="asc") == [ids[1], ids[2]]
    assert store.count_runs() == 6
    assert store.count_runs(deployment="other/dep", since=T0 + timedelta(hours=2)) == 2
    assert store.count_runs(states=[RunState.SCHEDULED]) == 4
    with pytest.raises(UsageError, match="unknown order"):
        store.list_runs(order="sideways")


def test_runs_in_states_oldest_scheduled_first(store: StateStore) -> None:
    late = store.create_run(new_run(T0 + timedelta(hours=2)), now=T0)
    early = store.create_run(new_run(T0), now=T0 + timedelta(minutes=1))
    done = store.create_run(new_run(T0 - timedelta(hours=1)), now=T0)
    store.transition(done.id, RunState.CANCELLED, at=T0)
    store.transition(late.id, RunState.PENDING, at=T0)
    found = store.runs_in_states([RunState.SCHEDULED, RunState.PENDING])
    assert [r.id for r in found] == [early.id, late.id]


def test_light_runs_in_states_leave_the_large_columns_out(store: StateStore) -> None:
    run = store.create_run(new_run(T0, parameters={"blob": "x" * 10_000}), now=T0)
    [light] = store.runs_in_states([RunState.SCHEDULED], light=True)
    assert (light.id, light.deployment, light.state, light.scheduled_at) == (
        run.id, DEP, RunState.SCHEDULED, T0,
    )  # fmt: skip
    assert light.parameters == {}
    [full] = store.runs_in_states([RunState.SCHEDULED])
    assert full.parameters == {"blob": "x" * 10_000}


# -- logs --------------------------------------------------------------------------------------


def _lines(start: int, count: int, stream: str = "stdout") -> list[tuple[datetime, str, str]]:
    return [(T0 + timedelta(seconds=i), stream, f"line {i}") for i in range(start, start + count)]


def test_logs_are_bounded_with_one_marker(open_backend: Opener) -> None:
    store = open_backend(max_log_lines=5)
    store.upsert_deployment(DEP, "nightly", {}, now=T0)
    run = store.create_run(new_run(), now=T0)
    store.append_logs(run.id, _lines(1, 3))
    store.append_logs(run.id, _lines(4, 4, "stderr"))  # 2 fit, 2 dropped
    store.append_logs(run.id, _lines(8, 3))  # all dropped

    logs = store.get_logs(run.id)
    assert [line.seq for line in logs] == [1, 2, 3, 4, 5, 6]
    assert [line.line for line in logs[:5]] == [f"line {i}" for i in range(1, 6)]
    assert logs[3].stream == "stderr"
    marker = logs[5]
    assert (marker.stream, marker.at) == ("dockyard", T0 + timedelta(seconds=6))
    assert marker.line == (
        "[dockyard] log truncated: only the first 5 lines of this run are stored; "
        "later lines went to the serve process's output only"
    )
    record = store.get_run(run.id)
    assert (record.log_lines, record.log_truncated) == (6, 5)


def test_logs_exactly_at_the_limit_have_no_marker(open_backend: Opener) -> None:
    store = open_backend(max_log_lines=5)
    store.upsert_deployment(DEP, "nightly", {}, now=T0)
    run = store.create_run(new_run(), now=T0)
    store.append_logs(run.id, _lines(1, 5))
    assert all(line.stream == "stdout" for line in store.get_logs(run.id))
    assert (store.get_run(run.id).log_lines, store.get_run(run.id).log_truncated) == (5, 0)


def test_logs_tail_and_after_seq(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    store.append_logs(run.id, _lines(1, 10))
    assert [line.seq for line in store.get_logs(run.id, tail=3)] == [8, 9, 10]
    assert [line.seq for line in store.get_logs(run.id, after_seq=7)] == [8, 9, 10]
    assert store.get_logs(run.id, after_seq=10) == []
    assert [line.seq for line in store.get_logs(run.id, tail=2, after_seq=5)] == [9, 10]
    assert store.get_logs(run.id, tail=0) == []
    first = store.get_logs(run.id)[0]
    assert (first.run_id, first.at, first.line) == (run.id, T0 + timedelta(seconds=1), "line 1")


def test_logs_refuse_unknown_runs_and_streams(store: StateStore) -> None:
    run = store.create_run(new_run(), now=T0)
    with pytest.raises(NotFoundError):
        store.append_logs("missing", _lines(1, 1))
    with pytest.raises(NotFoundError):
        store.get_logs("missing")
    with pytest.raises(ValueError, match="unknown log stream"):
        store.append_logs(run.id, _lines(1, 1, "stdin"))
    store.append_logs(run.id, [])
    assert store.get_logs(run.id) == []


# -- datetimes ---------------------------------------------------------------------------------


def test_datetimes_round_trip_as_aware_utc(store: StateStore) -> None:
    plus5 = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2024, 5, 1, 17, 30, 0, 123456, tzinfo=plus5)
    run = store.create_run(new_run(local), now=local)
    store.set_cursor(DEP, local)
    for value in (run.scheduled_at, run.created_at, store.get_run(run.id).scheduled_at):
        assert value == T0.replace(microsecond=123456)
        assert value.tzinfo is UTC
    cursor = store.get_deployment(DEP).cursor  # type: ignore[union-attr]
    assert cursor is not None and cursor.tzinfo is UTC and cursor == local
    with pytest.raises(ValueError, match="naive datetime"):
        store.transition(run.id, RunState.PENDING, at=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        new_run(datetime(2024, 5, 1))
