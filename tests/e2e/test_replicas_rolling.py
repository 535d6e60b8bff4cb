"""A rolling restart of three replicas with ``pause_on_shutdown``: the schedule is never
left paused, and no slot is lost.

Real serve processes on a real PostgreSQL. While each replica in turn drains and starts
again, a thread keeps asking a replica that stays up for the deployment (and reads the
database row); the flows' ledgers (tests/e2e/flows/replicas.py) show every slot once.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from tests.helpers import Replica, Replicas, ended_slots, utc_now, wait_for
from tests.pg import pg_database, pg_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
DEPLOYMENT = "tick/every-second"
ARGS = [
    "flows/replicas.py:tick", "--name", "every-second", "--interval", "1",
    "--pause-on-shutdown", "--shutdown-grace", "5",
]  # fmt: skip


@dataclass
class Poll:
    at: float
    replica: str
    api_paused: bool | None
    """What GET /api/deployments/… said (None: that replica did not answer)."""
    row_paused: bool


class PausePoller(threading.Thread):
    """Reads the deployment's paused flag from a replica that is not restarting, and
    from the database, until stopped."""

    def __init__(self, replicas: Replicas) -> None:
        super().__init__(name="pause-poller", daemon=True)
        self.replicas = replicas
        self.restarting: str | None = None
        self.polls: list[Poll] = []
        self.error: BaseException | None = None
        self._done = threading.Event()

    def run(self) -> None:
        try:
            with self.replicas.store() as store:
                while not self._done.is_set():
                    self._poll(store)
                    self._done.wait(0.1)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def _poll(self, store: object) -> None:
        restarting = self.restarting
        asked: Replica | None = next(
            (r for r in self.replicas.running() if r.name != restarting), None
        )
        if asked is None:
            return
        try:
            api = bool(asked.get(f"/api/deployments/{DEPLOYMENT}").json()["paused"])
        except httpx.HTTPError:
            api = None
        row = store.get_deployment(DEPLOYMENT)  # type: ignore[attr-defined]
        self.polls.append(Poll(time.time(), asked.name, api, bool(row.paused)))

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=30)


def live_pids(replica: Replica) -> set[int]:
    return {r["pid"] for r in replica.get("/api/replicas").json() if r["state"] == "live"}


def slot_names(start: datetime, end: datetime) -> list[str]:
    first, last = math.floor(start.timestamp()) + 1, math.floor(end.timestamp())
    return [
        datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for s in range(first, last + 1)
    ]


@pytest.mark.timeout(400)
def test_a_rolling_restart_never_leaves_the_schedule_paused(pg_database, tmp_path):  # noqa: F811
    with Replicas(tmp_path, pg_database, ARGS) as replicas:
        members = replicas.start_all(3)
        wait_for(lambda: len(live_pids(members[2])) == 3, 30, what="three live replicas")
        began = utc_now()
        poller = PausePoller(replicas)
        poller.start()
        downtimes: list[tuple[float, float]] = []
        try:
            for name in ("r1", "r2", "r3"):
                poller.restarting = name
                stopped_at = time.time()
                assert replicas.stop(name) == 0
                new = replicas.start(name)
                other = next(r for r in replicas.running() if r.name != name)
                wait_for(lambda n=new, o=other: n.pid in live_pids(o), 30, what=f"{name} live")
                downtimes.append((stopped_at, time.time()))
                poller.restarting = None
            finished = utc_now()
            window = slot_names(began, finished)
            with contextlib.suppress(AssertionError):  # the asserts below say what is missing
                wait_for(
                    lambda: set(window) <= set(ended_slots(replicas.ledgers())),
                    60,
                    what="every slot of the restart to end",
                    interval=0.2,
                )
        finally:
            poller.stop()
        assert replicas.stop_all(timeout=60) == {"r1": 0, "r2": 0, "r3": 0}

    assert poller.error is None, poller.error
    answered = [p for p in poller.polls if p.api_paused is not None]
    assert [p for p in poller.polls if p.api_paused or p.row_paused] == []  # never paused
    for start, end in downtimes:  # and it was asked while each replica was away
        assert any(start <= p.at <= end for p in answered), (start, end)
    ended = collections.Counter(ended_slots(replicas.ledgers()))
    assert [s for s, n in ended.items() if n > 1] == []  # no slot ran twice
    assert [s for s in window if s not in ended] == []  # none was lost
