"""The state store on SQLAlchemy Core: SQLite now, PostgreSQL later with the same queries.

Every public method runs in its own short transaction and is safe to call while other
processes (the CLI, a second replica) use the same database. On SQLite, write transactions
start with ``BEGIN IMMEDIATE`` so that two writers queue on ``busy_timeout`` instead of
failing with SQLITE_BUSY when a read turns into a write.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dockyard.core.records import (
    LOG_STREAMS,
    PAUSED_BY_USER,
    PAUSED_REASONS,
    DeploymentRecord,
    LogLine,
    NewRun,
    ReplicaRecord,
    RunRecord,
    StateEvent,
    Takeable,
    TaskRunRecord,
    slot_key,
)
from dockyard.core.states import RunState, can_transition
from dockyard.errors import DatabaseUnavailable, NotFoundError, StateStoreError, UsageError
from dockyard.store import migrations, pruning, queue
from dockyard.store.base import Claimed, DeploymentState, Listening, TakeRequest
from dockyard.store.leases import FileLeases
from dockyard.store.replicas import mark_left, prune_replicas, select_replicas, upsert_replica
from dockyard.store.schema import (
    deployments,
    find_deployment,
    insert_event,
    insert_run,
    replicas,
    require_deployment,
    require_run,
    run_filters,
    run_logs,
    run_not_found,
    run_states,
    runs,
    slots,
    unique_tags,
)
from dockyard.store.task_runs import select_task_runs, upsert_task_runs

HINT = "set --state or DOCKYARD_STATE to a writable path"
_TRANSITION_FIELDS = frozenset(
    {"started_at", "ended_at", "attempt", "error", "result", "pid", "code_revision",
     "scheduled_at", "name", "owner", "process"}
)  # fmt: skip
_UPDATE_FIELDS = frozenset({"pid", "name", "code_revision", "owner", "process"})
_MIN_PREFIX = 6


class _SlotTaken(Exception):
    """Internal: the slot row already exists, so the claim transaction must roll back."""


def first_line(exc: sa.exc.DBAPIError) -> str:
    return (str(exc.orig) if exc.orig is not None else str(exc)).splitlines()[0]


def _utcnow() -> datetime:
    return datetime.now(UTC)


_REFUSED_LOGIN = ("authentication failed", "does not exist", "pg_hba.conf", "permission denied")
"""What a server that answered says when the URL itself is wrong (no use waiting)."""


def _unreachable(exc: sa.exc.DBAPIError) -> bool:
    """Whether a PostgreSQL error says the server cannot be reached now: no connection
    (libpq gives no SQLSTATE then, also when the server refused the login: told apart by
    its message), a connection lost (class 08) or a server starting or stopping (57P)."""
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state is None:
        return not any(words in first_line(exc) for words in _REFUSED_LOGIN)
    return bool(state.startswith(("08", "57P")))


def _replica_id() -> str:
    """``<host>-<pid>-<random>``: readable in `replica ls`, unique across restarts."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{host[:40] or 'host'}-{os.getpid()}-{secrets.token_hex(4)}"


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _require_deployments(conn: Connection, names: set[str]) -> None:
    if not names:
        return
    query = sa.select(deployments.c.name).where(deployments.c.name.in_(sorted(names)))
    missing = names - set(conn.execute(query).scalars())
    if missing:
        require_deployment(conn, min(missing))  # raises NotFoundError naming the known ones


def _claim(conn: Connection, new_run: NewRun, now: datetime) -> bool:
    """Insert the run and its slot row unless the slot is claimed already (in the caller's
    write transaction); whether this call claimed it."""
    key = slot_key(new_run.deployment, new_run.scheduled_at, new_run.slot_variant)
    if conn.execute(sa.select(slots.c.slot_key).where(slots.c.slot_key == key)).first():
        return False  # the common case when replicas share the work: no write at all
    insert_run(conn, new_run, now, key)
    row = {
        "slot_key": key, "deployment": new_run.deployment, "scheduled_at": new_run.scheduled_at,
        "run_id": new_run.run_id, "claimed_at": now,
    }  # fmt: skip
    # Insert-if-absent: a replica claiming the same slot at this moment makes this wait for
    # its commit (PostgreSQL) and insert nothing, instead of failing the whole transaction.
    if conn.execute(_insert_if_absent(conn, row)).first() is not None:
        return True
    conn.execute(run_states.delete().where(run_states.c.run_id == new_run.run_id))
    conn.execute(runs.delete().where(runs.c.id == new_run.run_id))
    return False


def _insert_if_absent(conn: Connection, row: dict[str, Any]) -> sa.Executable:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: a row back when it was inserted."""
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(slots).values(row).on_conflict_do_nothing().returning(slots.c.run_id)
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(slots).values(row).on_conflict_do_nothing().returning(slots.c.run_id)


class SqlStateStore:
    """Deployments, runs, slots, logs and task runs in one SQL database (see ``open_store``).

    Methods are synchronous (call them with ``asyncio.to_thread``), take and return aware
    UTC datetimes, raise :class:`NotFoundError` for unknown deployments and runs, and wrap
    database failures in one-line :class:`StateStoreError` messages. ``now`` arguments
    that default to None mean "the current UTC time".
    """

    def __init__(
        self,
        engine: Engine,
        *,
        database: str,
        max_log_lines: int = 10_000,
        file: Path | None = None,
        replica_timeout: float = 30.0,
    ) -> None:
        if max_log_lines < 1:
            raise ValueError("max_log_lines must be at least 1")
        self._engine = engine
        self._write_engine = engine.execution_options(dockyard_write=True)
        # Reads are one statement each: on PostgreSQL they skip BEGIN/COMMIT (two round
        # trips of every read); SQLite reads keep their snapshot transaction.
        self._read_engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )
        self.database = database
        self.max_log_lines = max_log_lines
        self._file = file
        self._file_id = _file_id(file) if file is not None else None
        self._leases = FileLeases(file.with_name(file.name + ".owners")) if file else None
        self._owner: str | None = None
        self.replica_timeout = replica_timeout

    # -- plumbing ---------------------------------------------------------------------------

    def _upgrade(self) -> None:
        """Bring the database to this dockyard's schema (rules in ``store.migrations``): one
        query when it is there already; else migrate in one locked write transaction."""
        with self._engine.connect() as conn:
            state = migrations.quick_state(conn)
        if state is not None and migrations.usable(state, self.database):
            return
        with self._write_engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite
            migrations.upgrade(conn, database=self.database)

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Connection]:
        engine = self._write_engine if write else self._read_engine
        try:
            with engine.begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise self._translate(exc) from exc
        except sa.exc.StatementError as exc:
            if isinstance(exc.orig, ValueError):  # e.g. a naive datetime refused by UTCDateTime
                raise exc.orig from None
            raise

    def _translate(self, exc: sa.exc.DBAPIError) -> StateStoreError:
        text = first_line(exc)
        if self._engine.dialect.name != "sqlite":
            # libpq's messages do not quote the password; make sure of it anyway.
            secret = self._engine.url.password
            text = " ".join((text.replace(str(secret), "***") if secret else text).split())
            if text.startswith("connection failed: "):  # libpq: host and port (in the URL), why
                text = text.rpartition(" failed: ")[2].removeprefix("FATAL: ")
            if isinstance(exc, sa.exc.IntegrityError):
                return StateStoreError(f"state database {self.database} refused a write: {text}")
            kind = DatabaseUnavailable if _unreachable(exc) else StateStoreError
            return kind(
                f"state database {self.database}: {text}; check DOCKYARD_DATABASE_URL and "
                "that the database server is up"
            )
        if "readonly" in text or "read-only" in text:
            return StateStoreError(
                f"state database {self.database} is read-only ({text}); "
                f"{HINT} or fix the permissions of the file and its directory"
            )
        if "locked" in text:
            return StateStoreError(
                f"state database {self.database} stayed locked for 10s by another process; "
                "check for a stuck dockyard process"
            )
        if isinstance(exc, sa.exc.IntegrityError):  # e.g. a NewRun.id that is already used
            return StateStoreError(f"state database {self.database} refused a write: {text}")
        return StateStoreError(f"state database {self.database}: {text}; {HINT}")

    def ping(self) -> None:
        """Run a trivial query; raise StateStoreError if the database is unusable, or if
        its file was deleted or replaced since it was opened (writes would be lost)."""
        self._check_file()
        with self._tx() as conn:
            conn.execute(sa.select(sa.literal(1))).scalar()

    def _check_file(self) -> None:
        if self._file is None or self._file_id is None:
            return
        now = _file_id(self._file)
        if now == self._file_id:
            return
        what = "deleted" if now is None else "replaced by another file"
        raise StateStoreError(
            f"state database {self.database} was {what} while dockyard was running; "
            "nothing is written to it any more and no new run starts: restore the file "
            "and restart dockyard"
        )

    def take_lease(self) -> str:
        """Mark this process as a live owner of runs; return its owner id."""
        if self._owner is None:
            try:
                self._owner = self._leases.acquire() if self._leases else None
            except OSError:  # a read-only directory: writes fail and say so anyway
                self._leases = None
            self._owner = self._owner or _replica_id()
        return self._owner

    @property
    def local_dir(self) -> Path | None:
        """A private directory beside the database file, for the files of the processes
        that use it (their leases, their runs' specs and results); None without a file."""
        if self._leases is None:
            return None
        try:
            self._leases.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
        return self._leases.directory

    def owner_alive(self, owner: str | None) -> bool:
        """Whether the process that took lease ``owner`` still runs (False if unknown)."""
        if owner is None:
            return False
        if owner == self._owner:
            return True
        if self._leases is not None:
            return self._leases.alive(owner)
        # No shared directory (PostgreSQL): alive while its heartbeat is fresh.
        query = sa.select(replicas.c.last_seen, replicas.c.stopped_at).where(replicas.c.id == owner)
        with self._tx() as conn:
            row = conn.execute(query).first()
        if row is None or row.stopped_at is not None:
            return False
        return (_utcnow() - row.last_seen).total_seconds() <= self.replica_timeout

    def close(self) -> None:
        self._engine.dispose()
        if self._leases is not None:
            self._leases.release()

    def __enter__(self) -> SqlStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- deployments ------------------------------------------------------------------------

    def upsert_deployment(
        self, name: str, flow_name: str, spec: dict[str, Any], *, now: datetime
    ) -> DeploymentRecord:
        """Insert an active deployment, or update only its spec and flow name."""
        try:
            return self._upsert_deployment(name, flow_name, spec, now=now)
        except StateStoreError as exc:
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            # Another replica inserted it between our read and our insert: update it.
            return self._upsert_deployment(name, flow_name, spec, now=now)

    def _upsert_deployment(
        self, name: str, flow_name: str, spec: dict[str, Any], *, now: datetime
    ) -> DeploymentRecord:
        with self._tx(write=True) as conn:
            if find_deployment(conn, name) is None:
                conn.execute(
                    deployments.insert().values(
                        name=name, flow_name=flow_name, spec=spec, paused=False,
                        paused_reason=None, paused_at=None, cursor=None,
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
            else:
                conn.execute(
                    deployments.update()
                    .where(deployments.c.name == name)
                    .values(flow_name=flow_name, spec=spec, updated_at=now)
                )
            return require_deployment(conn, name)

    def get_deployment(self, name: str) -> DeploymentRecord | None:
        with self._tx() as conn:
            return find_deployment(conn, name)

    def list_deployments(self) -> list[DeploymentRecord]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(deployments).order_by(deployments.c.name)).mappings()
            return [DeploymentRecord.from_row(row) for row in rows]

    def deployment_states(self, names: Sequence[str] | None = None) -> list[DeploymentState]:
        """Name, pause state and cursor of the named deployments (None: all), by name."""
        c = deployments.c
        query = sa.select(c.name, c.paused, c.paused_reason, c.cursor).order_by(c.name)
        if names is not None:
            if not names:
                return []
            query = query.where(c.name.in_(list(names)))
        with self._tx() as conn:
            return [DeploymentState(*row) for row in conn.execute(query)]

    def set_paused(
        self, name: str, paused: bool, reason: str | None = None, *, now: datetime
    ) -> DeploymentRecord:
        """Pause (``reason`` defaults to ``"user"``) or resume a deployment.

        Pausing an already paused deployment keeps its first reason and time, so that a
        shutdown drain never turns a user's pause into one that serve resumes on start.
        """
        if paused and reason is None:
            reason = PAUSED_BY_USER
        if paused and reason not in PAUSED_REASONS:
            raise ValueError(f"unknown pause reason {reason!r}; use {sorted(PAUSED_REASONS)}")
        with self._tx(write=True) as conn:
            current = require_deployment(conn, name)
            if paused and current.paused:
                return current
            values: dict[str, Any] = {"paused": paused, "updated_at": now}
            values |= {"paused_reason": reason, "paused_at": now} if paused else {
                "paused_reason": None, "paused_at": None}  # fmt: skip
            conn.execute(deployments.update().where(deployments.c.name == name).values(values))
            queue.notify(conn, "pause")
            return require_deployment(conn, name)

    def set_cursor(self, name: str, cursor: datetime | None) -> DeploymentRecord:
        """Record the last slot time the planner has dealt with for a deployment.

        The cursor only moves forward (None clears it): replicas planning the same
        deployment each advance it, and a slower one must not move it back."""
        with self._tx(write=True) as conn:
            require_deployment(conn, name)
            update = deployments.update().where(deployments.c.name == name)
            if cursor is not None:
                c = deployments.c.cursor
                update = update.where(sa.or_(c.is_(None), c < cursor))
            conn.execute(update.values(cursor=cursor))
            return require_deployment(conn, name)

    # -- runs -------------------------------------------------------------------------------

    def claim_slot(self, new_run: NewRun, *, now: datetime | None = None) -> RunRecord | None:
        """Create the run of a scheduled slot, or return None if any process already did.

        The slot row (primary key ``slot_key``) and the run are inserted in one transaction,
        so a slot runs at most once across restarts and processes sharing the database.
        """
        now = now or _utcnow()
        key = slot_key(new_run.deployment, new_run.scheduled_at, new_run.slot_variant)
        try:
            with self._tx(write=True) as conn:
                require_deployment(conn, new_run.deployment)
                insert_run(conn, new_run, now, key)
                try:
                    conn.execute(
                        slots.insert().values(
                            slot_key=key, deployment=new_run.deployment,
                            scheduled_at=new_run.scheduled_at, run_id=new_run.run_id,
                            claimed_at=now,
                        )
                    )  # fmt: skip
                except sa.exc.IntegrityError:
                    raise _SlotTaken from None
                if RunState(new_run.state) is RunState.PENDING:
                    queue.notify(conn, "work")
                return require_run(conn, new_run.run_id)
        except _SlotTaken:
            return None

    def claim_slots(
        self,
        new_runs: Sequence[NewRun],
        *,
        cursors: Mapping[str, datetime],
        take: TakeRequest | None = None,
        now: datetime | None = None,
    ) -> Claimed:
        """Claim slots, move cursors forward and take runs, in one write transaction: a
        scheduled run is Pending (or Running) the moment its slot is claimed, and one tick
        of any number of deployments is one commit instead of three writes per slot."""
        now = now or _utcnow()
        with self._tx(write=True) as conn:
            _require_deployments(conn, {r.deployment for r in new_runs} | set(cursors))
            claimed = tuple(r.run_id for r in new_runs if _claim(conn, r, now))
            for name, cursor in cursors.items():
                c = deployments.c.cursor
                conn.execute(
                    deployments.update()
                    .where(deployments.c.name == name, sa.or_(c.is_(None), c < cursor))
                    .values(cursor=cursor)
                )
            if any(RunState(r.state) is RunState.PENDING for r in new_runs if r.run_id in claimed):
                queue.notify(conn, "work")
            if take is None:
                return Claimed(claimed)
            taken = queue.take_runs(
                conn, take.owner, take.wanted, capacity=take.capacity, now=take.now,
                version=take.version,
            )  # fmt: skip
            return Claimed(claimed, tuple(taken))

    def create_run(self, new_run: NewRun, *, now: datetime | None = None) -> RunRecord:
        """Create an ad-hoc run (manual trigger or retry) that belongs to no slot."""
        with self._tx(write=True) as conn:
            require_deployment(conn, new_run.deployment)
            insert_run(conn, new_run, now or _utcnow(), None)
            if RunState(new_run.state) is RunState.PENDING:
                queue.notify(conn, "work")
            return require_run(conn, new_run.run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id, or with this unique prefix of at least 6 characters."""
        with self._tx() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is not None:
                return RunRecord.from_row(row)
            if len(run_id) < _MIN_PREFIX:
                raise NotFoundError(
                    f"unknown run {run_id!r}; give the full run id or a prefix of at least "
                    f"{_MIN_PREFIX} characters"
                )
            query = sa.select(runs).where(runs.c.id.startswith(run_id, autoescape=True))
            rows = conn.execute(query.order_by(runs.c.id).limit(3)).mappings().all()
        if not rows:
            raise NotFoundError(f"unknown run {run_id!r}; check the id with `dockyard run ls`")
        if len(rows) > 1:
            ids = ", ".join(row["id"] for row in rows[:2]) + (", ..." if len(rows) > 2 else "")
            raise UsageError(f"run id prefix {run_id!r} matches several runs ({ids}); give more")
        return RunRecord.from_row(rows[0])

    def transition(
        self,
        run_id: str,
        new_state: RunState,
        *,
        at: datetime,
        message: str | None = None,
        **fields: Any,
    ) -> RunRecord:
        """Move a run to ``new_state`` and append a state event, atomically.

        ``fields`` may set started_at, ended_at, attempt, error, result, pid, code_revision,
        scheduled_at and name. Raises ValueError for a transition ``can_transition`` forbids.
        The UPDATE is conditional on the state read, so two writers cannot both move a run.
        """
        unknown = set(fields) - _TRANSITION_FIELDS
        if unknown:
            raise TypeError(f"transition() got unknown fields {sorted(unknown)}")
        new_state = RunState(new_state)
        for _ in range(10):
            with self._tx(write=True) as conn:
                before = _run_state(conn, run_id)  # two columns: the full row comes after
                current = before.state
                if not can_transition(current, new_state):
                    raise ValueError(f"run {run_id}: cannot go from {current} to {new_state}")
                changed = conn.execute(
                    runs.update()
                    .where(runs.c.id == run_id, runs.c.state == current.value)
                    .values(state=new_state.value, state_message=message, updated_at=at, **fields)
                ).rowcount
                if changed == 1:
                    insert_event(conn, run_id, new_state, at, message)
                    if new_state is RunState.PENDING:
                        queue.notify(conn, "work")
                    elif current is RunState.RUNNING:
                        queue.notify_if_waiting(conn, before.deployment)  # a place freed
                    return require_run(conn, run_id)
        raise StateStoreError(f"run {run_id}: its state kept changing underneath; try again")

    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        """Set non-state fields of a run: pid, name, code_revision."""
        unknown = set(fields) - _UPDATE_FIELDS
        if unknown:
            raise TypeError(f"update_run() got unknown fields {sorted(unknown)}")
        with self._tx(write=True) as conn:
            if fields:
                update = runs.update().where(runs.c.id == run_id).values(**fields)
                if conn.execute(update).rowcount == 0:
                    raise run_not_found(run_id)
            return require_run(conn, run_id)

    def list_runs(
        self,
        *,
        deployment: str | None = None,
        states: Iterable[RunState] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        order: str = "desc",
    ) -> list[RunRecord]:
        """Runs filtered on deployment, states and created_at (``since`` <= t < ``until``),
        ordered by created_at then id (``order`` is "asc" or "desc")."""
        if order not in ("asc", "desc"):
            raise UsageError(f"unknown order {order!r}; use 'asc' or 'desc'")
        keys = (runs.c.created_at, runs.c.id)
        ordering = [k.desc() for k in keys] if order == "desc" else list(keys)
        query = sa.select(runs).where(*run_filters(deployment, states, since, until))
        query = query.order_by(*ordering).limit(limit).offset(offset)
        with self._tx() as conn:
            return [RunRecord.from_row(row) for row in conn.execute(query).mappings()]

    def count_runs(
        self,
        *,
        deployment: str | None = None,
        states: Iterable[RunState] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many runs ``list_runs`` would return without limit and offset."""
        query = sa.select(sa.func.count()).select_from(runs)
        query = query.where(*run_filters(deployment, states, since, until))
        with self._tx() as conn:
            return int(conn.execute(query).scalar_one())

    def state_history(self, run_id: str) -> list[StateEvent]:
        """Every state the run went through, oldest first."""
        query = sa.select(run_states).where(run_states.c.run_id == run_id)
        with self._tx() as conn:
            rows = conn.execute(query.order_by(run_states.c.id)).mappings().all()
            if not rows:
                require_run(conn, run_id)
        return [
            StateEvent(run_id=r["run_id"], state=RunState(r["state"]), at=r["at"],
                       message=r["message"])
            for r in rows
        ]  # fmt: skip

    def set_run_tags(self, run_id: str, tags: Sequence[str]) -> RunRecord:
        """Replace the run's tags (each kept once, in the order given)."""
        values = unique_tags(tags)
        with self._tx(write=True) as conn:
            require_run(conn, run_id)
            conn.execute(runs.update().where(runs.c.id == run_id).values(tags=values))
            return require_run(conn, run_id)

    # -- task runs --------------------------------------------------------------------------

    def save_task_runs(self, run_id: str, records: Sequence[TaskRunRecord]) -> None:
        """Store the run's task runs; one with an id already stored replaces it."""
        with self._tx(write=True) as conn:
            require_run(conn, run_id)
            upsert_task_runs(conn, run_id, records)

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """The run's task runs in the order they started (those not started last)."""
        with self._tx() as conn:
            found = select_task_runs(conn, run_id)
            if not found:
                require_run(conn, run_id)
        return found

    def runs_in_states(self, states: Iterable[RunState], *, light: bool = False) -> list[RunRecord]:
        """All runs in these states, oldest scheduled first (for recovery at start-up).

        ``light`` leaves the large columns out (``parameters`` is ``{}``; ``result``,
        ``error`` and ``state_message`` are None): what the scheduler reads every tick.
        """
        heavy = {"parameters", "result", "error", "state_message"}
        columns = [c for c in runs.c if c.name not in heavy] if light else list(runs.c)
        query = sa.select(*columns).where(runs.c.state.in_([RunState(s).value for s in states]))
        query = query.order_by(runs.c.scheduled_at, runs.c.created_at, runs.c.id)
        left_out: dict[str, Any] = {
            "parameters": {},
            "result": None,
            "error": None,
            "state_message": None,
        }
        with self._tx() as conn:
            rows = conn.execute(query).mappings()
            if not light:
                return [RunRecord.from_row(row) for row in rows]
            return [RunRecord.from_row({**left_out, **row}) for row in rows]

    # -- removing runs (retention, deployment rm) --------------------------------------------

    def prune_runs(
        self,
        *,
        created_before: datetime | None,
        keep: int | None,
        limit: int = pruning.BATCH_RUNS,
    ) -> int:
        """Delete one batch of finished runs (with their logs, history, task runs and slot)
        created before ``created_before`` or beyond the newest ``keep`` finished runs of
        their deployment; how many went (call again until 0). Unfinished runs stay."""
        with self._tx(write=True) as conn:
            ids = pruning.retention_batch(
                conn, created_before=created_before, keep=keep, limit=limit
            )
            return pruning.delete_runs(conn, ids)

    def delete_runs(self, deployment: str, *, limit: int = pruning.BATCH_RUNS) -> int:
        """Delete one batch of the deployment's runs, in any state; how many went."""
        with self._tx(write=True) as conn:
            require_deployment(conn, deployment)
            return pruning.delete_runs(conn, pruning.deployment_batch(conn, deployment, limit))

    def delete_deployment(self, name: str) -> int:
        """Delete the deployment and the runs it still has, in one transaction (call
        ``delete_runs`` until 0 first to keep it short); how many runs went with it."""
        with self._tx(write=True) as conn:
            require_deployment(conn, name)
            ids = conn.execute(sa.select(runs.c.id).where(runs.c.deployment == name)).scalars()
            removed = pruning.delete_runs(conn, list(ids))
            conn.execute(deployments.delete().where(deployments.c.name == name))
            return removed

    # -- the shared queue -------------------------------------------------------------------

    def take_runs(
        self,
        owner: str,
        wanted: Sequence[Takeable],
        *,
        capacity: int,
        now: datetime,
        version: str,
    ) -> list[RunRecord]:
        """Move up to ``capacity`` Pending runs that fit under the deployments'
        concurrency limits (counted across replicas) to Running for ``owner``."""
        if capacity <= 0 or not wanted:
            return []
        with self._tx(write=True) as conn:
            return queue.take_runs(conn, owner, wanted, capacity=capacity, now=now, version=version)

    def request_cancel(self, run_id: str, reason: str, *, now: datetime) -> RunRecord:
        """Cancel a Pending or Scheduled run at once; ask the owner of a Running one to
        stop it (it records the end). Other runs are returned unchanged."""
        for _ in range(10):
            run = self.get_run(run_id)
            if run.state in (RunState.PENDING, RunState.SCHEDULED):
                try:
                    return self.transition(
                        run.id, RunState.CANCELLED, at=now, message=reason, ended_at=now
                    )
                except ValueError:
                    continue  # it moved meanwhile (started, say): look again
            if run.state is RunState.RUNNING:
                with self._tx(write=True) as conn:
                    if queue.request_cancel(conn, run.id, reason):
                        return require_run(conn, run.id)
                continue  # it ended meanwhile
            return run
        raise StateStoreError(f"run {run_id}: its state kept changing underneath; try again")

    def listen(self, callback: Callable[[str], None]) -> Listening | None:
        """Call ``callback(payload)`` on a thread for each change another process made;
        None on SQLite (one process; other processes' changes wait for the next tick)."""
        if self._engine.dialect.name != "postgresql":
            return None
        from dockyard.store.notify import Listener

        return Listener(self._engine.url, callback, database=self.database).start()

    # -- replicas ---------------------------------------------------------------------------

    def heartbeat(self, replica: ReplicaRecord) -> None:
        """Insert or update this replica's row (an existing row keeps its ``started_at``),
        and delete the rows of replicas not seen for a day."""
        with self._tx(write=True) as conn:
            upsert_replica(conn, replica)
            prune_replicas(conn, replica.last_seen)

    def leave(self, replica_id: str, *, now: datetime) -> None:
        """Mark the replica stopped at ``now`` (a clean shutdown)."""
        with self._tx(write=True) as conn:
            mark_left(conn, replica_id, now)

    def list_replicas(self) -> list[ReplicaRecord]:
        """Every replica seen within a day, the oldest started first."""
        with self._tx() as conn:
            return select_replicas(conn)

    # -- logs -------------------------------------------------------------------------------

    def append_logs(self, run_id: str, lines: Sequence[tuple[datetime, str, str]]) -> None:
        """Store ``(at, stream, line)`` tuples with increasing ``seq``, up to the limit.

        The first line past ``max_log_lines`` is replaced by one ``dockyard`` marker line;
        it and every later line are counted in the run's ``log_truncated``.
        """
        if not lines:
            return
        for _, stream, _ in lines:
            if stream not in LOG_STREAMS:
                raise ValueError(f"unknown log stream {stream!r}; use one of {sorted(LOG_STREAMS)}")
        with self._tx(write=True) as conn:
            query = sa.select(runs.c.log_lines, runs.c.log_truncated).where(runs.c.id == run_id)
            counts = conn.execute(query).first()
            if counts is None:
                raise run_not_found(run_id)
            stored, dropped = counts
            room = max(self.max_log_lines - stored, 0)
            rows = [
                {"run_id": run_id, "seq": stored + i, "at": at, "stream": stream, "line": line}
                for i, (at, stream, line) in enumerate(lines[:room], start=1)
            ]
            extra = len(lines) - len(rows)
            if extra and dropped == 0:
                rows.append(
                    {"run_id": run_id, "seq": stored + len(rows) + 1, "at": lines[room][0],
                     "stream": "dockyard", "line": self._truncation_marker()}
                )  # fmt: skip
            if rows:
                conn.execute(run_logs.insert(), rows)
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(log_lines=stored + len(rows), log_truncated=dropped + extra)
            )

    def _truncation_marker(self) -> str:
        return (
            f"[dockyard] log truncated: only the first {self.max_log_lines} lines of this run "
            "are stored; later lines went to the serve process's output only"
        )

    def get_logs(
        self, run_id: str, *, tail: int | None = None, after_seq: int | None = None
    ) -> list[LogLine]:
        """Stored lines in seq order: the last ``tail`` ones and/or those after ``after_seq``."""
        query = sa.select(run_logs).where(run_logs.c.run_id == run_id)
        if after_seq is not None:
            query = query.where(run_logs.c.seq > after_seq)
        if tail is not None:
            query = query.order_by(run_logs.c.seq.desc()).limit(max(tail, 0))
        else:
            query = query.order_by(run_logs.c.seq)
        with self._tx() as conn:
            rows = conn.execute(query).mappings().all()
            if not rows:
                require_run(conn, run_id)
        if tail is not None:
            rows = list(reversed(rows))
        return [LogLine(**row) for row in rows]


@dataclass(frozen=True)
class _RunState:
    state: RunState
    deployment: str


def _run_state(conn: Connection, run_id: str) -> _RunState:
    """A run's state and deployment (what a transition decides on), or not found."""
    row = conn.execute(
        sa.select(runs.c.state, runs.c.deployment).where(runs.c.id == run_id)
    ).first()
    if row is None:
        raise run_not_found(run_id)
    return _RunState(RunState(row.state), row.deployment)
