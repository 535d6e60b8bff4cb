"""Where the read commands get their data: a serve process's API or its state database.

Both readers return the same thing: the JSON of the HTTP API's response models
(``dockyard.web.schemas``) as plain dicts, so one renderer per resource prints either and
``--json`` is the same in both modes. :class:`HttpReader` passes the server's answers on;
:class:`LocalReader` builds them from the store's records with ``dockyard.web.shapes``,
the conversion the server uses.

What the local mode cannot know exactly, and how it fills it in:

* ``next_run`` / ``next_runs``: computed from the stored schedule dicts in the
  deployment's spec at the current UTC time, as the server computes them with its clock
  (``next_run`` is null while paused; a spec whose schedules no longer parse has none).
* ``served``: whether a live serve process serves the deployment, from the replicas'
  heartbeat rows (the API adds what the answering process serves since its last
  heartbeat). While no serve process runs, those the last one served count as served;
  when no serve process was seen for a day, every deployment does (nothing tells).
* a deployment's fields come from the spec the store kept, which serve writes from the
  served deployment when it starts; a key an old spec lacks gets ``Deployment``'s default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

from dockyard.core.records import PAUSED_BY_USER, DeploymentRecord
from dockyard.core.schedules import upcoming
from dockyard.errors import (
    NotFoundError,
    ScheduleError,
    StateStoreError,
    UsageError,
)
from dockyard.settings import ClientSettings, load_client_settings

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.core.schedules import Schedule
    from dockyard.core.states import RunState
    from dockyard.store import SqlStateStore

Item = dict[str, Any]
NEXT_RUNS = 5
"""How many upcoming fire times ``deployment inspect`` shows (as the API does)."""


class Reader(Protocol):
    """The deployments, runs and logs the ``deployment`` and ``run`` commands show.

    Every method returns API-shaped JSON (dicts of ``dockyard.web.schemas`` models) and
    raises a ``DockyardError`` (e.g. ``NotFoundError``) whose message says what to fix.
    """

    def deployments(self) -> list[Item]:
        """Every deployment, served or not (``served``), as ``DeploymentSummary``."""
        ...

    def remove_deployment(self, name: str) -> Item:
        """Remove a deployment no live serve process serves, with its runs, as
        ``DeploymentRemoved``; ``ConflictError`` while one serves it."""
        ...

    def deployment(self, name: str) -> Item:
        """One deployment (``flow/deployment``), as ``DeploymentDetail``."""
        ...

    def set_paused(self, name: str, paused: bool) -> Item:
        """Pause (by the user) or resume a deployment; it afterwards, as ``DeploymentSummary``."""
        ...

    def runs(self, deployment: str | None, states: Sequence[RunState], limit: int) -> list[Item]:
        """The newest ``limit`` runs, optionally of one deployment and in ``states``."""
        ...

    def run(self, run_id: str) -> Item:
        """One run (id or unique prefix), as ``RunDetail`` with its state history and task
        runs."""
        ...

    def logs(self, run_id: str, tail: int | None) -> list[Item]:
        """The run's stored output lines (the last ``tail`` ones), as ``LogLineOut``."""
        ...

    def replicas(self) -> list[Item]:
        """The serve processes sharing the database, as ``ReplicaOut``."""
        ...

    def close(self) -> None:
        """Release the connection or the database."""
        ...


class HttpReader:
    """A :class:`Reader` over the ``/api`` of a running serve process."""

    def __init__(self, api: Client) -> None:
        self.api = api

    def deployments(self) -> list[Item]:
        return self.api.list_deployments(every=True)

    def remove_deployment(self, name: str) -> Item:
        return self.api.delete_deployment(name)

    def deployment(self, name: str) -> Item:
        return self.api.get_deployment(name)

    def set_paused(self, name: str, paused: bool) -> Item:
        return self.api.pause(name) if paused else self.api.resume(name)

    def runs(self, deployment: str | None, states: Sequence[RunState], limit: int) -> list[Item]:
        names = [s.value for s in states]
        answer = self.api.list_runs(deployment=deployment, state=names, limit=limit)
        return list(answer["runs"])

    def run(self, run_id: str) -> Item:
        return self.api.get_run(run_id)

    def logs(self, run_id: str, tail: int | None) -> list[Item]:
        return list(self.api.logs(run_id, tail)["lines"])

    def replicas(self) -> list[Item]:
        return list(self.api.call("GET", "/replicas"))

    def close(self) -> None:
        self.api.close()


class LocalReader:
    """A :class:`Reader` over the state database, shaped as the API answers.

    ``now`` is the clock the upcoming fire times are computed with (UTC wall clock).
    """

    def __init__(self, store: SqlStateStore, now: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.now = now or _utcnow

    def deployments(self) -> list[Item]:
        from dockyard.web import shapes

        served = self._served()
        items = []
        for r in self.store.list_deployments():
            on = served is None or r.name in served
            upcoming = self._upcoming(r, 1) if on else []
            items.append(_json(shapes.deployment_summary(r, upcoming, served=on)))
        return items

    def deployment(self, name: str) -> Item:
        from dockyard.web import shapes

        record = self._record(name)
        last = self.store.list_runs(deployment=name, limit=1)
        served = self._served()
        on = served is None or name in served
        upcoming = self._upcoming(record, NEXT_RUNS) if on else []
        return _json(
            shapes.deployment_detail(record, upcoming, last[0] if last else None, served=on)
        )

    def remove_deployment(self, name: str) -> Item:
        from dockyard.store.serving import removal_refusal

        self._record(name)
        refused = removal_refusal(self.store, name, self.now())
        if refused is not None:
            raise refused
        removed = 0
        while count := self.store.delete_runs(name):
            removed += count
        removed += self.store.delete_deployment(name)
        return {"name": name, "runs": removed}

    def set_paused(self, name: str, paused: bool) -> Item:
        from dockyard.web import shapes

        reason = PAUSED_BY_USER if paused else None
        record = self.store.set_paused(name, paused, reason, now=self.now())
        served = self._served()
        on = served is None or name in served
        upcoming = self._upcoming(record, 1) if on else []
        return _json(shapes.deployment_summary(record, upcoming, served=on))

    def runs(self, deployment: str | None, states: Sequence[RunState], limit: int) -> list[Item]:
        from dockyard.web import shapes

        if deployment is not None:
            self._record(deployment)  # an unknown one is an error, not an empty list
        runs = self.store.list_runs(deployment=deployment, states=states or None, limit=limit)
        return [_json(shapes.run_summary(r)) for r in runs]

    def run(self, run_id: str) -> Item:
        from dockyard.web import shapes

        run = self.store.get_run(run_id)
        history = self.store.state_history(run.id)
        return _json(shapes.run_detail(run, history, self.store.task_runs(run.id)))

    def logs(self, run_id: str, tail: int | None) -> list[Item]:
        from dockyard.web import shapes

        run = self.store.get_run(run_id)  # resolves a prefix; unknown ids are an error
        return [_json(shapes.log_line(line)) for line in self.store.get_logs(run.id, tail=tail)]

    def replicas(self) -> list[Item]:
        from dockyard.web import shapes

        now, timeout = self.now(), self.store.replica_timeout
        return [_json(shapes.replica(r, now, timeout)) for r in self.store.list_replicas()]

    def close(self) -> None:
        self.store.close()

    def _record(self, name: str) -> DeploymentRecord:
        record = self.store.get_deployment(name)
        if record is None:
            known = ", ".join(r.name for r in self.store.list_deployments()) or "none"
            raise NotFoundError(f"unknown deployment {name!r}; known: {known}")
        return record

    def _served(self) -> set[str] | None:
        """What counts as served (``store.serving.served_deployments``)."""
        from dockyard.store.serving import replica_rows, served_deployments

        now = self.now()
        rows, dead = replica_rows(self.store, now)
        return served_deployments(rows, now, self.store.replica_timeout, dead)

    def _upcoming(self, record: DeploymentRecord, count: int) -> list[datetime]:
        return upcoming(stored_schedules(record.spec), self.now(), count)


def stored_schedules(spec: Mapping[str, Any]) -> list[Schedule]:
    """The schedules of a stored spec; none if they don't parse (a spec of an old version)."""
    from dockyard.core.schedules import schedule_from_dict

    try:
        return [schedule_from_dict(s) for s in spec.get("schedules") or []]
    except ScheduleError:
        return []


def settings_for(
    url: str | None, state: str | None, database_url: str | None = None
) -> ClientSettings | None:
    """Client settings when the command should talk HTTP, None for the local mode.

    Precedence: --url > --state / --database-url > DOCKYARD_URL > DOCKYARD_DATABASE_URL
    (or its _FILE) > DOCKYARD_STATE.
    """
    local = "--state" if database_url is None else "--database-url"
    if url is not None and (state is not None or database_url is not None):
        raise UsageError(
            f"give either --url (a running serve process) or {local} (its database), not both"
        )
    if state is not None or database_url is not None:
        return None
    settings = load_client_settings(url)
    return settings if settings.url else None


def client(settings: ClientSettings) -> Client:
    """An API client of the serve process at ``settings.url``."""
    from dockyard.client import Client  # httpx only for the commands that use it

    assert settings.url is not None  # the commands only come here with a URL
    return Client(settings.url, settings.api_token)


@contextlib.contextmanager
def open_reader(
    url: str | None, state: str | None, database_url: str | None = None
) -> Iterator[Reader]:
    """The reader ``--url`` / ``--state`` / ``--database-url`` (or DOCKYARD_URL /
    DOCKYARD_STATE / DOCKYARD_DATABASE_URL) ask for."""
    http = settings_for(url, state, database_url)
    reader: Reader
    if http:
        reader = HttpReader(client(http))
    else:
        reader = LocalReader(open_state(state, database_url))
    try:
        yield reader
    finally:
        reader.close()


def open_state(state: str | None, database_url: str | None = None) -> SqlStateStore:
    """The existing state database: --database-url / DOCKYARD_DATABASE_URL, else --state,
    DOCKYARD_STATE or the default path.

    A file that cannot be opened (corrupt, not SQLite, a directory) is a usage error
    (exit 2) as in ``dockyard serve``: the fix is another --state or repairing the file.
    A database server that cannot be reached is an error (exit 1) naming it without its
    password.
    """
    from dockyard.settings import load_state_setting, store_location
    from dockyard.store import open_store

    settings = load_state_setting(state, database_url)
    location = store_location(settings)
    if isinstance(location, Path) and not location.exists():
        raise UsageError(
            f"no state database at {location}; run 'dockyard serve' first or pass --state PATH"
        )
    try:
        return open_store(location, replica_timeout=settings.replica_timeout)
    except StateStoreError as exc:
        if isinstance(location, Path):
            raise UsageError(str(exc)) from None
        raise StateStoreError(_without_password(str(exc), location)) from None


def _without_password(text: str, url: str) -> str:
    """``text`` with the password of ``url`` masked, wherever the store's message put it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def _json(model: BaseModel) -> Item:
    return model.model_dump(mode="json")


def _utcnow() -> datetime:
    return datetime.now(UTC)
