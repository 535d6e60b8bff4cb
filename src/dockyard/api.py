"""The public face: ``Flow`` with Prefect's verbs, ``flow`` and ``serve``.

``from dockyard import flow, serve`` in place of ``from prefect import flow, serve``. A
``Flow`` is a ``core.flows.FlowDefinition`` plus what users call on it: calling it in this
process, ``to_deployment``, ``serve``, ``deploy`` and ``from_source``. Imports point down:
the orchestrator, docker and git are imported only by the verb that needs them, so a run's
child, which only needs ``flow``, starts fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack

from dockyard.core.flows import FlowDefinition
from dockyard.core.options import DeploymentOptions, check_option_names
from dockyard.core.outcomes import State
from dockyard.core.states import FlowRun
from dockyard.errors import DockyardError, UsageError
from dockyard.execution import inprocess
from dockyard.execution.loading import file_hash, source_file

if TYPE_CHECKING:  # a run's child imports this module: no schedules, store or server
    from dockyard.core.deployments import Deployment

P = ParamSpec("P")
R = TypeVar("R")


class Flow(FlowDefinition[P, R]):
    """A workflow (see ``FlowDefinition`` for the options).

    The version defaults to an md5 hash of the file defining ``fn`` (None without one).
    """

    def __init__(self, fn: Callable[P, R], *args: Any, **options: Any) -> None:
        if len(args) < 2 and options.get("version") is None:
            options["version"] = file_hash(fn)
        super().__init__(fn, *args, **options)

    @property
    def source_file(self) -> str | None:
        """Absolute path of the file that defines the function, if it has one."""
        return source_file(self.unbound_fn)

    # ── running in this process ────────────────────────────────────────────────────

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow here: validate, hooks, retries; return the result or raise.

        For an async flow this returns a coroutine doing the same. ``return_state=True``
        returns the final ``State`` instead of the result (and does not raise).
        """
        return_state = bool(kwargs.pop("return_state", False))
        flow_run = inprocess.new_run(self, inprocess.bind_arguments(self, args, kwargs))
        if self.isasync:
            return inprocess.run_async(self, flow_run, return_state)  # type: ignore[return-value]
        return inprocess.run_sync(self, flow_run, return_state)

    def call_fn(self, parameters: dict[str, Any]) -> Any:
        """Call the function once with (validated) parameters; run a coroutine to the end."""
        return inprocess.call_fn(self, parameters)

    def run_hooks(self, kind: str, flow_run: FlowRun, state: State) -> None:
        """Call each hook as ``hook(flow, flow_run, state)``; log, never raise, its errors."""
        inprocess.run_hooks(self, kind, flow_run, state)

    # ── serving ────────────────────────────────────────────────────────────────────

    def to_deployment(
        self, name: str | None = None, **options: Unpack[DeploymentOptions]
    ) -> Deployment:
        """A ``Deployment`` of this flow, to pass to ``serve``.

        ``options`` are keyword-only: ``interval``, ``cron``, ``rrule``, ``paused``,
        ``schedule`` (one schedule object: ``Cron("0 * * * *", parameters={...})``),
        ``schedules`` (a list of them), ``concurrency_limit``, ``parameters``,
        ``description``, ``tags``, ``version``, ``enforce_parameter_schema`` (default True)
        and the rest of ``DeploymentOptions``. Give at most one of ``interval``, ``cron``,
        ``rrule``, ``schedule`` and ``schedules``. A schedule's ``parameters`` go over
        ``parameters`` for the runs it creates; ``active=False`` keeps it from firing.
        """
        from dockyard.execution.deploying import deployment_from_flow

        deployment = deployment_from_flow(self, name, **options)
        repository = self.source if getattr(self, "revision", None) else None
        root = getattr(self, "checkout_root", None)
        return deployment.with_options(repository=repository, checkout_root=root)

    def serve(
        self,
        name: str | None = None,
        *,
        global_limit: int | None = None,
        pause_on_shutdown: bool = True,
        print_starting_message: bool = True,
        limit: int | None = None,
        webserver: bool = False,
        **options: Unpack[DeploymentOptions],
    ) -> None:
        """Serve this flow (blocks): schedules, ad-hoc runs, one subprocess per run.

        ``options`` are those of ``to_deployment`` (``interval=``, ``cron=``, ``schedule=``,
        ``schedules=``, ``tags=``, ...).
        ``global_limit`` caps this deployment's concurrent runs; ``limit`` caps the whole
        serve process (None = dockyard's finite default, 0 = no limit).
        """
        options["concurrency_limit"] = global_limit or options.get("concurrency_limit")
        deployment = self.to_deployment(name, **options)
        serve(
            deployment, limit=limit, pause_on_shutdown=pause_on_shutdown,
            webserver=webserver, print_starting_message=print_starting_message,
        )  # fmt: skip

    def deploy(
        self,
        name: str,
        *,
        image: str,
        build: bool = True,
        push: bool = False,
        **options: Any,
    ) -> Any:
        """Build (and optionally push) an image serving this flow as deployment ``name``.

        ``options`` are the deployment options of ``to_deployment`` (``interval=``,
        ``cron=``, ``parameters=``, ...) and the build options of
        ``dockyard.build.build_image`` (``base_image=``, ``project=``, ``requirements=``,
        ``offline=``, ``platform=``, ...). With ``build=False`` the image must exist and
        is only pushed (when ``push=True``). Returns ``dockyard.build.BuiltImage`` (or
        None when nothing was built).
        """
        from dockyard import build as _build

        build_opts = {k: options.pop(k) for k in list(options) if k in _build.BUILD_OPTIONS}
        if not build:
            if push:
                _build.push_image(image, progress=build_opts.get("progress"))
            return None
        deployment = self.to_deployment(name, **options)
        build_opts.setdefault("project", deployment.base_dir)
        return _build.build_image(image, deployments=[deployment], push=push, **build_opts)

    @classmethod
    def from_source(cls, source: Any, entrypoint: str) -> FlowDefinition[..., Any]:
        """Load a flow from ``source`` and an entrypoint ``path/file.py:flow``.

        ``source`` is a local directory, a git URL (https, ssh, file:// or a path to a
        repository), or a ``GitRepository``. Served git flows are pulled every
        ``DOCKYARD_SOURCE_PULL_INTERVAL`` seconds (60) and new runs use the new code.
        """
        if isinstance(source, (str, os.PathLike)) and not _looks_remote(str(source)):
            return _load_local(Path(source), entrypoint)
        return _load_remote(source, entrypoint)


def flow(__fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a ``Flow``: ``@flow``, ``@flow()`` or ``@flow(name=..., ...)``.

    Takes the keyword options of ``Flow`` (see its docstring); any other is a TypeError.
    """
    check_option_names("flow", options)
    if __fn is not None:
        return Flow(__fn, **options)
    return functools.partial(Flow, **options)


flow.from_source = Flow.from_source  # type: ignore[attr-defined]


def serve(
    *deployments: Deployment,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    webserver: bool = False,
    print_starting_message: bool = True,
    **kwargs: Any,
) -> None:
    """Serve several deployments in this process, each scheduled independently.

    Args:
        deployments: made with ``flow.to_deployment(...)``.
        limit: concurrent runs of this process; None uses the default (5), 0 means none.
        pause_on_shutdown: pause the schedules while the process is stopped (default),
            so slots that fall due meanwhile are skipped; False for restart-prone places.
        webserver: start the health/metrics/API webserver (also DOCKYARD_WEBSERVER=true).
        print_starting_message: print what is served at start.

    Blocks until SIGTERM/SIGINT, then drains and returns (exits non-zero on errors).
    """
    from dockyard.service.lifecycle import run_service
    from dockyard.service.setup import plans_for_flows
    from dockyard.settings import Settings, load_settings

    flags: dict[str, Any] = {"limit": limit, "webserver": webserver or None}
    if not pause_on_shutdown:
        flags["pause_on_shutdown"] = False
    flags.update({k: v for k, v in kwargs.items() if k in Settings.model_fields})
    try:
        settings = load_settings(flags)
        plans = plans_for_flows(list(deployments), settings.source_pull_interval)
        code = run_service(
            list(deployments), settings, print_starting_message=print_starting_message,
            sources=plans,
        )  # fmt: skip
    except DockyardError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        sys.exit(exc.exit_code)
    if code:
        sys.exit(code)


# ── from_source ────────────────────────────────────────────────────────────────────


def _looks_remote(source: str) -> bool:
    return "://" in source or source.startswith("git@") or source.endswith(".git")


def _load_local(directory: Path, entrypoint: str) -> FlowDefinition[..., Any]:
    from dockyard.execution.loading import load_flow

    if not directory.is_dir():
        raise UsageError(f"source directory {str(directory)!r} not found")
    loaded = load_flow(entrypoint, base_dir=directory)
    loaded.source, loaded.entrypoint = str(directory.resolve()), entrypoint
    return loaded


def _load_remote(source: Any, entrypoint: str) -> FlowDefinition[..., Any]:
    """``Flow.from_source(git…)``: fetch now, load the flow from the checkout."""
    from dockyard.execution.loading import load_flow
    from dockyard.settings import load_settings
    from dockyard.sources import GitRepository, GitSource
    from dockyard.sources.locations import checkout_root, sources_dir

    repo = source if isinstance(source, GitRepository) else GitRepository(str(source))
    root = checkout_root(sources_dir(load_settings({})), repo)
    git = GitSource(repo, root)
    result = git.sync()
    loaded = load_flow(entrypoint, result.path)
    git.publish(result.sha)
    loaded.source, loaded.entrypoint = repo, entrypoint
    attributes = {"checkout_path": str(result.path), "checkout_root": str(root)}
    loaded.__dict__.update(attributes, revision=result.sha)
    return loaded
