"""Prometheus metrics of one serve process, on a registry the process owns.

Names are a contract that dashboards and alerts rely on. Labels stay bounded:
deployment names, run states and fixed reasons; never run ids, commands or values.
Counters live as long as the process (never reset on reload or reconcile).

The page is prometheus_client's own exposition, in the format the scraper asks for
(``exposition``): OpenMetrics when its ``Accept`` names it (Prometheus does), else the text
format. Neither has the ``_created`` samples of counters and histograms: the text format
has no such thing, and Prometheus before 2.50 stores them as one more series each.
"""

from __future__ import annotations

import contextlib
import platform
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from dockyard._version import __version__
from dockyard.core.records import REPLICA_STATES, TASK_RUN_STATES, ReplicaRecord
from dockyard.core.states import TERMINAL

MISSED_REASONS = ("overlap", "downtime", "paused", "limit")
TERMINAL_STATES = tuple(sorted(state.value for state in TERMINAL))
"""The ``state`` labels of ``dockyard_flow_runs_total``: every terminal ``RunState``."""
SYNC_RESULTS = ("success", "noop", "error", "refused")
TASK_RUN_TERMINAL_STATES = ("Cached", "Cancelled", "Completed", "Crashed", "Failed")
"""The final states of task runs: their series of ``dockyard_task_runs_total`` start at 0."""
OTHER_STATE = "other"
"""The ``state`` of a task run whose state is none of ``TASK_RUN_STATES`` (labels stay bounded)."""
UNKNOWN_REVISION = "unknown"
"""``dockyard_build_info``'s revision when the build did not say (DOCKYARD_BUILD_REVISION)."""
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """Every collector of the serve process, registered on ``registry``."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, build_revision: str | None = None
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.runs_total = Counter(
            "dockyard_flow_runs",
            "Flow runs that reached a terminal state.",
            ["deployment", "state"],
            registry=r,
        )
        self.task_runs_total = Counter(
            "dockyard_task_runs",
            "Task runs of flow-run attempts that ended, by their final state.",
            ["deployment", "state"],
            registry=r,
        )
        self.run_duration = Histogram(
            "dockyard_flow_run_duration_seconds",
            "Duration of finished flow runs.",
            ["deployment"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge(
            "dockyard_flow_runs_in_progress",
            "Flow runs whose process is running.",
            ["deployment"],
            registry=r,
        )
        self.lateness = Histogram(
            "dockyard_schedule_lateness_seconds",
            "Actual start minus scheduled time of scheduled runs.",
            ["deployment"],
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.paused = Gauge(
            "dockyard_deployment_paused",
            "1 if the deployment's schedules are paused.",
            ["deployment"],
            registry=r,
        )
        self.missed = Counter(
            "dockyard_scheduled_runs_missed",
            "Scheduled slots that did not run when due (reason: overlap, downtime, paused, limit).",
            ["deployment", "reason"],
            registry=r,
        )
        self.next_fire = Gauge(
            "dockyard_schedule_next_fire_timestamp_seconds",
            "Unix time of the deployment's next scheduled slot.",
            ["deployment"],
            registry=r,
        )
        self.failing = Gauge(
            "dockyard_deployment_failing",
            "1 if the deployment's schedules raised at the last tick (it is not being scheduled).",
            ["deployment"],
            registry=r,
        )
        self._failing: dict[str, str] = {}
        self.runner = RunnerSlots()
        r.register(self.runner)
        self.last_tick = Gauge(
            "dockyard_scheduler_last_tick_timestamp_seconds",
            "Unix time of the scheduler loop's last tick.",
            registry=r,
        )
        self.code_load_failures = Counter(
            "dockyard_code_load_failures",
            "New code revisions refused because their flows or dockyard.yaml did not load.",
            ["source"],
            registry=r,
        )
        self.code_syncs = Counter(
            "dockyard_code_sync",
            "Pulls of a code source (result: success, noop, error, refused).",
            ["source", "result"],
            registry=r,
        )
        self.code_sync_seconds = Histogram(
            "dockyard_code_sync_duration_seconds",
            "Duration of one pull, including checking a new revision.",
            ["source"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.code_last_success = Gauge(
            "dockyard_code_sync_last_success_timestamp_seconds",
            "Unix time of the last successful pull of a code source.",
            ["source"],
            registry=r,
        )
        self.code_revision = Gauge(
            "dockyard_code_revision_info",
            "1 for the revision a code source currently serves.",
            ["source", "revision"],
            registry=r,
        )
        self._revisions: dict[str, str] = {}
        self.replicas = Gauge(
            "dockyard_replicas",
            "Serve processes sharing the state database, as this one last saw them "
            "(state: live, lost, stopped).",
            ["state"],
            registry=r,
        )
        self.replicas_seen({})
        self.ready = Gauge(
            "dockyard_ready",
            "1 if the process is ready (/ready answers 200), 0 while starting, draining or "
            "unavailable; evaluated at every scrape.",
            registry=r,
        )
        self.runs_pruned = Counter(
            "dockyard_runs_pruned",
            "Finished flow runs this process removed with their logs (run history retention: "
            "DOCKYARD_RETENTION_DAYS, DOCKYARD_RETENTION_RUNS).",
            registry=r,
        )
        self._sources: set[str] = set()
        self.info = Gauge(
            "dockyard_info", "dockyard version (see dockyard_build_info).", ["version"], registry=r
        )
        self.info.labels(version=__version__).set(1)
        self.build_info = Gauge(
            "dockyard_build_info",
            "1, labelled with the dockyard version, the git commit it was built from "
            "(DOCKYARD_BUILD_REVISION, else unknown) and the Python version.",
            ["version", "revision", "python"],
            registry=r,
        )
        revision = build_revision or UNKNOWN_REVISION
        self.build_info.labels(__version__, revision, platform.python_version()).set(1)

    def add_deployment(self, name: str) -> None:
        """Make the deployment's series exist at 0, so rates work from the first scrape."""
        self.in_progress.labels(deployment=name).set(0)
        self.failing.labels(deployment=name).set(0)
        for reason in MISSED_REASONS:
            self.missed.labels(deployment=name, reason=reason)
        for state in TERMINAL_STATES:
            self.runs_total.labels(deployment=name, state=state)
        for state in TASK_RUN_TERMINAL_STATES:
            self.task_runs_total.labels(deployment=name, state=state)
        self.run_duration.labels(deployment=name)

    def add_source(self, source: str) -> None:
        """A source's counters exist at 0 from the first time it is seen, so that
        ``increase()`` counts its first refused revision or failed pull (a series that
        appears at 1 has no earlier sample to increase from)."""
        if source in self._sources:
            return
        self._sources.add(source)
        self.code_load_failures.labels(source=source)
        for result in SYNC_RESULTS:
            self.code_syncs.labels(source=source, result=result)

    def set_ready(self, ready: bool) -> None:
        """The outcome of the last readiness check (``dockyard_ready``)."""
        self.ready.set(1 if ready else 0)

    def render(self) -> bytes:
        """The page in the text format."""
        return generate_latest(_WithoutCreated(self.registry))

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The page in the format ``accept`` (an HTTP ``Accept`` header) asks for, and its
        content type: OpenMetrics when it names ``application/openmetrics-text``."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(_WithoutCreated(self.registry)), content_type

    # ── what the serve process reports ────────────────────────────────────────
    def run_started(self, deployment: str, lateness_seconds: float | None) -> None:
        self.in_progress.labels(deployment=deployment).inc()
        if lateness_seconds is not None:
            self.lateness.labels(deployment=deployment).observe(max(lateness_seconds, 0.0))

    def run_stopped(self, deployment: str) -> None:
        self.in_progress.labels(deployment=deployment).dec()

    def run_finished(self, deployment: str, state: str, duration_seconds: float | None) -> None:
        """A run reached a terminal state (a retry is not one)."""
        self.runs_total.labels(deployment=deployment, state=state).inc()
        if duration_seconds is not None:
            self.run_duration.labels(deployment=deployment).observe(duration_seconds)

    def task_runs_ended(self, deployment: str, states: Iterable[str]) -> None:
        """The task runs of one attempt ended in ``states`` (one state per task run)."""
        for state, count in Tally(states).items():
            label = state if state in TASK_RUN_STATES else OTHER_STATE
            self.task_runs_total.labels(deployment=deployment, state=label).inc(count)

    def code_sync(
        self, source: str, result: str, revision: str | None, success_at: datetime | None
    ) -> None:
        self.add_source(source)
        self.code_syncs.labels(source=source, result=result).inc()
        if success_at is not None:
            self.code_last_success.labels(source=source).set(success_at.timestamp())
        if revision is not None:
            self.code_serving(source, revision)

    def code_serving(self, source: str, revision: str) -> None:
        """One series per source: the revision it serves now."""
        self.add_source(source)
        previous = self._revisions.get(source)
        if revision != previous:
            if previous is not None:
                self.code_revision.remove(source, previous)
            self.code_revision.labels(source=source, revision=revision).set(1)
            self._revisions[source] = revision

    def code_sync_duration(self, source: str, seconds: float) -> None:
        self.add_source(source)
        self.code_sync_seconds.labels(source=source).observe(seconds)

    def code_load_failure(self, source: str) -> None:
        self.add_source(source)
        self.code_load_failures.labels(source=source).inc()

    def replicas_seen(self, counts: Mapping[str, int]) -> None:
        """How many replicas are in each state (``count_replica_states``); every state is
        set, those missing from ``counts`` to 0, and unknown states are left out."""
        for state in REPLICA_STATES:
            self.replicas.labels(state=state).set(counts.get(state, 0))

    def slots_missed(self, deployment: str, reason: str, count: int) -> None:
        if count > 0:
            self.missed.labels(deployment=deployment, reason=reason).inc(count)

    def deployment_failing(self, name: str, error: str | None) -> None:
        """Record whether its schedules raised at the last tick (``error`` None: they did not)."""
        self.failing.labels(deployment=name).set(0 if error is None else 1)
        if error is None:
            self._failing.pop(name, None)
        else:
            self._failing[name] = error

    def failing_deployments(self) -> dict[str, str]:
        """Deployment → the error its schedules raised at the last tick."""
        return dict(self._failing)

    def scheduler_state(
        self,
        *,
        tick_at: float,
        paused: dict[str, bool],
        next_fire: dict[str, float | None],
        limit: int | None,
        running: int,
    ) -> None:
        self.last_tick.set(tick_at)
        for name, is_paused in paused.items():
            self.paused.labels(deployment=name).set(1 if is_paused else 0)
        for name, at in next_fire.items():
            if at is not None:
                self.next_fire.labels(deployment=name).set(at)
                continue
            with contextlib.suppress(KeyError):  # no next slot: drop the series
                self.next_fire.remove(name)
        self.runner.limit = limit or None
        self.runner.running = running


def count_replica_states(
    replicas: Iterable[ReplicaRecord], now: datetime, timeout: float
) -> dict[str, int]:
    """Replicas per state (``ReplicaRecord.state(now, timeout)``), every state present."""
    counts = Tally(replica.state(now, timeout) for replica in replicas)
    return {state: counts.get(state, 0) for state in REPLICA_STATES}


class RunnerSlots(Collector):
    """``dockyard_runner_limit`` and ``dockyard_runner_slots_available``, present only
    while the process has a limit on concurrent runs (no series: no limit)."""

    NAMES = ("dockyard_runner_limit", "dockyard_runner_slots_available")

    def __init__(self) -> None:
        self.limit: int | None = None
        self.running = 0

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(name, "") for name in self.NAMES]

    def collect(self) -> Iterator[Metric]:
        if self.limit is None:
            return
        yield GaugeMetricFamily(
            "dockyard_runner_limit", "Concurrent runs allowed (DOCKYARD_LIMIT).", value=self.limit
        )
        yield GaugeMetricFamily(
            "dockyard_runner_slots_available",
            "Runs that could start now under the process limit.",
            value=max(self.limit - self.running, 0),
        )


class _WithoutCreated(Collector):
    """``registry``'s families without their ``_created`` samples."""

    def __init__(self, registry: Collector) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():  # fresh Metric objects on every call
            created = family.name + "_created"
            family.samples = [s for s in family.samples if s.name != created]
            yield family
