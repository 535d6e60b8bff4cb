"""From ``dockyard serve`` flags to what the serve process runs: deployments and git sources.

``prepare`` validates everything before anything starts. Local code is loaded by a probe
subprocess, which returns the deployments as specs: the serve process never imports the
user's code. ``check_sources`` is ``--once`` / ``--check`` for git-sourced code: pull,
check the revision in a probe, and (``--once``) publish it, then exit 0 or 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.config import FileConfig, load_config
from dockyard.core.deployments import Deployment, check_unique
from dockyard.errors import DockyardError, UsageError
from dockyard.execution.environment import protect_process
from dockyard.execution.process import probe
from dockyard.execution.spec import EntrypointRequest, ProbeRequest, ProbeResult
from dockyard.settings import Settings, load_settings
from dockyard.sources.credentials import keep_token_envs
from dockyard.sources.locations import (
    checkout_root,
    repository_from_config,
    repository_from_settings,
    sources_dir,
)
from dockyard.sources.repository import GitRepository

if TYPE_CHECKING:
    # The service's modules (the store, SQLAlchemy, the webserver) are imported where
    # they are used, so that the probe can start before they are: see ``load_local``.
    from dockyard.service.code import SourcePlan
    from dockyard.service.logfmt import LogFormat

SINGLE_DEPLOYMENT_FLAGS = (
    "name", "cron", "interval", "rrule", "timezone", "params", "tags", "description",
    "version", "paused", "concurrency_limit", "overlap", "catchup",
)  # fmt: skip
_OPTION_FOR = {"params": "parameters"}


@dataclass
class Prepared:
    settings: Settings
    deployments: list[Deployment] = field(default_factory=list)
    plans: list[SourcePlan] = field(default_factory=list)


LOGGERS = ("dockyard", "uvicorn", "asyncio", "py.warnings")
"""The loggers of the serve process (the webserver's, asyncio's and Python's warnings
included), all written alike."""


def configure_logging(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """dockyard's log records and the runs' output lines go to stdout, one line each, in
    ``fmt`` (``service.logfmt``), next to each other (docker logs). Other libraries'
    records (warnings and above) too, unless the program serving logs them itself."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        _write_to_stdout(logger, fmt)
        logger.propagate = False
        logger.setLevel(level.upper())
    root = logging.getLogger()
    if not root.handlers or _our_handler(root) is not None:
        _write_to_stdout(root, fmt)
    logging.captureWarnings(True)  # a warning is a record too, not a bare line on stderr


def _write_to_stdout(logger: logging.Logger, fmt: LogFormat) -> None:
    from dockyard.service.logfmt import formatter

    handler = _our_handler(logger)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        handler._dockyard = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    handler.setFormatter(formatter(fmt))


def _our_handler(logger: logging.Logger) -> logging.Handler | None:
    return next((h for h in logger.handlers if getattr(h, "_dockyard", False)), None)


def prepare(flags: dict[str, Any], *, meanwhile: Callable[[], object] | None = None) -> Prepared:
    """Settings, deployments and git sources from the given flags (only those given).

    ``meanwhile`` runs in a thread while a probe loads local code (see ``load_local``).
    """
    settings = load_settings(flags)
    if settings.webserver is None:  # on by default for the CLI (off for Python's serve())
        flags = {**flags, "webserver": True}
        settings = load_settings(flags)
    if settings.config and settings.entrypoint:
        raise UsageError("give either an ENTRYPOINT or --config, not both")
    if settings.config:
        _refuse_single_flags(flags)
    if settings.source:
        return Prepared(settings, plans=[_plan_from_flags(settings)])
    if not settings.config:
        request = ProbeRequest(str(Path.cwd()), (_entrypoint_request(settings),))
        return Prepared(settings, load_local(request, settings, meanwhile=meanwhile))
    return _from_config_file(flags, meanwhile)


def load_local(
    request: ProbeRequest, settings: Settings, *, meanwhile: Callable[[], object] | None = None
) -> list[Deployment]:
    """The deployments of local code, as a probe subprocess loaded them.

    The probe is a second interpreter that imports dockyard and the user's code: while it
    does, ``meanwhile`` (``dockyard serve`` passes its ``import_service``) runs in a thread
    of this process, so that the two start-ups overlap instead of adding up.
    """
    protect_process()  # settings are read: no secret stays where user code could read it
    helper = None
    if meanwhile is not None:
        helper = threading.Thread(target=_quietly, args=(meanwhile,), name="dockyard-imports")
        helper.start()
    try:
        result = asyncio.run(_probe_once(request, settings))
    finally:
        if helper is not None:
            helper.join()
    if not result.ok:
        raise probe_error(result)
    from dockyard.service.code import deployments_of

    return deployments_of(result)


def _quietly(work: Callable[[], object]) -> None:
    # A failing import is left for the main thread, which imports the same module next
    # and reports the error the usual way.
    try:
        work()
    except Exception:
        pass


def probe_error(result: ProbeResult) -> DockyardError:
    """The probe's error as the same ``dockyard.errors`` class, message and exit code."""
    import dockyard.errors

    message = result.error or "the code did not load"
    kind = getattr(dockyard.errors, result.error_type or "", None)
    if (
        isinstance(kind, type)
        and issubclass(kind, DockyardError)
        and kind.exit_code == result.exit_code
    ):
        return kind(message)
    return UsageError(message) if result.exit_code == 2 else DockyardError(message)


async def _probe_once(request: ProbeRequest, settings: Settings) -> ProbeResult:
    with tempfile.TemporaryDirectory(prefix="dockyard-probe-") as work:
        return await probe(
            request, work_dir=Path(work), limit_seconds=settings.source_check_timeout
        )


def _entrypoint_request(settings: Settings) -> EntrypointRequest:
    if not settings.entrypoint:
        raise UsageError(
            "give an ENTRYPOINT (path/to/file.py:flow_function) or --config dockyard.yaml"
        )
    options = {
        _OPTION_FOR.get(flag, flag): getattr(settings, flag)
        for flag in SINGLE_DEPLOYMENT_FLAGS
        if flag != "name"
    }
    options = {k: v for k, v in options.items() if v not in (None, [], {})}
    return EntrypointRequest(settings.entrypoint, settings.name, options)


def _refuse_single_flags(flags: dict[str, Any]) -> None:
    single = [f for f in SINGLE_DEPLOYMENT_FLAGS if flags.get(f) not in (None, [], {})]
    if single:
        names = ", ".join("--" + f.replace("_", "-") for f in single)
        raise UsageError(
            f"{names} describe a single ENTRYPOINT; with --config set them in the file"
        )


def _plan_from_flags(settings: Settings) -> SourcePlan:
    from dockyard.service.code import SourcePlan

    repo = repository_from_settings(settings)
    root = checkout_root(sources_dir(settings), repo)
    if settings.config:  # the dockyard.yaml lives in the repository
        request = ProbeRequest("", config=settings.config, source_key=repo.name)
    elif not settings.entrypoint:
        raise UsageError("with --source give an ENTRYPOINT in the repository or --config FILE")
    else:
        entry = _entrypoint_request(settings)
        request = ProbeRequest("", (entry,), source_key=repo.name)
    return SourcePlan(repo, root, settings.source_pull_interval, request)


def _from_config_file(flags: dict[str, Any], meanwhile: Callable[[], object] | None) -> Prepared:
    settings = load_settings(flags)
    config = load_config(settings.config or "")
    settings = load_settings(flags, config.process_settings())
    config_path = Path(settings.config or ".").resolve()
    if config.source is not None:
        return Prepared(settings, plans=[_plan_from_config_source(config, config_path, settings)])
    request = ProbeRequest(str(config_path.parent), config=str(config_path))
    deployments = load_local(request, settings, meanwhile=meanwhile)
    check_unique(deployments)  # so that --check catches what serve would refuse
    return Prepared(settings, deployments)


def _plan_from_config_source(
    config: FileConfig, config_path: Path, settings: Settings
) -> SourcePlan:
    """A local dockyard.yaml whose ``source:`` names the repository of the entrypoints."""
    from dockyard.service.code import SourcePlan

    assert config.source is not None
    repo = repository_from_config(config.source)
    root = checkout_root(sources_dir(settings), repo)
    request = ProbeRequest("", config=str(config_path), config_base="root", source_key=repo.name)
    interval = config.source.pull_interval or settings.source_pull_interval
    return SourcePlan(repo, root, interval, request)


def protect_sources(plans: Sequence[SourcePlan]) -> None:
    """Hide dockyard's secrets, and the variables the sources take tokens from, from the
    processes this one starts (their values stay in this process's memory)."""
    protect_process(hide=keep_token_envs(p.repo.credentials for p in plans))


def plans_for_flows(deployments: Sequence[Deployment], pull_interval: float) -> list[SourcePlan]:
    """Deployments from ``Flow.from_source(git…)``, grouped by source."""
    from dockyard.service.code import SourcePlan

    by_key: dict[str, list[Deployment]] = {}
    for d in deployments:
        if d.source_key and isinstance(d.repository, GitRepository) and d.checkout_root:
            by_key.setdefault(d.source_key, []).append(d)
    plans = []
    for key, group in by_key.items():
        entries = tuple(EntrypointRequest(d.entrypoint, d.name, d.options) for d in group)
        request = ProbeRequest("", entries, source_key=key)
        repo = group[0].repository
        assert isinstance(repo, GitRepository)
        plans.append(SourcePlan(repo, Path(str(group[0].checkout_root)), pull_interval, request))
    return plans


def check_sources(prepared: Prepared, *, publish: bool, as_json: bool = False) -> int:
    """Pull each source once and check the revision; print one line each (``as_json``: one
    JSON document, ``{"ok": …, "sources": [...]}``); 0 if all good."""
    return asyncio.run(_check_sources(prepared, publish=publish, as_json=as_json))


async def _check_sources(prepared: Prepared, *, publish: bool, as_json: bool) -> int:
    protect_sources(prepared.plans)  # before the first git call or probe
    checked = []
    with tempfile.TemporaryDirectory(prefix="dockyard-check-") as work:
        for plan in prepared.plans:
            result = await _check_one(plan, prepared.settings, Path(work), publish=publish)
            checked.append(result)
            if not as_json:
                print(_check_line(result), flush=True)
    ok = all(c["ok"] for c in checked)
    if as_json:
        print(json.dumps({"ok": ok, "sources": checked}, indent=2), flush=True)
    return 0 if ok else 1


async def _check_one(
    plan: SourcePlan, settings: Settings, work: Path, *, publish: bool
) -> dict[str, Any]:
    """What checking one source found: ``url``, ``ok``, ``revision``, ``deployments`` (the
    specs the revision defines), ``published`` and ``error``."""
    from dockyard.sources.git import GitSource

    found: dict[str, Any] = {"url": plan.repo.safe_url, "ok": False, "revision": None,
                             "deployments": [], "published": False, "error": None}  # fmt: skip
    source = GitSource(plan.repo, plan.root)
    try:
        result = await asyncio.to_thread(source.sync)
    except DockyardError as exc:
        return {**found, "error": str(exc)}
    found["revision"] = result.sha
    request = plan.request.at(result.path, result.sha)
    outcome = await probe(request, work_dir=work, limit_seconds=settings.source_check_timeout)
    if not outcome.ok:
        return {**found, "error": f"revision {result.sha[:12]} of {plan.repo.safe_url} "
                f"refused: {outcome.error}"}  # fmt: skip
    if publish:
        await asyncio.to_thread(source.publish, result.sha)
    now = datetime.now(UTC)
    made = [check_entry(Deployment.from_spec(d), now) for d in outcome.deployments]
    return {**found, "ok": True, "deployments": made, "published": publish}


CHECK_UPCOMING = 3
"""How many next fire times ``serve --check`` shows per deployment."""


def check_entry(deployment: Deployment, now: datetime) -> dict[str, Any]:
    """A deployment as ``serve --check --json`` describes it: its stored spec, named as the
    API names it (``name`` flow/deployment, ``deployment``), with its next fire times."""
    from dockyard.core.schedules import upcoming

    spec = deployment.spec()
    times = upcoming(deployment.schedules, now, CHECK_UPCOMING)
    return {
        **spec,
        "name": deployment.full_name,
        "deployment": deployment.name,
        "next_runs": [t.astimezone(UTC).isoformat().replace("+00:00", "Z") for t in times],
    }


def _check_line(found: dict[str, Any]) -> str:
    if not found["ok"]:
        return f"dockyard: error: {found['error']}"
    names = ", ".join(d["name"] for d in found["deployments"]) or "-"
    return f"ok: revision {found['revision'][:12]} of {found['url']}: {names}"
