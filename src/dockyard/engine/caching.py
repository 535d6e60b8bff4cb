"""Task caching: cache policies (what a key is made of), ``task_input_hash`` and the
result store (cached results on disk, with an expiry), shared by the runs of one state.

A task is cached when it has a ``cache_key_fn``, a ``cache_policy`` other than ``NONE``,
or ``persist_result=True`` (the default policy: inputs, source and flow run). A hit
returns the stored result without running the task; an expired entry is a miss.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.engine.context import TaskRunContext

logger = logging.getLogger("dockyard.task_runs")


def hash_objects(*objects: Any) -> str | None:
    """A stable hash of ``objects`` (JSON, else pickle); None when they cannot be hashed."""
    try:
        data = json.dumps(objects, sort_keys=True).encode()
    except (TypeError, ValueError):
        try:
            data = pickle.dumps(objects)
        except Exception:
            return None
    return hashlib.sha256(data).hexdigest()


def source_hash(fn: Callable[..., Any]) -> str:
    """The hash of a function's source (its bytecode when the source is not available)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = code.co_code.hex() if code is not None else repr(fn)
    return hashlib.sha256(text.encode()).hexdigest()


def task_input_hash(context: TaskRunContext, arguments: Mapping[str, Any]) -> str | None:
    """``cache_key_fn=task_input_hash``: the task, its source and its arguments."""
    task = context.task
    return hash_objects(task.task_key, source_hash(task.fn), dict(arguments))


class CachePolicy:
    """What a cache key is made of; combine with ``+``, drop an input with ``-``."""

    def compute_key(
        self, context: TaskRunContext, inputs: Mapping[str, Any], flow_parameters: Mapping[str, Any]
    ) -> str | None:
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return CompoundCachePolicy((*_parts(self), *_parts(other)))

    def __sub__(self, name: str) -> CachePolicy:
        return CompoundCachePolicy(tuple(p - name for p in _parts(self)))


def _parts(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundCachePolicy) else (policy,)


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    policies: tuple[CachePolicy, ...] = ()

    def compute_key(
        self, context: TaskRunContext, inputs: Mapping[str, Any], flow_parameters: Mapping[str, Any]
    ) -> str | None:
        keys = [p.compute_key(context, inputs, flow_parameters) for p in self.policies]
        if any(key is None for key in keys) or not keys:
            return None
        return hash_objects(keys)

    def __sub__(self, name: str) -> CachePolicy:
        return CompoundCachePolicy(tuple(p - name for p in self.policies))


@dataclass(frozen=True)
class _NoCache(CachePolicy):
    def compute_key(self, context: Any, inputs: Any, flow_parameters: Any) -> str | None:
        return None

    def __sub__(self, name: str) -> CachePolicy:
        return self


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The task's arguments, less ``exclude``."""

    exclude: tuple[str, ...] = field(default=())

    def compute_key(
        self, context: Any, inputs: Mapping[str, Any], flow_parameters: Any
    ) -> str | None:
        kept = {k: v for k, v in inputs.items() if k not in self.exclude}
        return hash_objects(kept)

    def __sub__(self, name: str) -> CachePolicy:
        return Inputs(exclude=(*self.exclude, name))


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The task function's source code."""

    def compute_key(self, context: TaskRunContext, inputs: Any, flow_parameters: Any) -> str | None:
        return source_hash(context.task.fn)

    def __sub__(self, name: str) -> CachePolicy:
        return self


@dataclass(frozen=True)
class RunId(CachePolicy):
    """The flow run: results are reused within one run only."""

    def compute_key(self, context: TaskRunContext, inputs: Any, flow_parameters: Any) -> str | None:
        return context.task_run.flow_run_id

    def __sub__(self, name: str) -> CachePolicy:
        return self


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """The flow run's parameters."""

    def compute_key(
        self, context: Any, inputs: Any, flow_parameters: Mapping[str, Any]
    ) -> str | None:
        return hash_objects(dict(flow_parameters))

    def __sub__(self, name: str) -> CachePolicy:
        return self


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """A user's ``cache_key_fn(context, parameters)``."""

    fn: Callable[..., str | None] = field(default=lambda context, parameters: None)

    def compute_key(
        self, context: TaskRunContext, inputs: Mapping[str, Any], flow_parameters: Any
    ) -> str | None:
        key = self.fn(context, dict(inputs))
        return None if key is None else str(key)

    def __sub__(self, name: str) -> CachePolicy:
        return self


NONE = NO_CACHE = _NoCache()
INPUTS = Inputs()
TASK_SOURCE = TaskSource()
RUN_ID = RunId()
FLOW_PARAMETERS = FlowParameters()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID


def policy_of(task: Any) -> CachePolicy | None:
    """The policy a task is cached by, or None when it is not cached."""
    if task.cache_key_fn is not None:
        return CacheKeyFnPolicy(task.cache_key_fn)
    policy = task.cache_policy
    if isinstance(policy, _NoCache):
        return None
    if isinstance(policy, CachePolicy):
        return policy
    if policy is not None:
        raise TypeError(
            f"cache_policy must be a CachePolicy (INPUTS, TASK_SOURCE...), got {policy!r}"
        )
    return DEFAULT if task.persist_result else None
