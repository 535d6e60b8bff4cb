"""A replica that dies or drains leaves its run to another replica on the same database.

Real serve processes on a real PostgreSQL, each in its own directory with its own ledger
(tests/e2e/flows/replicas.py); ``flows/replicas.yaml`` adds a 1 s background deployment,
so the tests also check that no other run was doubled meanwhile.
"""

from __future__ import annotations

import collections
import signal
import time
from datetime import timedelta

import httpx
import pytest

from dockyard.core.states import RunState
from dockyard.service.registry import CRASH_MESSAGE
from tests.helpers import REPLICA_TOKEN, LedgerLine, Replica, Replicas, wait_for
from tests.pg import pg_database, pg_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
CONFIG = ["--config", "flows/replicas.yaml"]
TIMEOUT_SECONDS = 6.0
"""DOCKYARD_REPLICA_TIMEOUT of these tests: a killed replica counts as lost this soon."""


def post_run(replica: Replica, deployment: str, parameters: dict[str, object]) -> str:
    answer = httpx.post(
        f"{replica.url}/api/deployments/{deployment}/runs",
        json={"parameters": parameters},
        headers={"Authorization": f"Bearer {REPLICA_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def replica_ids(replica: Replica) -> dict[int, str]:
    """pid → replica id of every replica the answering one knows."""
    return {r["pid"]: r["id"] for r in replica.get("/api/replicas").json()}


def attempts(lines: list[LedgerLine], run_id: str, kind: str) -> list[LedgerLine]:
    found = [line for line in lines if line.run_id == run_id and line.kind == kind]
    return sorted(found, key=lambda line: line.start)


def assert_nothing_doubled(lines: list[LedgerLine]) -> None:
    """No attempt of any run ended twice, and no slot of the 1 s schedule either (its
    slots are whole seconds; ad-hoc runs and retries are due at arbitrary instants)."""
    ended = collections.Counter((line.run_id, line.attempt) for line in lines if line.kind == "end")
    assert [key for key, n in ended.items() if n > 1] == []
    slots = collections.Counter(
        line.slot for line in lines if line.kind == "end" and line.slot.endswith(".000000Z")
    )
    assert [slot for slot, n in slots.items() if n > 1] == []


@pytest.mark.timeout(300)
def test_kill_9_retries_the_run_once_on_another_replica(pg_database, tmp_path):  # noqa: F811
    env = {"DOCKYARD_REPLICA_TIMEOUT": f"{TIMEOUT_SECONDS:g}", "DOCKYARD_HEARTBEAT": "1"}
    with Replicas(tmp_path, pg_database, CONFIG, **env) as replicas:
        members = replicas.start_all(3)
        run_id = post_run(members[0], "long-tick/long", {"seconds": 20})
        first = wait_for(
            lambda: attempts(replicas.ledgers(), run_id, "begin"), what="the run to start"
        )[0]
        victim = replicas[first.replica]
        survivors = [m for m in members if m is not victim]
        victim_id = replica_ids(survivors[0])[victim.pid]
        killed_at = time.time()
        victim.served.signal(signal.SIGKILL)
        victim.served.wait_exit()

        def retried() -> bool:
            with replicas.store() as store:
                run = store.get_run(run_id)
            return run.attempt == 2 and run.state is RunState.RUNNING

        wait_for(retried, TIMEOUT_SECONDS * 5 + 30, what="the retry to run elsewhere")
        failover = time.time() - killed_at
        print(f"kill -9 → retry Running on another replica: {failover:.1f} s")

        def completed() -> bool:
            with replicas.store() as store:
                return store.get_run(run_id).state.is_terminal

        wait_for(completed, 90, what="the retry to end")
        lost = [r for r in survivors[0].get("/api/replicas").json() if r["id"] == victim_id]
        assert [r["state"] for r in lost] == ["lost"]
        for member in survivors:
            assert replicas.stop(member.name) == 0

    with replicas.store() as store:
        run = store.get_run(run_id)
        history = store.state_history(run_id)
        dead = next(r for r in store.list_replicas() if r.id == victim_id)
        others = store.list_runs(limit=1000, order="asc")
    assert run.state is RunState.COMPLETED and run.attempt == 2
    assert run.owner != victim_id and run.owner is not None
    states = [event.state for event in history]
    assert states == [
        RunState.PENDING, RunState.RUNNING, RunState.SCHEDULED,
        RunState.PENDING, RunState.RUNNING, RunState.COMPLETED,
    ]  # fmt: skip
    retry = history[2]
    assert CRASH_MESSAGE in (retry.message or "")
    # Owner-aware: taken over only once the dead replica's heartbeat had expired.
    assert retry.at >= dead.last_seen + timedelta(seconds=TIMEOUT_SECONDS)

    lines = replicas.ledgers()
    begun = attempts(lines, run_id, "begin")
    ended = attempts(lines, run_id, "end")
    assert [(b.attempt, b.replica) for b in begun] == [(1, victim.name), (2, ended[0].replica)]
    assert len(ended) == 1 and ended[0].attempt == 2 and ended[0].replica != victim.name
    assert_nothing_doubled(lines)
    crashed = [r for r in others if r.state is RunState.CRASHED]
    assert all(r.owner == victim_id for r in crashed)  # only the dead replica's runs


@pytest.mark.timeout(300)
def test_on_shutdown_reschedule_runs_it_on_another_replica(pg_database, tmp_path):  # noqa: F811
    env = {"DOCKYARD_SHUTDOWN_GRACE": "1"}
    with Replicas(tmp_path, pg_database, CONFIG, **env) as replicas:
        members = replicas.start_all(2)
        run_id = post_run(members[0], "tick/reschedule", {"seconds": 8})
        first = wait_for(
            lambda: attempts(replicas.ledgers(), run_id, "begin"), what="the run to start"
        )[0]
        stopped = replicas[first.replica]
        other = next(m for m in members if m is not stopped)
        other_id = replica_ids(other)[other.pid]
        assert replicas.stop(stopped.name) == 0

        def rescheduled() -> list[object]:
            with replicas.store() as store:
                runs = store.list_runs(deployment="tick/reschedule", limit=10, order="asc")
            return [r for r in runs if r.id != run_id and r.state.is_terminal]

        [again] = wait_for(rescheduled, 90, what="the rescheduled run to end")
        assert replicas.stop(other.name) == 0

    with replicas.store() as store:
        old = store.get_run(run_id)
        new = store.get_run(again.id)  # type: ignore[attr-defined]
        new_history = store.state_history(new.id)
    assert old.state is RunState.CANCELLED
    assert "grace period" in (old.state_message or "")
    assert "queued again" in (old.state_message or "")
    assert new.state is RunState.COMPLETED and new.owner == other_id
    assert new.parameters == old.parameters and new.attempt == 1
    assert "rescheduled" in (new_history[0].message or "") and run_id[:8] in (
        new_history[0].message or ""
    )
    lines = replicas.ledgers()
    assert [(b.replica, b.kind) for b in lines if b.run_id == run_id] == [
        (stopped.name, "begin")
    ]  # stopped before its end
    assert [(b.replica, b.kind) for b in lines if b.run_id == new.id] == [
        (other.name, "begin"),
        (other.name, "end"),
    ]
    assert_nothing_doubled(lines)
