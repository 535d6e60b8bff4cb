"""What the webserver (and tests) ask of a serve process: operations and probes.

Mixed into ``ServeService``; every store call goes through its database thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from dockyard.core.deployments import Deployment
from dockyard.core.records import PAUSED_BY_USER, DeploymentRecord, RunRecord
from dockyard.core.schedules import next_fire
from dockyard.core.states import RunState
from dockyard.errors import NotFoundError, StateStoreError

logger = logging.getLogger("dockyard")


class Operations:
    """Webserver lifecycle, probes and the operations behind the HTTP API."""

    # Provided by ServeService.
    settings: Any
    store: Any
    deployments: dict[str, Deployment]
    runs: Any
    last_tick: datetime | None
    tick_started: datetime | None
    tick_error: str | None
    draining: bool
    _server: Any
    _server_task: asyncio.Task[None] | None
    port: int | None

    # ServeService also provides db(), clock(), wake() and _new_run().

    async def start_webserver(self) -> None:
        """Listen before start-up, so probes answer (503 "starting") from the first moment."""
        if not self.settings.webserver:
            return
        from dockyard.web.app import create_app
        from dockyard.web.auth import TokenGuard
        from dockyard.web.server import bind, make_server

        host, port = self.settings.host, self.settings.port
        sock = bind(host, port)
        token = self.settings.api_token
        guard = TokenGuard(
            token=token.get_secret_value() if token else None,
            token_file=self.settings.api_token_file,
            host=host,
        )
        self._server = make_server(create_app(self, guard))
        self._server_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        self.port = sock.getsockname()[1]
        logger.info("webserver listening on http://%s:%d", host, self.port)
        if token is None and not guard.loopback_only and not self.settings.api_token_file:
            logger.warning(
                "no API token set and listening on %s: mutating API calls are refused (403); "
                "set DOCKYARD_API_TOKEN or DOCKYARD_API_TOKEN_FILE",
                host,
            )

    async def stop_webserver(self) -> None:
        if self._server is None or self._server_task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server_task, 10)

    def health(self) -> Any:
        """Liveness: the scheduler loop has ticked within the threshold."""
        from dockyard.web.schemas import Health

        if self.last_tick is None:
            return Health(status="starting", reason="the scheduler has not ticked yet")
        age = (self.clock() - self.last_tick).total_seconds()
        threshold = self.settings.health_threshold
        # A tick waiting on a slow state store is alive: readiness reports the store.
        waiting = self.tick_started is not None and self.tick_started > self.last_tick
        if age > threshold and not waiting:
            reason = f"the scheduler loop last ticked {age:.0f}s ago (threshold {threshold:g}s)"
            return Health(status="stalled", reason=reason, last_tick=self.last_tick)
        return Health(
            status="ok", last_tick=self.last_tick, seconds_since_tick=age, draining=self.draining
        )

    async def query(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a store method for the API; 503 (StateStoreError) until the store is open."""
        return await self.db(getattr(self._require_store(), method), *args, **kwargs)

    def _require_store(self) -> Any:
        if self.store is None:
            raise StateStoreError("the serve process is starting; try again in a moment")
        return self.store

    # ── operations (CLI, API, tests) ──────────────────────────────────────────
    async def trigger_run(
        self, deployment_name: str, parameters: dict[str, Any] | None = None
    ) -> RunRecord:
        """Create an ad-hoc run with parameters merged over the deployment's defaults."""
        deployment = self._deployment(deployment_name)
        self._require_store()
        params = {**dict(deployment.parameters), **(parameters or {})}
        if deployment.flow is not None and deployment.enforce_parameter_schema:
            from dockyard.core.parameters import jsonable

            params = jsonable(deployment.flow.validate_parameters(params))
        new = self._new_run(deployment, params, self.clock(), "manual")
        # Pending in one write: the scheduler promotes a due Scheduled run on its own,
        # and could do so between two writes from here.
        run = await self.db(self.store.create_run, replace(new, state=RunState.PENDING))
        self.wake()
        return run

    async def cancel_run(self, run_id: str, reason: str = "cancelled on request") -> RunRecord:
        run = await self.query("get_run", run_id)
        if self.runs is not None and self.runs.cancel(run.id, reason):
            return run
        if run.state in (RunState.PENDING, RunState.SCHEDULED):
            now = self.clock()
            return await self.db(
                self.store.transition,
                run.id,
                RunState.CANCELLED,
                at=now,
                message=reason,
                ended_at=now,
            )
        return run

    async def set_paused(self, deployment_name: str, paused: bool) -> DeploymentRecord:
        self._deployment(deployment_name)
        self._require_store()
        reason = PAUSED_BY_USER if paused else None
        record = await self.db(
            self.store.set_paused, deployment_name, paused, reason, now=self.clock()
        )
        self.wake()
        return record

    def _deployment(self, name: str) -> Deployment:
        if name not in self.deployments:
            known = ", ".join(sorted(self.deployments)) or "none"
            raise NotFoundError(f"unknown deployment {name!r}; served here: {known}")
        return self.deployments[name]

    def next_fire_times(self, name: str, count: int = 5) -> list[datetime]:
        deployment = self._deployment(name)
        times: list[datetime] = []
        point = self.clock()
        while len(times) < count:
            t = next_fire(deployment.schedules, point)
            if t is None:
                break
            times.append(t)
            point = t
        return times
