"""``dockyard build`` flags → ``build_image`` arguments, and the summary it prints."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from dockyard.errors import UsageError

if TYPE_CHECKING:
    from dockyard.build import BuiltImage

_DEPLOYMENT_FLAGS = {
    "name": "name",
    "cron": "cron",
    "interval": "interval",
    "rrule": "rrule",
    "timezone": "timezone",
    "param": "parameters",
    "tag": "tags",
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


def deployment_tags(flags: dict[str, Any]) -> list[str]:
    """The ``--tag`` values (deployment tags), with the deprecated ``--flow-tag``'s.

    ``--tag`` named the image before it meant deployment tags, as in ``serve``: a value
    that looks like an image (``acme/etl``, ``etl:1.0``) without ``-t/--image`` is refused.
    """
    from dockyard.settings import take_renamed

    tags = {"tag": list(flags.get("tag") or [])}
    take_renamed(tags, "tag", "--flow-tag", "--tag", list(flags.get("flow_tag") or []))
    image_like = [t for t in tags["tag"] if "/" in t or ":" in t]
    if image_like and not flags.get("image"):
        raise UsageError(
            f"--tag {image_like[0]!r} looks like an image name: --tag is now a deployment "
            f"tag (as in serve); name the image with -t/--image, e.g. -t {image_like[0]}"
        )
    return tags["tag"]


def build_arguments(flags: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``build_image`` from the command's flags (only those given)."""
    from dockyard.core.parameters import parse_param_args

    flags = {**flags, "tag": deployment_tags(flags)}
    options: dict[str, Any] = {k: flags[k] for k in _PASS_THROUGH if flags.get(k) is not None}
    deployment = {
        target: flags[flag].value if isinstance(flags[flag], StrEnum) else flags[flag]
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
        raise UsageError("-t/--image IMAGE:TAG is required (e.g. -t acme/etl:1.0)")
    progress = console_progress(quiet=bool(flags.get("quiet")))
    built = build_image(tag, push=bool(flags.get("push")), progress=progress, **options)
    if flags.get("json"):
        print(json.dumps(built_json(built), indent=2))
        return 0
    size = built.size_bytes / 1e6
    pushed = f"; pushed {built.digest}" if built.digest else ""
    print(
        f"built {built.tag} ({built.image_id[:19]}, {size:.0f} MB) serving "
        f"{', '.join(built.deployments)}{pushed}"
    )
    return 0


def built_json(built: BuiltImage) -> dict[str, Any]:
    """``build --json``: the one document on stdout (progress went to stderr)."""
    return {
        "image": built.tag,
        "image_id": built.image_id,
        "size_bytes": built.size_bytes,
        "deployments": list(built.deployments),
        "pushed": built.digest is not None,
        "digest": built.digest or None,
        "labels": dict(built.labels),
    }
