"""``get_client()``: Prefect's orchestration client, talking to a serve process's API.

``async with get_client() as client: run = await client.read_flow_run(run_id)``, or
``with get_client(sync_client=True) as client:`` for the blocking one. Inside a flow run of
a serve process the client talks to that process, with a token valid for that run only
while it is active; elsewhere to ``DOCKYARD_URL`` with ``DOCKYARD_API_TOKEN`` (or
``DOCKYARD_API_TOKEN_FILE``). Both clients send the same requests (``_Call``); httpx is
imported when the first client is made, not when this module is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from dockyard.client.paths import deployment_path, run_body, run_path
from dockyard.client.schemas.objects import DeploymentResponse, FlowRun
from dockyard.errors import UsageError

if TYPE_CHECKING:
    from dockyard.client.http import AsyncApi, Client

T = TypeVar("T")
A = TypeVar("A", "Client", "AsyncApi")

NO_URL = (
    "get_client: no dockyard API to talk to: set DOCKYARD_URL to a serve process's "
    "webserver (e.g. http://127.0.0.1:8080) and DOCKYARD_API_TOKEN (or "
    "DOCKYARD_API_TOKEN_FILE) when it has a token; inside a served flow run the run's "
    "own serve process is used"
)
NO_WEBSERVER = (
    "get_client: this flow run's serve process has no webserver, so the run cannot reach "
    "its API (run_deployment, get_client): start it with its webserver "
    "(DOCKYARD_WEBSERVER=true, flow.serve(webserver=True); `dockyard serve` has it on "
    "unless --no-webserver)"
)
UNSUPPORTED = {
    "flow_run_name": "the serve process's API cannot name a run yet; the flow's "
    "flow_run_name names it",
    "name": "the serve process's API cannot name a run yet; the flow's flow_run_name names it",
    "idempotency_key": "the serve process's API has no idempotency keys yet",
    "work_queue_name": "a serve process runs its deployments itself: there are no work queues",
    "job_variables": "a run is a subprocess of its serve process: there is no infrastructure "
    "to configure",
    "state": "the serve process's API starts runs at once; it cannot create them in a state",
    "context": "runs have no stored context",
    "parent_task_run_id": "runs are not linked to a parent",
    "labels": "runs have tags, not labels",
    "parameters": "a run's parameters are fixed when it is created",
    "flow_version": "a run's version is its code revision",
    "empirical_policy": "retries are the deployment's",
    "infrastructure_pid": "the serve process tracks its runs' processes itself",
}
"""Prefect options dockyard refuses, and why (an option given as None is not refused)."""


def refuse(function: str, **options: Any) -> None:
    """A ``UsageError`` naming the first of ``options`` that was given (not None).

    A name that is not one of Prefect's options is a ``TypeError``, as for any function.
    """
    for name, value in options.items():
        if name not in UNSUPPORTED:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
        if value is not None:
            raise UsageError(f"{function}({name}=...) is not supported: {UNSUPPORTED[name]}")


# ── where to connect ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Connection:
    """A serve process's webserver and the token to send it."""

    url: str
    token: str | None = field(default=None, repr=False)
    run_token: bool = False
    """A flow run's own token (a refusal then says why itself, not where tokens come from)."""


def connection() -> Connection:
    """The served flow run's own serve process, else ``DOCKYARD_URL`` (settings)."""
    inside = _run_api()
    if inside is not None:
        return inside
    from dockyard.settings import load_client_settings

    settings = load_client_settings(None)
    if not settings.url:
        raise UsageError(NO_URL)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return Connection(settings.url, token)


def _run_api() -> Connection | None:
    """The API of the serve process running this flow run; None outside a served run.

    A run that a serve process started without its webserver has no API: an error says so
    (rather than falling back to DOCKYARD_URL, whose token would be the serve process's).
    """
    from dockyard.engine import context

    access = context.api_access()
    if access is not None:
        return Connection(access.url, access.token, run_token=True)
    run = context.flow_run_context()
    if run is not None and run.root.flow_run.deployment is not None:
        raise UsageError(NO_WEBSERVER)
    return None


# ── what each method sends and how its answer is read (shared by both clients) ─────────


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    read: Callable[[Any], T]
    options: Mapping[str, Any] = field(default_factory=dict)


def _read_flow_run(flow_run_id: object) -> _Call[FlowRun]:
    return _Call("GET", run_path(str(flow_run_id)), FlowRun.from_api)


def _read_flow_runs(
    limit: int | None, offset: int, deployment: str | None, states: Iterable[str] | None
) -> _Call[list[FlowRun]]:
    params = {"limit": limit, "offset": offset, "deployment": deployment, "state": states}
    given = {k: v for k, v in params.items() if v is not None}
    return _Call("GET", "/runs", _flow_runs, {"params": given})


def _flow_runs(data: Any) -> list[FlowRun]:
    return [FlowRun.from_api(item) for item in data["runs"]]


def _update_flow_run(flow_run_id: object, tags: Iterable[str] | None) -> _Call[None]:
    if tags is None:
        raise UsageError("update_flow_run: give tags=[...] (the only field dockyard updates)")
    if isinstance(tags, str):
        raise UsageError(f"update_flow_run: tags must be a list of strings, not {tags!r}")
    body = {"tags": list(tags)}
    return _Call("PATCH", run_path(str(flow_run_id)), _nothing, {"json": body})


def _nothing(data: Any) -> None:
    return None


def _read_deployment(name: object) -> _Call[DeploymentResponse]:
    return _Call("GET", deployment_path(str(name)), DeploymentResponse.from_api)


def _read_deployments() -> _Call[list[DeploymentResponse]]:
    return _Call("GET", "/deployments", _deployments)


def _deployments(data: Any) -> list[DeploymentResponse]:
    return [DeploymentResponse.from_api(item) for item in data]


def _create_run(
    deployment_id: object, parameters: Mapping[str, Any] | None, tags: Iterable[str] | None
) -> _Call[FlowRun]:
    path = deployment_path(str(deployment_id)) + "/runs"
    body = run_body(dict(parameters or {}), None if tags is None else list(tags))
    return _Call("POST", path, FlowRun.from_api, {"json": body})


# ── the clients ──────────────────────────────────────────────────────────────────────


class _Base(Generic[A]):
    def __init__(self, api: A) -> None:
        self._api: A = api

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api_url!r})"

    @property
    def api_url(self) -> str:
        return self._api.url + "/api"


class SyncDockyardClient(_Base["Client"]):
    """``get_client(sync_client=True)``: the blocking client; use it as a context manager.

    Ids are dockyard's: a run's id, and ``"flow/deployment"`` for a deployment.
    """

    def __enter__(self) -> SyncDockyardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    def _send(self, call: _Call[T]) -> T:
        return call.read(self._api.call(call.method, call.path, **call.options))

    def read_flow_run(self, flow_run_id: object) -> FlowRun:
        return self._send(_read_flow_run(flow_run_id))

    def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        deployment: str | None = None,
        states: Iterable[str] | None = None,
    ) -> list[FlowRun]:
        """Newest first; ``deployment`` (``"flow/deployment"``) and ``states`` filter them."""
        return self._send(_read_flow_runs(limit, offset, deployment, states))

    def update_flow_run(
        self, flow_run_id: object, tags: Iterable[str] | None = None, **other: Any
    ) -> None:
        """Replace the run's tags (the only field that can change)."""
        refuse("update_flow_run", **other)
        self._send(_update_flow_run(flow_run_id, tags))

    def read_deployment(self, deployment_id: object) -> DeploymentResponse:
        return self._send(_read_deployment(deployment_id))

    def read_deployment_by_name(self, name: str) -> DeploymentResponse:
        """``name``: ``"flow/deployment"``."""
        return self._send(_read_deployment(name))

    def read_deployments(self) -> list[DeploymentResponse]:
        return self._send(_read_deployments())

    def create_flow_run_from_deployment(
        self,
        deployment_id: object,
        *,
        parameters: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        **other: Any,
    ) -> FlowRun:
        """Start a run now; ``parameters`` merge over the deployment's defaults.

        Without ``tags`` the run gets the deployment's.
        """
        refuse("create_flow_run_from_deployment", **other)
        return self._send(_create_run(deployment_id, parameters, tags))


class DockyardClient(_Base["AsyncApi"]):
    """``get_client()``: the async client; use it as an async context manager.

    The same methods as ``SyncDockyardClient``, awaited.
    """

    async def __aenter__(self) -> DockyardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()

    async def _send(self, call: _Call[T]) -> T:
        return call.read(await self._api.call(call.method, call.path, **call.options))

    async def read_flow_run(self, flow_run_id: object) -> FlowRun:
        return await self._send(_read_flow_run(flow_run_id))

    async def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        deployment: str | None = None,
        states: Iterable[str] | None = None,
    ) -> list[FlowRun]:
        return await self._send(_read_flow_runs(limit, offset, deployment, states))

    async def update_flow_run(
        self, flow_run_id: object, tags: Iterable[str] | None = None, **other: Any
    ) -> None:
        refuse("update_flow_run", **other)
        await self._send(_update_flow_run(flow_run_id, tags))

    async def read_deployment(self, deployment_id: object) -> DeploymentResponse:
        return await self._send(_read_deployment(deployment_id))

    async def read_deployment_by_name(self, name: str) -> DeploymentResponse:
        return await self._send(_read_deployment(name))

    async def read_deployments(self) -> list[DeploymentResponse]:
        return await self._send(_read_deployments())

    async def create_flow_run_from_deployment(
        self,
        deployment_id: object,
        *,
        parameters: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        **other: Any,
    ) -> FlowRun:
        refuse("create_flow_run_from_deployment", **other)
        return await self._send(_create_run(deployment_id, parameters, tags))


PrefectClient = DockyardClient
"""Prefect's name of the async client (for type annotations of ported code)."""
SyncPrefectClient = SyncDockyardClient
"""Prefect's name of the sync client."""


@overload
def get_client(
    httpx_settings: Mapping[str, Any] | None = None, sync_client: Literal[False] = False
) -> DockyardClient: ...


@overload
def get_client(
    httpx_settings: Mapping[str, Any] | None = None, *, sync_client: Literal[True]
) -> SyncDockyardClient: ...


def get_client(
    httpx_settings: Mapping[str, Any] | None = None, sync_client: bool = False
) -> DockyardClient | SyncDockyardClient:
    """A client of the serve process's API: async by default, blocking with ``sync_client``.

    Args:
        httpx_settings: Only ``{"timeout": seconds}`` (per request; default 10).
        sync_client: Return the blocking ``SyncDockyardClient``.

    Raises ``UsageError`` when there is no API to talk to: outside a served flow run,
    set ``DOCKYARD_URL`` (and ``DOCKYARD_API_TOKEN`` or ``DOCKYARD_API_TOKEN_FILE``).
    """
    timeout = _timeout(httpx_settings or {})
    target = connection()
    from pydantic import SecretStr

    from dockyard.client.http import AsyncApi, Client

    token = SecretStr(target.token) if target.token else None
    options: dict[str, Any] = {"timeout": timeout}
    if target.run_token:
        options["token_from"] = None
    if sync_client:
        return SyncDockyardClient(Client(target.url, token, **options))
    return DockyardClient(AsyncApi(target.url, token, **options))


def _timeout(httpx_settings: Mapping[str, Any]) -> float:
    from dockyard.client.http import TIMEOUT_SECONDS

    where = "get_client(httpx_settings=...)"
    other = sorted(set(httpx_settings) - {"timeout"})
    if other:
        raise UsageError(f"{where}: only 'timeout' is supported, not {other}")
    timeout = httpx_settings.get("timeout", TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise UsageError(f"{where}: timeout must be seconds > 0, not {timeout!r}")
    return float(timeout)
