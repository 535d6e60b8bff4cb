"""``GET /api/replicas`` and the ``dockyard_replicas`` gauge, through the real app over a
started service (real SQLite store, see ``tests/web/conftest.py``).

The replicas' rows are written through the service's own store, as other serve processes
sharing the database would write theirs. The answering process's clock decides whether a
row is live or lost: it is fixed here, so no answer depends on how fast the test runs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from dockyard.core.records import REPLICA_STATES, ReplicaRecord
from dockyard.metrics import Metrics, count_replica_states
from dockyard.web.schemas import ReplicaOut
from tests.helpers import metric
from tests.web.conftest import Served, serving

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
TOKEN = "web-token-replicas-77"


def replica(replica_id: str, last_seen: datetime, **changes: object) -> ReplicaRecord:
    values: dict[str, object] = {
        "id": replica_id,
        "host": f"host-of-{replica_id}",
        "pid": 100,
        "version": "9.9.9",
        "code_revision": None,
        "deployments": ("anything/d",),
        "runs_held": 0,
        "started_at": NOW - timedelta(hours=3),
        "last_seen": last_seen,
        "stopped_at": None,
    }
    values.update(changes)
    return ReplicaRecord(**values)  # type: ignore[arg-type]


OTHERS = [
    replica("live", NOW - timedelta(seconds=10), runs_held=3, code_revision="c0ffee" * 6),
    replica("lost", NOW - timedelta(seconds=31), deployments=()),
    replica("left", NOW - timedelta(minutes=5), stopped_at=NOW - timedelta(minutes=5)),
]


async def _with_others(served: Served) -> None:
    for record in OTHERS:
        await served.store.heartbeat(record)
    served.service.ops.clock = lambda: NOW


def test_replicas_are_listed_with_their_state(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            await _with_others(served)
            answer = await served.client.get("/api/replicas")
            assert answer.status_code == 200, answer.text
            listed = {r["id"]: r for r in answer.json() if r["id"] in {o.id for o in OTHERS}}
            assert {k: r["state"] for k, r in listed.items()} == {
                "live": "live",
                "lost": "lost",
                "left": "stopped",
            }
            assert all(set(r) == set(ReplicaOut.model_fields) for r in answer.json())
            live = listed["live"]
            assert (live["host"], live["pid"], live["version"]) == ("host-of-live", 100, "9.9.9")
            assert (live["runs_held"], live["deployments"]) == (3, ["anything/d"])
            assert live["code_revision"] == "c0ffee" * 6
            assert datetime.fromisoformat(live["last_seen"]) == NOW - timedelta(seconds=10)
            assert live["stopped_at"] is None
            assert datetime.fromisoformat(listed["left"]["stopped_at"]) == NOW - timedelta(
                minutes=5
            )
            ids = [r["id"] for r in answer.json()]
            assert [i for i in ids if i in listed] == ["left", "live", "lost"]  # then by id

    asyncio.run(go())


def test_the_timeout_is_the_stores(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            await _with_others(served)
            served.store.store.replica_timeout = 60.0
            answer = (await served.client.get("/api/replicas")).json()
            states = {r["id"]: r["state"] for r in answer}
            assert (states["live"], states["lost"]) == ("live", "live")

    asyncio.run(go())


def test_reading_them_needs_no_token_like_every_get(tmp_path):
    async def go() -> None:
        async with serving(tmp_path, token=TOKEN) as served:
            await _with_others(served)
            runs = await served.client.get("/api/runs")
            replicas = await served.client.get("/api/replicas")
            refused = await served.client.post("/api/shutdown")
            assert (runs.status_code, replicas.status_code) == (200, 200)
            assert refused.status_code == 401  # the token is in force for changes
            assert TOKEN not in replicas.text

    asyncio.run(go())


def test_the_endpoint_is_in_the_openapi_schema(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            schema = (await served.client.get("/openapi.json")).json()
            operation = schema["paths"]["/api/replicas"]["get"]
            assert set(schema["components"]["schemas"]["ReplicaOut"]["properties"]) == set(
                ReplicaOut.model_fields
            )
            assert "200" in operation["responses"]

    asyncio.run(go())


def test_the_gauge_has_every_state_from_the_start():
    metrics = Metrics()

    text = metrics.render().decode()

    assert "# HELP dockyard_replicas Serve processes sharing the state database" in text
    assert "# TYPE dockyard_replicas gauge" in text
    assert {s: metric(text, "dockyard_replicas", state=s) for s in REPLICA_STATES} == {
        "live": 0.0,
        "lost": 0.0,
        "stopped": 0.0,
    }


def test_the_gauge_counts_what_a_heartbeat_saw():
    metrics = Metrics()
    counts = count_replica_states(OTHERS + [replica("also-live", NOW)], NOW, 30.0)

    metrics.replicas_seen(counts)
    first = metrics.render().decode()
    metrics.replicas_seen({"live": 1, "unknown": 5})  # a state gone to 0; no new label
    second = metrics.render().decode()

    assert counts == {"live": 2, "lost": 1, "stopped": 1}
    assert {s: metric(first, "dockyard_replicas", state=s) for s in REPLICA_STATES} == {
        "live": 2.0,
        "lost": 1.0,
        "stopped": 1.0,
    }
    assert {s: metric(second, "dockyard_replicas", state=s) for s in REPLICA_STATES} == {
        "live": 1.0,
        "lost": 0.0,
        "stopped": 0.0,
    }
    assert 'state="unknown"' not in second


def test_the_served_metrics_page_has_the_gauge(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            text = (await served.client.get("/metrics")).text
            for state in REPLICA_STATES:
                assert metric(text, "dockyard_replicas", state=state) is not None

    asyncio.run(go())
