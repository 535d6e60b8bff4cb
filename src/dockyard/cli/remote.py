"""The commands that only a running serve process can answer (``--url``).

Starting a run (and ``--watch``-ing it), following a run's logs and cancelling a run need
the serve process; the read commands work in both modes through ``dockyard.cli.readers``.
``app.py`` parses the flags; the bodies here call ``dockyard.client``, print with
``dockyard.cli.display`` and return the exit code.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from dockyard.cli import display
from dockyard.cli.readers import client
from dockyard.errors import UsageError
from dockyard.settings import ClientSettings, load_client_settings

if TYPE_CHECKING:
    from dockyard.client import Client

COMPLETED = "Completed"
RUNNING = "Running"


def require_url(url: str | None, command: str) -> ClientSettings:
    """Client settings for a command that only works against a running serve process."""
    settings = load_client_settings(url)
    if not settings.url:
        raise UsageError(
            f"'{command}' talks to a running serve process: pass --url URL or set DOCKYARD_URL"
        )
    return settings


def deployment_run(
    settings: ClientSettings,
    name: str,
    parameters: dict[str, str],
    *,
    watch: bool,
    as_json: bool,
) -> int:
    """Start a run; with ``watch``, stream its logs and return 0 only if it Completed."""
    with client(settings) as api:
        run = api.create_run(name, parameters)
        _print_started(run, watch=watch, as_json=as_json)
        if not watch:
            return 0
        progress = None if as_json else Progress(api, run["id"], run["state"])
        state = _follow(api, run["id"], None, as_json=as_json, progress=progress)
        if not as_json:
            final = api.get_run(run["id"])
            message = f": {final['state_message']}" if final.get("state_message") else ""
            print(f"run {run['id']} ended {state}{message}", flush=True)
    return 0 if state == COMPLETED else 1


def _print_started(run: dict[str, Any], *, watch: bool, as_json: bool) -> None:
    if as_json and watch:
        display.stream_item(run, as_json=True)  # the first line of the stream that follows
    elif as_json:
        display.print_json(run)
    else:
        following = "; following its logs" if watch else ""
        print(f"run {run['id']} of {run['deployment']}: {run['state']}{following}")


def follow_logs(settings: ClientSettings, run_id: str, *, tail: int | None, as_json: bool) -> int:
    """Print the run's log lines as they arrive until it ends (its final state on stderr)."""
    with client(settings) as api:
        state = _follow(api, run_id, tail, as_json=as_json)
    if not as_json:
        print(f"run ended {state}", file=sys.stderr)
    return 0


def run_cancel(settings: ClientSettings, run_id: str, *, as_json: bool) -> int:
    """Ask the serve process to cancel a run (it terminates the run's process group)."""
    with client(settings) as api:
        run = api.cancel_run(run_id)
    if as_json:
        display.print_json(run)
    else:
        # The answer can still say Running: the process group is being terminated.
        print(f"run {run['id']}: cancel requested (state: {run['state']})")
    return 0


class Progress:
    """What ``--watch`` says on stderr while a run prints nothing, at every keepalive the
    server sends to a quiet stream (every 15 s): ``Running (15s)`` when its state changed,
    else ``still Running (30s)`` (seconds since the watch began). stdout keeps only the
    run's own lines."""

    def __init__(self, api: Client, run_id: str, state: str) -> None:
        self.api = api
        self.run_id = run_id
        self.state = state
        self.started = time.monotonic()

    def saw(self, item: dict[str, Any]) -> None:
        if "line" in item:
            self.state = RUNNING  # it prints: it runs
        elif item.get("keepalive"):
            self.quiet()

    def quiet(self) -> None:
        state = self.api.get_run(self.run_id)["state"]
        seconds = time.monotonic() - self.started
        still = "still " if state == self.state else ""  # else: it changed meanwhile
        self.state = state
        print(
            f"run {self.run_id[:8]}: {still}{state} ({seconds:.0f}s)", file=sys.stderr, flush=True
        )


def _follow(
    api: Client,
    run_id: str,
    tail: int | None,
    *,
    as_json: bool,
    progress: Progress | None = None,
) -> str:
    """Print the run's log stream as it arrives; the run's final state."""
    state = ""
    try:
        for item in api.follow_logs(run_id, tail):
            display.stream_item(item, as_json=as_json)
            state = item.get("state", state) if item.get("end") else state
            if progress is not None and not item.get("end"):
                progress.saw(item)
    except KeyboardInterrupt:
        print(
            f"stopped following; the run goes on (dockyard run cancel {run_id} stops it)",
            file=sys.stderr,
        )
        raise
    return state
