"""Cancel, pause and resume through one replica act on the others (real PostgreSQL).

A run is cancelled through the API of a replica that does not run it: its owner stops
it. A deployment paused through one replica stops being scheduled by all of them, and
resumed through another is scheduled again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from dockyard._version import __version__
from dockyard.core.states import RunState
from tests.helpers import REPLICA_TOKEN, Replica, Replicas, metric, wait_for
from tests.pg import pg_database, pg_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
CONFIG = ["--config", "flows/replicas.yaml"]
AUTH = {"Authorization": f"Bearer {REPLICA_TOKEN}"}


def post(replica: Replica, path: str, body: dict[str, object] | None = None) -> httpx.Response:
    return httpx.post(replica.url + path, json=body or {}, headers=AUTH, timeout=10)


@pytest.mark.timeout(240)
def test_a_run_cancelled_through_another_replica_is_stopped_by_its_owner(
    pg_database,  # noqa: F811
    tmp_path,
):
    with Replicas(tmp_path, pg_database, CONFIG) as replicas:
        members = replicas.start_all(2)
        answer = post(
            members[0], "/api/deployments/long-tick/long/runs", {"parameters": {"seconds": 60}}
        )
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]

        def running_owner() -> str | None:
            with replicas.store() as store:
                run = store.get_run(run_id)
            return run.owner if run.state is RunState.RUNNING else None

        owner = wait_for(running_owner, what="the run to start")
        wait_for(
            lambda: [line for line in replicas.ledgers() if line.run_id == run_id],
            what="the flow to begin",
        )
        ids = {r["id"]: r["pid"] for r in members[0].get("/api/replicas").json()}
        runner = next(m for m in members if m.pid == ids[owner])
        other = next(m for m in members if m is not runner)
        asked = time.monotonic()
        answer = post(other, f"/api/runs/{run_id}/cancel")
        assert answer.status_code == 202, answer.text  # asked: its owner stops it

        def ended() -> bool:
            with replicas.store() as store:
                return store.get_run(run_id).state.is_terminal

        wait_for(ended, 60, what="the owner to stop the run")
        took = time.monotonic() - asked
        with replicas.store() as store:
            run = store.get_run(run_id)
        assert run.state is RunState.CANCELLED, run
        assert run.owner == owner and run.dockyard_version == __version__
        assert run.attempt == 1  # cancelled, not retried
        assert run.ended_at is not None and run.started_at is not None
        # Stopped long before its 60 s sleep would have ended.
        assert took < 50, took
        lines = [line for line in replicas.ledgers() if line.run_id == run_id]
        assert [line.kind for line in lines] == ["begin"]  # it never reached its end
        assert all(m.alive() for m in members)


@pytest.mark.timeout(240)
def test_pause_through_one_replica_stops_every_replica_and_resume_through_another_restarts(
    pg_database,  # noqa: F811
    tmp_path,
):
    with Replicas(tmp_path, pg_database, CONFIG) as replicas:
        members = replicas.start_all(3)
        name = "tick/every-second"

        def slots_since(when: datetime) -> list[datetime]:
            with replicas.store() as store:
                runs = store.list_runs(deployment=name, since=when, limit=1000)
            return [r.scheduled_at for r in runs if r.trigger == "schedule"]

        start = datetime.now(UTC)
        wait_for(lambda: len(slots_since(start)) >= 3, what="slots before the pause")
        answer = post(members[0], f"/api/deployments/{name}/pause")
        assert answer.status_code == 200, answer.text
        paused_at = datetime.now(UTC)
        for member in members:  # every replica's API says so at once
            assert member.get(f"/api/deployments/{name}").json()["paused"] is True

        # Until the replicas together have counted five slots skipped as paused, none of
        # them may have claimed a slot.
        def paused_slots() -> float:
            texts = [m.get("/metrics").text for m in members]
            labels = {"deployment": name, "reason": "paused"}
            return sum(
                metric(t, "dockyard_scheduled_runs_missed_total", **labels) or 0 for t in texts
            )

        wait_for(lambda: paused_slots() >= 5, 30, what="five slots skipped as paused")
        claimed = [t for t in slots_since(paused_at) if t > paused_at]
        assert claimed == []
        answer = post(members[2], f"/api/deployments/{name}/resume")
        assert answer.status_code == 200, answer.text
        resumed_at = datetime.now(UTC)
        wait_for(
            lambda: [t for t in slots_since(resumed_at) if t > resumed_at],
            20,
            what="a slot after the resume",
        )
        assert all(m.alive() for m in members)
