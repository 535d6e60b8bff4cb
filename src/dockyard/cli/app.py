"""The ``dockyard`` command line: parses flags, builds settings, calls the right module.

The read commands (``deployment ls/inspect/pause/resume``, ``run ls/inspect/logs``,
``replica ls``) pick a reader with ``readers.open_reader`` (``--url``: the API; ``--state``
or ``--database-url``: the database) and
print what it returns with one ``display`` renderer per resource; the commands only a
serve process can do (``deployment run``, ``run cancel``, ``run logs --follow``) are in
``remote``.

Errors are one line on stderr (``dockyard: error: …``) with exit code 2 for usage
errors and 1 otherwise; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Any

import typer

from dockyard.cli import display, readers, remote
from dockyard.errors import DockyardError, UsageError

app = typer.Typer(
    name="dockyard",
    help="Serve Python workflows from long-lived containers.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
)
deployment_app = typer.Typer(help="Inspect, pause and run deployments.", no_args_is_help=True)
run_app = typer.Typer(help="Inspect, follow and cancel flow runs.", no_args_is_help=True)
replica_app = typer.Typer(
    help="List the serve processes sharing a state database.", no_args_is_help=True
)
app.add_typer(deployment_app, name="deployment")
app.add_typer(run_app, name="run")
app.add_typer(replica_app, name="replica")

_DEBUG = {"on": False}

StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="State database file (env DOCKYARD_STATE); with a database URL, local files "
        "(results, sources) still go beside it.",
    ),
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL state database, e.g. postgresql://dockyard@db:5432/dockyard (env "
        "DOCKYARD_DATABASE_URL or DOCKYARD_DATABASE_URL_FILE). No password here (process "
        "lists show it): put it in those, or in PGPASSFILE / PGPASSWORD.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# main() reads --debug from argv; the commands declare it so that click accepts it.
DebugOpt = Annotated[bool, typer.Option("--debug", help="Tracebacks on errors.")]
_URL_HELP = (
    "A running serve process, e.g. http://127.0.0.1:8080 "
    "(env DOCKYARD_URL; token: DOCKYARD_API_TOKEN)."
)
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", help=_URL_HELP + " Without it, read the --state / --database-url database."
    ),
]
ServerUrlOpt = Annotated[str | None, typer.Option("--url", help=_URL_HELP)]
# The bounds of the API's `limit` and `tail` query parameters (web/api.py), so that
# `--state` and `--url` accept the same values.
MAX_RUNS = 500
MAX_TAIL = 100_000
TailOpt = Annotated[int | None, typer.Option(min=1, max=MAX_TAIL, help="Only the last N lines.")]


@app.command()
def serve(
    entrypoint: Annotated[
        str | None, typer.Argument(help="path/to/file.py:flow_function (env DOCKYARD_ENTRYPOINT)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Deployment name (default: flow name).")] = None,
    cron: Annotated[list[str] | None, typer.Option(help="Cron schedule (5 fields).")] = None,
    interval: Annotated[list[float] | None, typer.Option(help="Interval in seconds.")] = None,
    rrule: Annotated[list[str] | None, typer.Option(help="iCal RRULE schedule.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Timezone of the schedules.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Default parameter KEY=VALUE.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeatable).")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    version: Annotated[str | None, typer.Option(help="Deployment version label.")] = None,
    paused: Annotated[bool | None, typer.Option("--paused", help="Start paused.")] = None,
    concurrency_limit: Annotated[int | None, typer.Option(help="Max runs of it at once.")] = None,
    overlap: Annotated[str | None, typer.Option(help="allow | skip | cancel-previous")] = None,
    catchup: Annotated[str | None, typer.Option(help="latest | none | all")] = None,
    limit: Annotated[int | None, typer.Option(help="Max concurrent runs (0: none).")] = None,
    pause_on_shutdown: Annotated[
        bool | None, typer.Option("--pause-on-shutdown/--no-pause-on-shutdown")
    ] = None,
    shutdown_grace: Annotated[float | None, typer.Option(help="Seconds to drain.")] = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    config: Annotated[str | None, typer.Option(help="dockyard.yaml with deployments.")] = None,
    webserver: Annotated[
        bool | None,
        typer.Option("--webserver/--no-webserver", help="Health, metrics and API (default on)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Webserver port (default 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Webserver address (default 127.0.0.1).")] = None,
    source: Annotated[
        str | None, typer.Option(help="Git repository of the code (env DOCKYARD_SOURCE).")
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Branch of --source.")] = None,
    git_tag: Annotated[str | None, typer.Option("--git-tag", help="Tag of --source.")] = None,
    commit: Annotated[str | None, typer.Option(help="Full commit SHA of --source.")] = None,
    pull_interval: Annotated[float | None, typer.Option(help="Seconds between pulls (60).")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Pull, check and publish the code once, then exit.")
    ] = False,
    check: Annotated[bool, typer.Option("--check", help="Validate, print, exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks on errors.")] = False,
) -> None:
    """Schedule and run flows until SIGTERM/SIGINT (env: DOCKYARD_* for every option)."""
    from dockyard.core.parameters import parse_param_args

    _DEBUG["on"] = _DEBUG["on"] or debug
    flags: dict[str, Any] = {
        "entrypoint": entrypoint,
        "name": name,
        "cron": cron,
        "interval": interval,
        "rrule": rrule,
        "timezone": timezone,
        "params": parse_param_args(list(param or [])),
        "tags": tag,
        "description": description,
        "version": version,
        "paused": paused,
        "concurrency_limit": concurrency_limit,
        "overlap": overlap,
        "catchup": catchup,
        "limit": limit,
        "pause_on_shutdown": pause_on_shutdown,
        "shutdown_grace": shutdown_grace,
        "state": state,
        "database_url": database_url,
        "config": config,
        "webserver": webserver,
        "port": port,
        "host": host,
        "source": source,
        "branch": branch,
        "tag": git_tag,
        "commit": commit,
        "pull_interval": pull_interval,
        "debug": debug or None,
    }
    from dockyard.service.setup import check_sources, prepare

    prepared = prepare(flags)
    if once and not prepared.plans:
        raise UsageError("--once pulls git-sourced code: give --source URL (or a source: block)")
    if prepared.plans and (once or check):
        raise typer.Exit(check_sources(prepared, publish=once))
    if check:
        display.check_report(prepared.deployments)
        return
    from dockyard.service.lifecycle import run_service

    code = run_service(prepared.deployments, prepared.settings, sources=prepared.plans)
    raise typer.Exit(code)


@deployment_app.command("ls")
def deployment_ls(
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List deployments with their schedules, whether they are paused and their next run."""
    with readers.open_reader(url, state, database_url) as reader:
        display.deployments(reader.deployments(), as_json=json)


@deployment_app.command("inspect")
def deployment_inspect(
    name: Annotated[str, typer.Argument(help="flow/deployment")],
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show one deployment: schedules, next runs, parameters and their defaults, last run."""
    with readers.open_reader(url, state, database_url) as reader:
        display.deployment_detail(reader.deployment(name), as_json=json)


@deployment_app.command("pause")
def deployment_pause(
    name: str,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Pause a deployment's schedules (stays paused across restarts until resumed)."""
    with readers.open_reader(url, state, database_url) as reader:
        display.deployment_changed(reader.set_paused(name, True), as_json=json)


@deployment_app.command("resume")
def deployment_resume(
    name: str,
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
    name: Annotated[str, typer.Argument(help="flow/deployment")],
    param: Annotated[
        list[str] | None, typer.Option(help="Parameter KEY=VALUE (repeatable; the server coerces).")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Stream the logs; exit 0 only if it Completed.")
    ] = False,
    url: ServerUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Start a run now, parameters merged over the deployment's defaults (needs --url)."""
    from dockyard.core.parameters import parse_param_args

    parameters = parse_param_args(list(param or []))
    http = remote.require_url(url, "deployment run")
    code = remote.deployment_run(http, name, parameters, watch=watch, as_json=json)
    raise typer.Exit(code)


@run_app.command("ls")
def run_ls(
    deployment: Annotated[str | None, typer.Option(help="flow/deployment")] = None,
    status: Annotated[list[str] | None, typer.Option(help="Completed, Failed, …")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_RUNS, help="How many (newest first).")] = 20,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List flow runs, newest first."""
    from dockyard.core.states import parse_state

    states = [parse_state(s) for s in status or []]
    with readers.open_reader(url, state, database_url) as reader:
        display.runs(reader.runs(deployment, states, limit), as_json=json)


@run_app.command("inspect")
def run_inspect(
    run_id: str,
    url: UrlOpt = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show one run: state history, tags, task runs, parameters, error, result."""
    with readers.open_reader(url, state, database_url) as reader:
        display.run_detail(reader.run(run_id), as_json=json)


@run_app.command("logs")
def run_logs(
    run_id: str,
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
    """Print the stored output of a run; --follow streams it until the run ends."""
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
    run_id: str, url: ServerUrlOpt = None, json: JsonOpt = False, debug: DebugOpt = False
) -> None:
    """Cancel a run: its process group is terminated and it ends Cancelled (needs --url)."""
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
    """List the serve processes sharing the database: live, lost (no heartbeat within
    DOCKYARD_REPLICA_TIMEOUT seconds) or stopped, with the runs each holds."""
    with readers.open_reader(url, state, database_url) as reader:
        display.replicas(reader.replicas(), as_json=json)


@app.command("build")
def build(
    entrypoint: Annotated[list[str] | None, typer.Argument(help="path/file.py:flow …")] = None,
    image: Annotated[str, typer.Option("--tag", "-t", help="Image name, e.g. acme/etl:1.0.")] = "",
    config: Annotated[str | None, typer.Option(help="dockyard.yaml with deployments.")] = None,
    name: Annotated[str | None, typer.Option(help="Deployment name.")] = None,
    cron: Annotated[list[str] | None, typer.Option()] = None,
    interval: Annotated[list[float] | None, typer.Option()] = None,
    rrule: Annotated[list[str] | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option()] = None,
    param: Annotated[list[str] | None, typer.Option(help="Default parameter KEY=VALUE.")] = None,
    flow_tag: Annotated[list[str] | None, typer.Option(help="Deployment tag.")] = None,
    paused: Annotated[bool | None, typer.Option("--paused")] = None,
    concurrency_limit: Annotated[int | None, typer.Option()] = None,
    overlap: Annotated[str | None, typer.Option()] = None,
    catchup: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int | None, typer.Option()] = None,
    pause_on_shutdown: Annotated[
        bool | None, typer.Option("--pause-on-shutdown/--no-pause-on-shutdown")
    ] = None,
    shutdown_grace: Annotated[float | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option(help="API port (default 8080).")] = None,
    project: Annotated[str | None, typer.Option(help="Folder copied to /app.")] = None,
    requirements: Annotated[str | None, typer.Option(help="Requirements file.")] = None,
    base_image: Annotated[str | None, typer.Option(help="Default python:X.Y-slim.")] = None,
    dockerfile: Annotated[str | None, typer.Option(help="Your Dockerfile template.")] = None,
    build_arg: Annotated[list[str] | None, typer.Option(help="KEY=VALUE")] = None,
    label: Annotated[list[str] | None, typer.Option(help="KEY=VALUE")] = None,
    platform: Annotated[str | None, typer.Option(help="e.g. linux/amd64")] = None,
    offline: Annotated[bool, typer.Option(help="Download wheels on this host.")] = False,
    push: Annotated[bool, typer.Option("--push", help="Push after building.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    print_dockerfile: Annotated[bool, typer.Option("--print-dockerfile")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only steps.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Build an image that serves ENTRYPOINT(s) or a --config (see README: Building images)."""
    from dockyard.build.cli import run_build

    raise typer.Exit(run_build(locals()))


@app.command("version")
def version() -> None:
    """Print dockyard's version."""
    from dockyard._version import __version__

    print(__version__)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, exit 2 for usage errors, 1 otherwise."""
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG["on"] = "--debug" in args
    if argv is None:
        _hide_credentials(args)
    command = typer.main.get_command(app)
    try:
        code = command.main(args, prog_name="dockyard", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:
        _usage_error(exc)
    except DockyardError as exc:
        if _DEBUG["on"]:
            traceback.print_exc()  # the traceback instead of the line, same exit code
        else:
            print(f"dockyard: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _hide_credentials(args: list[str]) -> None:
    """Hide passwords in this process's arguments from ``ps`` before anything else."""
    from dockyard.execution.environment import hide_argv_credentials
    from dockyard.settings import password_in_flag

    hide_argv_credentials()
    if password_in_flag(args):
        print(
            "dockyard: warning: --database-url holds a password, which process lists showed "
            "until now (dockyard hid it): prefer DOCKYARD_DATABASE_URL_FILE, "
            "DOCKYARD_DATABASE_URL or PGPASSFILE",
            file=sys.stderr,
        )


def _usage_error(exc: typer.TyperException) -> None:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `dockyard run`: show the help
        print(exc.format_message(), file=sys.stderr)
        sys.exit(2)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    print(f"dockyard: error: {exc.format_message()}{hint}", file=sys.stderr)
    sys.exit(getattr(exc, "exit_code", 2))
