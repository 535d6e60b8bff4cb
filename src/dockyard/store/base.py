"""``StateStore``: what dockyard needs from a state database, whatever the backend.

Every backend (SQLite today through ``SqlStateStore``, PostgreSQL next) implements this
protocol, and one contract test suite (tests/store) runs against each. Methods are
synchronous and short transactions; ``store.aio.AsyncStore`` runs them on one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dockyard.core.records import (
    DeploymentRecord,
    LogLine,
    NewRun,
    ReplicaRecord,
    RunRecord,
    StateEvent,
    Takeable,
    TaskRunRecord,
)
from dockyard.core.states import RunState


@dataclass(frozen=True)
class DeploymentState:
    """What a scheduler reads of a deployment every heartbeat: not its spec."""

    name: str
    paused: bool
    paused_reason: str | None
    cursor: datetime | None


@dataclass(frozen=True)
class TakeRequest:
    """The arguments of ``take_runs``, for ``claim_slots`` to take runs in its transaction."""

    owner: str
    wanted: Sequence[Takeable]
    capacity: int
    now: datetime
    version: str


@dataclass(frozen=True)
class Claimed:
    """What ``claim_slots`` wrote."""

    run_ids: tuple[str, ...]
    """The runs of the slots this call claimed (any process may have claimed the others)."""
    taken: tuple[RunRecord, ...] = ()
    """The Pending runs it moved to Running (as ``take_runs`` returns them)."""


class Listening(Protocol):
    """A running notification listener; ``close`` stops it."""

    def close(self) -> None: ...


class StateStore(Protocol):
    """Deployments, runs, slots, logs and task runs. Unknown names raise ``NotFoundError``; database
    failures raise one-line ``StateStoreError``; datetimes are aware UTC."""

    database: str
    """Where the data lives, for messages (never with a password)."""

    def ping(self) -> None:
        """Raise StateStoreError when the database is unusable or its file went away."""
        ...

    def take_lease(self) -> str:
        """Mark the calling process as a live owner of runs (until close); its owner id."""
        ...

    @property
    def local_dir(self) -> Path | None:
        """A private directory beside the database for the files of the processes using
        it (None when the database is not a local file)."""
        ...

    def owner_alive(self, owner: str | None) -> bool:
        """Whether the owner that took lease ``owner`` still runs; False when unknown."""
        ...

    def close(self) -> None: ...

    # -- replicas (several serve processes on one database) -------------------------------

    replica_timeout: float
    """Seconds after its last heartbeat that a replica counts as lost."""

    def heartbeat(self, replica: ReplicaRecord) -> None:
        """Insert or update this replica's row (``replica.id`` is its ``take_lease`` id)."""
        ...

    def leave(self, replica_id: str, *, now: datetime) -> None:
        """Mark the replica stopped (a clean shutdown)."""
        ...

    def list_replicas(self) -> list[ReplicaRecord]:
        """Every replica seen recently (rows of replicas gone for a day are pruned)."""
        ...

    def take_runs(
        self,
        owner: str,
        wanted: Sequence[Takeable],
        *,
        capacity: int,
        now: datetime,
        version: str,
    ) -> list[RunRecord]:
        """Move up to ``capacity`` Pending runs of the ``wanted`` deployments (oldest
        scheduled first) to Running, owned by ``owner``, in one short transaction.

        A deployment's ``concurrency_limit`` counts the Running runs of every replica. Rows
        another replica is taking at the same moment are skipped, not waited for."""
        ...

    def request_cancel(self, run_id: str, reason: str, *, now: datetime) -> RunRecord:
        """Cancel a run that is waiting; ask the owner of a Running one to stop it."""
        ...

    def listen(self, callback: Callable[[str], None]) -> Listening | None:
        """Call ``callback(payload)`` (on another thread) whenever any process changed
        what a scheduler should look at; None where the database cannot notify."""
        ...

    def upsert_deployment(
        self, name: str, flow_name: str, spec: dict[str, Any], *, now: datetime
    ) -> DeploymentRecord: ...

    def get_deployment(self, name: str) -> DeploymentRecord | None: ...

    def list_deployments(self) -> list[DeploymentRecord]: ...

    def deployment_states(self, names: Sequence[str] | None = None) -> list[DeploymentState]:
        """Pause state and cursor of the named deployments (None: of all), by name; unknown
        names are left out. One light read (no specs): what a scheduler polls."""
        ...

    def set_paused(
        self, name: str, paused: bool, reason: str | None = None, *, now: datetime
    ) -> DeploymentRecord: ...

    def set_cursor(self, name: str, cursor: datetime | None) -> DeploymentRecord: ...

    def claim_slot(self, new_run: NewRun, *, now: datetime | None = None) -> RunRecord | None:
        """Create the run of a scheduled slot in ``new_run.state`` in one write, or return
        None if any process already claimed the slot."""
        ...

    def claim_slots(
        self,
        new_runs: Sequence[NewRun],
        *,
        cursors: Mapping[str, datetime],
        take: TakeRequest | None = None,
        now: datetime | None = None,
    ) -> Claimed:
        """One scheduling tick's writes in one transaction: create the runs of the slots no
        process has claimed yet (as ``claim_slot``), move ``cursors`` forward (as
        ``set_cursor``), then, with ``take``, move the Pending runs that fit to Running (as
        ``take_runs``, the new runs among them). Unknown deployments raise NotFoundError
        and nothing is written."""
        ...

    def create_run(self, new_run: NewRun, *, now: datetime | None = None) -> RunRecord: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def transition(
        self,
        run_id: str,
        new_state: RunState,
        *,
        at: datetime,
        message: str | None = None,
        **fields: Any,
    ) -> RunRecord: ...

    def update_run(self, run_id: str, **fields: Any) -> RunRecord: ...

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
    ) -> list[RunRecord]: ...

    def count_runs(
        self,
        *,
        deployment: str | None = None,
        states: Iterable[RunState] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int: ...

    def state_history(self, run_id: str) -> list[StateEvent]: ...

    def set_run_tags(self, run_id: str, tags: Sequence[str]) -> RunRecord:
        """Replace the run's tags (each kept once, in the order given)."""
        ...

    def save_task_runs(self, run_id: str, records: Sequence[TaskRunRecord]) -> None:
        """Store task runs of the run (``record.run_id`` must be ``run_id``); one whose id
        is already stored for the run replaces it."""
        ...

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """The run's task runs, in the order they started (those never started last)."""
        ...

    def prune_runs(
        self, *, created_before: datetime | None, keep: int | None, limit: int = 200
    ) -> int:
        """Delete up to ``limit`` finished runs created before ``created_before`` or beyond
        the newest ``keep`` finished runs of their deployment, with their logs, state
        history, task runs and slots, in one short transaction; how many went. Call again
        until it returns 0. Never touches a run that is not finished; safe while other
        processes prune the same database."""
        ...

    def delete_runs(self, deployment: str, *, limit: int = 200) -> int:
        """Delete up to ``limit`` runs of the deployment (any state) with what belongs to
        them, in one short transaction; how many went."""
        ...

    def delete_deployment(self, name: str) -> int:
        """Delete the deployment and its remaining runs; how many runs went with it."""
        ...

    def runs_in_states(self, states: Iterable[RunState], *, light: bool = False) -> list[RunRecord]:
        """Runs in these states, oldest scheduled first; ``light`` leaves out parameters,
        result, error and state message (``{}`` / None)."""
        ...

    def append_logs(self, run_id: str, lines: Sequence[tuple[datetime, str, str]]) -> None: ...

    def get_logs(
        self, run_id: str, *, tail: int | None = None, after_seq: int | None = None
    ) -> list[LogLine]: ...
