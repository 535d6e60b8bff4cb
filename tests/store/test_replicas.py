"""The replicas' rows: heartbeat (insert or update), leave, list, and pruning.

Every test runs once per backend of ``tests/store/conftest.py`` (SQLite, PostgreSQL).
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from dockyard.core.records import ReplicaRecord
from dockyard.store.aio import AsyncStore
from dockyard.store.base import StateStore
from tests.store.support import DEP, T0, Opener

DAY = timedelta(days=1)


def replica(replica_id: str = "host-a-1-abcd", **changes: object) -> ReplicaRecord:
    values: dict[str, object] = {
        "id": replica_id,
        "host": "host-a",
        "pid": 4242,
        "version": "1.2.3",
        "code_revision": "0123456789abcdef0123456789abcdef01234567",
        "deployments": (DEP, "etl/hourly"),
        "runs_held": 2,
        "started_at": T0,
        "last_seen": T0 + timedelta(seconds=5),
        "stopped_at": None,
    }
    values.update(changes)
    return ReplicaRecord(**values)  # type: ignore[arg-type]


def test_a_heartbeat_inserts_the_row(store: StateStore) -> None:
    assert store.list_replicas() == []

    store.heartbeat(replica())

    assert store.list_replicas() == [replica()]


def test_the_next_heartbeat_updates_it_but_keeps_started_at(store: StateStore) -> None:
    store.heartbeat(replica())
    later = replica(
        host="host-b",
        pid=7,
        version="1.2.4",
        code_revision=None,
        deployments=(),
        runs_held=0,
        started_at=T0 + timedelta(hours=1),  # a replica only knows when it started: kept
        last_seen=T0 + timedelta(minutes=3),
    )

    store.heartbeat(later)

    assert store.list_replicas() == [dataclasses.replace(later, started_at=T0)]


def test_leave_marks_it_stopped(store: StateStore) -> None:
    store.heartbeat(replica())
    store.heartbeat(replica("host-b-2-ef01", started_at=T0 + timedelta(seconds=1)))
    left_at = T0 + timedelta(minutes=1)

    store.leave("host-a-1-abcd", now=left_at)

    first, second = store.list_replicas()
    assert first == replica(stopped_at=left_at, last_seen=left_at)
    assert first.state(left_at + DAY / 2, 30) == "stopped"
    assert second.stopped_at is None and second.state(second.last_seen, 30) == "live"


def test_leaving_without_a_row_changes_nothing(store: StateStore) -> None:
    store.heartbeat(replica())

    store.leave("never-heard-of", now=T0 + DAY)

    assert store.list_replicas() == [replica()]


def test_replicas_are_listed_oldest_started_first(store: StateStore) -> None:
    store.heartbeat(replica("c", started_at=T0 + timedelta(seconds=2)))
    store.heartbeat(replica("b", started_at=T0))
    store.heartbeat(replica("a", started_at=T0 + timedelta(seconds=2)))

    assert [r.id for r in store.list_replicas()] == ["b", "a", "c"]


def test_a_heartbeat_prunes_rows_not_seen_for_a_day(store: StateStore) -> None:
    now = T0 + 3 * DAY
    # Newest first: each heartbeat prunes by its own time, and none of these is a day
    # older than one written before it.
    store.heartbeat(replica("lost-an-hour-ago", last_seen=now - timedelta(hours=1)))
    store.heartbeat(replica("just-a-day", last_seen=now - DAY))
    store.heartbeat(replica("gone", last_seen=now - DAY - timedelta(seconds=1)))
    store.heartbeat(replica("left", last_seen=now - DAY - timedelta(hours=5), stopped_at=T0))
    assert len(store.list_replicas()) == 4

    store.heartbeat(replica("me", last_seen=now))

    remaining = {r.id for r in store.list_replicas()}
    assert remaining == {"lost-an-hour-ago", "just-a-day", "me"}


def test_every_store_on_the_database_sees_every_replica(open_backend: Opener) -> None:
    one, two = open_backend(), open_backend()
    one.heartbeat(replica("one"))
    two.heartbeat(replica("two", started_at=T0 + timedelta(seconds=1)))

    assert [r.id for r in one.list_replicas()] == ["one", "two"]
    assert two.list_replicas() == one.list_replicas()


def test_replica_timeout_is_set_when_opening(open_backend: Opener) -> None:
    assert open_backend().replica_timeout == 30.0
    assert open_backend(replica_timeout=4.5).replica_timeout == 4.5


def test_the_async_store_wraps_them(store: StateStore) -> None:
    async def scenario() -> list[ReplicaRecord]:
        wrapped = AsyncStore(store)
        assert wrapped.replica_timeout == store.replica_timeout
        await wrapped.heartbeat(replica())
        await wrapped.leave("host-a-1-abcd", now=T0 + timedelta(minutes=2))
        return await wrapped.list_replicas()

    [row] = asyncio.run(scenario())

    assert row.stopped_at == T0 + timedelta(minutes=2)
