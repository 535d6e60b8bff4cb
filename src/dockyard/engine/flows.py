"""One flow run's scope in this process: its context, task runner, print routing, and the
state its return value makes (futures resolved, then ``core.outcomes.final_state``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dockyard.core.flows import FlowDefinition
from dockyard.core.outcomes import State, final_state
from dockyard.core.states import FlowRun
from dockyard.engine.context import (
    ApiAccess,
    FlowRunContext,
    TaskRunRecorder,
    flow_run_context,
    in_flow_run,
)
from dockyard.engine.futures import resolve_futures_to_states
from dockyard.engine.logs import prints_logged
from dockyard.engine.results import ResultStore
from dockyard.engine.runners import ThreadPoolTaskRunner


@contextlib.contextmanager
def flow_run_scope(
    flow: FlowDefinition[..., Any],
    flow_run: FlowRun,
    *,
    recorder: TaskRunRecorder | None = None,
    results: ResultStore | None = None,
    api: ApiAccess | None = None,
    deployment_parameters: dict[str, Any] | None = None,
) -> Iterator[FlowRunContext]:
    """Run the body as ``flow_run``: tasks submitted inside use this flow's task runner.

    A subflow (a flow called inside a running flow) shares its parent's recorder, result
    store and API access. Leaving normally waits for the tasks still running.
    """
    parent = flow_run_context()
    runner = flow.task_runner if isinstance(flow.task_runner, ThreadPoolTaskRunner) else None
    ctx = FlowRunContext(
        flow=flow,
        flow_run=flow_run,
        task_runner=runner.duplicate() if runner is not None else ThreadPoolTaskRunner(),
        # A subflow reports, caches and calls the API the way its top flow run does.
        recorder=parent.recorder if parent else (recorder or TaskRunRecorder(None)),
        results=parent.results if parent else results,
        api=parent.api if parent else api,
        deployment_parameters=deployment_parameters or {},
        parent=parent,
    )
    with ctx.task_runner, in_flow_run(ctx), prints_logged(ctx, flow.log_prints):
        yield ctx


def state_of(returned: Any) -> State:
    """The final state of a flow that returned ``returned``."""
    return final_state(resolve_futures_to_states(returned))


def render_run_name(flow: FlowDefinition[..., Any], flow_run: FlowRun) -> str | None:
    """The run's ``flow_run_name``, rendered where ``dockyard.runtime.flow_run`` answers
    (a callable may read ``flow_run.parameters`` instead of taking them)."""
    ctx = FlowRunContext(flow, flow_run, ThreadPoolTaskRunner(), TaskRunRecorder(None))
    with in_flow_run(ctx):
        return flow.render_flow_run_name(flow_run.parameters)
