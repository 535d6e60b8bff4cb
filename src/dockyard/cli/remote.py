"""The ``deployment`` and ``run`` commands against a running serve process (``--url``).

``cli.py`` parses the flags; ``settings_for`` / ``require_url`` pick the mode, and the
command bodies here call ``dockyard.client`` and print with ``dockyard.display``. Each
body returns the exit code.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dockyard.cli import display
from dockyard.errors import UsageError
from dockyard.settings import ClientSettings, load_client_settings

if TYPE_CHECKING:
    from dockyard.client import Client

COMPLETED = "Completed"


def settings_for(url: str | None, state: str | None) -> ClientSettings | None:
    """Client settings when the command should talk HTTP, None for the local --state mode.

    Precedence: --url > --state > DOCKYARD_URL > DOCKYARD_STATE.
    """
    if url is not None and state is not None:
        raise UsageError(
            "give either --url (a running serve process) or --state (its database), not both"
        )
    if state is not None:
        return None
    settings = load_client_settings(url)
    return settings if settings.url else None


def require_url(url: str | None, command: str) -> ClientSettings:
    """Client settings for a command that only works against a running serve process."""
    settings = load_client_settings(url)
    if not settings.url:
        raise UsageError(
            f"'{command}' talks to a running serve process: pass --url URL or set DOCKYARD_URL"
        )
    return settings


def client(settings: ClientSettings) -> Client:
    from dockyard.client import Client  # httpx only for the commands that use it

    assert settings.url is not None  # the commands only come here with a URL
    return Client(settings.url, settings.api_token)


def deployment_ls(settings: ClientSettings, *, as_json: bool) -> int:
    with client(settings) as api:
        display.api_deployments(api.list_deployments(), as_json=as_json)
    return 0


def deployment_inspect(settings: ClientSettings, name: str, *, as_json: bool) -> int:
    with client(settings) as api:
        display.deployment_detail(api.get_deployment(name), as_json=as_json)
    return 0


def set_paused(settings: ClientSettings, name: str, paused: bool, *, as_json: bool) -> int:
    with client(settings) as api:
        item = api.pause(name) if paused else api.resume(name)
    display.api_deployment_changed(item, as_json=as_json)
    return 0


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
        if not watch:
            if as_json:
                display.print_json(run)
            else:
                print(f"run {run['id']} of {run['deployment']}: {run['state']}")
            return 0
        if as_json:
            display.stream_item(run, as_json=True)
        else:
            print(f"run {run['id']} of {run['deployment']}: {run['state']}; following its logs")
        state = _follow(api, run["id"], None, as_json=as_json)
        if not as_json:
            final = api.get_run(run["id"])
            message = f": {final['state_message']}" if final.get("state_message") else ""
            print(f"run {run['id']} ended {state}{message}", flush=True)
    return 0 if state == COMPLETED else 1


def run_ls(
    settings: ClientSettings,
    *,
    deployment: str | None,
    states: list[str],
    limit: int,
    as_json: bool,
) -> int:
    with client(settings) as api:
        answer = api.list_runs(deployment=deployment, state=states, limit=limit)
    display.api_runs(answer["runs"], as_json=as_json)
    return 0


def run_inspect(settings: ClientSettings, run_id: str, *, as_json: bool) -> int:
    with client(settings) as api:
        display.api_run_detail(api.get_run(run_id), as_json=as_json)
    return 0


def run_logs(
    settings: ClientSettings, run_id: str, *, tail: int | None, follow: bool, as_json: bool
) -> int:
    with client(settings) as api:
        if not follow:
            display.api_log_lines(api.logs(run_id, tail)["lines"], as_json=as_json)
            return 0
        state = _follow(api, run_id, tail, as_json=as_json)
    if not as_json:
        print(f"run ended {state}", file=sys.stderr)
    return 0


def run_cancel(settings: ClientSettings, run_id: str, *, as_json: bool) -> int:
    with client(settings) as api:
        run = api.cancel_run(run_id)
    if as_json:
        display.print_json(run)
    else:
        # The answer can still say Running: the process group is being terminated.
        print(f"run {run['id']}: cancel requested (state: {run['state']})")
    return 0


def _follow(api: Client, run_id: str, tail: int | None, *, as_json: bool) -> str:
    """Print the run's log stream as it arrives; the run's final state."""
    state = ""
    try:
        for item in api.follow_logs(run_id, tail):
            display.stream_item(item, as_json=as_json)
            state = item.get("state", state) if item.get("end") else state
    except KeyboardInterrupt:
        print(
            f"stopped following; the run goes on (dockyard run cancel {run_id} stops it)",
            file=sys.stderr,
        )
        raise
    return state
