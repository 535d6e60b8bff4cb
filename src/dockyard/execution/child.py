"""Entry point of a flow-run subprocess: ``python -m dockyard.execution.child SPEC``.

The serve process writes a JSON spec (entrypoint, parameters, run id, attempt…) and
starts this module in a new session. It loads the flow, validates the parameters,
runs one attempt with the flow's hooks, and writes a JSON result file that the serve
process reads when the process exits. It imports nothing of the webserver stack, so
it starts fast.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import pickle
import signal
import sys
import traceback
from datetime import datetime
from typing import Any

_PR_SET_PDEATHSIG = 1
RESULT_LIMIT = 2000


class RunCancelled(BaseException):
    """Raised inside the flow when the serve process asks the run to stop (SIGTERM)."""


class RunTimedOut(Exception):
    """Raised inside the flow when ``timeout_seconds`` runs out."""


def _die_with_parent(parent_pid: int) -> None:
    # A run must not outlive its serve process, even if that one is SIGKILLed: ask the
    # kernel for SIGTERM when the parent dies, which ends the run like a cancellation
    # (and the cancel path kills the run's whole process group).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise RunCancelled()


def _on_alarm(signum: int, frame: Any) -> None:
    raise RunTimedOut()


def _summary(value: Any) -> str | None:
    if value is None:
        return None
    text = repr(value)
    return text if len(text) <= RESULT_LIMIT else text[:RESULT_LIMIT] + "…"


def _write_result(path: str, **result: Any) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, default=str)
    os.replace(tmp, path)


def _load(spec: dict[str, Any]) -> Any:
    from dockyard.execution.loading import load_flow

    blob = spec.get("bound_instance")
    if not blob:
        return load_flow(spec["entrypoint"], spec["base_dir"])
    # An instance-method flow served from a script: the script is loaded as __main__
    # so the pickled instance (whose class lived in the user's __main__) resolves.
    flow = load_flow(spec["entrypoint"], spec["base_dir"], as_main=True)
    return flow.__get__(pickle.loads(base64.b64decode(blob)))


def _flow_run(spec: dict[str, Any], parameters: dict[str, Any]) -> Any:
    from dockyard.core.flows import FlowRun

    scheduled = spec.get("scheduled_at")
    return FlowRun(
        id=spec["run_id"],
        name=spec.get("name"),
        deployment=spec.get("deployment"),
        parameters=parameters,
        attempt=int(spec.get("attempt", 1)),
        scheduled_at=datetime.fromisoformat(scheduled) if scheduled else None,
    )


def run(spec: dict[str, Any]) -> int:
    """Run one attempt; return the process exit code."""
    from dockyard.core.flows import State, print_capture
    from dockyard.core.states import RunState
    from dockyard.errors import DockyardError, ParameterError

    result_path = spec["result_path"]
    try:
        flow = _load(spec)
        params = dict(spec.get("parameters") or {})
        if spec.get("enforce_parameter_schema", True):
            params = flow.validate_parameters(params)
    except DockyardError as exc:
        print(f"dockyard: {exc}", file=sys.stderr, flush=True)
        retry = not isinstance(exc, ParameterError)
        _write_result(result_path, state="Failed", error=str(exc), retry=retry)
        return 1
    flow_run = _flow_run(spec, params)
    if spec.get("hook"):
        flow.run_hooks(spec["hook"], flow_run, State(RunState(spec["hook_state"])))
        return 0
    timeout = spec.get("timeout_seconds")
    state = State(RunState.RUNNING)
    try:
        flow.run_hooks("running", flow_run, state)
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
        with print_capture(flow):
            value = flow.call_fn(params)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except RunCancelled:
        signal.setitimer(signal.ITIMER_REAL, 0)
        flow.run_hooks("cancellation", flow_run, State(RunState.CANCELLED, "cancelled"))
        _write_result(result_path, state="Cancelled", error="cancelled")
        _kill_own_group()
        return 143
    except RunTimedOut:
        message = f"timed out after {timeout:g}s (timeout_seconds)"
        print(f"dockyard: flow run {message}", file=sys.stderr, flush=True)
        return _failed(flow, flow_run, spec, message)
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        traceback.print_exc()
        sys.stderr.flush()
        return _failed(flow, flow_run, spec, f"{type(exc).__name__}: {exc}")
    _write_result(result_path, state="Completed", result=_summary(value))
    flow.run_hooks("completion", flow_run, State(RunState.COMPLETED, result=value))
    return 0


def _failed(flow: Any, flow_run: Any, spec: dict[str, Any], error: str) -> int:
    from dockyard.core.flows import State
    from dockyard.core.states import RunState

    _write_result(spec["result_path"], state="Failed", error=error, retry=True)
    if spec.get("final_attempt", True):
        flow.run_hooks("failure", flow_run, State(RunState.FAILED, error))
    return 1


def _kill_own_group() -> None:
    """Take down whatever the flow spawned in this run's process group."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(os.getpgid(0), signal.SIGTERM)
    except OSError:
        pass


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    _die_with_parent(int(spec["parent_pid"]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to dockyard, which drains
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGALRM, _on_alarm)
    sys.path.insert(0, spec["base_dir"])
    try:
        return run(spec)
    except RunCancelled:
        _write_result(spec["result_path"], state="Cancelled", error="cancelled")
        _kill_own_group()
        return 143
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
