"""``dockyard build`` flags → ``build_image`` arguments, and the summary it prints."""

from __future__ import annotations

from typing import Any

from dockyard.errors import UsageError

_DEPLOYMENT_FLAGS = {
    "name": "name",
    "cron": "cron",
    "interval": "interval",
    "rrule": "rrule",
    "timezone": "timezone",
    "param": "parameters",
    "flow_tag": "tags",
    "paused": "paused",
    "concurrency_limit": "concurrency_limit",
    "overlap": "overlap",
    "catchup": "catchup",
}
_PASS_THROUGH = (
    *("limit", "pause_on_shutdown", "shutdown_grace", "port", "project", "requirements"),
    *("base_image", "platform", "offline"),
)


def key_values(items: list[str] | None, flag: str) -> dict[str, str]:
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        result[key] = value
    return result


def build_arguments(flags: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``build_image`` from the command's flags (only those given)."""
    from dockyard.core.parameters import parse_param_args

    options: dict[str, Any] = {k: flags[k] for k in _PASS_THROUGH if flags.get(k) is not None}
    deployment = {
        target: flags[flag]
        for flag, target in _DEPLOYMENT_FLAGS.items()
        if flags.get(flag) not in (None, [], {})
    }
    if "parameters" in deployment:
        deployment["parameters"] = parse_param_args(list(deployment["parameters"]))
    if flags.get("config") and deployment:
        names = ", ".join(
            "--" + k.replace("_", "-") for k, v in _DEPLOYMENT_FLAGS.items() if v in deployment
        )
        raise UsageError(f"{names} describe ENTRYPOINTs; with --config set them in the file")
    options.update(deployment)
    options["entrypoints"] = list(flags.get("entrypoint") or [])
    options["config"] = flags.get("config")
    options["dockerfile_template"] = flags.get("dockerfile")
    options["build_args"] = key_values(flags.get("build_arg"), "--build-arg")
    options["labels"] = key_values(flags.get("label"), "--label")
    options["nocache"] = bool(flags.get("no_cache"))
    if options["entrypoints"] and options["config"]:
        raise UsageError("give either ENTRYPOINT(s) or --config, not both")
    if not options["entrypoints"] and not options["config"]:
        raise UsageError("give an ENTRYPOINT (path/to/file.py:flow) or --config dockyard.yaml")
    return options


def run_build(flags: dict[str, Any]) -> int:
    """The ``dockyard build`` command; returns the exit code."""
    from dockyard.build import build_image, console_progress, render_dockerfile

    tag = flags.get("image") or ""
    options = build_arguments(flags)
    if flags.get("print_dockerfile"):
        print(render_dockerfile(tag or "image:latest", **options), end="")
        return 0
    if not tag:
        raise UsageError("--tag IMAGE:TAG is required (e.g. --tag acme/etl:1.0)")
    progress = console_progress(quiet=bool(flags.get("quiet")))
    built = build_image(tag, push=bool(flags.get("push")), progress=progress, **options)
    size = built.size_bytes / 1e6
    pushed = f"; pushed {built.digest}" if built.digest else ""
    print(
        f"built {built.tag} ({built.image_id[:19]}, {size:.0f} MB) serving "
        f"{', '.join(built.deployments)}{pushed}"
    )
    return 0
