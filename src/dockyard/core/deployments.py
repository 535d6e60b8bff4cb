"""Deployments: a flow plus when and how to run it (pure; no clock, no I/O)."""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dockyard.core.schedules import Schedule, make_schedules
from dockyard.errors import UsageError

if TYPE_CHECKING:
    from dockyard.core.flows import Flow

_FORBIDDEN = set("/%?#\\")


class OverlapPolicy(StrEnum):
    """What to do when a slot comes due while an earlier run of the deployment is active."""

    ALLOW = "allow"
    """Start the new run as well."""
    SKIP = "skip"
    """Skip the new slot (counted as missed, reason overlap)."""
    CANCEL_PREVIOUS = "cancel-previous"
    """Cancel the active runs, then start the new one."""


class CatchupPolicy(StrEnum):
    """What to do with slots that fell due while the process was down."""

    LATEST = "latest"
    """Run the most recent missed slot once, if it is younger than the catch-up window."""
    NONE = "none"
    """Run none of them."""
    ALL = "all"
    """Run every missed slot inside the window, at most ``catchup_max`` (the newest)."""


DEFAULT_CATCHUP_WINDOW_SECONDS = 3600.0
DEFAULT_CATCHUP_MAX = 10


def check_name(kind: str, name: str) -> str:
    """Refuse names that cannot be one segment of a URL path (``flow/deployment``)."""
    bad = sorted(c for c in set(name) if c in _FORBIDDEN or ord(c) < 32)
    if not name or name != name.strip() or bad:
        what = f"contains {' '.join(repr(c) for c in bad)}" if bad else "is empty or padded"
        raise UsageError(
            f"{kind} name {name!r} is not allowed: it {what}; use letters, digits, '-', '_' or '.'"
        )
    return name


@dataclass(frozen=True)
class Deployment:
    """A flow served under a name, with schedules, default parameters and policies.

    Made by ``flow.to_deployment(...)`` or from a ``dockyard.yaml`` entry; served by
    ``dockyard.serve(*deployments)``. Its full name is ``flow-name/deployment-name``.
    """

    name: str
    flow_name: str
    entrypoint: str
    """``path/to/file.py:attr`` relative to ``base_dir`` (or absolute)."""
    base_dir: str
    schedules: tuple[Schedule, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str | None = None
    version: str | None = None
    paused: bool | None = None
    """True starts paused; False/None leave a person's pause alone."""
    concurrency_limit: int | None = None
    overlap: OverlapPolicy = OverlapPolicy.ALLOW
    catchup: CatchupPolicy = CatchupPolicy.LATEST
    catchup_window_seconds: float = DEFAULT_CATCHUP_WINDOW_SECONDS
    catchup_max: int = DEFAULT_CATCHUP_MAX
    enforce_parameter_schema: bool = True
    retries: int = 0
    retry_delay_seconds: float | Sequence[float] = 0.0
    timeout_seconds: float | None = None
    bound_instance: str | None = None
    """Base64 pickle of the instance of an instance-method flow (loaded as ``__main__``)."""
    parameter_schema: Mapping[str, Any] = field(default_factory=dict)
    source_key: str | None = None
    """Name of the git source the code comes from (None: a local directory)."""
    revision: str | None = None
    """The git commit ``base_dir`` holds, for git-sourced code."""
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The options it was made with, to make it again from a newer revision."""
    flow: Flow | None = field(default=None, compare=False, repr=False)

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"

    def spec(self) -> dict[str, Any]:
        """What the state store keeps about the deployment (JSON-able)."""
        from dockyard.core.parameters import jsonable

        return {
            "entrypoint": self.entrypoint,
            "base_dir": self.base_dir,
            "schedules": [s.to_dict() for s in self.schedules],
            "parameters": jsonable(dict(self.parameters)),
            "tags": list(self.tags),
            "description": self.description,
            "version": self.version,
            "concurrency_limit": self.concurrency_limit,
            "overlap": self.overlap.value,
            "catchup": self.catchup.value,
            "catchup_window_seconds": self.catchup_window_seconds,
            "retries": self.retries,
            "timeout_seconds": self.timeout_seconds,
            "parameter_schema": dict(self.parameter_schema),
        }

    def with_options(self, **changes: Any) -> Deployment:
        return replace(self, **changes)

    @classmethod
    def from_flow(cls, flow: Flow, name: str | None = None, **options: Any) -> Deployment:
        """Build a deployment from an in-memory flow (``flow.to_deployment``)."""
        return _from_flow(flow, name, options)


def _flow_location(flow: Flow) -> tuple[str, str, str | None]:
    """Where a child process finds this flow again: (base_dir, entrypoint, instance)."""
    entrypoint = getattr(flow, "entrypoint", None)
    source = getattr(flow, "source", None)
    checkout = getattr(flow, "checkout_path", None)
    if entrypoint and checkout:  # from a git source: the revision's directory
        return str(checkout), str(entrypoint), None
    if entrypoint and source:
        return str(source), str(entrypoint), None
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
    instance = getattr(flow, "bound_instance", None)
    if instance is None:
        if "<locals>" in fn.__qualname__:
            raise UsageError(
                f"flow {flow.name!r} is defined inside a function; define it at module level"
            )
        return str(path.parent), f"{path.name}:{_module_attr(flow, fn)}", None
    try:
        blob = base64.b64encode(pickle.dumps(instance)).decode()
    except Exception as exc:
        raise UsageError(
            f"cannot serve {flow.name!r}: its instance of {type(instance).__name__} cannot be "
            f"pickled ({exc}); keep instance attributes to plain data"
        ) from exc
    return str(path.parent), f"{path.name}:{type(instance).__qualname__}.{fn.__name__}", blob


def _module_attr(flow: Flow, fn: Any) -> str:
    """The module attribute that holds the flow (it may differ from the function name)."""
    import sys

    module = sys.modules.get(fn.__module__)
    if module is not None:
        for attr, value in vars(module).items():
            if value is flow:
                return attr
    return str(fn.__qualname__)


def _from_flow(flow: Flow, name: str | None, options: dict[str, Any]) -> Deployment:
    opts = dict(options)
    given = {k: v for k, v in options.items() if v is not None}
    schedules = make_schedules(
        interval=opts.pop("interval", None),
        cron=opts.pop("cron", None),
        rrule=opts.pop("rrule", None),
        schedules=opts.pop("schedules", None),
        timezone=opts.pop("timezone", None),
        anchor_date=opts.pop("anchor_date", None),
    )
    base_dir, entrypoint, instance = _flow_location(flow)
    parameters = dict(opts.pop("parameters", None) or {})
    enforce = bool(opts.pop("enforce_parameter_schema", True))
    if enforce and parameters:
        parameters = _check_defaults(flow, parameters)
    concurrency = opts.pop("concurrency_limit", None)
    concurrency = opts.pop("global_limit", None) or concurrency
    deployment = Deployment(
        name=check_name("deployment", name or flow.name),
        flow_name=flow.name,
        entrypoint=entrypoint,
        base_dir=base_dir,
        schedules=tuple(schedules),
        parameters=parameters,
        tags=tuple(opts.pop("tags", None) or ()),
        description=opts.pop("description", None) or flow.description,
        # Git-sourced code: the commit SHA unless a version is given for the deployment.
        version=opts.pop("version", None) or getattr(flow, "revision", None) or flow.version,
        paused=opts.pop("paused", None),
        concurrency_limit=_positive_or_none("concurrency_limit", concurrency),
        overlap=policy(OverlapPolicy, "overlap", opts.pop("overlap", None) or "allow"),
        catchup=policy(CatchupPolicy, "catchup", opts.pop("catchup", None) or "latest"),
        catchup_window_seconds=float(
            opts.pop("catchup_window", None) or DEFAULT_CATCHUP_WINDOW_SECONDS
        ),
        catchup_max=int(opts.pop("catchup_max", None) or DEFAULT_CATCHUP_MAX),
        enforce_parameter_schema=enforce,
        retries=int(flow.retries or 0),
        retry_delay_seconds=flow.retry_delay_seconds or 0.0,
        timeout_seconds=flow.timeout_seconds,
        bound_instance=instance,
        parameter_schema=flow.parameters,
        source_key=getattr(getattr(flow, "source", None), "name", None),
        revision=getattr(flow, "revision", None),
        options=given,
        flow=flow,
    )
    _ignore_prefect_only(opts)
    return deployment


# Options of Prefect's to_deployment/serve that need a Prefect server; accepted and ignored.
_PREFECT_ONLY = {
    "triggers",
    "work_pool_name",
    "work_queue_name",
    "job_variables",
    "entrypoint_type",
    "print_next_steps",
    "ignore_warnings",
    "_sla",
}


def _ignore_prefect_only(opts: Mapping[str, Any]) -> None:
    unknown = sorted(set(opts) - _PREFECT_ONLY)
    if unknown:
        raise UsageError(f"unknown deployment option(s): {', '.join(unknown)}")


def _check_defaults(flow: Flow, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce default parameters ("5" → 5); required ones may still come per run."""
    from dockyard.core.parameters import jsonable
    from dockyard.errors import ParameterError

    try:
        validated = flow.validate_parameters(parameters)
    except ParameterError as exc:
        wrong = [e for e in exc.errors if e.get("type") != "missing"]
        if not wrong:
            return dict(parameters)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in wrong)
        raise ParameterError(f"default parameters of flow {flow.name!r}: {detail}", wrong) from None
    return {k: jsonable(validated[k]) if k in validated else v for k, v in parameters.items()}


def _positive_or_none(field_name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{field_name}: expected a whole number, got {value!r}") from None
    if number < 1:
        raise UsageError(f"{field_name}: must be at least 1 (got {number})")
    return number


E = TypeVar("E", bound=StrEnum)


def policy(enum: type[E], field_name: str, value: Any) -> E:
    """Parse a policy name, with an error listing the valid ones."""
    try:
        return enum(str(value).lower())
    except ValueError:
        valid = ", ".join(e.value for e in enum)
        raise UsageError(f"{field_name}: {value!r} is not one of {valid}") from None


def full_names(deployments: Iterable[Deployment]) -> list[str]:
    return [d.full_name for d in deployments]
