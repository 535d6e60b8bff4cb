"""200 ad-hoc runs posted at once to three replicas: a concurrency limit of 3 holds across
them, and every run runs once.

Real serve processes on a real PostgreSQL; the flows' own start and end stamps
(tests/e2e/flows/replicas.py) measure how many ran at once.
"""

from __future__ import annotations

import asyncio
import collections

import httpx
import pytest

from dockyard.core.states import RunState
from tests.helpers import REPLICA_TOKEN, Replica, Replicas, max_overlap, wait_for
from tests.pg import pg_database, pg_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
RUNS = 200
LIMIT = 3
ADHOC = ["flows/replicas.py:tick", "--name", "adhoc", "--concurrency-limit", str(LIMIT)]
DEPLOYMENT = "tick/adhoc"


async def post_all(members: list[Replica], count: int) -> list[httpx.Response]:
    """``count`` POSTs at once, spread round-robin over the replicas' APIs."""
    headers = {"Authorization": f"Bearer {REPLICA_TOKEN}"}
    limits = httpx.Limits(max_connections=RUNS)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:
        posts = [
            client.post(
                f"{members[i % len(members)].url}/api/deployments/{DEPLOYMENT}/runs",
                json={"parameters": {"seconds": 0.2}},
            )
            for i in range(count)
        ]
        return list(await asyncio.gather(*posts))


@pytest.mark.timeout(600)
def test_200_posts_across_replicas_respect_the_concurrency_limit(pg_database, tmp_path):  # noqa: F811
    with Replicas(tmp_path, pg_database, ADHOC) as replicas:
        members = replicas.start_all(3)
        answers = asyncio.run(post_all(members, RUNS))
        statuses = collections.Counter(a.status_code for a in answers)
        assert statuses == {201: RUNS}, [a.text for a in answers if a.status_code != 201][:3]
        created = {a.json()["id"] for a in answers}
        assert len(created) == RUNS

        def all_ended() -> bool:
            ended = {line.run_id for line in replicas.ledgers() if line.kind == "end"}
            return created <= ended

        wait_for(all_ended, 400, what=f"{RUNS} runs to end", interval=0.5)

        def all_recorded() -> bool:
            with replicas.store() as store:
                runs = store.list_runs(deployment=DEPLOYMENT, limit=1000)
            return all(r.state.is_terminal for r in runs)

        wait_for(all_recorded, 60, what="every run's end to be recorded")
        assert replicas.stop_all() == {"r1": 0, "r2": 0, "r3": 0}

    lines = replicas.ledgers()
    begun = collections.Counter(line.run_id for line in lines if line.kind == "begin")
    ended = [line for line in lines if line.kind == "end"]
    assert set(begun) == created and set(begun.values()) == {1}  # each ran once
    assert sorted(line.run_id for line in ended) == sorted(created)
    bodies = [(line.start, line.end) for line in ended if line.end is not None]
    most = max_overlap(bodies)
    print(f"{RUNS} runs over {len({line.replica for line in ended})} replicas; {most} at once")
    assert most <= LIMIT
    with replicas.store() as store:
        runs = store.list_runs(deployment=DEPLOYMENT, limit=1000)
    assert len(runs) == RUNS
    assert {(r.state, r.attempt) for r in runs} == {(RunState.COMPLETED, 1)}
