"""The store contract for removing runs: retention (``prune_runs``) and ``deployment rm``
(``delete_runs`` / ``delete_deployment``), on every backend (no mocks).

Like test_contract.py, every test takes ``store`` or ``open_backend`` (tests/store/conftest.py),
parametrized over the backends in ``BACKENDS``.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from dockyard.core.records import RunRecord, TaskRunRecord
from dockyard.core.states import RunState
from dockyard.errors import NotFoundError
from dockyard.store import pruning
from dockyard.store.base import StateStore
from tests.store.support import DEP, JOIN_TIMEOUT_SECONDS, T0, Opener, new_run

OTHER = "etl/hourly"
DAY = timedelta(days=1)


def finished(
    store: StateStore,
    created: datetime,
    *,
    deployment: str = DEP,
    end: RunState = RunState.COMPLETED,
    logs: int = 2,
    variant: str | None = None,
) -> RunRecord:
    """A run created at ``created`` that ran and ended in ``end``, with logs and a task run."""
    run = running(store, created, deployment=deployment, logs=logs, variant=variant)
    ended = created + timedelta(seconds=2)
    return store.transition(run.id, end, at=ended, ended_at=ended)


def running(
    store: StateStore,
    created: datetime,
    *,
    deployment: str = DEP,
    logs: int = 0,
    variant: str | None = None,
) -> RunRecord:
    """The run of the slot at ``created`` (claimed then), Running now."""
    flow = deployment.partition("/")[0]
    slot = new_run(
        created, deployment=deployment, flow_name=flow, state=RunState.PENDING, slot_variant=variant
    )
    run = store.claim_slot(slot, now=created)
    assert run is not None
    started = created + timedelta(seconds=1)
    store.transition(run.id, RunState.RUNNING, at=started, started_at=started)
    store.append_logs(run.id, [(started, "stdout", f"line {i}") for i in range(logs)])
    store.save_task_runs(
        run.id, [TaskRunRecord(id="t1", run_id=run.id, name="t-0", task_key="t", state="Running")]
    )
    return run


def ids(store: StateStore, deployment: str | None = None) -> set[str]:
    return {r.id for r in store.list_runs(deployment=deployment, limit=1000)}


def prune_all(store: StateStore, **kwargs: object) -> list[int]:
    """Every batch's count, the final 0 included."""
    counts = [store.prune_runs(**kwargs)]  # type: ignore[arg-type]
    while counts[-1]:
        counts.append(store.prune_runs(**kwargs))  # type: ignore[arg-type]
    return counts


def left_behind(store: StateStore, run_ids: set[str]) -> dict[str, int]:
    """Rows of the other tables that still point at ``run_ids``."""
    from dockyard.store.schema import run_logs, run_states, slots, task_runs

    engine = store._engine  # type: ignore[attr-defined]
    found = {}
    with engine.connect() as conn:
        for table in (run_logs, run_states, slots, task_runs):
            query = sa.select(sa.func.count()).where(table.c.run_id.in_(list(run_ids)))
            found[table.name] = int(conn.execute(query).scalar_one())
    return found


# -- retention ---------------------------------------------------------------------------------


def test_prune_removes_finished_runs_created_before_the_cutoff_with_all_they_had(
    store: StateStore,
) -> None:
    old = [finished(store, T0 - 40 * DAY + timedelta(minutes=i)) for i in range(3)]
    failed = finished(store, T0 - 35 * DAY, end=RunState.FAILED)
    still_running = running(store, T0 - 50 * DAY)
    recent = finished(store, T0 - DAY)

    counts = prune_all(store, created_before=T0 - 30 * DAY, keep=None)

    assert counts == [4, 0]
    gone = {r.id for r in old} | {failed.id}
    assert ids(store) == {still_running.id, recent.id}
    assert left_behind(store, gone) == {"run_logs": 0, "run_states": 0, "slots": 0, "task_runs": 0}
    assert [line.line for line in store.get_logs(recent.id)] == ["line 0", "line 1"]
    assert len(store.task_runs(recent.id)) == 1
    assert store.get_run(still_running.id).state is RunState.RUNNING
    with pytest.raises(NotFoundError):
        store.get_run(old[0].id)


def test_prune_keeps_the_newest_finished_runs_of_each_deployment(store: StateStore) -> None:
    store.upsert_deployment(OTHER, "etl", {}, now=T0)
    mine = [finished(store, T0 + timedelta(minutes=i)) for i in range(5)]
    theirs = [finished(store, T0 + timedelta(minutes=i), deployment=OTHER) for i in range(3)]
    oldest_running = running(store, T0 - DAY)
    waiting = store.create_run(new_run(T0 - 2 * DAY), now=T0 - 2 * DAY)  # Scheduled

    assert prune_all(store, created_before=None, keep=2) == [4, 0]

    assert ids(store, DEP) == {mine[3].id, mine[4].id, oldest_running.id, waiting.id}
    assert ids(store, OTHER) == {theirs[1].id, theirs[2].id}


def test_runs_created_at_the_same_instant_are_kept_by_id(store: StateStore) -> None:
    same = [finished(store, T0, variant=str(i)) for i in range(3)]  # created at one instant

    assert prune_all(store, created_before=None, keep=1) == [2, 0]

    assert ids(store) == {max(r.id for r in same)}


def test_age_and_count_together_remove_what_either_would(store: StateStore) -> None:
    runs = [finished(store, T0 - timedelta(days=d)) for d in (40, 20, 10, 5, 1)]

    assert prune_all(store, created_before=T0 - 30 * DAY, keep=3) == [2, 0]

    assert ids(store) == {r.id for r in runs[2:]}


def test_prune_without_limits_removes_nothing(store: StateStore) -> None:
    finished(store, T0 - 400 * DAY)

    assert store.prune_runs(created_before=None, keep=None) == 0
    assert store.prune_runs(created_before=None, keep=0) == 0
    assert len(ids(store)) == 1


def test_prune_works_in_batches_of_at_most_limit_runs(store: StateStore) -> None:
    for i in range(5):
        finished(store, T0 - 40 * DAY + timedelta(minutes=i), logs=0)

    assert prune_all(store, created_before=T0, keep=None, limit=2) == [2, 2, 1, 0]


def test_a_batch_holds_at_most_the_log_budget_but_always_one_run(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pruning, "LOG_BUDGET", 5)
    finished(store, T0 - 40 * DAY, logs=8)  # over the budget alone: removed alone
    for i in range(3):
        finished(store, T0 - 39 * DAY + timedelta(minutes=i), logs=2)

    assert prune_all(store, created_before=T0, keep=None) == [1, 2, 1, 0]


def test_a_pruned_runs_slot_goes_with_it_a_kept_runs_stays(store: StateStore) -> None:
    finished(store, T0 - 40 * DAY)
    finished(store, T0)

    prune_all(store, created_before=T0 - 30 * DAY, keep=None)

    # (The planner never plans a slot behind the deployment's cursor: no second run.)
    assert store.claim_slot(new_run(T0 - 40 * DAY), now=T0) is not None
    assert store.claim_slot(new_run(T0), now=T0) is None


def test_replicas_pruning_at_once_remove_each_run_once(open_backend: Opener) -> None:
    first = open_backend()
    first.upsert_deployment(DEP, "nightly", {}, now=T0)
    for i in range(60):
        finished(first, T0 - 40 * DAY + timedelta(minutes=i), logs=1)
    kept = finished(first, T0)
    stores = [first, open_backend(), open_backend()]
    removed: list[int] = []
    errors: list[BaseException] = []

    def prune(store: StateStore) -> None:
        try:
            removed.extend(prune_all(store, created_before=T0 - 30 * DAY, keep=None, limit=7))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=prune, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_SECONDS)

    assert not errors
    assert sum(removed) == 60
    assert ids(first) == {kept.id}


# -- deployment rm -----------------------------------------------------------------------------


def test_delete_runs_then_the_deployment_removes_it_with_all_its_runs(store: StateStore) -> None:
    store.upsert_deployment(OTHER, "etl", {}, now=T0)
    mine = [finished(store, T0 + timedelta(minutes=i)) for i in range(3)]
    mine.append(running(store, T0 + DAY))  # any state goes
    theirs = finished(store, T0, deployment=OTHER)

    counts = [store.delete_runs(DEP, limit=3), store.delete_runs(DEP, limit=3)]
    assert counts == [3, 1]
    assert store.delete_runs(DEP) == 0
    assert store.delete_deployment(DEP) == 0

    assert store.get_deployment(DEP) is None
    assert [d.name for d in store.list_deployments()] == [OTHER]
    assert ids(store) == {theirs.id}
    assert left_behind(store, {r.id for r in mine}) == {
        "run_logs": 0,
        "run_states": 0,
        "slots": 0,
        "task_runs": 0,
    }


def test_delete_deployment_alone_takes_its_runs_along(store: StateStore) -> None:
    finished(store, T0)
    finished(store, T0 + DAY)

    assert store.delete_deployment(DEP) == 2

    assert store.get_deployment(DEP) is None
    assert store.count_runs() == 0
    # The name is free again: serving it again starts afresh.
    store.upsert_deployment(DEP, "nightly", {}, now=T0)
    assert store.claim_slot(new_run(T0), now=T0) is not None


def test_deleting_an_unknown_deployment_names_the_known_ones(store: StateStore) -> None:
    with pytest.raises(NotFoundError, match=r"unknown deployment 'etl/daily'; known: etl/nightly"):
        store.delete_deployment("etl/daily")
    with pytest.raises(NotFoundError, match="unknown deployment 'etl/daily'"):
        store.delete_runs("etl/daily")
