"""Entry point of a flow-run subprocess: ``python -m dockyard.execution.child SPEC``.

The serve process writes a ``RunSpec`` (``execution.spec``) and starts this module in a new
session. It loads the flow, validates the parameters, renders the run's name and reports
it (``ChildStarted``), runs one attempt with the flow's hooks, and writes a
``ChildResult`` that the serve process reads when the process exits. It imports nothing of
the webserver, store or scheduler, so it starts fast.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import signal
import sys
from typing import Any

from dockyard.core.outcomes import Cancelled, Crashed, Failed, Running, State, state_message
from dockyard.core.results import encode_result
from dockyard.core.states import FlowRun, RunState
from dockyard.execution.leftovers import die_with_parent
from dockyard.execution.spec import ChildResult, ChildStarted, RunSpec


class RunCancelled(BaseException):
    """Raised inside the flow when the serve process asks the run to stop (SIGTERM)."""


class RunTimedOut(BaseException):
    """Raised inside the flow when ``timeout_seconds`` runs out (flow code cannot swallow it
    with ``except Exception``; the run's task threads are not waited for)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise RunCancelled()


def _on_alarm(signum: int, frame: Any) -> None:
    raise RunTimedOut()


def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, default=str)
    os.replace(tmp, path)


class Reporter:
    """Writes what the serve process reads: ``ChildStarted`` and ``ChildResult`` files."""

    def __init__(
        self, result_path: str, started_path: str, task_runs_path: str | None = None
    ) -> None:
        self.result_path = result_path
        self.started_path = started_path
        self.task_runs_path = task_runs_path

    def started(self, name: str | None) -> None:
        # Written (atomically) before the flow prints anything, so the serve process
        # knows the run's name before it prefixes the run's first output line.
        _write_json(self.started_path, ChildStarted(name).to_json())

    def result(self, state: RunState, **fields: Any) -> None:
        _write_json(self.result_path, ChildResult(state, **fields).to_json())


def _load(spec: RunSpec) -> Any:
    from dockyard.execution.loading import load_flow

    if not spec.bound_instance:
        return load_flow(spec.entrypoint, spec.base_dir)
    # An instance-method flow served from a script: the script is loaded as __main__
    # so the pickled instance (whose class lived in the user's __main__) resolves.
    flow = load_flow(spec.entrypoint, spec.base_dir, as_main=True)
    return flow.__get__(pickle.loads(base64.b64decode(spec.bound_instance)))


def _run_name(flow: Any, spec: RunSpec, flow_run: FlowRun) -> str:
    """The run's name: the one it has, else the flow's flow_run_name for these parameters,
    else one made from its id (``nimble-otter``), as Prefect names every run."""
    from dockyard.core.names import friendly_run_name
    from dockyard.engine.flows import render_run_name

    if spec.name is not None:
        return spec.name
    try:
        return render_run_name(flow, flow_run) or friendly_run_name(spec.run_id)
    except Exception as exc:  # a bad template must not stop the run
        print(f"dockyard: flow_run_name could not be rendered: {exc}", file=sys.stderr, flush=True)
        return friendly_run_name(spec.run_id)


def _flow_run(spec: RunSpec, name: str | None, parameters: dict[str, Any]) -> FlowRun:
    return FlowRun(
        id=spec.run_id,
        name=name,
        deployment=spec.deployment,
        parameters=parameters,
        attempt=spec.attempt,
        scheduled_at=spec.scheduled_at,
        tags=spec.tags,
        trigger=spec.trigger,
    )


def run(spec: RunSpec, report: Reporter) -> int:
    """Run one attempt; return the process exit code."""
    from dockyard.errors import DockyardError, ParameterError

    try:
        flow = _load(spec)
        params = dict(spec.parameters)
        if spec.enforce_parameter_schema:
            params = flow.validate_parameters(params)
    except DockyardError as exc:
        print(f"dockyard: {exc}", file=sys.stderr, flush=True)
        retry = not isinstance(exc, ParameterError)
        report.result(RunState.FAILED, error=str(exc), retry=retry)
        return 1
    flow_run = _flow_run(spec, None, params)
    name = flow_run.name = _run_name(flow, spec, flow_run)
    if spec.hook:
        from dockyard.execution.inprocess import run_hooks

        run_hooks(flow, spec.hook, flow_run, Crashed())
        return 0
    report.started(name)
    return _attempt(flow, flow_run, spec, report)


def _attempt(flow: Any, flow_run: FlowRun, spec: RunSpec, report: Reporter) -> int:
    from dockyard.execution.inprocess import call_fn, run_hooks

    timeout = spec.timeout_seconds
    try:
        run_hooks(flow, "running", flow_run, Running())
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
        with _scope(flow, flow_run, spec, report):
            state = _state_of(call_fn(flow, flow_run.parameters))
        signal.setitimer(signal.ITIMER_REAL, 0)
    except RunCancelled:
        signal.setitimer(signal.ITIMER_REAL, 0)
        run_hooks(flow, "cancellation", flow_run, Cancelled("cancelled"))
        report.result(RunState.CANCELLED, error="cancelled")
        _kill_own_group()
        return 143
    except RunTimedOut:
        message = f"timed out after {timeout:g}s (timeout_seconds)"
        print(f"dockyard: flow run {message}", file=sys.stderr, flush=True)
        return _failed(flow, flow_run, spec, report, Failed(message, data=TimeoutError(message)))
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _print_traceback(exc)
        return _failed(
            flow, flow_run, spec, report, Failed(f"{type(exc).__name__}: {exc}", data=exc)
        )
    return _finished(flow, flow_run, spec, report, state)


def _scope(flow: Any, flow_run: FlowRun, spec: RunSpec, report: Reporter) -> Any:
    """The flow run's scope: task runs recorded for the serve process, cache, API access."""
    from dockyard.engine.context import ApiAccess, TaskRunRecorder
    from dockyard.engine.flows import flow_run_scope
    from dockyard.engine.results import ResultStore

    api = ApiAccess(spec.api_url, spec.api_token) if spec.api_url else None
    return flow_run_scope(
        flow, flow_run, recorder=TaskRunRecorder(report.task_runs_path),
        results=ResultStore(spec.results_dir) if spec.results_dir else None, api=api,
        deployment_parameters=dict(spec.deployment_parameters),
    )  # fmt: skip


def _state_of(returned: Any) -> State:
    from dockyard.engine.flows import state_of

    return state_of(returned)


def _finished(flow: Any, flow_run: FlowRun, spec: RunSpec, report: Reporter, state: State) -> int:
    """Report the state the flow's return value made (a returned State may be a failure)."""
    from dockyard.execution.inprocess import run_hooks

    if state.is_failed() or state.is_crashed():
        print(
            f"dockyard: flow run finished in state {state.name}: {state_message(state)}",
            file=sys.stderr,
            flush=True,
        )
        return _failed(flow, flow_run, spec, report, state)
    if state.is_cancelled():
        report.result(RunState.CANCELLED, error=state.message or "cancelled by the flow")
        run_hooks(flow, "cancellation", flow_run, state)
        return 0
    report.result(RunState.COMPLETED, result=encode_result(state.data))
    run_hooks(flow, "completion", flow_run, state)
    return 0


def _failed(flow: Any, flow_run: FlowRun, spec: RunSpec, report: Reporter, state: State) -> int:
    from dockyard.execution.inprocess import run_hooks

    report.result(RunState.FAILED, error=state_message(state), retry=True)
    if spec.final_attempt:
        run_hooks(flow, "failure", flow_run, state)
    return 1


def _print_traceback(exc: BaseException) -> None:
    """The traceback from the user's code on (dockyard's frames left out) to stderr, which
    the serve process shows and stores as the run's output."""
    from dockyard.engine.tracebacks import format_user_exception

    sys.stderr.write(format_user_exception(exc))
    sys.stderr.flush()


def _kill_own_group() -> None:
    """Take down whatever the flow spawned in this run's process group."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(os.getpgid(0), signal.SIGTERM)
    except OSError:
        pass


def main(spec_path: str | None = None) -> int:
    with open(spec_path or sys.argv[1], encoding="utf-8") as fh:
        envelope = json.load(fh)
    die_with_parent(int(envelope["parent_pid"]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to dockyard, which drains
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGALRM, _on_alarm)
    spec = RunSpec.from_json(envelope["spec"])
    report = Reporter(
        envelope["result_path"], envelope["started_path"], envelope.get("task_runs_path")
    )
    sys.path.insert(0, spec.base_dir)
    from dockyard.engine.logs import keep_prints_plain, show_run_logs

    show_run_logs(plain_loggers=True)  # the run's stderr is its stored log
    keep_prints_plain()  # printed lines are stored as printed, as before log records existed
    try:
        return run(spec, report)
    except RunCancelled:
        report.result(RunState.CANCELLED, error="cancelled")
        _kill_own_group()
        return 143
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def exit_now(code: int) -> None:
    """Exit without waiting for threads: a task still running after the flow ended (timed
    out, or abandoned by a cancel) must not keep the run's process alive."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main_code(spec_path: str | None = None) -> int:
    """Run the attempt the envelope at ``spec_path`` (default: ``argv[1]``) describes; the
    process's exit code. The fork server's children call it too."""
    try:
        return main(spec_path)
    except SystemExit as exc:  # the flow called sys.exit(): the process's own exit code
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        _print_traceback(exc)
        return 1


if __name__ == "__main__":
    exit_now(main_code())
