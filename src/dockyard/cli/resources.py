"""The commands on deployments, runs and replicas: ``deployment …``, ``run …``,
``replica ls``.

The read commands pick a reader with ``readers.open_reader`` (``--url``: the API;
``--state`` or ``--database-url``: the database) and print what it returns with one
``display`` renderer per resource; what only a serve process can do (``deployment run``,
``run cancel``, ``run logs --follow``) goes through ``remote``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dockyard.cli import display, readers, remote
from dockyard.cli.options import (
    MAX_RUNS,
    DatabaseUrlOpt,
    DebugOpt,
    JsonOpt,
    NameArg,
    RunIdArg,
    ServerUrlOpt,
    StateOpt,
    TailOpt,
    UrlOpt,
    one_of,
)
from dockyard.core.states import RunState
from dockyard.errors import UsageError

deployment_app = typer.Typer(help="Inspect, pause and run deployments.", no_args_is_help=True)
run_app = typer.Typer(help="Inspect, follow and cancel flow runs.", no_args_is_help=True)
replica_app = typer.Typer(
    help="List the serve processes sharing a state database.", no_args_is_help=True
)


@deployment_app.command("ls")
def deployment_ls(
    every: Annotated[
        bool,
        typer.Option("--all", "-a", help="Also the deployments no serve process serves any more."),
    ] = False,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List deployments: schedules, paused or not, next run."""
    with readers.open_reader(url, state, database_url) as reader:
        display.deployments(reader.deployments(), as_json=json, every=every)


@deployment_app.command("rm")
def deployment_rm(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Remove a deployment that is no longer served, with its runs.

    Their logs go too. Refused while a live serve process serves it (it would register
    it again).
    """
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"removing {name} and its runs cannot be undone: pass --yes")
        if not typer.confirm(f"Remove {name} with all its runs and their logs?"):
            print("nothing removed", file=sys.stderr)
            raise typer.Exit(1)
    with readers.open_reader(url, state, database_url) as reader:
        display.deployment_removed(reader.remove_deployment(name), as_json=json)


@deployment_app.command("inspect")
def deployment_inspect(
    name: NameArg,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show one deployment: schedules, parameters, next and last runs."""
    with readers.open_reader(url, state, database_url) as reader:
        display.deployment_detail(reader.deployment(name), as_json=json)


@deployment_app.command("pause")
def deployment_pause(
    name: NameArg,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Pause a deployment's schedules, across restarts until resumed."""
    with readers.open_reader(url, state, database_url) as reader:
        display.deployment_changed(reader.set_paused(name, True), as_json=json)


@deployment_app.command("resume")
def deployment_resume(
    name: NameArg,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Resume a paused deployment's schedules."""
    with readers.open_reader(url, state, database_url) as reader:
        display.deployment_changed(reader.set_paused(name, False), as_json=json)


@deployment_app.command("run")
def deployment_run(
    name: NameArg,
    param: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="Parameter (repeatable; the server coerces it)."),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Stream the logs; exit 0 only if it Completed.")
    ] = False,
    url: ServerUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Start a run now (needs --url).

    Its parameters are merged over the deployment's defaults.
    """
    from dockyard.core.parameters import parse_param_args

    parameters = parse_param_args(list(param or []))
    http = remote.require_url(url, "deployment run")
    code = remote.deployment_run(http, name, parameters, watch=watch, as_json=json)
    raise typer.Exit(code)


@run_app.command("ls")
def run_ls(
    deployment: Annotated[
        str | None,
        typer.Option(metavar="FLOW/DEPLOYMENT", help="Only the runs of this deployment."),
    ] = None,
    status: Annotated[
        list[RunState] | None,
        typer.Option(
            case_sensitive=False,
            metavar="STATE",
            help=f"Only runs in this state (repeatable, any case): {one_of(RunState)}.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_RUNS, metavar="N", help="How many (newest first).")
    ] = 20,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List flow runs, newest first."""
    states = list(status or [])
    with readers.open_reader(url, state, database_url) as reader:
        display.runs(reader.runs(deployment, states, limit), as_json=json)


@run_app.command("inspect")
def run_inspect(
    run_id: RunIdArg,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show one run: states, tags, task runs, parameters, result."""
    with readers.open_reader(url, state, database_url) as reader:
        display.run_detail(reader.run(run_id), as_json=json)


@run_app.command("logs")
def run_logs(
    run_id: RunIdArg,
    tail: TailOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends (--url).")
    ] = False,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print a run's stored output (--follow: until the run ends)."""
    if follow and (state is not None or database_url is not None):
        local = "--state" if database_url is None else "--database-url"
        raise UsageError(f"--follow reads from a running serve process: use --url, not {local}")
    if follow:
        http = remote.require_url(url, "run logs --follow")
        raise typer.Exit(remote.follow_logs(http, run_id, tail=tail, as_json=json))
    with readers.open_reader(url, state, database_url) as reader:
        display.log_lines(reader.logs(run_id, tail), as_json=json)


@run_app.command("cancel")
def run_cancel(
    run_id: RunIdArg, url: ServerUrlOpt = None, json: JsonOpt = False, debug: DebugOpt = False
) -> None:
    """Cancel a run (needs --url).

    Its process group is terminated and the run ends Cancelled.
    """
    http = remote.require_url(url, "run cancel")
    raise typer.Exit(remote.run_cancel(http, run_id, as_json=json))


@replica_app.command("ls")
def replica_ls(
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List the serve processes sharing the database.

    Each is live, lost (no heartbeat within DOCKYARD_REPLICA_TIMEOUT seconds) or
    stopped, with the runs it holds.
    """
    with readers.open_reader(url, state, database_url) as reader:
        display.replicas(reader.replicas(), as_json=json)
