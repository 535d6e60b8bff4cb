"""``dockyard build``: an image that serves flows (the work is in ``dockyard.build``)."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.cli.options import DebugOpt, choices, hidden, image_env_help
from dockyard.core.policies import CatchupPolicy, OverlapPolicy


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
    flow_tag: Annotated[list[str] | None, hidden("--flow-tag", "TAG", "--tag")] = None,
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
