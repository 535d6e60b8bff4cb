"""Deployments whose code comes from git: how to (re)build them from a revision.

A ``SourcePlan`` ties one git source to the deployments made from it: a probe spec
(what a new revision must load) and a ``build`` function that makes the deployments
from a checked-out revision. The serve service runs one ``SourceManager`` per plan and
swaps the plan's deployments when a new revision is published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dockyard.core.deployments import Deployment

Build = Callable[[Path, str], list[Deployment]]


@dataclass(frozen=True)
class SourcePlan:
    """One git source and the deployments made from it."""

    repo: Any  # dockyard.sources.git.GitRepository
    root: Path
    pull_interval: float
    probe_spec: dict[str, Any]
    build: Build

    @property
    def key(self) -> str:
        return str(self.repo.name)


def checkout_root(base: Path, repo: Any) -> Path:
    """Where a source's checkouts live: one directory per URL and ref."""
    digest = hashlib.sha256(f"{repo.safe_url}#{repo.ref}".encode()).hexdigest()[:12]
    return base / f"{repo.name.replace('/', '_')}-{digest}"


def stamp(deployments: Sequence[Deployment], key: str, sha: str) -> list[Deployment]:
    """Mark deployments as made from revision ``sha`` of source ``key``."""
    out = []
    for d in deployments:
        version = d.options.get("version") or sha
        out.append(replace(d, source_key=key, revision=sha, version=version))
    return out


def plan_for_entrypoint(settings: Any, repo: Any, root: Path) -> SourcePlan:
    """``dockyard serve ENTRYPOINT --source URL``: the entrypoint is in the repository."""
    from dockyard.execution import loader

    def build(path: Path, sha: str) -> list[Deployment]:
        return stamp(loader.from_settings(settings, base_dir=path), repo.name, sha)

    return SourcePlan(
        repo, root, settings.pull_interval, {"entrypoints": [settings.entrypoint]}, build
    )


def plan_for_config(settings: Any, repo: Any, root: Path, config: str) -> SourcePlan:
    """``dockyard serve --source URL --config dockyard.yaml``: the file is in the repository.

    A pull that changes the file reconciles the deployments without a restart.
    """
    from dockyard.config import load_config
    from dockyard.execution import loader

    def build(path: Path, sha: str) -> list[Deployment]:
        config_path = path / config
        deployments = loader.from_config(load_config(config_path), config_path)
        return stamp(deployments, repo.name, sha)

    return SourcePlan(repo, root, settings.pull_interval, {"config": config}, build)


def plan_for_flows(deployments: Sequence[Deployment], pull_interval: float) -> list[SourcePlan]:
    """Deployments from ``Flow.from_source(git…)``, grouped by source."""
    from dockyard.execution.loading import load_flow

    plans: dict[str, SourcePlan] = {}
    by_key: dict[str, list[Deployment]] = {}
    for d in deployments:
        if d.source_key and d.flow is not None:
            by_key.setdefault(d.source_key, []).append(d)
    for key, group in by_key.items():
        flow = group[0].flow
        repo, root = flow.source, Path(flow.checkout_root)  # type: ignore[union-attr]

        def build(
            path: Path, sha: str, group: list[Deployment] = group, key: str = key
        ) -> list[Deployment]:
            made = []
            for d in group:
                new_flow = load_flow(d.entrypoint, path)
                new_flow.source, new_flow.entrypoint = d.flow.source, d.entrypoint  # type: ignore[union-attr]
                new_flow.checkout_path, new_flow.revision = str(path), sha
                made.append(Deployment.from_flow(new_flow, name=d.name, **dict(d.options)))
            return stamp(made, key, sha)

        spec = {"entrypoints": sorted({d.entrypoint for d in group})}
        plans[key] = SourcePlan(repo, root, pull_interval, spec, build)
    return list(plans.values())


def repository_from_settings(settings: Any) -> Any:
    """The ``GitRepository`` that ``--source`` and the DOCKYARD_SOURCE_* settings describe."""
    from dockyard.sources import GitCredentials, GitRepository

    token = settings.source_token.get_secret_value() if settings.source_token else None
    credentials = GitCredentials(
        username=settings.source_username,
        token=token,
        token_file=settings.source_token_file,
        ssh_key_file=settings.source_ssh_key_file,
        known_hosts_file=settings.source_known_hosts_file,
    )
    return GitRepository(
        settings.source,
        branch=settings.branch,
        tag=settings.tag,
        commit_sha=settings.commit,
        credentials=credentials,
        include_submodules=settings.source_submodules,
    )


def sources_dir(settings: Any) -> Path:
    """Checkouts live next to the state database unless DOCKYARD_SOURCE_DIR says where."""
    from dockyard.settings import state_path

    if settings.source_dir:
        return Path(settings.source_dir).expanduser()
    return state_path(settings).parent / "sources"


def load_remote_flow(source: Any, entrypoint: str) -> Any:
    """``Flow.from_source(git…)``: fetch now, load the flow from the checkout."""
    from dockyard.execution.loading import load_flow
    from dockyard.settings import load_settings
    from dockyard.sources import GitRepository, GitSource

    repo = source if isinstance(source, GitRepository) else GitRepository(str(source))
    root = checkout_root(sources_dir(load_settings({})), repo)
    git = GitSource(repo, root)
    result = git.sync()
    flow = load_flow(entrypoint, result.path)
    git.publish(result.sha)
    flow.source, flow.entrypoint = repo, entrypoint
    flow.checkout_path, flow.checkout_root, flow.revision = str(result.path), str(root), result.sha
    return flow
