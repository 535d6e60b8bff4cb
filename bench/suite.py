"""The dockyard side of the benchmark suite: every scenario, one JSON file. Real processes.

    .venv/bin/python bench/suite.py                  # the whole suite, ~10 min (make bench)
    .venv/bin/python bench/suite.py --quick          # small counts, ~1-2 min
    .venv/bin/python bench/suite.py --only floor.spawn,adhoc.latency

Writes bench/results/dockyard.json in the format bench/README.md describes (the same as
bench/prefect_suite.py's prefect.json); bench/report.py turns it into a table and
bench/plots.py into plots. Every serve process is a real ``dockyard serve`` on a free
loopback port with its own state file in a temporary directory; every wait has a
deadline, every loop a count and a time cap (the count reached is in ``params``), and
every process is stopped in a ``finally``. A scenario that fails is listed under
``skipped`` with the reason and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _floors
import httpx
from _common import BenchError, environment, wait_for  # bench/ is on sys.path
from _procs import (
    FeedThread,
    Serve,
    drain_lateness,
    lateness_slots,
    loadavg,
    machine_cpu_seconds,
    median,
    percentile,
    result,
    rss_mib,
    serving,
    throughput_series,
    tree_cpu_seconds,
    tree_memory_mib,
    write_config,
)

from dockyard.core.states import RunState

BENCH_DIR = Path(__file__).resolve().parent
NOOP = f"{BENCH_DIR / 'flows' / 'noop.py'}:noop"
LATENESS = f"{BENCH_DIR / 'flows' / 'lateness.py'}:lateness"
DEFAULT_OUT = BENCH_DIR / "results" / "dockyard.json"
REQUEST_TIMEOUT = 10.0
RUN_DEADLINE = 60.0  # seconds for one ad-hoc run to end on an idle process
SETTLED = 5.0  # seconds a serve process is up before its idle RSS is read
LEVELS = (1, 2, 4, 8)  # limits of the throughput series; 4 is adhoc.rate4 itself


@dataclass(frozen=True)
class Counts:
    """How much each scenario does; every loop is also capped in time (``*_seconds``)."""

    spawn: int = 20
    spawn_cpu: int = 50
    imports: int = 10
    import_rss: int = 3
    requests: int = 1000
    warmup: int = 50
    spawn_rate: int = 500
    spawn_rate_seconds: float = 60
    cpu_runs: int = 50
    idle_window: float = 5
    latency_runs: int = 20
    rate_runs: int = 500
    rate_seconds: float = 100
    level_runs: int = 100
    level_seconds: float = 25
    lateness_seconds: float = 30
    hundred: int = 100
    idle_deployments: int = 1000
    idle_seconds: float = 60
    memory_runs: int = 5000
    memory_mark: int = 500
    memory_seconds: float = 150
    busy_seconds: float = 90
    starts: int = 5


QUICK = Counts(
    spawn=5, spawn_cpu=10, imports=3, import_rss=1, requests=100, warmup=10, spawn_rate=40,
    spawn_rate_seconds=20, cpu_runs=5, idle_window=1, latency_runs=3, rate_runs=30,
    rate_seconds=30, level_runs=10, level_seconds=15, lateness_seconds=5, hundred=10,
    idle_deployments=50, idle_seconds=5, memory_runs=60, memory_mark=20, memory_seconds=30,
    busy_seconds=30, starts=2,
)  # fmt: skip


@dataclass
class Ctx:
    tmp: Path
    counts: Counts
    wanted: set[str]


# -- serve processes and their runs -------------------------------------------------------


def far_hour_cron() -> list[str]:
    """An every-minute cron limited to the hour two hours from now (UTC): the planner has
    due times to compute, but none falls inside a measurement."""
    at = datetime.now(UTC) + timedelta(hours=2)
    return ["--cron", f"* {at.hour} * * *", "--timezone", "UTC"]


def healthy(proc: Serve, client: httpx.Client, deadline: float = 60.0) -> None:
    """Wait until /health answers 200 (503 until the first tick has run)."""

    def ok() -> bool:
        proc.check_alive()
        try:
            return client.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(f"{proc.name} /health 200", ok, deadline, poll=0.01)


def client_for(proc: Serve) -> httpx.Client:
    return httpx.Client(base_url=proc.url(), timeout=REQUEST_TIMEOUT)


def trigger(client: httpx.Client, deployment: str = "noop/noop") -> str:
    response = client.post(f"/api/deployments/{deployment}/runs", json={})
    if response.status_code != 201:
        raise BenchError(f"POST a run answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["id"])


def ended(store: Any, run_id: str) -> Any:
    run = store.get_run(run_id)
    return run if run.ended_at is not None else None


def other_states(store: Any) -> dict[str, int]:
    finals = (RunState.FAILED, RunState.CRASHED, RunState.CANCELLED)
    return {s.value: n for s in finals if (n := store.count_runs(states=[s]))}


class Feeder:
    """Keeps ``backlog`` ad-hoc runs queued or running until ``total`` have completed."""

    def __init__(self, client: httpx.Client, store: Any, backlog: int, total: int) -> None:
        self.client, self.store, self.backlog, self.total = client, store, backlog, total
        self.posted = 0
        self.done = 0

    def step(self) -> int:
        self.done = self.store.count_runs(states=[RunState.COMPLETED])
        wanted = min(self.total, self.done + self.backlog) - self.posted
        for _ in range(max(0, wanted)):
            trigger(self.client)
            self.posted += 1
        return self.done


# -- scenarios ------------------------------------------------------------------------------


def floors_spawn(ctx: Ctx) -> dict[str, Any]:
    out = {}
    if "floor.spawn" in ctx.wanted:
        out["floor.spawn"] = _floors.spawn(ctx.counts.spawn)
    if "floor.spawn_cpu" in ctx.wanted:
        out["floor.spawn_cpu"] = _floors.spawn_cpu(ctx.counts.spawn_cpu, ctx.counts.idle_window)
    return out


def serve_imports(tmp: Path) -> list[str]:
    """The third-party packages a serve process has imported by its first /health 200
    (from ``PYTHONPROFILEIMPORTTIME``), less those whose import failed (optional ones)."""
    import importlib.util

    with (
        serving([NOOP, *far_hour_cron()], tmp, "imports", PYTHONPROFILEIMPORTTIME="1") as proc,
        client_for(proc) as client,
    ):
        healthy(proc, client)
    names = set()
    for line in proc.output().splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            top = line.rsplit("|", 1)[1].strip().split(".")[0]
            if top not in sys.stdlib_module_names and not top.startswith("_"):
                names.add(top)
    names.discard("dockyard")  # its own modules are dockyard's cost, not the floor
    return sorted(n for n in names if importlib.util.find_spec(n) is not None)


def floors_import(ctx: Ctx) -> dict[str, Any]:
    c = ctx.counts
    found = _floors.imports(serve_imports(ctx.tmp), c.imports, c.import_rss, ctx.tmp)
    return {k: v for k, v in found.items() if k in ctx.wanted}


def floor_uvicorn(ctx: Ctx) -> dict[str, Any]:
    entry = _floors.uvicorn_health(ctx.counts.requests, ctx.counts.warmup, ctx.tmp)
    return {"floor.uvicorn_health_p99": entry}


def floor_rate(ctx: Ctx) -> dict[str, Any]:
    c = ctx.counts
    return {"floor.spawn_rate4": _floors.spawn_rate(c.spawn_rate, 4, c.spawn_rate_seconds)}


def adhoc(ctx: Ctx) -> dict[str, Any]:
    """adhoc.latency (sequential runs on an idle process) and run.cpu_per_noop."""
    c, out = ctx.counts, {}
    with serving([NOOP], ctx.tmp, "adhoc") as proc, client_for(proc) as client:
        healthy(proc, client)
        with proc.store() as store:
            warm_up = trigger(client)
            wait_for("the warm-up run", lambda: ended(store, warm_up), RUN_DEADLINE)
            if "adhoc.latency" in ctx.wanted:
                out["adhoc.latency"] = _latency(client, store, c.latency_runs)
            if "run.cpu_per_noop" in ctx.wanted:
                out["run.cpu_per_noop"] = _cpu_per_run(proc, client, store, c)
    return out


def _latency(client: httpx.Client, store: Any, n: int) -> dict[str, Any]:
    seconds = []
    for _ in range(n):
        t0 = time.time()
        run_id = trigger(client)
        run = wait_for(
            "an ad-hoc run to end", lambda r=run_id: ended(store, r), RUN_DEADLINE, 0.005
        )
        if run.state != RunState.COMPLETED:
            raise BenchError(f"run {run_id} ended {run.state.value}: {run.error}")
        seconds.append(run.ended_at.timestamp() - t0)
    return result(
        median(seconds), "s", "median", seconds, p99=percentile(seconds, 0.99),
        measured="time before the POST → the run's recorded ended_at",
    )  # fmt: skip


def _cpu_per_run(proc: Serve, client: httpx.Client, store: Any, c: Counts) -> dict[str, Any]:
    """CPU of the serve process tree (every process a dockyard run involves: the runs are
    its descendants, the state file is in-process) per run, less its idle rate."""
    before = store.count_runs(states=[RunState.COMPLETED])

    def work() -> int:
        for _ in range(c.cpu_runs):
            trigger(client)
        done = lambda: store.count_runs(states=[RunState.COMPLETED]) - before >= c.cpu_runs  # noqa: E731
        wait_for(f"{c.cpu_runs} runs Completed", done, RUN_DEADLINE + c.cpu_runs * 2, poll=0.2)
        return c.cpu_runs

    cpu = _floors.cpu_of(work, c.idle_window, proc.pid)
    return result(
        cpu["tree_cpu_per_unit"], "CPU-s", "mean", [cpu["tree_cpu_per_unit"]], n=c.cpu_runs,
        method="serve process tree (/proc/PID/stat, reaped children included)",
        other_states=other_states(store), **cpu,
    )  # fmt: skip


def rate(ctx: Ctx) -> dict[str, Any]:
    """adhoc.rate4, with the throughput at every limit of LEVELS as its series."""
    c = ctx.counts

    def measure(limit: int) -> dict[str, Any]:
        runs, cap = (c.rate_runs, c.rate_seconds) if limit == 4 else (c.level_runs, c.level_seconds)
        return _throughput(ctx.tmp, limit, runs, cap)

    return throughput_series(LEVELS, measure)


def _throughput(tmp: Path, limit: int, runs: int, cap: float) -> dict[str, Any]:
    args = [NOOP, "--limit", str(limit)]
    with serving(args, tmp, f"rate-{limit}") as proc, client_for(proc) as client:
        healthy(proc, client)
        with proc.store() as store:
            t0 = time.time()
            deadline = time.monotonic() + cap
            for _ in range(runs):
                trigger(client)
                if time.monotonic() > deadline:
                    break
            while time.monotonic() < deadline:
                if store.count_runs(states=[RunState.COMPLETED]) >= runs:
                    break
                time.sleep(0.05)
            done = store.list_runs(states=[RunState.COMPLETED], limit=runs, order="asc")
            others = other_states(store)
    ends = sorted(r.ended_at.timestamp() - t0 for r in done)
    capped = len(ends) < runs
    elapsed = cap if capped or not ends else ends[-1]
    return result(
        len(ends) / elapsed, "runs/s", "rate", ends, limit=limit, requested=runs,
        completed=len(ends), elapsed_seconds=elapsed, capped=capped, other_states=others,
        measured="completed runs / (first POST → last recorded ended_at)",
    )  # fmt: skip


def lateness_one(ctx: Ctx) -> dict[str, Any]:
    return {"lateness.one": _lateness(ctx, 1, ctx.counts.lateness_seconds, "lateness-one")}


def lateness_hundred(ctx: Ctx) -> dict[str, Any]:
    c = ctx.counts
    return {"lateness.hundred": _lateness(ctx, c.hundred, c.lateness_seconds, "lateness-hundred")}


def _lateness(ctx: Ctx, deployments: int, window: float, name: str) -> dict[str, Any]:
    """``deployments`` of bench/flows/lateness.py on 1 s intervals; the slots scheduled in a
    ``window`` of whole seconds that starts 2 s after the process is serving."""
    out = ctx.tmp / f"{name}.txt"
    specs = [
        {"entrypoint": LATENESS, "name": f"d{i:03d}", "schedules": [{"interval": 1}]}
        for i in range(deployments)
    ]
    config = write_config(ctx.tmp / f"{name}.yaml", specs)
    # No limit: with 100 deployments due each second, a cap would measure the cap.
    args = ["--config", str(config), "--limit", "0"]
    with serving(args, ctx.tmp, name, BENCH_LATENESS_FILE=str(out)) as proc:
        proc.wait_serving(60 + deployments * 0.2)
        start = math.ceil(time.time() + 2)
        end = start + int(window)
        expected = deployments * (end - start)
        drain_lateness(out, start, end, expected, proc)
        ran = lateness_slots(out, start, end)
        with proc.store() as store:
            claimed = {
                (r.deployment, r.scheduled_at.timestamp())
                for r in store.list_runs(limit=expected * 3 + 1000)
                if start <= r.scheduled_at.timestamp() < end
            }
    late = sorted(ran.values())
    if not late:
        raise BenchError(f"no slot of the window ran (see {proc.log})")
    return result(
        percentile(late, 0.99), "s", "p99", late, p50=percentile(late, 0.5),
        p95=percentile(late, 0.95), max=late[-1], deployments=deployments, interval_seconds=1,
        window_seconds=end - start, slots_expected=expected, slots_run=len(ran),
        slots_never_run=expected - len(ran), slots_never_claimed=expected - len(claimed),
        limit="none (--limit 0)",
        measured="body's time.time() - runtime.flow_run.scheduled_start_time",
    )  # fmt: skip


def idle_cpu(ctx: Ctx) -> dict[str, Any]:
    """idle.cpu_1000: CPU of the serve process tree with that many idle deployments."""
    c, n = ctx.counts, ctx.counts.idle_deployments
    cron, _, zone = far_hour_cron()[1:]
    specs = [
        {"entrypoint": NOOP, "name": f"d{i:04d}", "schedules": [{"cron": cron, "timezone": zone}]}
        for i in range(n)
    ]
    config = write_config(ctx.tmp / "idle.yaml", specs)
    with serving(["--config", str(config)], ctx.tmp, "idle-cpu") as proc:
        with httpx.Client(base_url=proc.url(60 + n * 0.1), timeout=REQUEST_TIMEOUT) as client:
            healthy(proc, client, 60 + n * 0.1)
        up = time.perf_counter() - proc.started
        time.sleep(SETTLED)  # start-up work (migrations, upserts) is not idling
        samples: list[float] = []
        t0, cpu0, machine0 = time.monotonic(), tree_cpu_seconds(proc.pid), machine_cpu_seconds()
        last_t, last_cpu = t0, cpu0
        while (now := time.monotonic()) < t0 + c.idle_seconds:
            time.sleep(min(5.0, t0 + c.idle_seconds - now))  # the measurement window
            proc.check_alive()
            cpu, t = tree_cpu_seconds(proc.pid), time.monotonic()
            samples.append(100 * (cpu - last_cpu) / (t - last_t))
            last_t, last_cpu = t, cpu
        machine = machine_cpu_seconds() - machine0
        with proc.store() as store:
            runs = store.count_runs()
    if runs:
        raise BenchError(f"{runs} run(s) started while the process was to be idle")
    return {
        "idle.cpu_1000": result(
            100 * (last_cpu - cpu0) / (last_t - t0),
            "%core",
            "mean",
            samples,
            deployments=n,
            window_seconds=last_t - t0,
            sample_seconds=5,
            cron=cron,
            start_to_health_seconds=up,
            machine_cpu_percent=100 * machine / (last_t - t0),
        )  # fmt: skip
    }


def memory(ctx: Ctx) -> dict[str, Any]:
    """memory.runs: serve RSS after ``memory_mark`` and after ``memory_runs`` no-op runs."""
    c = ctx.counts
    step = max(1, c.memory_runs // 50)
    with serving([NOOP, "--limit", "4"], ctx.tmp, "memory") as proc, client_for(proc) as client:
        healthy(proc, client)
        with proc.store() as store:
            feeder = Feeder(client, store, backlog=16, total=c.memory_runs)
            xs, ys, mark = [0], [rss_mib(proc.pid)], None
            deadline = time.monotonic() + c.memory_seconds
            while time.monotonic() < deadline and feeder.done < c.memory_runs:
                done = feeder.step()
                if (
                    done >= xs[-1] + step
                    or done >= c.memory_runs
                    or (mark is None and done >= c.memory_mark)
                ):
                    xs.append(done)
                    ys.append(rss_mib(proc.pid))
                    if mark is None and done >= c.memory_mark:
                        mark = (done, ys[-1])
                proc.check_alive()
                time.sleep(0.02)
            tree, others = tree_memory_mib(proc.pid), other_states(store)
    if mark is None or xs[-1] <= mark[0]:
        raise BenchError(
            f"{feeder.done} runs completed in {c.memory_seconds:g} s: not enough for two "
            f"readings (the first after {c.memory_mark})"
        )
    return {
        "memory.runs": result(
            ys[-1] / mark[1],
            "ratio",
            "ratio",
            ys,
            n=xs[-1],
            series={"x": xs, "y": ys},
            first_runs=mark[0],
            first_rss_mib=mark[1],
            last_runs=xs[-1],
            last_rss_mib=ys[-1],
            requested=c.memory_runs,
            capped=xs[-1] < c.memory_runs,
            limit=4,
            tree_rss_mib=tree["rss"],
            tree_pss_mib=tree["pss"],
            other_states=others,
        )  # fmt: skip
    }


def start(ctx: Ctx) -> dict[str, Any]:
    """start.health (spawn → first /health 200), idle.rss and idle.rss_tree, on fresh
    processes with one deployment that does not fire."""
    c, rss_wanted = ctx.counts, bool({"idle.rss", "idle.rss_tree"} & ctx.wanted)
    seconds: list[float] = []
    rss: list[float] = []
    tree: list[dict[str, float]] = []
    for i in range(c.starts):
        with serving([NOOP, *far_hour_cron()], ctx.tmp, f"start-{i}") as proc:
            with httpx.Client(base_url=proc.url(poll=0.005), timeout=REQUEST_TIMEOUT) as client:
                healthy(proc, client)
                seconds.append(time.perf_counter() - proc.started)
            if rss_wanted:
                time.sleep(max(0.0, proc.started + SETTLED - time.perf_counter()))
                proc.check_alive()
                rss.append(rss_mib(proc.pid))
                tree.append(tree_memory_mib(proc.pid))
            with proc.store() as store:
                if store.count_runs():
                    raise BenchError(f"{proc.name} started a run while it was to be idle")
    out = {
        "start.health": result(median(seconds), "s", "median", seconds, poll_seconds=0.01),
    }
    if rss_wanted:
        trees = [t["rss"] for t in tree]
        out["idle.rss"] = result(median(rss), "MiB", "median", rss, up_seconds=SETTLED)
        out["idle.rss_tree"] = result(
            median(trees), "MiB", "median", trees, up_seconds=SETTLED,
            pss_mib=median([t["pss"] for t in tree]), processes="serve and its descendants",
        )  # fmt: skip
    return {k: v for k, v in out.items() if k in ctx.wanted}


def health_busy(ctx: Ctx) -> dict[str, Any]:
    """health.p99_busy: sequential GET /health while no-op runs execute at limit 4."""
    c = ctx.counts
    with serving([NOOP, "--limit", "4"], ctx.tmp, "busy") as proc, client_for(proc) as client:
        healthy(proc, client)
        url = str(client.base_url)

        @contextlib.contextmanager
        def feeding() -> Iterator[Callable[[], int]]:
            with proc.store() as store, httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as own:
                yield Feeder(own, store, backlog=8, total=10**9).step

        feed = FeedThread(feeding, c.busy_seconds, warm_after=4, pause=0.05)
        feed.thread.start()
        try:
            wait_for("the first runs to complete", feed.warm, RUN_DEADLINE)
            _floors.health_latencies(client, c.warmup)
            before = feed.done
            seconds = _floors.health_latencies(client, c.requests)
            during = feed.done - before
            if not feed.thread.is_alive() or during == 0:
                raise BenchError(f"runs did not go on through the measurement ({during} ended)")
        finally:
            feed.stop.set()
            feed.thread.join(timeout=30)
    return {
        "health.p99_busy": result(
            percentile(seconds, 0.99),
            "s",
            "p99",
            seconds,
            p50=percentile(seconds, 0.5),
            runs_completed_during=during,
            limit=4,
            backlog=8,
        )  # fmt: skip
    }


# -- the suite ----------------------------------------------------------------------------

SCENARIOS: list[tuple[str, tuple[str, ...], Callable[[Ctx], dict[str, Any]]]] = [
    ("floors: python -c pass", ("floor.spawn", "floor.spawn_cpu"), floors_spawn),
    ("floors: import serve's packages", ("floor.import", "floor.import_rss"), floors_import),
    ("floor: bare FastAPI on uvicorn", ("floor.uvicorn_health_p99",), floor_uvicorn),
    ("floor: 4 bare interpreters at a time", ("floor.spawn_rate4",), floor_rate),
    ("start → /health, idle RSS", ("start.health", "idle.rss", "idle.rss_tree"), start),
    ("ad-hoc latency, CPU per run", ("adhoc.latency", "run.cpu_per_noop"), adhoc),
    ("throughput against limit", ("adhoc.rate4",), rate),
    ("/health while runs execute", ("health.p99_busy",), health_busy),
    ("lateness, 1 deployment", ("lateness.one",), lateness_one),
    ("lateness, 100 deployments", ("lateness.hundred",), lateness_hundred),
    ("idle CPU, 1,000 deployments", ("idle.cpu_1000",), idle_cpu),
    ("memory over runs", ("memory.runs",), memory),
]
KEYS = [key for _, keys, _ in SCENARIOS for key in keys]


def _environment(counts: Counts, quick: bool) -> dict[str, Any]:
    import fastapi
    import uvicorn

    from dockyard import __version__

    return environment(
        target_version=__version__, httpx=httpx.__version__, fastapi=fastapi.__version__,
        uvicorn=uvicorn.__version__, quick=quick, counts=dataclasses.asdict(counts),
        loadavg_start=loadavg(),
    )  # fmt: skip


def run_suite(wanted: set[str], counts: Counts, quick: bool, workdir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "target": "dockyard",
        "environment": _environment(counts, quick),
        "scenarios": {},
        "skipped": {},
        "timings": {},
    }
    selected = [s for s in SCENARIOS if wanted & set(s[1])]
    t_all = time.perf_counter()
    for i, (label, keys, measure) in enumerate(selected, 1):
        print(f"[{i}/{len(selected)}] {label} …", file=sys.stderr, flush=True)
        tmp = workdir / f"{i:02d}"
        tmp.mkdir()
        t0 = time.perf_counter()
        try:
            found = measure(Ctx(tmp, counts, wanted & set(keys)))
        except Exception as exc:  # one scenario's failure must not lose the others
            reason = f"failed: {type(exc).__name__}: {exc}"
            print(f"    {reason}", file=sys.stderr)
            doc["skipped"].update({key: reason for key in keys if key in wanted})
        else:
            doc["scenarios"].update(found)
            for key, entry in found.items():
                print(f"    {key} = {entry['value']:.4g} {entry['unit']}", file=sys.stderr)
        doc["timings"][label] = round(time.perf_counter() - t0, 1)
        print(f"    ({doc['timings'][label]:.0f} s)", file=sys.stderr, flush=True)
    doc["environment"]["loadavg_end"] = loadavg()
    doc["elapsed_seconds"] = round(time.perf_counter() - t_all, 1)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (about 1-2 min)")
    parser.add_argument(
        "--only", metavar="KEY,...", help=f"scenarios to run, of: {', '.join(KEYS)}"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write")
    parser.add_argument("--workdir", type=Path, help="keep the state files and logs here")
    args = parser.parse_args(argv)
    wanted = set(KEYS)
    if args.only:
        wanted = {key.strip() for key in args.only.split(",") if key.strip()}
        if unknown := sorted(wanted - set(KEYS)):
            parser.error(
                f"--only: unknown scenario(s) {', '.join(unknown)}; known: {', '.join(KEYS)}"
            )
    counts = QUICK if args.quick else Counts()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        doc = run_suite(wanted, counts, args.quick, Path(tempfile.mkdtemp(dir=args.workdir)))
    else:
        with tempfile.TemporaryDirectory(prefix="dockyard-suite-") as tmp:
            doc = run_suite(wanted, counts, args.quick, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(
        f"{len(doc['scenarios'])} scenario(s) in {doc['elapsed_seconds']:.0f} s; wrote {args.out}"
    )
    for key, reason in doc["skipped"].items():
        print(f"bench failed: {key}: {reason}", file=sys.stderr)
    return 1 if doc["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())
