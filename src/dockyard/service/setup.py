"""From ``dockyard serve`` flags to what the serve process runs: deployments and git sources.

``prepare`` validates everything before anything starts. Local code is loaded by a probe
subprocess, which returns the deployments as specs: the serve process never imports the
user's code. ``check_sources`` is ``--once`` / ``--check`` for git-sourced code: pull,
check the revision in a probe, and (``--once``) publish it, then exit 0 or 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.config import FileConfig, load_config
from dockyard.core.deployments import Deployment, check_unique
from dockyard.errors import DockyardError, UsageError
from dockyard.execution.environment import protect_process
from dockyard.execution.process import probe
from dockyard.execution.spec import EntrypointRequest, ProbeRequest, ProbeResult
from dockyard.service.code import SourcePlan, deployments_of
from dockyard.settings import Settings, load_settings
from dockyard.sources.credentials import keep_token_envs
from dockyard.sources.locations import (
    checkout_root,
    repository_from_config,
    repository_from_settings,
    sources_dir,
)
from dockyard.sources.repository import GitRepository

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


def configure_logging(level: str = "INFO") -> None:
    """dockyard's own log lines go to stdout, next to the runs' output (docker logs)."""
    root = logging.getLogger("dockyard")
    if not any(getattr(h, "_dockyard", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s dockyard: %(message)s", "%H:%M:%S")
        )
        handler._dockyard = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level.upper())


def prepare(flags: dict[str, Any]) -> Prepared:
    """Settings, deployments and git sources from the given flags (only those given)."""
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
        return Prepared(settings, load_local(request, settings))
    return _from_config_file(flags)


def load_local(request: ProbeRequest, settings: Settings) -> list[Deployment]:
    """The deployments of local code, as a probe subprocess loaded them."""
    protect_process()  # settings are read: no secret stays where user code could read it
    result = asyncio.run(_probe_once(request, settings))
    if not result.ok:
        raise probe_error(result)
    return deployments_of(result)


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
    repo = repository_from_settings(settings)
    root = checkout_root(sources_dir(settings), repo)
    if settings.config:  # the dockyard.yaml lives in the repository
        request = ProbeRequest("", config=settings.config, source_key=repo.name)
    elif not settings.entrypoint:
        raise UsageError("with --source give an ENTRYPOINT in the repository or --config FILE")
    else:
        entry = _entrypoint_request(settings)
        request = ProbeRequest("", (entry,), source_key=repo.name)
    return SourcePlan(repo, root, settings.pull_interval, request)


def _from_config_file(flags: dict[str, Any]) -> Prepared:
    settings = load_settings(flags)
    config = load_config(settings.config or "")
    settings = load_settings(flags, config.process_settings())
    config_path = Path(settings.config or ".").resolve()
    if config.source is not None:
        return Prepared(settings, plans=[_plan_from_config_source(config, config_path, settings)])
    request = ProbeRequest(str(config_path.parent), config=str(config_path))
    deployments = load_local(request, settings)
    check_unique(deployments)  # so that --check catches what serve would refuse
    return Prepared(settings, deployments)


def _plan_from_config_source(
    config: FileConfig, config_path: Path, settings: Settings
) -> SourcePlan:
    """A local dockyard.yaml whose ``source:`` names the repository of the entrypoints."""
    assert config.source is not None
    repo = repository_from_config(config.source)
    root = checkout_root(sources_dir(settings), repo)
    request = ProbeRequest("", config=str(config_path), config_base="root", source_key=repo.name)
    interval = config.source.pull_interval or settings.pull_interval
    return SourcePlan(repo, root, interval, request)


def protect_sources(plans: Sequence[SourcePlan]) -> None:
    """Hide dockyard's secrets, and the variables the sources take tokens from, from the
    processes this one starts (their values stay in this process's memory)."""
    protect_process(hide=keep_token_envs(p.repo.credentials for p in plans))


def plans_for_flows(deployments: Sequence[Deployment], pull_interval: float) -> list[SourcePlan]:
    """Deployments from ``Flow.from_source(git…)``, grouped by source."""
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


def check_sources(prepared: Prepared, *, publish: bool) -> int:
    """Pull each source once and check the revision; print one line each; 0 if all good."""
    return asyncio.run(_check_sources(prepared, publish=publish))


async def _check_sources(prepared: Prepared, *, publish: bool) -> int:
    protect_sources(prepared.plans)  # before the first git call or probe
    failed = 0
    with tempfile.TemporaryDirectory(prefix="dockyard-check-") as work:
        for plan in prepared.plans:
            ok = await _check_one(plan, prepared.settings, Path(work), publish=publish)
            failed += 0 if ok else 1
    return 1 if failed else 0


async def _check_one(plan: SourcePlan, settings: Settings, work: Path, *, publish: bool) -> bool:
    from dockyard.sources.git import GitSource

    source = GitSource(plan.repo, plan.root)
    try:
        result = await asyncio.to_thread(source.sync)
    except DockyardError as exc:
        print(f"dockyard: error: {exc}", flush=True)
        return False
    request = plan.request.at(result.path, result.sha)
    outcome = await probe(request, work_dir=work, limit_seconds=settings.source_check_timeout)
    if not outcome.ok:
        print(f"dockyard: error: revision {result.sha[:12]} of {plan.repo.safe_url} "
              f"refused: {outcome.error}", flush=True)  # fmt: skip
        return False
    if publish:
        await asyncio.to_thread(source.publish, result.sha)
    names = ", ".join(outcome.names) or "-"
    print(f"ok: revision {result.sha[:12]} of {plan.repo.safe_url}: {names}", flush=True)
    return True
