"""``dockyard serve``: the flags of one serve process, to settings, then to the service."""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import typer

from dockyard.cli import display
from dockyard.cli.options import (
    DEBUG,
    DatabaseUrlOpt,
    ExecutorKind,
    LogFormat,
    StateOpt,
    choices,
    env_help,
    hidden,
    value_of,
)
from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.errors import UsageError
from dockyard.settings import take_renamed

_SERVE_RENAMED = (
    ("source_branch", "--branch", "--source-branch"),
    ("source_tag", "--git-tag", "--source-tag"),
    ("source_commit", "--commit", "--source-commit"),
    ("source_pull_interval", "--pull-interval", "--source-pull-interval"),
    ("version", "--version", "--deployment-version"),
)
"""Flags of earlier versions: (setting, old flag, new flag). Kept, hidden, with a warning."""


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
    branch: Annotated[str | None, hidden("--branch", "BRANCH", "--source-branch")] = None,
    git_tag: Annotated[str | None, hidden("--git-tag", "TAG", "--source-tag")] = None,
    commit: Annotated[str | None, hidden("--commit", "SHA", "--source-commit")] = None,
    pull_interval: Annotated[
        float | None, hidden("--pull-interval", "SECONDS", "--source-pull-interval")
    ] = None,
    version: Annotated[str | None, hidden("--version", "LABEL", "--deployment-version")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Pull, check and publish the code once, then exit.")
    ] = False,
    check: Annotated[bool, typer.Option("--check", help="Validate, print, exit.")] = False,
    json: Annotated[
        bool, typer.Option("--json", help="With --check or --once: print one JSON document.")
    ] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            case_sensitive=False,
            metavar=choices(LogFormat),
            help=env_help("log_format", "Log lines as text, or one JSON object each."),
        ),
    ] = None,
    executor: Annotated[
        ExecutorKind | None,
        typer.Option(
            case_sensitive=False,
            metavar=choices(ExecutorKind),
            help=env_help("executor", "Fork runs from a warm process, or start each fresh."),
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

    DEBUG["on"] = DEBUG["on"] or debug
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
        "log_format": value_of(log_format),
        "executor": value_of(executor),
        "debug": debug or None,
    }
    old_values = (branch, git_tag, commit, pull_interval, version)
    for (key, old, new), value in zip(_SERVE_RENAMED, old_values, strict=True):
        take_renamed(flags, key, old, new, value)
    from dockyard.service.setup import check_sources, prepare

    # Serving imports the service while the probe loads the code; --check and --once don't.
    prepared = prepare(flags, meanwhile=None if once or check else import_service)
    DEBUG["on"] = DEBUG["on"] or prepared.settings.debug  # DOCKYARD_DEBUG, from here on
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


def import_service() -> None:
    """Import what serving needs after the probe: the lifecycle (the store, SQLAlchemy,
    FastAPI, uvicorn) and the modules FastAPI and uvicorn import on first use."""
    with warnings.catch_warnings():  # as FastAPI does: pydantic.v1 warns on new Pythons
        warnings.simplefilter("ignore", UserWarning)
        import pydantic.v1  # noqa: F401  (FastAPI checks each route's models for it)
    import uvicorn.lifespan.off
    import uvicorn.protocols.http.auto
    import uvicorn.protocols.websockets.auto  # noqa: F401

    import dockyard.service.lifecycle  # noqa: F401
