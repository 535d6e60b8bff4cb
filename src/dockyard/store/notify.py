"""Listening for other replicas' changes: PostgreSQL LISTEN on one dedicated connection.

A ``Listener`` thread holds its own autocommit connection, runs ``LISTEN dockyard`` and
calls ``callback(payload)`` for every notification (store/queue.py ``notify`` sends them
when a transaction that made work or freed capacity commits). When the connection drops
it reconnects with backoff and jitter, and calls ``callback("reconnected")`` once it is
back, since notifications sent meanwhile were lost.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

import sqlalchemy as sa

from dockyard.store.queue import NOTIFY_CHANNEL

logger = logging.getLogger("dockyard")

POLL_SECONDS = 1.0
"""How long one wait for notifications lasts (how fast ``close`` takes effect)."""
MAX_BACKOFF_SECONDS = 10.0


class Listener:
    """Calls ``callback`` with the payload of each notification on ``NOTIFY_CHANNEL``."""

    def __init__(self, url: sa.URL, callback: Callable[[str], None], *, database: str) -> None:
        self._url = url
        self._callback = callback
        self._database = database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dockyard-listen", daemon=True)
        self.connected = threading.Event()
        """Set while LISTEN is in force (tests and readiness wait on it)."""

    def start(self) -> Listener:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_SECONDS * 3)

    def _run(self) -> None:
        delay = 0.5
        first = True
        while not self._stop.is_set():
            try:
                self._listen(announce=not first)
                delay = 0.5
            except Exception as exc:  # psycopg.Error, OSError: the server went away
                self.connected.clear()
                logger.debug("listening on %s failed: %s", self._database, exc)
            first = False
            self._stop.wait(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _listen(self, *, announce: bool) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        conninfo = make_conninfo("", **_connect_params(self._url))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.connected.set()
            if announce:
                self._callback("reconnected")
            while not self._stop.is_set():
                for note in conn.notifies(timeout=POLL_SECONDS):
                    self._callback(note.payload)
                    if self._stop.is_set():
                        break


def _connect_params(url: sa.URL) -> dict[str, str | int]:
    """libpq keyword arguments of a SQLAlchemy URL."""
    params: dict[str, str | int] = {"connect_timeout": 5}
    for key, value in (
        ("host", url.host),
        ("port", url.port),
        ("user", url.username),
        ("password", url.password),
        ("dbname", url.database),
    ):
        if value is not None:
            params[key] = value
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return params
