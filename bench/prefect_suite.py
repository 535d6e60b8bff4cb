"""The scenarios of ``bench/suite.py`` on Prefect 3's ``flow.serve``: bench/results/prefect.json.

    .venv/bin/python bench/prefect_suite.py            # or: make bench-prefect
    .venv/bin/python bench/prefect_suite.py --quick    # small counts, about 5 minutes

Stage 1 (the interpreter you start it with) creates bench/.venv-prefect with
``python3 -m venv`` when it is missing or stale and installs bench/prefect_requirements.txt
into it; nothing of Prefect goes into the project's .venv. Stage 2 is this same script
re-executed by that venv's interpreter: the floors are measured with Prefect's python,
a Prefect server runs on loopback with SQLite in a temporary PREFECT_HOME, and the
scenarios run on real ``prefect.serve`` processes (bench/prefect_flows/serve.py).
Prefect does about one no-op run per second here, so the counts are smaller than
dockyard's and every scenario is capped in time; ``params`` records what was done.
Every wait has a deadline and every process is stopped (its whole process group) in a
``finally``. See bench/README.md, "Against Prefect".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # _common, _procs, _floors (stdlib and httpx only)

import _floors  # noqa: E402
import _procs  # noqa: E402
import httpx  # noqa: E402
from _common import BenchError, wait_for  # noqa: E402

VENV = BENCH_DIR / ".venv-prefect"
REQUIREMENTS = BENCH_DIR / "prefect_requirements.txt"
FLOWS = BENCH_DIR / "prefect_flows"
DEFAULT_OUT = BENCH_DIR / "results" / "prefect.json"
STAMP = VENV / "bench-stamp.json"
STAGE2 = "BENCH_PREFECT_STAGE2"  # set in the re-executed stage's environment
INSTALL_DEADLINE = 600.0
SERVER_DEADLINE = 120.0  # seconds for `prefect server start` to answer /api/health
START_DEADLINE = 90.0  # seconds for a serve process to answer /health
STOP_DEADLINE = 15.0  # seconds between SIGTERM and SIGKILL of a process group we started
RUN_DEADLINE = 60.0  # seconds for one ad-hoc run to end (Prefect polls every 10 s)
REQUEST_TIMEOUT = 30.0
SETTLED = 5.0  # seconds a serve process is up before its idle RSS is read
LEVELS = (1, 2, 4, 8)  # limits of the throughput series; 4 is adhoc.rate4 itself
RETRIES, RETRY_CODES = 5, (429, 502, 503, 504)
LIMIT = "5"  # runs at once where a scenario names none (prefect.serve's default is no limit)
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
# What `prefect.serve` imports before it serves (the floor.import of this target).
SERVE_IMPORTS = ["prefect", "prefect.runner", "prefect.runner.server", "prefect.deployments"]


# -- stage 1: the Prefect virtualenv ------------------------------------------------------


def _stamp(python: str) -> dict[str, str]:
    base = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return {"requirements_sha256": digest, "base_python": base}


def ensure_venv(python: str) -> float:
    """Create or refresh bench/.venv-prefect; returns the seconds the install took (0 if
    the venv was current)."""
    wanted = _stamp(python)
    vpy = VENV / "bin" / "python"
    with contextlib.suppress(OSError, ValueError):
        if vpy.exists() and json.loads(STAMP.read_text()) == wanted:
            return 0.0
    print(f"installing {REQUIREMENTS.name} into {VENV} …", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    shutil.rmtree(VENV, ignore_errors=True)
    steps = [
        [python, "-m", "venv", str(VENV)],
        [str(vpy), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(REQUIREMENTS)],
    ]  # fmt: skip
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_DEADLINE)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{' '.join(argv[:4])} … took over {INSTALL_DEADLINE:g} s") from None
        if done.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            raise BenchError(f"{' '.join(argv[:4])} … failed:\n{done.stderr[-2000:]}")
    STAMP.write_text(json.dumps(wanted) + "\n", encoding="utf-8")
    return time.perf_counter() - t0


def stage1(argv: list[str], args: argparse.Namespace) -> int:
    t0 = time.time()
    python = args.python or shutil.which("python3") or sys.executable
    install = ensure_venv(python)
    env = dict(os.environ)
    env[STAGE2] = json.dumps(
        {"install_seconds": round(install, 1), "started": t0, "dockyard": _dockyard_version()}
    )
    vpy = str(VENV / "bin" / "python")
    # The measurements are this same script under Prefect's interpreter (its floors too).
    return subprocess.run([vpy, str(Path(__file__).resolve()), *argv], env=env).returncode


def _dockyard_version() -> str:
    try:
        from dockyard import __version__
    except ImportError:
        return "unknown"
    return str(__version__)


# -- stage 2: processes -------------------------------------------------------------------


class Group:
    """A process in its own session whose output goes to a file; stop() ends the group."""

    def __init__(self, argv: list[str], tmp: Path, name: str, **env: str) -> None:
        self.argv, self.name = argv, name
        self.log = tmp / f"{name}.log"
        self.started = time.perf_counter()
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                argv, cwd=FLOWS, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self) -> int:
        """SIGTERM to the group, up to STOP_DEADLINE, then SIGKILL to the group and to any
        descendant that left it (a run process in a session of its own)."""
        left = _procs.descendants(self.pid) if self.popen.poll() is None else []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            print(f"warning: {self.name} ignored SIGTERM; killing it", file=sys.stderr)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_DEADLINE)
        return self.popen.returncode


@contextlib.contextmanager
def started(argv: list[str], tmp: Path, name: str, **env: str) -> Iterator[Group]:
    proc = Group(argv, tmp, name, **env)
    try:
        yield proc
    finally:
        code = proc.stop()
        if code not in (0, -signal.SIGTERM, -signal.SIGKILL):
            print(f"warning: {name} (pid {proc.pid}) exited with {code}", file=sys.stderr)


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_env(home: Path, api_port: int) -> dict[str, str]:
    """Every child's Prefect settings: loopback, a temporary home, nothing that phones out."""
    return dict(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{api_port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",  # the server's start-up telemetry
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS="false",
        PYTHONUNBUFFERED="1",
        DO_NOT_TRACK="1",
    )


def _ok(client: Any, path: str) -> bool:
    try:
        return bool(client.get(path).status_code == 200)
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def prefect_server(tmp: Path) -> Iterator[tuple[Group, Any, float]]:
    """`prefect server start` on a free loopback port (SQLite in PREFECT_HOME), until
    /api/health answers; yields the process, an API client and the start-up seconds."""
    port = free_port()
    for key in [k for k in os.environ if k.startswith("PREFECT_")]:
        del os.environ[key]  # the user's profile must not change what is measured
    os.environ.update(prefect_env(tmp / "prefect-home", port))
    argv = [str(Path(sys.executable).parent / "prefect"), "server", "start"]
    with started([*argv, "--host", "127.0.0.1", "--port", str(port)], tmp, "server") as proc:
        base = f"http://127.0.0.1:{port}/api"
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as api:

            def up() -> bool:
                proc.check_alive()
                return _ok(api, "/health")

            wait_for("the Prefect server's /api/health", up, SERVER_DEADLINE, 0.05)
            yield proc, api, time.perf_counter() - proc.started


class Serve(Group):
    """``python serve.py FLOW --name NAME …`` with the runner's webserver on a free port."""

    def __init__(self, tmp: Path, name: str, flow: str, *args: str, **env: str) -> None:
        self.port = free_port()
        self.deployment = name
        self.flow = flow
        argv = [sys.executable, str(FLOWS / "serve.py"), flow, "--name", name, *args]
        super().__init__(
            argv, tmp, name, PREFECT_RUNNER_SERVER_ENABLE="true",
            PREFECT_RUNNER_SERVER_HOST="127.0.0.1", PREFECT_RUNNER_SERVER_PORT=str(self.port),
            **env,
        )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def healthy(self, deadline: float = START_DEADLINE, poll: float = 0.005) -> float:
        """Wait for the runner's /health 200; seconds since spawn."""

        def up() -> bool:
            self.check_alive()
            return _ok(self.client, "/health")

        wait_for(f"{self.name}'s /health", up, deadline, poll)
        return time.perf_counter() - self.started

    def stop(self) -> int:
        self.client.close()
        return super().stop()


@contextlib.contextmanager
def serving(ctx: Ctx, name: str, flow: str, *args: str, **env: str) -> Iterator[Serve]:
    """A serve process; afterwards its deployments are deleted with their scheduled runs,
    so the server does not go on scheduling (and marking Late) for a scenario that ended."""
    proc = Serve(ctx.tmp, name, flow, *args, **env)
    try:
        yield proc
    finally:
        code = proc.stop()
        if code not in (0, -signal.SIGTERM, -signal.SIGKILL):
            print(f"warning: {name} (pid {proc.pid}) exited with {code}", file=sys.stderr)
        with contextlib.suppress(httpx.HTTPError, BenchError):  # never hide why it ended
            ctx.api.forget(name)


def far_hour_cron() -> str:
    """Every minute of the hour two hours from now (UTC): due soon enough to be planned,
    never within a measurement (the same cron as bench/suite.py)."""
    return f"* {(datetime.now(UTC) + timedelta(hours=2)).hour} * * *"


# -- stage 2: the Prefect API -------------------------------------------------------------


def stamp(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def ended_at(run: dict[str, Any]) -> float:
    end = stamp(run["end_time"])
    if end is None:
        raise BenchError(f"run {run['id']} is {run['state_type']} without an end_time")
    return end


class Api:
    """The few REST calls a Prefect user's client makes to trigger and read runs."""

    retries = 0  # over every Api: answers retried (bench's environment.api_retries)

    def __init__(self, client: Any) -> None:
        self.client = client

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        # Under load the server's SQLite is locked and it answers 503; Prefect's own client
        # retries those (PREFECT_CLIENT_MAX_RETRIES=5, with backoff) and so does this one.
        for attempt in range(RETRIES + 1):
            response = self.client.request(method, path, json=body)
            if response.status_code not in RETRY_CODES or attempt == RETRIES:
                break
            Api.retries += 1
            time.sleep(min(4.0, 0.25 * 2**attempt))
        if response.status_code >= 400:
            raise BenchError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    def deployment_id(self, flow: str, name: str) -> str:
        return str(self._json("GET", f"/deployments/name/{flow}/{name}")["id"])

    def trigger(self, deployment_id: str) -> str:
        return str(self._json("POST", f"/deployments/{deployment_id}/create_flow_run", {})["id"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/flow_runs/{run_id}"))

    def ended(self, run_id: str) -> dict[str, Any] | None:
        run = self.run(run_id)
        return run if run["state_type"] in TERMINAL else None

    def _filter(self, ids: list[str], states: tuple[str, ...] | None) -> dict[str, Any]:
        runs: dict[str, Any] = {"deployment_id": {"any_": ids}}
        if states:
            runs["state"] = {"type": {"any_": list(states)}}
        return {"flow_runs": runs}

    def count(self, ids: list[str], states: tuple[str, ...] | None = None) -> int:
        return int(self._json("POST", "/flow_runs/count", self._filter(ids, states)))

    def runs(self, ids: list[str], states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(200):  # bounded: 40,000 runs at most
            body = {**self._filter(ids, states), "limit": 200, "offset": 200 * page}
            batch = self._json("POST", "/flow_runs/filter", body)
            found += batch
            if len(batch) < 200:
                break
        return found

    def by_state(self, ids: list[str]) -> dict[str, int]:
        return {s.lower(): n for s in TERMINAL if s != "COMPLETED" and (n := self.count(ids, (s,)))}

    def deployments(self, prefix: str) -> int:
        body = {"deployments": {"name": {"like_": prefix}}}
        return int(self._json("POST", "/deployments/count", body))

    def forget(self, prefix: str) -> None:
        for dep in self.deployment_ids(prefix):
            self.client.delete(f"/deployments/{dep}")  # 404 if already gone: fine

    def deployment_ids(self, prefix: str) -> list[str]:
        found: list[str] = []
        for page in range(50):  # bounded: 10,000 deployments at most
            body = {"deployments": {"name": {"like_": prefix}}, "limit": 200, "offset": 200 * page}
            batch = self._json("POST", "/deployments/filter", body)
            found += [str(d["id"]) for d in batch]
            if len(batch) < 200:
                break
        return found


class Feeder:
    """Keeps up to ``backlog`` runs of one deployment not yet ended, ``total`` in all."""

    def __init__(self, api: Api, dep: str, backlog: int, total: int) -> None:
        self.api, self.dep, self.backlog, self.total = api, dep, backlog, total
        self.base = api.count([dep], TERMINAL)
        self.created = 0
        self.done = 0

    def step(self) -> int:
        self.done = self.api.count([self.dep], TERMINAL) - self.base
        while self.created < self.total and self.created - self.done < self.backlog:
            self.api.trigger(self.dep)
            self.created += 1
        return self.done


def rss_tree(pid: int) -> float:
    return _procs.tree_memory_mib(pid)["rss"]


# -- stage 2: scenarios -------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """How much each scenario does; every loop is also capped in time (``*_seconds``)."""

    spawn: int = 20
    spawn_cpu: int = 30
    imports: int = 5
    import_rss: int = 3
    requests: int = 1000
    warmup: int = 50
    spawn_rate: int = 500
    spawn_rate_seconds: float = 60
    idle_window: float = 5
    starts: int = 4
    latency_runs: int = 6
    cpu_runs: int = 8
    rate_runs: int = 16
    rate_seconds: float = 90
    level_runs: int = 2  # times the limit, for the other points of the series
    level_seconds: float = 40
    busy_seconds: float = 90
    lateness_seconds: float = 30
    hundred: int = 20
    idle_deployments: int = 100
    idle_seconds: float = 60
    memory_runs: int = 24
    memory_mark: int = 3
    memory_seconds: float = 90


QUICK = Counts(
    spawn=5, spawn_cpu=5, imports=2, import_rss=1, requests=100, warmup=10, spawn_rate=40,
    spawn_rate_seconds=20, idle_window=1, starts=1, latency_runs=2, cpu_runs=2, rate_runs=4,
    rate_seconds=40, level_runs=1, level_seconds=25, busy_seconds=40, lateness_seconds=8,
    hundred=4, idle_deployments=10, idle_seconds=10, memory_runs=8, memory_mark=2,
    memory_seconds=40,
)  # fmt: skip


@dataclass
class Ctx:
    tmp: Path
    counts: Counts
    api: Api
    server_pid: int


def floors(ctx: Ctx) -> dict[str, Any]:
    c = ctx.counts
    out = {"floor.spawn": _floors.spawn(c.spawn)}
    out["floor.spawn_cpu"] = _floors.spawn_cpu(c.spawn_cpu, c.idle_window)
    out.update(_floors.imports(SERVE_IMPORTS, c.imports, c.import_rss, ctx.tmp))
    out["floor.uvicorn_health_p99"] = _floors.uvicorn_health(c.requests, c.warmup, ctx.tmp)
    out["floor.spawn_rate4"] = _floors.spawn_rate(c.spawn_rate, 4, c.spawn_rate_seconds)
    return out


def start(ctx: Ctx) -> dict[str, Any]:
    """start.health, idle.rss, idle.rss_tree: fresh serve processes, one deployment that
    does not fire (the Prefect server is already up and not counted)."""
    seconds, rss, tree = [], [], []
    for i in range(ctx.counts.starts):
        with serving(ctx, f"start-{i}", "noop", "--cron", far_hour_cron()) as proc:
            seconds.append(proc.healthy())
            time.sleep(max(0.0, proc.started + SETTLED - time.perf_counter()))  # settle
            proc.check_alive()
            rss.append(_procs.rss_mib(proc.pid))
            tree.append(rss_tree(proc.pid))
    server = "the Prefect server is a separate process, not included"
    return {
        "start.health": _procs.result(
            _procs.median(seconds), "s", "median", seconds, poll_seconds=0.005,
            measured="spawn of `python serve.py` → first 200 of the runner's /health",
            server=server,
        ),
        "idle.rss": _procs.result(_procs.median(rss), "MiB", "median", rss, up_seconds=SETTLED),
        "idle.rss_tree": _procs.result(
            _procs.median(tree), "MiB", "median", tree, up_seconds=SETTLED,
            processes="serve and its descendants", server=server,
            server_rss_mib=_procs.rss_mib(ctx.server_pid),
        ),
    }  # fmt: skip


def adhoc(ctx: Ctx) -> dict[str, Any]:
    """adhoc.latency (sequential runs on an idle process) and run.cpu_per_noop."""
    c = ctx.counts
    with serving(ctx, "adhoc", "noop", "--limit", LIMIT) as proc:
        proc.healthy()
        dep = ctx.api.deployment_id("noop", "adhoc")
        warm = ctx.api.trigger(dep)
        wait_for("the warm-up run", lambda: ctx.api.ended(warm), RUN_DEADLINE, 0.1)
        seconds = []
        for _ in range(c.latency_runs):
            t0 = time.time()
            run_id = ctx.api.trigger(dep)
            run = wait_for(
                "an ad-hoc run to end", partial(ctx.api.ended, run_id), RUN_DEADLINE, 0.1
            )
            if run["state_type"] != "COMPLETED":
                raise BenchError(f"run {run_id} ended {run['state_type']}")
            seconds.append(ended_at(run) - t0)
        cpu = _cpu_per_run(ctx, proc, dep)
        others = ctx.api.by_state([dep])
    return {
        "adhoc.latency": _procs.result(
            _procs.median(seconds), "s", "median", seconds, p99=_procs.percentile(seconds, 0.99),
            measured="time before POST /api/deployments/{id}/create_flow_run → the run's "
            "end_time (set when the run process reports Completed)",
            runner_poll_seconds=_poll_seconds(), limit=int(LIMIT),
        ),
        "run.cpu_per_noop": _procs.result(
            cpu["tree_cpu_per_unit"], "CPU-s", "mean", [cpu["tree_cpu_per_unit"]],
            n=c.cpu_runs, server="included: serve process tree + Prefect server tree",
            method="/proc/PID/stat of both trees, reaped children included, less their idle "
            "rate", other_states=others, **cpu,
        ),
    }  # fmt: skip


def _poll_seconds() -> int:
    return int(os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY", "10"))


def _cpu_per_run(ctx: Ctx, proc: Serve, dep: str) -> dict[str, Any]:
    """As _floors.cpu_of, over two trees: a Prefect run costs the server too."""
    n, idle = ctx.counts.cpu_runs, ctx.counts.idle_window
    pids = (proc.pid, ctx.server_pid)

    def read() -> tuple[float, float, float, float]:
        serve, server = (_procs.tree_cpu_seconds(p) for p in pids)
        return _procs.machine_cpu_seconds(), serve + server, serve, time.monotonic()

    r0 = read()
    time.sleep(idle)  # the idle window the busy one is corrected by, not a wait
    r1 = read()
    base = ctx.api.count([dep], TERMINAL)
    for _ in range(n):
        ctx.api.trigger(dep)
    wait_for(f"{n} runs to end", lambda: ctx.api.count([dep], TERMINAL) - base >= n,
             RUN_DEADLINE + 3 * n, 0.5)  # fmt: skip
    r2 = read()
    quiet, busy = r1[3] - r0[3], r2[3] - r1[3]

    def per_run(i: int) -> float:
        return (r2[i] - r1[i] - (r1[i] - r0[i]) / quiet * busy) / n

    return {
        "tree_cpu_per_unit": per_run(1),
        "serve_tree_cpu_per_unit": per_run(2),
        "machine_cpu_per_unit": per_run(0),
        "machine_idle_cpu_rate": (r1[0] - r0[0]) / quiet,
        "tree_idle_cpu_rate": (r1[1] - r0[1]) / quiet,
        "busy_seconds": busy,
        "idle_seconds": quiet,
        "count": n,
    }


def rate(ctx: Ctx) -> dict[str, Any]:
    """adhoc.rate4, with the throughput at every limit of LEVELS as its series."""
    c = ctx.counts

    def measure(limit: int) -> dict[str, Any]:
        if limit == 4:
            return _throughput(ctx, limit, c.rate_runs, c.rate_seconds)
        return _throughput(ctx, limit, max(2, c.level_runs * limit), c.level_seconds)

    return _procs.throughput_series(LEVELS, measure)


def _throughput(ctx: Ctx, limit: int, runs: int, cap: float) -> dict[str, Any]:
    name = f"rate-{limit}"
    with serving(ctx, name, "noop", "--limit", str(limit)) as proc:
        proc.healthy()
        dep = ctx.api.deployment_id("noop", name)
        t0 = time.time()
        deadline = time.monotonic() + cap
        for _ in range(runs):
            ctx.api.trigger(dep)
        while time.monotonic() < deadline and ctx.api.count([dep], TERMINAL) < runs:
            proc.check_alive()
            time.sleep(0.2)
        done = ctx.api.runs([dep], ("COMPLETED",))
        others = ctx.api.by_state([dep])
    ends = sorted(ended_at(r) - t0 for r in done)
    capped = len(ends) < runs
    elapsed = cap if capped or not ends else ends[-1]
    return _procs.result(
        len(ends) / elapsed, "runs/s", "rate", ends, limit=limit, requested=runs,
        completed=len(ends), elapsed_seconds=elapsed, capped=capped, other_states=others,
        measured="completed runs / (first POST → last recorded end_time)",
        runner_poll_seconds=_poll_seconds(),
    )  # fmt: skip


def health_busy(ctx: Ctx) -> dict[str, Any]:
    """health.p99_busy: sequential GET /health of the runner while no-op runs execute at
    limit 4 (a backlog of 8 kept by a thread); batches of ``requests`` until runs ended
    during one."""
    c = ctx.counts
    with serving(ctx, "busy", "noop", "--limit", "4") as proc:
        proc.healthy()
        dep = ctx.api.deployment_id("noop", "busy")
        base_url = str(ctx.api.client.base_url)

        @contextlib.contextmanager
        def feeding() -> Iterator[Callable[[], int]]:
            with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
                yield Feeder(Api(client), dep, backlog=8, total=10**6).step

        cap = c.busy_seconds + RUN_DEADLINE
        feed = _procs.FeedThread(feeding, cap, warm_after=1, pause=0.2)
        feed.thread.start()
        try:
            wait_for("the first runs to end", feed.warm, RUN_DEADLINE)
            _floors.health_latencies(proc.client, c.warmup)
            seconds: list[float] = []
            during = 0
            end = time.monotonic() + c.busy_seconds
            while during == 0 and time.monotonic() < end:
                before = feed.done
                seconds += _floors.health_latencies(proc.client, c.requests)
                during = feed.done - before
            if during == 0:
                raise BenchError("no run ended while /health was measured")
        finally:
            feed.stop.set()
            feed.thread.join(timeout=30)
    return {
        "health.p99_busy": _procs.result(
            _procs.percentile(seconds, 0.99), "s", "p99", seconds,
            p50=_procs.percentile(seconds, 0.5), runs_completed_during=during, limit=4,
            backlog=8, endpoint="the runner's webserver (PREFECT_RUNNER_SERVER_ENABLE)",
        )
    }  # fmt: skip


def lateness_one(ctx: Ctx) -> dict[str, Any]:
    return {"lateness.one": _lateness(ctx, 1, ctx.counts.lateness_seconds, "late-one")}


def lateness_hundred(ctx: Ctx) -> dict[str, Any]:
    c = ctx.counts
    return {"lateness.hundred": _lateness(ctx, c.hundred, c.lateness_seconds, "late-many")}


def _lateness(ctx: Ctx, deployments: int, window: float, name: str) -> dict[str, Any]:
    """``deployments`` of prefect_flows/lateness.py on 1 s intervals; the slots scheduled in
    a ``window`` of whole seconds that starts 2 s after the runner is healthy."""
    out = ctx.tmp / f"{name}.txt"
    args = ["--deployments", str(deployments), "--interval", "1", "--limit", LIMIT]
    with serving(ctx, name, "lateness", *args, BENCH_LATENESS_FILE=str(out)) as proc:
        proc.healthy(START_DEADLINE + deployments)
        begin = int(time.time()) + 2
        end = begin + int(window)
        expected = deployments * (end - begin)
        _procs.drain_lateness(out, begin, end, expected, proc)
        names = [name] if deployments == 1 else [f"{name}-{i}" for i in range(deployments)]
        ids = [ctx.api.deployment_id("lateness", n) for n in names]
        scheduled = [
            r for r in ctx.api.runs(ids)
            if begin <= (stamp(r["expected_start_time"]) or 0) < end
        ]  # fmt: skip
    ran = _procs.lateness_slots(out, begin, end)
    late = sorted(ran.values())
    if not late:
        before = sorted(_procs.lateness_slots(out, 0, begin).values())
        raise BenchError(
            f"none of the {expected} slots of the {end - begin} s window ran by 10 s after it "
            f"({len(scheduled)} were scheduled; the runner, at limit {LIMIT}, was still on "
            f"earlier slots: {len(before)} ran"
            + (f", {before[0]:.1f}–{before[-1]:.1f} s late)" if before else ")")
        )
    p = _procs.percentile
    return _procs.result(
        p(late, 0.99), "s", "p99", late, p50=p(late, 0.5), p95=p(late, 0.95), max=late[-1],
        deployments=deployments, interval_seconds=1, window_seconds=end - begin,
        slots_expected=expected, slots_run=len(ran), slots_never_run=expected - len(ran),
        slots_never_scheduled=expected - len(scheduled), limit=int(LIMIT),
        runner_poll_seconds=_poll_seconds(),
        measured="body's time.time() - runtime.flow_run.scheduled_start_time",
    )  # fmt: skip


def idle_cpu(ctx: Ctx) -> dict[str, Any]:
    """idle.cpu_1000 (with fewer deployments): CPU of the serve process tree, and of the
    Prefect server beside it, with deployments on a cron that does not fire meanwhile."""
    c, n, cron = ctx.counts, ctx.counts.idle_deployments, far_hour_cron()
    with serving(ctx, "idle", "noop", "--deployments", str(n), "--cron", cron) as proc:
        up = proc.healthy(START_DEADLINE + 2 * n, 0.05)  # after every deployment is added
        if (added := ctx.api.deployments("idle-")) < n:
            raise BenchError(f"{added} of {n} deployments registered")
        time.sleep(SETTLED)  # start-up work (registration, scheduling) is not idling
        samples: list[float] = []
        t0, serve0, server0 = time.monotonic(), *_trees(proc.pid, ctx.server_pid)
        machine0 = _procs.machine_cpu_seconds()
        last_t, last = t0, serve0
        while (now := time.monotonic()) < t0 + c.idle_seconds:
            time.sleep(min(5.0, t0 + c.idle_seconds - now))  # the measurement window
            proc.check_alive()
            cpu, t = _procs.tree_cpu_seconds(proc.pid), time.monotonic()
            samples.append(100 * (cpu - last) / (t - last_t))
            last_t, last = t, cpu
        server = _procs.tree_cpu_seconds(ctx.server_pid) - server0
        machine = _procs.machine_cpu_seconds() - machine0
        runs = ctx.api.count(ctx.api.deployment_ids("idle-"), ("RUNNING", *TERMINAL))
    if runs:
        raise BenchError(f"{runs} run(s) started while the process was to be idle")
    span = last_t - t0
    return {
        "idle.cpu_1000": _procs.result(
            100 * (last - serve0) / span, "%core", "mean", samples, deployments=n,
            requested_by_schema=1000, window_seconds=span, sample_seconds=5, cron=cron,
            start_to_health_seconds=up, server="not included in value",
            server_cpu_percent=100 * server / span, machine_cpu_percent=100 * machine / span,
            runner_poll_seconds=_poll_seconds(),
        )
    }  # fmt: skip


def _trees(*pids: int) -> list[float]:
    return [_procs.tree_cpu_seconds(pid) for pid in pids]


def memory(ctx: Ctx) -> dict[str, Any]:
    """memory.runs: serve RSS after ``memory_mark`` and after ``memory_runs`` no-op runs."""
    c = ctx.counts
    with serving(ctx, "memory", "noop", "--limit", "4") as proc:
        proc.healthy()
        dep = ctx.api.deployment_id("noop", "memory")
        feeder = Feeder(ctx.api, dep, backlog=16, total=c.memory_runs)
        xs: list[float] = [0]
        ys, mark = [_procs.rss_mib(proc.pid)], None
        deadline = time.monotonic() + c.memory_seconds
        while time.monotonic() < deadline and feeder.done < c.memory_runs:
            done = feeder.step()
            if done > xs[-1]:
                xs.append(done)
                ys.append(_procs.rss_mib(proc.pid))
                if mark is None and done >= c.memory_mark:
                    mark = (done, ys[-1])
            proc.check_alive()
            time.sleep(0.2)
        tree, others = _procs.tree_memory_mib(proc.pid), ctx.api.by_state([dep])
    if mark is None or xs[-1] <= mark[0]:
        raise BenchError(
            f"{feeder.done} runs ended in {c.memory_seconds:g} s: not enough for two "
            f"readings (the first after {c.memory_mark})"
        )
    return {
        "memory.runs": _procs.result(
            ys[-1] / mark[1], "ratio", "ratio", ys, n=int(xs[-1]), series={"x": xs, "y": ys},
            first_runs=mark[0], first_rss_mib=mark[1], last_runs=xs[-1], last_rss_mib=ys[-1],
            requested=c.memory_runs, capped=xs[-1] < c.memory_runs, limit=4,
            tree_rss_mib=tree["rss"], tree_pss_mib=tree["pss"], other_states=others,
        )
    }  # fmt: skip


# (label, keys, estimate of its seconds at full counts for the budget, measure)
SCENARIOS: list[tuple[str, tuple[str, ...], float, Callable[[Ctx], dict[str, Any]]]] = [
    ("floors", ("floor.spawn", "floor.spawn_cpu", "floor.import", "floor.import_rss",
                "floor.uvicorn_health_p99", "floor.spawn_rate4"), 70, floors),
    ("start → /health, idle RSS", ("start.health", "idle.rss", "idle.rss_tree"), 40, start),
    ("ad-hoc latency, CPU per run", ("adhoc.latency", "run.cpu_per_noop"), 100, adhoc),
    ("lateness, 1 deployment", ("lateness.one",), 50, lateness_one),
    ("throughput against limit", ("adhoc.rate4",), 150, rate),
    ("/health while runs execute", ("health.p99_busy",), 40, health_busy),
    ("lateness, many deployments", ("lateness.hundred",), 60, lateness_hundred),
    ("idle CPU, many deployments", ("idle.cpu_1000",), 120, idle_cpu),
    ("memory over runs", ("memory.runs",), 75, memory),
]  # fmt: skip
KEYS = [key for _, keys, _, _ in SCENARIOS for key in keys]


def _environment(counts: Counts, quick: bool, stage: dict[str, Any]) -> dict[str, Any]:
    import fastapi
    import prefect
    import uvicorn

    return {
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "dockyard": stage.get("dockyard", "unknown"),
        "executable": sys.executable,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target_version": prefect.__version__,
        "httpx": httpx.__version__,
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
        "quick": quick,
        "counts": dataclasses.asdict(counts),
        "install_seconds": stage.get("install_seconds"),
        "database": "SQLite in a temporary PREFECT_HOME",
        "loadavg_start": _procs.loadavg(),
    }


def run_suite(args: argparse.Namespace, stage: dict[str, Any], tmp: Path) -> dict[str, Any]:
    counts = QUICK if args.quick else Counts()
    wanted = set(args.only) if args.only else set(KEYS)
    doc: dict[str, Any] = {
        "target": "prefect",
        "environment": _environment(counts, args.quick, stage),
        "scenarios": {},
        "skipped": {},
        "timings": {},
    }
    budget_end = stage.get("started", time.time()) + args.budget_seconds
    selected = [s for s in SCENARIOS if wanted & set(s[1])]
    with prefect_server(tmp) as (server, client, server_seconds):
        doc["environment"]["server_start_seconds"] = round(server_seconds, 2)
        ctx = Ctx(tmp, counts, Api(client), server.pid)
        for i, (label, keys, estimate, measure) in enumerate(selected, 1):
            chosen = [k for k in keys if k in wanted]
            left = budget_end - time.time()
            if not args.quick and left < estimate:
                reason = f"time budget: {left:.0f} s left of --budget-seconds, needs ~{estimate:g}"
                doc["skipped"].update(dict.fromkeys(chosen, reason))
                continue
            print(f"[{i}/{len(selected)}] {label} …", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                found = measure(ctx)
            except Exception as exc:  # one scenario's failure must not lose the others
                reason = f"failed: {type(exc).__name__}: {exc}"
                print(f"    {reason}", file=sys.stderr)
                doc["skipped"].update(dict.fromkeys(chosen, reason))
            else:
                for key in chosen:
                    entry = doc["scenarios"][key] = found[key]
                    print(f"    {key} = {entry['value']:.4g} {entry['unit']}", file=sys.stderr)
            doc["timings"][label] = round(time.perf_counter() - t0, 1)
            print(f"    ({doc['timings'][label]:.0f} s)", file=sys.stderr, flush=True)
    doc["environment"]["loadavg_end"] = _procs.loadavg()
    doc["environment"]["api_retries"] = Api.retries
    return doc


def stage2(args: argparse.Namespace) -> int:
    stage = json.loads(os.environ.pop(STAGE2))
    t0 = time.perf_counter()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        doc = run_suite(args, stage, Path(tempfile.mkdtemp(dir=args.workdir)))
    else:
        with tempfile.TemporaryDirectory(prefix="prefect-suite-") as tmp:
            doc = run_suite(args, stage, Path(tmp))
    doc["elapsed_seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    total = doc["elapsed_seconds"] + (stage.get("install_seconds") or 0)
    print(
        f"{len(doc['scenarios'])} scenario(s), {len(doc['skipped'])} skipped, in "
        f"{total:.0f} s (install included); wrote {args.out}"
    )
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenario keys: " + ", ".join(KEYS),
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small counts (about 5 min)")
    parser.add_argument("--only", metavar="KEY,...", type=_keys, help="scenarios to run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write")
    parser.add_argument("--workdir", type=Path, help="keep the Prefect home and logs here")
    parser.add_argument(
        "--budget-seconds", type=float, default=840,
        help="skip (with the reason) scenarios that no longer fit, counted from the start, "
        "install included (default 840; not applied with --quick)",
    )  # fmt: skip
    parser.add_argument("--python", help="interpreter for the venv (default: python3)")
    return parser.parse_args(argv)


def _keys(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if unknown := sorted(set(keys) - set(KEYS)):
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {', '.join(unknown)}")
    return keys


def main(argv: list[str]) -> int:
    args = parse(argv)
    if STAGE2 not in os.environ:
        return stage1(argv, args)
    return stage2(args)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench failed: interrupted", file=sys.stderr)
        sys.exit(1)
