"""Prefect-compatible module path: ``from dockyard.deployments import RunnerDeployment``,
``run_deployment``.

``run_deployment("flow/deployment", parameters=...)`` starts a run of a served deployment
through the serve process's API (``dockyard.client.orchestration``) and waits for it. As
in Prefect it is awaitable in async code (``await run_deployment(...)`` in an async flow)
and blocks in sync code.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from dockyard.core.deployments import Deployment
from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.errors import UsageError

if TYPE_CHECKING:
    from dockyard.client.orchestration import DockyardClient
    from dockyard.client.schemas.objects import FlowRun

RunnerDeployment = Deployment

P = ParamSpec("P")
T = TypeVar("T")
START_TOLERANCE_SECONDS = 1.0
"""A ``scheduled_time`` up to this far ahead counts as now (clocks and rounding)."""


def _sync_or_async(
    function: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, T | Coroutine[Any, Any, T]]:
    """Prefect's calling convention: a coroutine to await where an event loop runs in this
    thread (async code), else run to completion and return the value (sync code)."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T | Coroutine[Any, Any, T]:
        import asyncio  # here: a flow that only imports this module does not pay for it

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(function(*args, **kwargs))
        return function(*args, **kwargs)

    return call


async def arun_deployment(
    name: str,
    client: DockyardClient | None = None,
    parameters: dict[str, Any] | None = None,
    scheduled_time: datetime | None = None,
    flow_run_name: str | None = None,
    # Prefect's name; not asyncio.timeout: the run is returned unfinished, not cancelled.
    timeout: float | None = None,  # noqa: ASYNC109
    poll_interval: float | None = 5,
    tags: Iterable[str] | None = None,
    idempotency_key: str | None = None,
    work_queue_name: str | None = None,
    as_subflow: bool | None = True,
    job_variables: dict[str, Any] | None = None,
) -> FlowRun:
    """Start a run of a served deployment and return it once it ended or ``timeout`` passed.

    Args:
        name: ``"flow/deployment"`` (a deployment's name is also its id in dockyard).
        client: The ``get_client()`` client to use; else one is made (inside a served flow
            run it talks to the run's own serve process, elsewhere to ``DOCKYARD_URL``).
        parameters: Merged over the deployment's default parameters.
        scheduled_time: Now or in the past (the run starts at once); a time in the future
            is refused: the serve process's API starts runs at once.
        timeout: Seconds to wait for the run to end: ``None`` waits until it ends, ``0``
            returns at once. The run is returned either way; its ``state`` tells.
        poll_interval: Seconds between reads of the run while waiting.
        tags: The run's tags, with those of every active ``tags(...)`` block; without any,
            the run gets the deployment's.
        as_subflow: Accepted and ignored: dockyard does not link runs to their parent.
        flow_run_name, idempotency_key, work_queue_name, job_variables: Not supported:
            giving one raises ``UsageError`` (which says why).

    Returns the ``FlowRun`` as last read (``dockyard.client.schemas.FlowRun``).
    """
    from dockyard.client.orchestration import get_client, refuse

    refuse(
        "run_deployment", flow_run_name=flow_run_name, idempotency_key=idempotency_key,
        work_queue_name=work_queue_name, job_variables=job_variables or None,
    )  # fmt: skip
    _check_start(scheduled_time)
    interval = _check_wait(timeout, poll_interval)
    run_tags = _run_tags(tags)
    async with contextlib.AsyncExitStack() as stack:
        api = client if client is not None else await stack.enter_async_context(get_client())
        run = await api.create_flow_run_from_deployment(
            str(name), parameters=parameters, tags=run_tags
        )
        return await _wait(api, run, timeout, interval)


run_deployment = _sync_or_async(arun_deployment)
"""``run_deployment(...)``: ``arun_deployment`` in sync code; awaitable in async code."""


async def _wait(
    api: DockyardClient, run: FlowRun, seconds: float | None, interval: float
) -> FlowRun:
    """Read ``run`` every ``interval`` seconds until it is final or ``seconds`` are up."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = math.inf if seconds is None else loop.time() + seconds
    while not run.state.is_final():
        left = deadline - loop.time()
        if left <= 0:
            return run
        await asyncio.sleep(min(interval, left))
        run = await api.read_flow_run(run.id)
    return run


def _check_start(scheduled_time: datetime | None) -> None:
    if scheduled_time is None:
        return
    when = scheduled_time if scheduled_time.tzinfo else scheduled_time.astimezone()
    ahead = (when - datetime.now(UTC)).total_seconds()
    if ahead > START_TOLERANCE_SECONDS:
        raise UsageError(
            f"run_deployment(scheduled_time={when.isoformat()}) is {ahead:.0f}s in the future: "
            "the serve process's API starts runs at once; leave scheduled_time out (or "
            "give a deployment a schedule)"
        )


def _check_wait(timeout: float | None, poll_interval: float | None) -> float:
    if timeout is not None and not timeout >= 0:
        raise UsageError(f"run_deployment(timeout={timeout!r}): give seconds >= 0, or None")
    interval = 5.0 if poll_interval is None else float(poll_interval)
    if not 0 < interval < math.inf:
        raise UsageError(f"run_deployment(poll_interval={poll_interval!r}): give seconds > 0")
    return interval


def _run_tags(tags: Iterable[str] | None) -> list[str] | None:
    """The given tags, then those of the active ``tags(...)`` blocks; None for none."""
    if isinstance(tags, str):
        raise UsageError(f"run_deployment(tags={tags!r}): give a list of tags, not a string")
    from dockyard.engine.context import current_tags

    merged = dict.fromkeys([*(tags or ()), *sorted(current_tags())])
    return list(merged) or None


__all__ = [
    "CatchupPolicy",
    "Deployment",
    "OverlapPolicy",
    "RunnerDeployment",
    "arun_deployment",
    "run_deployment",
]
