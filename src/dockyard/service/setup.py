"""From ``dockyard serve`` flags to what the serve process runs: deployments and sources.

``prepare`` validates everything before anything starts. ``check_sources`` is
``--once`` / ``--check`` for git-sourced code: pull, check the revision in a probe
subprocess, and (``--once``) publish it, then exit 0 or 1.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError, UsageError
from dockyard.service.sourcing import SourcePlan

SINGLE_DEPLOYMENT_FLAGS = (
    "name", "cron", "interval", "rrule", "timezone", "params", "tags", "description",
    "version", "paused", "concurrency_limit", "overlap", "catchup",
)  # fmt: skip


@dataclass
class Prepared:
    settings: Any
    deployments: list[Any] = field(default_factory=list)
    plans: list[SourcePlan] = field(default_factory=list)


def prepare(flags: dict[str, Any]) -> Prepared:
    from dockyard.execution import loader
    from dockyard.settings import load_settings

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
        return Prepared(settings, loader.from_settings(settings))
    return _from_config_file(flags)


def _refuse_single_flags(flags: dict[str, Any]) -> None:
    single = [f for f in SINGLE_DEPLOYMENT_FLAGS if flags.get(f) not in (None, [], {})]
    if single:
        names = ", ".join("--" + f.replace("_", "-") for f in single)
        raise UsageError(
            f"{names} describe a single ENTRYPOINT; with --config set them in the file"
        )


def _plan_from_flags(settings: Any) -> SourcePlan:
    from dockyard.service.sourcing import (
        checkout_root,
        plan_for_config,
        plan_for_entrypoint,
        repository_from_settings,
        sources_dir,
    )

    repo = repository_from_settings(settings)
    root = checkout_root(sources_dir(settings), repo)
    if settings.config:  # the dockyard.yaml lives in the repository
        return plan_for_config(settings, repo, root, settings.config)
    if not settings.entrypoint:
        raise UsageError("with --source give an ENTRYPOINT in the repository or --config FILE")
    return plan_for_entrypoint(settings, repo, root)


def _from_config_file(flags: dict[str, Any]) -> Prepared:
    from dockyard.config import load_config
    from dockyard.execution import loader
    from dockyard.service.serving import check_unique
    from dockyard.settings import load_settings

    settings = load_settings(flags)
    config = load_config(settings.config)
    settings = load_settings(flags, config.process_settings())
    config_path = Path(settings.config or ".")
    if config.source is not None:
        return Prepared(settings, plans=[_plan_from_config_source(config, config_path, settings)])
    deployments = loader.from_config(config, config_path)
    check_unique(deployments)  # so that --check catches what serve would refuse
    return Prepared(settings, deployments)


def _plan_from_config_source(config: Any, config_path: Path, settings: Any) -> SourcePlan:
    """A local dockyard.yaml whose ``source:`` names the repository of the entrypoints."""
    from dockyard.execution import loader
    from dockyard.service.sourcing import checkout_root, sources_dir, stamp

    repo = config.source.repository()
    root = checkout_root(sources_dir(settings), repo)

    def build(path: Path, sha: str) -> list[Any]:
        made = loader.from_config(config, config_path, base_dir=path)
        return stamp(made, repo.name, sha)

    interval = config.source.pull_interval or settings.pull_interval
    spec = {"entrypoints": sorted({d.entrypoint for d in config.deployments})}
    return SourcePlan(repo, root, interval, spec, build)


def check_sources(prepared: Prepared, *, publish: bool) -> int:
    """Pull each source once and check the revision; print one line each; 0 if all good."""
    return asyncio.run(_check_sources(prepared, publish=publish))


async def _check_sources(prepared: Prepared, *, publish: bool) -> int:
    from dockyard.execution.process import probe
    from dockyard.sources import GitSource

    failed = 0
    with tempfile.TemporaryDirectory(prefix="dockyard-check-") as work:
        for plan in prepared.plans:
            source = GitSource(plan.repo, plan.root)
            try:
                result = await asyncio.to_thread(source.sync)
            except DockyardError as exc:
                print(f"dockyard: error: {exc}", flush=True)
                failed += 1
                continue
            limit = prepared.settings.source_check_timeout
            spec = {"path": str(result.path), **plan.probe_spec}
            outcome = await probe(spec, work_dir=Path(work), limit_seconds=limit)
            if not outcome.ok:
                print(f"dockyard: error: revision {result.sha[:12]} of {plan.repo.safe_url} "
                      f"refused: {outcome.error}", flush=True)  # fmt: skip
                failed += 1
                continue
            if publish:
                await asyncio.to_thread(source.publish, result.sha)
            names = ", ".join(outcome.deployments) or "-"
            print(f"ok: revision {result.sha[:12]} of {plan.repo.safe_url}: {names}", flush=True)
    return 1 if failed else 0
