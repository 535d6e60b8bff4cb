"""``AsyncStore``: a ``StateStore`` for the event loop, on one database thread it owns.

The serve process's loop never blocks on the database: every call runs on a single
worker thread (so SQLite sees one connection user at a time), and each method has the
same name, arguments and types as on ``StateStore``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

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
from dockyard.errors import ConflictError
from dockyard.store import serving
from dockyard.store.base import Claimed, DeploymentState, Listening, StateStore, TakeRequest

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """Awaitable methods of ``store``, run one at a time on the database thread."""

    def __init__(self, store: StateStore, executor: ThreadPoolExecutor | None = None) -> None:
        self.store = store
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="dockyard-db")
        self._changed: set[str] = set()

    @classmethod
    async def open(cls, opener: Callable[[], StateStore]) -> AsyncStore:
        """Open a store on the database thread (opening migrates, which may take a while)."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="dockyard-db")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, opener)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def take_changes(self) -> set[str]:
        """The deployments written through this object (registered, paused or resumed, cursor
        set, removed) since the last call: what the scheduler must read again."""
        changed, self._changed = self._changed, set()
        return changed

    @property
    def database(self) -> str:
        return self.store.database

    async def close(self) -> None:
        await self._call(self.store.close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._call(self.store.ping)

    @property
    def local_dir(self) -> Path | None:
        return self.store.local_dir

    def listen(self, callback: Callable[[str], None]) -> Listening | None:
        """Start listening (not on the database thread: the listener has its own)."""
        return self.store.listen(callback)

    async def take_runs(
        self,
        owner: str,
        wanted: Sequence[Takeable],
        *,
        capacity: int,
        now: datetime,
        version: str,
    ) -> list[RunRecord]:
        return await self._call(
            self.store.take_runs, owner, list(wanted), capacity=capacity, now=now, version=version
        )

    async def request_cancel(self, run_id: str, reason: str, *, now: datetime) -> RunRecord:
        return await self._call(self.store.request_cancel, run_id, reason, now=now)

    async def take_lease(self) -> str:
        return await self._call(self.store.take_lease)

    async def owner_alive(self, owner: str | None) -> bool:
        return await self._call(self.store.owner_alive, owner)

    async def upsert_deployment(
        self, name: str, flow_name: str, spec: dict[str, Any], *, now: datetime
    ) -> DeploymentRecord:
        self._changed.add(name)
        return await self._call(self.store.upsert_deployment, name, flow_name, spec, now=now)

    async def get_deployment(self, name: str) -> DeploymentRecord | None:
        return await self._call(self.store.get_deployment, name)

    async def list_deployments(self) -> list[DeploymentRecord]:
        return await self._call(self.store.list_deployments)

    async def deployment_states(self, names: Sequence[str] | None = None) -> list[DeploymentState]:
        listed = None if names is None else list(names)
        return await self._call(self.store.deployment_states, listed)

    async def set_paused(
        self, name: str, paused: bool, reason: str | None = None, *, now: datetime
    ) -> DeploymentRecord:
        self._changed.add(name)
        return await self._call(self.store.set_paused, name, paused, reason, now=now)

    async def set_cursor(self, name: str, cursor: datetime | None) -> DeploymentRecord:
        self._changed.add(name)
        return await self._call(self.store.set_cursor, name, cursor)

    async def claim_slot(self, new_run: NewRun, *, now: datetime | None = None) -> RunRecord | None:
        return await self._call(self.store.claim_slot, new_run, now=now)

    async def claim_slots(
        self,
        new_runs: Sequence[NewRun],
        *,
        cursors: Mapping[str, datetime],
        take: TakeRequest | None = None,
        now: datetime | None = None,
    ) -> Claimed:
        call = functools.partial(self.store.claim_slots, cursors=dict(cursors), take=take, now=now)
        return await self._call(call, list(new_runs))

    async def create_run(self, new_run: NewRun, *, now: datetime | None = None) -> RunRecord:
        return await self._call(self.store.create_run, new_run, now=now)

    async def get_run(self, run_id: str) -> RunRecord:
        return await self._call(self.store.get_run, run_id)

    async def transition(
        self,
        run_id: str,
        new_state: RunState,
        *,
        at: datetime,
        message: str | None = None,
        **fields: Any,
    ) -> RunRecord:
        call = functools.partial(self.store.transition, at=at, message=message, **fields)
        return await self._call(call, run_id, new_state)

    async def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        return await self._call(functools.partial(self.store.update_run, **fields), run_id)

    async def list_runs(
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
        return await self._call(
            self.store.list_runs,
            deployment=deployment, states=states, since=since, until=until,
            limit=limit, offset=offset, order=order,
        )  # fmt: skip

    async def count_runs(
        self,
        *,
        deployment: str | None = None,
        states: Iterable[RunState] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        return await self._call(
            self.store.count_runs, deployment=deployment, states=states, since=since, until=until
        )

    async def state_history(self, run_id: str) -> list[StateEvent]:
        return await self._call(self.store.state_history, run_id)

    async def set_run_tags(self, run_id: str, tags: Sequence[str]) -> RunRecord:
        return await self._call(self.store.set_run_tags, run_id, list(tags))

    async def save_task_runs(self, run_id: str, records: Sequence[TaskRunRecord]) -> None:
        await self._call(self.store.save_task_runs, run_id, list(records))

    async def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        return await self._call(self.store.task_runs, run_id)

    async def runs_in_states(
        self, states: Iterable[RunState], *, light: bool = False
    ) -> list[RunRecord]:
        return await self._call(self.store.runs_in_states, list(states), light=light)

    async def prune_runs(
        self, *, created_before: datetime | None, keep: int | None, limit: int = 200
    ) -> int:
        return await self._call(
            self.store.prune_runs, created_before=created_before, keep=keep, limit=limit
        )

    async def delete_runs(self, deployment: str, *, limit: int = 200) -> int:
        return await self._call(self.store.delete_runs, deployment, limit=limit)

    async def delete_deployment(self, name: str) -> int:
        self._changed.add(name)
        return await self._call(self.store.delete_deployment, name)

    async def replica_rows(
        self, now: datetime, exclude: str | None = None
    ) -> tuple[list[ReplicaRecord], set[str]]:
        return await self._call(serving.replica_rows, self.store, now, exclude)

    async def removal_refusal(
        self, name: str, now: datetime, exclude: str | None = None
    ) -> ConflictError | None:
        return await self._call(serving.removal_refusal, self.store, name, now, exclude)

    async def append_logs(self, run_id: str, lines: Sequence[tuple[datetime, str, str]]) -> None:
        await self._call(self.store.append_logs, run_id, lines)

    async def get_logs(
        self, run_id: str, *, tail: int | None = None, after_seq: int | None = None
    ) -> list[LogLine]:
        return await self._call(self.store.get_logs, run_id, tail=tail, after_seq=after_seq)

    # -- replicas ---------------------------------------------------------------------------

    @property
    def replica_timeout(self) -> float:
        return self.store.replica_timeout

    async def heartbeat(self, replica: ReplicaRecord) -> None:
        await self._call(self.store.heartbeat, replica)

    async def leave(self, replica_id: str, *, now: datetime) -> None:
        await self._call(self.store.leave, replica_id, now=now)

    async def list_replicas(self) -> list[ReplicaRecord]:
        return await self._call(self.store.list_replicas)
