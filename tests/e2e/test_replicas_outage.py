"""The PostgreSQL server of three replicas goes away for 10 s and comes back.

The test's own server (``pg_private_server``) is stopped and started again while a run
prints and a 1 s schedule goes on. Real serve processes, real PostgreSQL; the evidence is
the flows' ledgers (tests/e2e/flows/replicas.py), the database and the HTTP answers.
"""

from __future__ import annotations

import collections
import time

import httpx
import pytest

from dockyard.core.states import RunState
from tests.helpers import REPLICA_TOKEN, Replicas, wait_for
from tests.pg import PgServer, pg_private_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 10.0
TALKER_LINES = 50
"""The talker prints one line every 0.5 s: 25 s, so it outlasts the outage."""


@pytest.mark.timeout(400)
def test_a_database_outage_loses_no_line_and_runs_no_slot_twice(
    pg_private_server: PgServer,  # noqa: F811
    tmp_path,
):
    server = pg_private_server
    url = server.url(server.create_database())
    # A replica timeout shorter than the outage: afterwards every heartbeat looks old,
    # and yet no replica may take the others' runs for crashed.
    env = {"DOCKYARD_REPLICA_TIMEOUT": "4", "DOCKYARD_HEARTBEAT": "1"}
    with Replicas(tmp_path, url, ["--config", "flows/replicas.yaml"], **env) as replicas:
        members = replicas.start_all(3)
        pids = {m.name: m.pid for m in members}
        known = sorted(r["id"] for r in members[0].get("/api/replicas").json())
        created = httpx.post(
            f"{members[0].url}/api/deployments/talker/talker/runs",
            json={"parameters": {"lines": TALKER_LINES, "pause": 0.5}},
            headers={"Authorization": f"Bearer {REPLICA_TOKEN}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        talker = created.json()["id"]
        wait_for(
            lambda: any(line.run_id == talker for line in replicas.ledgers()),
            what="the talker to start",
        )

        went_down = time.time()
        server.stop()
        for member in members:
            wait_for(
                lambda m=member: m.status("/ready") == 503, 30, what=f"{member.name} to answer 503"
            )
        back_at = time.monotonic() + OUTAGE_SECONDS
        wait_for(
            lambda: time.monotonic() >= back_at or len(replicas.running()) < 3,
            OUTAGE_SECONDS + 30,
            what="the outage to last",
            interval=0.2,
        )
        assert [m.name for m in replicas.running()] == ["r1", "r2", "r3"]
        came_back = time.time()
        server.start()
        for member in members:
            wait_for(
                lambda m=member: m.status("/ready") == 200,
                60,
                what=f"{member.name} to be ready again",
            )

        def talker_ended() -> object:
            answer = members[1].get(f"/api/runs/{talker}").json()
            return answer["state"] in {"Completed", "Failed", "Crashed", "Cancelled"} and answer

        ended = wait_for(talker_ended, 90, what="the talker to end")
        logs = members[2].get(f"/api/runs/{talker}/logs").json()["lines"]
        # Nobody restarted: the same processes, the same replica ids, still live.
        assert {m.name: m.pid for m in replicas.running()} == pids
        listed = members[0].get("/api/replicas").json()
        assert sorted(r["id"] for r in listed) == known
        assert {r["state"] for r in listed} == {"live"}
        assert replicas.stop_all() == {"r1": 0, "r2": 0, "r3": 0}

    assert ended["state"] == "Completed" and ended["attempt"] == 1
    said = [entry["line"].split() for entry in logs if entry["line"].startswith("said ")]
    assert [int(words[1]) for words in said] == list(range(TALKER_LINES))  # every line, once
    during = [words for words in said if went_down <= float(words[2]) <= came_back]
    assert len(during) >= OUTAGE_SECONDS  # printed while the server was down: kept, then stored

    lines = replicas.ledgers()
    ended_attempts = collections.Counter(line.run_id for line in lines if line.kind == "end")
    assert [run for run, n in ended_attempts.items() if n > 1] == []
    slots = collections.Counter(
        line.slot for line in lines if line.kind == "end" and line.slot.endswith(".000000Z")
    )
    assert [slot for slot, n in slots.items() if n > 1] == []  # no slot ran twice
    with replicas.store() as store:
        runs = {r.id: r for r in store.list_runs(limit=1000, order="asc")}
    # Every attempt that ended in a ledger (the runs in flight during the outage among
    # them) is recorded Completed: none was taken for crashed, none retried.
    assert {runs[run].state for run in ended_attempts} == {RunState.COMPLETED}
    assert [r.id for r in runs.values() if r.state is RunState.CRASHED or r.attempt > 1] == []
    in_flight = [
        line.run_id
        for line in lines
        if line.kind == "end" and line.start < went_down < (line.end or 0)
    ]
    assert talker in in_flight
