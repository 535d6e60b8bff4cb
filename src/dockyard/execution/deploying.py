"""Deployments from user code: load flows (this process imports them) and make deployments.

``dockyard serve`` never calls this itself: its probe subprocess does (``execution.probe``),
and so do ``dockyard build`` and ``flow.to_deployment`` in the user's own process.
"""

from __future__ import annotations

import base64
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.config import FileConfig, deployment_options, with_path
from dockyard.core.deployments import Deployment, FlowLocation, check_unique
from dockyard.core.flows import FlowDefinition
from dockyard.core.names import check_name
from dockyard.errors import DockyardError, UsageError
from dockyard.execution.loading import load_target


def deployment_from_flow(
    flow: FlowDefinition[..., Any], name: str | None = None, **options: Any
) -> Deployment:
    """``flow.to_deployment(name, **options)``: a deployment of an already imported flow."""
    return Deployment.from_flow(flow, locate(flow), name, **options)


def locate(flow: FlowDefinition[..., Any]) -> FlowLocation:
    """Where a run's child finds this flow again (and which git revision it came from)."""
    source, entrypoint = flow.source, flow.entrypoint
    revision = getattr(flow, "revision", None)
    source_key = getattr(source, "name", None) if revision else None
    checkout = getattr(flow, "checkout_path", None)
    if entrypoint and checkout:  # from a git source: the revision's directory
        return FlowLocation(str(checkout), str(entrypoint), None, source_key, revision)
    if entrypoint and source:
        return FlowLocation(str(source), str(entrypoint), None, source_key, revision)
    return _locate_by_code(flow)


def _locate_by_code(flow: FlowDefinition[..., Any]) -> FlowLocation:
    fn = flow.fn
    code = getattr(fn, "__code__", None)
    if code is None:
        raise UsageError(f"flow {flow.name!r} has no source file; define it in a .py file")
    path = Path(code.co_filename).resolve()
    if not path.is_file():
        raise UsageError(
            f"flow {flow.name!r} is defined in {code.co_filename!r}, which is not a file; "
            "define flows in a .py file to serve them"
        )
    instance = flow.bound_instance
    if instance is None:
        if "<locals>" in fn.__qualname__:
            raise UsageError(
                f"flow {flow.name!r} is defined inside a function; define it at module level"
            )
        return FlowLocation(str(path.parent), f"{path.name}:{_module_attr(flow, fn)}")
    try:
        blob = base64.b64encode(pickle.dumps(instance)).decode()
    except Exception as exc:
        raise UsageError(
            f"cannot serve {flow.name!r}: its instance of {type(instance).__name__} cannot be "
            f"pickled ({exc}); keep instance attributes to plain data"
        ) from exc
    entrypoint = f"{path.name}:{type(instance).__qualname__}.{fn.__name__}"
    return FlowLocation(str(path.parent), entrypoint, blob)


def _module_attr(flow: FlowDefinition[..., Any], fn: Any) -> str:
    """The module attribute that holds the flow (it may differ from the function name)."""
    module = sys.modules.get(fn.__module__)
    if module is not None:
        for attr, value in vars(module).items():
            if value is flow:
                return attr
    return str(fn.__qualname__)


def from_entrypoint(
    entrypoint: str,
    base_dir: Path,
    options: Mapping[str, Any],
    *,
    name: str | None = None,
    source_key: str | None = None,
    revision: str | None = None,
) -> Deployment:
    """One deployment of ``entrypoint`` under ``base_dir`` with deployment ``options``.

    Runs re-load the flow from ``base_dir``, so imports relative to the project root work.
    The entrypoint may also name a deployment the module makes itself
    (``hourly = etl.to_deployment("hourly", cron=CRON)``): deployments as code.
    """
    target = load_target(entrypoint, base_dir)
    if isinstance(target, Deployment):
        return _as_given(target, entrypoint, name, options, source_key, revision)
    location = FlowLocation(str(base_dir.resolve()), entrypoint, None, source_key, revision)
    return Deployment.from_flow(target, location, name, **dict(options))


def _as_given(
    deployment: Deployment,
    entrypoint: str,
    name: str | None,
    options: Mapping[str, Any],
    source_key: str | None,
    revision: str | None,
) -> Deployment:
    """A deployment the user's module made, stamped with the revision it came from."""
    given = sorted(k for k, v in options.items() if v not in (None, [], {}, ()))
    if given:
        raise UsageError(
            f"{entrypoint} is a deployment; set {', '.join(given)} where the code makes it"
        )
    version = deployment.options.get("version") or revision or deployment.version
    return deployment.with_options(
        name=check_name("deployment", name) if name else deployment.name,
        source_key=source_key,
        revision=revision,
        version=version,
    )


def from_config(
    config: FileConfig,
    config_path: Path,
    base_dir: Path | None = None,
    *,
    source_key: str | None = None,
    revision: str | None = None,
) -> list[Deployment]:
    """Every deployment of a dockyard.yaml; entrypoints are relative to the file
    (or to ``base_dir``: the checkout of the file's ``source:``)."""
    base_dir = base_dir or config_path.resolve().parent
    deployments = []
    for index, entry in enumerate(config.deployments):
        try:
            options = deployment_options(entry, index)
            deployments.append(
                from_entrypoint(
                    entry.entrypoint,
                    base_dir,
                    options,
                    name=entry.name,
                    source_key=source_key,
                    revision=revision,
                )  # fmt: skip
            )
        except DockyardError as exc:
            raise with_path(index, exc, config_path, config) from None
    check_unique(deployments)
    return deployments
