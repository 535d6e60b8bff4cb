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
from typer.core import TyperArgument

from dockyard.cli import display, readers, remote
from dockyard.cli.options import (
    CONTEXT,
    choices,
    env_help,
    image_env_help,
    one_of,
    value_of,
)
from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.core.states import RunState
from dockyard.errors import DockyardError, UsageError
from dockyard.settings import take_renamed

app = typer.Typer(
    name="dockyard",
    help="Serve Python workflows from long-lived containers.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    context_settings=CONTEXT,
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


def _print_version(given: bool) -> None:
    if given:
        from dockyard._version import __version__

        print(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print dockyard's version and exit.",
        ),
    ] = False,
) -> None:
    pass


StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        metavar="PATH",
        help=env_help(
            "state",
            "State database file; with a database URL, local files (results, sources) "
            "still go beside it.",
        ),
    ),
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help=env_help(
            "database_url",
            "PostgreSQL state database, e.g. postgresql://dockyard@db:5432/dockyard, or the "
            "file DOCKYARD_DATABASE_URL_FILE names. No password here (process lists show "
            "it): put it in those, or in PGPASSFILE / PGPASSWORD.",
        ),
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# main() reads --debug from argv; the commands declare it so that click accepts it.
DebugOpt = Annotated[bool, typer.Option("--debug", help="Tracebacks on errors.")]
_URL_HELP = "A running serve process, e.g. http://127.0.0.1:8080 (token: DOCKYARD_API_TOKEN)."
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help=env_help("url", _URL_HELP + " Without it, read the --state / --database-url one."),
    ),
]
ServerUrlOpt = Annotated[
    str | None, typer.Option("--url", metavar="URL", help=env_help("url", _URL_HELP))
]
# The bounds of the API's `limit` and `tail` query parameters (web/api.py), so that
# `--state` and `--url` accept the same values.
MAX_RUNS = 500
MAX_TAIL = 100_000
TailOpt = Annotated[
    int | None, typer.Option(min=1, max=MAX_TAIL, metavar="N", help="Only the last N lines.")
]
NameArg = Annotated[str, typer.Argument(metavar="FLOW/DEPLOYMENT", help="The deployment.")]
RunIdArg = Annotated[
    str, typer.Argument(metavar="RUN_ID", help="A run's id, or a unique prefix of it.")
]


_DEPRECATED = "Deprecated: use {}."
_SERVE_RENAMED = (
    ("source_branch", "--branch", "--source-branch"),
    ("source_tag", "--git-tag", "--source-tag"),
    ("source_commit", "--commit", "--source-commit"),
    ("source_pull_interval", "--pull-interval", "--source-pull-interval"),
    ("version", "--version", "--deployment-version"),
)
"""Flags of earlier versions: (setting, old flag, new flag). Kept, hidden, with a warning."""


def _hidden(flag: str, metavar: str) -> Any:
    return typer.Option(flag, hidden=True, metavar=metavar, help=_DEPRECATED.format(flag))


@app.command()
def serve(
    entrypoint: Annotated[
        str | None,
        typer.Argument(
            metavar="ENTRYPOINT", help=env_help("entrypoint", "path/to/file.py:flow_function")
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help=env_help("name", "Deployment name (default: flow name).")
        ),
    ] = None,
    cron: Annotated[
        list[str] | None,
        typer.Option(
            metavar="CRON", help=env_help("cron", "Cron schedule (5 fields; repeatable).")
        ),
    ] = None,
    interval: Annotated[
        list[float] | None,
        typer.Option(
            metavar="SECONDS", help=env_help("interval", "Interval schedule (repeatable).")
        ),
    ] = None,
    rrule: Annotated[
        list[str] | None,
        typer.Option(metavar="RRULE", help=env_help("rrule", "iCal RRULE schedule (repeatable).")),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(metavar="TZ", help=env_help("timezone", "IANA time zone of the schedules.")),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE", help=env_help("params", "Default parameter (repeatable).")
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(metavar="TAG", help=env_help("tags", "Deployment tag (repeatable).")),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(metavar="WORDS", help=env_help("description", "Deployment description.")),
    ] = None,
    deployment_version: Annotated[
        str | None,
        typer.Option(metavar="LABEL", help=env_help("version", "Deployment version label.")),
    ] = None,
    paused: Annotated[
        bool | None, typer.Option("--paused", help=env_help("paused", "Start paused."))
    ] = None,
    concurrency_limit: Annotated[
        int | None,
        typer.Option(metavar="N", help=env_help("concurrency_limit", "Max runs of it at once.")),
    ] = None,
    overlap: Annotated[
        OverlapPolicy | None,
        typer.Option(
            case_sensitive=False,
            metavar=choices(OverlapPolicy),
            help=env_help("overlap", "What a slot does while a run is still going."),
        ),
    ] = None,
    catchup: Annotated[
        CatchupPolicy | None,
        typer.Option(
            case_sensitive=False,
            metavar=choices(CatchupPolicy),
            help=env_help("catchup", "Which missed slots run after downtime."),
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(metavar="N", help=env_help("limit", "Max concurrent runs (0: no limit).")),
    ] = None,
    pause_on_shutdown: Annotated[
        bool | None,
        typer.Option(
            "--pause-on-shutdown/--no-pause-on-shutdown",
            help=env_help("pause_on_shutdown", "Pause the schedules while stopped (default on)."),
        ),
    ] = None,
    shutdown_grace: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help=env_help("shutdown_grace", "How long runs may finish after SIGTERM (25)."),
        ),
    ] = None,
    state: StateOpt = None,
    database_url: DatabaseUrlOpt = None,
    config: Annotated[
        str | None,
        typer.Option(metavar="PATH", help=env_help("config", "dockyard.yaml with deployments.")),
    ] = None,
    webserver: Annotated[
        bool | None,
        typer.Option(
            "--webserver/--no-webserver",
            help=env_help("webserver", "Health, metrics and API (default on)."),
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(metavar="PORT", help=env_help("port", "Webserver port (default 8080).")),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS", help=env_help("host", "Webserver address (default 127.0.0.1).")
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(metavar="URL", help=env_help("source", "Git repository of the code.")),
    ] = None,
    source_branch: Annotated[
        str | None,
        typer.Option(metavar="BRANCH", help=env_help("source_branch", "Branch of --source.")),
    ] = None,
    source_tag: Annotated[
        str | None,
        typer.Option(metavar="TAG", help=env_help("source_tag", "Git tag of --source.")),
    ] = None,
    source_commit: Annotated[
        str | None,
        typer.Option(metavar="SHA", help=env_help("source_commit", "Full commit SHA of --source.")),
    ] = None,
    source_pull_interval: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS", help=env_help("source_pull_interval", "Time between pulls (60).")
        ),
    ] = None,
    branch: Annotated[str | None, _hidden("--branch", "BRANCH")] = None,
    git_tag: Annotated[str | None, _hidden("--git-tag", "TAG")] = None,
    commit: Annotated[str | None, _hidden("--commit", "SHA")] = None,
    pull_interval: Annotated[float | None, _hidden("--pull-interval", "SECONDS")] = None,
    version: Annotated[str | None, _hidden("--version", "LABEL")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Pull, check and publish the code once, then exit.")
    ] = False,
    check: Annotated[bool, typer.Option("--check", help="Validate, print, exit.")] = False,
    json: Annotated[
        bool, typer.Option("--json", help="With --check or --once: print one JSON document.")
    ] = False,
    log_format: Annotated[
        str | None,
        typer.Option(
            metavar="[text|json]",
            help=env_help("log_format", "Log lines as text, or one JSON object each."),
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help=env_help("debug", "Tracebacks on errors."))
    ] = False,
) -> None:
    """Schedule and run flows until SIGTERM or SIGINT.

    Every option also comes from its DOCKYARD_* variable: flag > environment >
    dockyard.yaml > default.
    """
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
        "version": deployment_version,
        "paused": paused,
        "concurrency_limit": concurrency_limit,
        "overlap": value_of(overlap),
        "catchup": value_of(catchup),
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
        "source_branch": source_branch,
        "source_tag": source_tag,
        "source_commit": source_commit,
        "source_pull_interval": source_pull_interval,
        "log_format": log_format,
        "debug": debug or None,
    }
    old_values = (branch, git_tag, commit, pull_interval, version)
    for (key, old, new), value in zip(_SERVE_RENAMED, old_values, strict=True):
        take_renamed(flags, key, old, new, value)
    from dockyard.service.setup import check_sources, prepare

    prepared = prepare(flags)
    _DEBUG["on"] = _DEBUG["on"] or prepared.settings.debug  # DOCKYARD_DEBUG, from here on
    if once and not prepared.plans:
        raise UsageError("--once pulls git-sourced code: give --source URL (or a source: block)")
    if json and not (once or check):
        raise UsageError("--json goes with --check or --once (what serve prints then)")
    if prepared.plans and (once or check):
        raise typer.Exit(check_sources(prepared, publish=once, as_json=json))
    if check:
        (display.check_json if json else display.check_report)(prepared.deployments)
        return
    from dockyard.service.lifecycle import run_service

    code = run_service(prepared.deployments, prepared.settings, sources=prepared.plans)
    raise typer.Exit(code)


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


@app.command("build")
def build(
    entrypoint: Annotated[
        list[str] | None,
        typer.Argument(metavar="ENTRYPOINT", help="path/to/file.py:flow_function (one or more)."),
    ] = None,
    image: Annotated[
        str,
        typer.Option("--image", "-t", metavar="IMAGE", help="Image name, e.g. acme/etl:1.0."),
    ] = "",
    config: Annotated[
        str | None,
        typer.Option(
            metavar="PATH", help="dockyard.yaml with deployments (instead of ENTRYPOINT)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="Deployment name.")] = None,
    cron: Annotated[
        list[str] | None, typer.Option(metavar="CRON", help="Cron schedule (repeatable).")
    ] = None,
    interval: Annotated[
        list[float] | None,
        typer.Option(metavar="SECONDS", help="Interval schedule (repeatable)."),
    ] = None,
    rrule: Annotated[
        list[str] | None, typer.Option(metavar="RRULE", help="iCal RRULE schedule (repeatable).")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(metavar="TZ", help="IANA time zone of the schedules.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="Default parameter (repeatable)."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(metavar="TAG", help="Deployment tag (repeatable); the image is -t/--image."),
    ] = None,
    flow_tag: Annotated[list[str] | None, _hidden("--flow-tag", "TAG")] = None,
    paused: Annotated[
        bool | None, typer.Option("--paused", help="The deployment starts paused.")
    ] = None,
    concurrency_limit: Annotated[
        int | None, typer.Option(metavar="N", help="Max runs of the deployment at once.")
    ] = None,
    overlap: Annotated[
        OverlapPolicy | None,
        typer.Option(
            case_sensitive=False,
            metavar=choices(OverlapPolicy),
            help="What a slot does while a run is still going.",
        ),
    ] = None,
    catchup: Annotated[
        CatchupPolicy | None,
        typer.Option(
            case_sensitive=False,
            metavar=choices(CatchupPolicy),
            help="Which missed slots run after downtime.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(metavar="N", help=image_env_help("limit", "Max concurrent runs (0: none).")),
    ] = None,
    pause_on_shutdown: Annotated[
        bool | None,
        typer.Option(
            "--pause-on-shutdown/--no-pause-on-shutdown",
            help=image_env_help("pause_on_shutdown", "Pause the schedules while stopped."),
        ),
    ] = None,
    shutdown_grace: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help=image_env_help("shutdown_grace", "How long runs may finish after SIGTERM."),
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(metavar="PORT", help=image_env_help("port", "API port (default 8080).")),
    ] = None,
    project: Annotated[
        str | None, typer.Option(metavar="DIR", help="Folder copied to /app (default: here).")
    ] = None,
    requirements: Annotated[
        str | None, typer.Option(metavar="PATH", help="Requirements file to install.")
    ] = None,
    base_image: Annotated[
        str | None, typer.Option(metavar="IMAGE", help="Default: python:X.Y-slim of this Python.")
    ] = None,
    dockerfile: Annotated[
        str | None, typer.Option(metavar="PATH", help="Your Dockerfile template.")
    ] = None,
    build_arg: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="Docker build argument.")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="Image label (repeatable).")
    ] = None,
    platform: Annotated[
        str | None, typer.Option(metavar="PLATFORM", help="Target platform, e.g. linux/amd64.")
    ] = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Download the wheels on this host; build without network."),
    ] = False,
    push: Annotated[bool, typer.Option("--push", help="Push after building.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Build without Docker's layer cache.")
    ] = False,
    print_dockerfile: Annotated[
        bool, typer.Option("--print-dockerfile", help="Print the Dockerfile; build nothing.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only the steps, not Docker's output.")
    ] = False,
    json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the result as one JSON document (progress stays on stderr)."
        ),
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Build a Docker image that serves flows.

    It serves the ENTRYPOINT(s) with the options given, or the deployments of a
    --config; see the README's "Building images".
    """
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
    command = click_command()
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


def click_command() -> Any:
    """The click command tree of ``app``, each argument shown by its metavar alone
    (typer would add the Python type: ``ENTRYPOINT <str>``)."""
    command = typer.main.get_command(app)
    for sub in _walk(command):
        for param in sub.params:
            if isinstance(param, TyperArgument):
                param.__class__ = _Argument
    return command


def _walk(command: Any) -> list[Any]:
    subs = getattr(command, "commands", {}).values()
    return [command, *(c for sub in subs for c in _walk(sub))]


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None


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
    message = exc.format_message().replace("Value error, ", "")  # typer's pydantic wording
    print(f"dockyard: error: {message}{hint}", file=sys.stderr)
    sys.exit(getattr(exc, "exit_code", 2))
