"""Deployments: a flow plus when and how to run it, as plain data (pure; no clock, no I/O).

A ``Deployment`` never holds the flow object: the serve process works from deployments
alone, and only a run's child or a probe subprocess imports the user's code. ``to_spec`` /
``from_spec`` turn one into JSON and back, which is how a probe hands deployments over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from dockyard.core.flows import FlowDefinition
from dockyard.core.names import check_name
from dockyard.core.parameters import jsonable
from dockyard.core.policies import (
    DEFAULT_CATCHUP_MAX,
    DEFAULT_CATCHUP_WINDOW_SECONDS,
    CatchupPolicy,
    OverlapPolicy,
    ShutdownPolicy,
    Trigger,
    check_catchup,
    policy,
    retry_delay,
)
from dockyard.core.records import NewRun
from dockyard.core.schedules import Schedule, check_slugs, make_schedules, schedule_from_dict
from dockyard.core.states import RunState
from dockyard.errors import ParameterError, UsageError

__all__ = [
    "DEFAULT_CATCHUP_MAX",
    "DEFAULT_CATCHUP_WINDOW_SECONDS",
    "CatchupPolicy",
    "Deployment",
    "FlowLocation",
    "OverlapPolicy",
    "check_name",
    "check_unique",
    "full_names",
    "policy",
]

_SCHEDULE_OPTIONS = (
    "interval", "cron", "rrule", "schedule", "schedules", "timezone", "anchor_date",
)  # fmt: skip


@dataclass(frozen=True)
class FlowLocation:
    """Where a run's child finds a flow again, and which code revision it is."""

    base_dir: str
    entrypoint: str
    """``path/to/file.py:attr`` relative to ``base_dir``."""
    bound_instance: str | None = None
    """Base64 pickle of the instance of an instance-method flow (loaded as ``__main__``)."""
    source_key: str | None = None
    revision: str | None = None


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
    on_shutdown: ShutdownPolicy = ShutdownPolicy.CANCEL
    """What a replica that stops does with its runs still going after the grace period."""
    catchup: CatchupPolicy = CatchupPolicy.LATEST
    catchup_window_seconds: float = DEFAULT_CATCHUP_WINDOW_SECONDS
    catchup_max: int = DEFAULT_CATCHUP_MAX
    enforce_parameter_schema: bool = True
    validate_parameters: bool = True
    """The flow's ``validate_parameters``: False checks only parameter names."""
    retries: int = 0
    retry_delay_seconds: float | Sequence[float] = 0.0
    timeout_seconds: float | None = None
    bound_instance: str | None = None
    """Base64 pickle of the instance of an instance-method flow (loaded as ``__main__``)."""
    parameter_schema: Mapping[str, Any] = field(default_factory=dict)
    crashed_hooks: bool = False
    """Whether the flow has ``on_crashed`` hooks (run in a fresh subprocess after a crash)."""
    source_key: str | None = None
    """Name of the git source the code comes from (None: a local directory)."""
    revision: str | None = None
    """The git commit ``base_dir`` holds, for git-sourced code."""
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The options it was made with (JSON-able), to make it again from a newer revision."""
    repository: object | None = field(default=None, compare=False, repr=False)
    """The ``GitRepository`` of ``Flow.from_source`` code (None otherwise)."""
    checkout_root: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_catchup(self.catchup_window_seconds, self.catchup_max)
        check_slugs(self.schedules)

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"

    def retry_delay(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1 = the first retry)."""
        return retry_delay(self.retry_delay_seconds, attempt)

    def new_run(
        self,
        parameters: Mapping[str, Any],
        at: datetime,
        trigger: Trigger,
        state: RunState = RunState.PENDING,
        *,
        slot_variant: str | None = None,
    ) -> NewRun:
        """A run of this deployment, with its tags (its name is rendered by the run's child,
        as in Prefect)."""
        return NewRun(
            deployment=self.full_name,
            flow_name=self.flow_name,
            parameters=dict(parameters),
            scheduled_at=at,
            trigger=trigger,
            retries=self.retries,
            retry_delay_seconds=self.retry_delay(1),
            slot_variant=slot_variant,
            state=state,
            tags=tuple(self.tags),
        )

    def slot_parameters(self, schedule_parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of a run a schedule creates: the schedule's over the deployment's."""
        return {**self.parameters, **schedule_parameters}

    def spec(self) -> dict[str, Any]:
        """What the state store keeps about the deployment (JSON-able)."""
        stored = self.to_spec()
        del stored["bound_instance"], stored["options"]
        return stored

    def to_spec(self) -> dict[str, Any]:
        """Everything about the deployment as JSON-able data (``from_spec`` reverses it)."""
        delay = self.retry_delay_seconds
        return {
            "name": self.name,
            "flow_name": self.flow_name,
            "entrypoint": self.entrypoint,
            "base_dir": self.base_dir,
            "schedules": [s.to_dict() for s in self.schedules],
            "parameters": jsonable(dict(self.parameters)),
            "tags": list(self.tags),
            "description": self.description,
            "version": self.version,
            "paused": self.paused,
            "concurrency_limit": self.concurrency_limit,
            "overlap": self.overlap.value,
            "on_shutdown": self.on_shutdown.value,
            "catchup": self.catchup.value,
            "catchup_window_seconds": self.catchup_window_seconds,
            "catchup_max": self.catchup_max,
            "enforce_parameter_schema": self.enforce_parameter_schema,
            "validate_parameters": self.validate_parameters,
            "retries": self.retries,
            "retry_delay_seconds": list(delay) if isinstance(delay, (list, tuple)) else delay,
            "timeout_seconds": self.timeout_seconds,
            "bound_instance": self.bound_instance,
            "parameter_schema": dict(self.parameter_schema),
            "crashed_hooks": self.crashed_hooks,
            "source_key": self.source_key,
            "revision": self.revision,
            "options": dict(self.options),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Deployment:
        """The deployment ``to_spec`` described."""
        data = dict(spec)
        schedules = tuple(
            schedule_from_dict(s, path=f"schedules[{i}]")
            for i, s in enumerate(data.pop("schedules", []))
        )
        delay = data.pop("retry_delay_seconds", 0.0)
        return cls(
            schedules=schedules,
            tags=tuple(data.pop("tags", ())),
            overlap=OverlapPolicy(data.pop("overlap", "allow")),
            on_shutdown=ShutdownPolicy(data.pop("on_shutdown", "cancel")),
            catchup=CatchupPolicy(data.pop("catchup", "latest")),
            retry_delay_seconds=list(delay) if isinstance(delay, list) else float(delay),
            **{k: v for k, v in data.items() if k in _FIELDS},
        )

    def with_options(self, **changes: Any) -> Deployment:
        return replace(self, **changes)

    @classmethod
    def from_flow(
        cls,
        flow: FlowDefinition[..., Any],
        location: FlowLocation,
        name: str | None = None,
        **options: Any,
    ) -> Deployment:
        """Build a deployment of ``flow`` (found again at ``location``) with ``options``."""
        return _from_flow(flow, location, name, options)


_FIELDS = frozenset(Deployment.__dataclass_fields__) - {"repository", "checkout_root"}


def _from_flow(
    flow: FlowDefinition[..., Any],
    location: FlowLocation,
    name: str | None,
    options: dict[str, Any],
) -> Deployment:
    opts = dict(options)
    given = {k: v for k, v in options.items() if v is not None}
    schedules = make_schedules(**{key: opts.pop(key, None) for key in _SCHEDULE_OPTIONS})
    parameters = dict(opts.pop("parameters", None) or {})
    enforce = bool(opts.pop("enforce_parameter_schema", True))
    if enforce and parameters:
        parameters = _check_defaults(flow, parameters)
    if enforce:
        schedules = _check_schedule_parameters(flow, parameters, schedules)
    concurrency = opts.pop("concurrency_limit", None)
    concurrency = opts.pop("global_limit", None) or concurrency
    deployment = Deployment(
        name=check_name("deployment", name or flow.name),
        flow_name=flow.name,
        entrypoint=location.entrypoint,
        base_dir=location.base_dir,
        schedules=tuple(schedules),
        parameters=parameters,
        tags=tuple(opts.pop("tags", None) or ()),
        description=opts.pop("description", None) or flow.description,
        # Git-sourced code: the commit SHA unless a version is given for the deployment.
        version=opts.pop("version", None) or location.revision or flow.version,
        paused=opts.pop("paused", None),
        concurrency_limit=_positive_or_none("concurrency_limit", concurrency),
        overlap=policy(OverlapPolicy, "overlap", opts.pop("overlap", None) or "allow"),
        on_shutdown=policy(
            ShutdownPolicy, "on_shutdown", opts.pop("on_shutdown", None) or "cancel"
        ),
        catchup=policy(CatchupPolicy, "catchup", opts.pop("catchup", None) or "latest"),
        catchup_window_seconds=float(
            opts.pop("catchup_window", None) or DEFAULT_CATCHUP_WINDOW_SECONDS
        ),
        catchup_max=int(opts.pop("catchup_max", None) or DEFAULT_CATCHUP_MAX),
        enforce_parameter_schema=enforce,
        validate_parameters=flow.should_validate_parameters,
        retries=int(flow.retries or 0),
        retry_delay_seconds=flow.retry_delay_seconds or 0.0,
        timeout_seconds=flow.timeout_seconds,
        bound_instance=location.bound_instance,
        parameter_schema=flow.parameters,
        crashed_hooks=bool(flow.hooks_for("crashed")),
        source_key=location.source_key,
        revision=location.revision,
        options=rebuild_options(given, schedules),
    )
    _ignore_prefect_only(opts)
    return deployment


def rebuild_options(given: Mapping[str, Any], schedules: Sequence[Schedule]) -> dict[str, Any]:
    """The given options as JSON, schedules as their dicts: enough to make it again."""
    out = {k: v for k, v in given.items() if k not in _SCHEDULE_OPTIONS and k not in _PREFECT_ONLY}
    if "parameters" in out:
        out["parameters"] = jsonable(dict(out["parameters"]))
    if "tags" in out:
        out["tags"] = list(out["tags"])
    for key, value in list(out.items()):
        if isinstance(value, (datetime, timedelta)):
            out[key] = jsonable(value)
    if any(key in given for key in _SCHEDULE_OPTIONS):
        out["schedules"] = [s.to_dict() for s in schedules]
    return out


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


def _check_defaults(
    flow: FlowDefinition[..., Any], parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """Coerce default parameters ("5" → 5); required ones may still come per run."""
    try:
        validated = flow.validate_parameters(parameters)
    except ParameterError as exc:
        wrong = [e for e in exc.errors if e.get("type") != "missing"]
        if not wrong:
            return dict(parameters)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in wrong)  # type: ignore[call-overload]
        raise ParameterError(f"default parameters of flow {flow.name!r}: {detail}", wrong) from None
    return {k: jsonable(validated[k]) if k in validated else v for k, v in parameters.items()}


def _check_schedule_parameters(
    flow: FlowDefinition[..., Any], defaults: Mapping[str, Any], schedules: list[Schedule]
) -> list[Schedule]:
    """Each schedule's parameters checked (and coerced) over the defaults, as its runs get them."""
    checked = []
    for i, schedule in enumerate(schedules):
        if schedule.parameters:
            own = _check_own(flow, defaults, schedule.parameters, f"schedules[{i}].parameters")
            schedule = replace(schedule, parameters=own)
        checked.append(schedule)
    return checked


def _check_own(
    flow: FlowDefinition[..., Any], defaults: Mapping[str, Any], own: Mapping[str, Any], path: str
) -> dict[str, Any]:
    """A schedule's own parameters (``own``), validated as its runs will be."""
    try:
        validated = flow.validate_parameters({**defaults, **own})
    except ParameterError as exc:
        wrong = [e for e in exc.errors if e.get("type") != "missing" and _loc(e)[0] in own]
        if not wrong:
            return dict(own)
        detail = "; ".join(f"{'.'.join(_loc(e))}: {e['msg']}" for e in wrong)
        raise ParameterError(f"{path}: {detail} (flow {flow.name!r})", wrong) from None
    return {k: jsonable(validated[k]) if k in validated else v for k, v in own.items()}


def _loc(error: Mapping[str, object]) -> list[str]:
    loc = error.get("loc")
    return [str(part) for part in loc] if isinstance(loc, (list, tuple)) and loc else [""]


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


def check_unique(deployments: Iterable[Deployment]) -> None:
    """Refuse two deployments with one full name (one would silently replace the other)."""
    seen: set[str] = set()
    for deployment in deployments:
        if deployment.full_name in seen:
            raise UsageError(
                f"deployment {deployment.full_name!r} is given twice; give each a different name"
            )
        seen.add(deployment.full_name)


def full_names(deployments: Iterable[Deployment]) -> list[str]:
    return [d.full_name for d in deployments]
