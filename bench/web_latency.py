"""What does the embedded webserver cost? Real serve processes, no mocks.

    .venv/bin/python bench/web_latency.py           # --help for counts and --out

Two figures (see bench/README.md for what each one means):

1. /health latency (p50/p99) over N sequential requests on one keep-alive httpx client,
   first while the serve process is idle (baseline), then, in the same process, while
   2 runs of bench/flows/sleeper.py execute;
2. RSS of an idle serve process with --webserver vs --no-webserver (median of 3 each).

Prints a markdown table and writes everything (samples too) to
bench/results/web_latency.json. Every wait has a deadline and every process this script
starts is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _common import BenchError, environment, wait_for  # bench/ is on sys.path
from _floors import health_latencies

BENCH_DIR = Path(__file__).resolve().parent
SLEEPER = BENCH_DIR / "flows" / "sleeper.py"
NOOP = BENCH_DIR / "flows" / "noop.py"
DEFAULT_OUT = BENCH_DIR / "results" / "web_latency.json"
LISTENING = re.compile(r"webserver listening on (http://[\d.]+:\d+)")
SERVING_MARK = "deployment(s) from"  # dockyard's "serving N deployment(s) from PATH" log line

START_DEADLINE = 30.0  # seconds for a serve process to listen / be serving
RUNNING_DEADLINE = 30.0  # seconds for the queued runs to be Running
STOP_DEADLINE = 15.0  # seconds between SIGTERM and SIGKILL of a process we started
REQUEST_TIMEOUT = 10.0  # seconds for one HTTP request
POLL = 0.05

T = TypeVar("T")


# -- processes ----------------------------------------------------------------------------


class Serve:
    """A `dockyard serve` process on a free loopback port, its output in a file."""

    def __init__(self, args: list[str], tmp: Path, name: str) -> None:
        self.log = tmp / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update({"DOCKYARD_PORT": "0", "PYTHONUNBUFFERED": "1"})
        argv = [sys.executable, "-m", "dockyard", "serve", *args]
        argv += ["--state", str(tmp / f"{name}.db"), "--shutdown-grace", "2"]
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        self.started = time.monotonic()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise BenchError(f"serve exited with {self.popen.returncode}:\n{self.output()[-2000:]}")

    def wait_serving(self) -> None:
        def serving() -> bool:
            self.check_alive()
            return SERVING_MARK in self.output()

        wait_for(f"serve pid {self.popen.pid} to be serving", serving, START_DEADLINE)

    def url(self) -> str:
        def listening() -> str | None:
            self.check_alive()
            match = LISTENING.search(self.output())
            return match.group(1) if match else None

        return wait_for("the webserver to listen", listening, START_DEADLINE)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
        raise BenchError(f"no VmRSS for pid {self.popen.pid}")

    def stop(self) -> int:
        """SIGTERM, wait up to STOP_DEADLINE, then SIGKILL; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                print(f"warning: pid {self.popen.pid} ignored SIGTERM; killing", file=sys.stderr)
                self.popen.kill()
                self.popen.wait(timeout=STOP_DEADLINE)
        return self.popen.returncode


@contextmanager
def serving(*specs: tuple[list[str], str], tmp: Path) -> Iterator[list[Serve]]:
    """Start serve processes; stop every one of them on the way out, whatever happens."""
    with ExitStack() as stack:
        procs: list[Serve] = []
        for args, name in specs:
            proc = Serve(args, tmp, name)
            stack.callback(_stop_warn, proc)
            procs.append(proc)
        yield procs


def _stop_warn(proc: Serve) -> None:
    code = proc.stop()
    if code not in (0, -signal.SIGTERM):
        print(f"warning: serve pid {proc.popen.pid} exited with {code}", file=sys.stderr)


def far_cron() -> list[str]:
    """A daily cron two hours from now (UTC): it does not fire while we measure."""
    at = datetime.now(UTC) + timedelta(hours=2)
    return ["--cron", f"{at.minute} {at.hour} * * *", "--timezone", "UTC"]


# -- statistics ---------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "p50": percentile(ordered, 0.50),
        "p99": percentile(ordered, 0.99),
        "mean": statistics.fmean(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(ordered),
        "samples": samples,
    }


# -- 1. /health latency, idle vs 2 runs executing -----------------------------------------


def running(client: httpx.Client) -> int:
    body = client.get("/api/runs", params={"state": "Running"}).json()
    return int(body["total"])


def latency(n: int, warmup: int, run_seconds: float, tmp: Path) -> dict[str, Any]:
    with (
        serving(([f"{SLEEPER}:sleeper", "--limit", "2"], "latency"), tmp=tmp) as (proc,),
        httpx.Client(base_url=proc.url(), timeout=REQUEST_TIMEOUT) as client,
    ):
        wait_for("/ready", lambda: client.get("/ready").status_code == 200, START_DEADLINE)
        wait_for("/health", lambda: client.get("/health").status_code == 200, START_DEADLINE)
        health_latencies(client, warmup)
        idle = health_latencies(client, n)
        if running(client) != 0:
            raise BenchError("the baseline was not idle: a run was Running")
        for _ in range(2):
            created = client.post(
                "/api/deployments/sleeper/sleeper/runs",
                json={"parameters": {"seconds": run_seconds}},
            )
            if created.status_code != 201:
                raise BenchError(f"queueing a run answered {created.status_code}: {created.text}")
        wait_for("2 runs Running", lambda: running(client) == 2, RUNNING_DEADLINE)
        health_latencies(client, warmup)
        loaded = health_latencies(client, n)
        still = running(client)
        if still != 2:
            raise BenchError(f"only {still} run(s) still Running after the measurement")
    return {"idle": summary(idle), "two_runs": summary(loaded)}


# -- 2. RSS with and without the webserver ------------------------------------------------


def rss(n: int, up: float, tmp: Path) -> dict[str, Any]:
    cron = far_cron()
    specs = [([f"{NOOP}:noop", *cron, "--webserver"], f"web-{i}") for i in range(n)]
    specs += [([f"{NOOP}:noop", *cron, "--no-webserver"], f"noweb-{i}") for i in range(n)]
    with serving(*specs, tmp=tmp) as procs:
        for proc in procs:
            proc.wait_serving()
        for proc in procs[:n]:  # a few requests: the routes and the app are warmed up
            with httpx.Client(base_url=proc.url(), timeout=REQUEST_TIMEOUT) as client:
                healthy = lambda c=client: c.get("/health").status_code == 200  # noqa: E731
                wait_for("the first tick", healthy, START_DEADLINE)  # 503 "starting" before
                for path in ("/health", "/ready", "/metrics", "/api/deployments", "/api/runs"):
                    client.get(path).raise_for_status()
        for proc in procs:  # each one is measured once it has been up `up` seconds
            time.sleep(max(0.0, proc.started + up - time.monotonic()))
            proc.check_alive()
        web = [proc.rss_mib() for proc in procs[:n]]
        noweb = [proc.rss_mib() for proc in procs[n:]]
        if any(LISTENING.search(proc.output()) for proc in procs[n:]):
            raise BenchError("a --no-webserver process listened")
    return {
        "webserver": summary(web),
        "no_webserver": summary(noweb),
        "added_mib": statistics.median(web) - statistics.median(noweb),
    }


# -- report -------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


def table(results: dict[str, Any]) -> str:
    n = results["latency"]["idle"]["n"]
    out = ["| figure | p50 | p99 | max | n |", "|---|---:|---:|---:|---:|"]
    for label, key in (("idle (baseline)", "idle"), ("2 runs executing", "two_runs")):
        s = results["latency"][key]
        out.append(
            f"| `GET /health`, {label} | {ms(s['p50'])} | {ms(s['p99'])} "
            f"| {ms(s['max'])} | {s['n']} |"
        )
    out += ["", "| idle serve process RSS | median | min | max | n |", "|---|---:|---:|---:|---:|"]
    for label, key in (("`--webserver`", "webserver"), ("`--no-webserver`", "no_webserver")):
        s = results["rss"][key]
        out.append(
            f"| {label} | {s['p50']:.1f} MiB | {s['min']:.1f} MiB | {s['max']:.1f} MiB | {s['n']} |"
        )
    lat, env = results["latency"], results["environment"]
    out.append("")
    out.append(
        f"2 runs executing: p50 {lat['two_runs']['p50'] / lat['idle']['p50']:.2f}× and "
        f"p99 {lat['two_runs']['p99'] / lat['idle']['p99']:.2f}× the idle baseline "
        f"({n} sequential requests each, one keep-alive client); "
        f"the webserver adds {results['rss']['added_mib']:.1f} MiB of RSS (medians)."
    )
    out.append(
        f"({env['platform']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"dockyard {env['dockyard']}, httpx {env['httpx']}, {results['elapsed_seconds']:.0f} s)"
    )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per phase (1.)")
    parser.add_argument("--warmup", type=int, default=50, help="unrecorded requests first (1.)")
    parser.add_argument(
        "--run-seconds",
        type=float,
        default=120.0,
        help="how long each of the 2 runs sleeps; must outlast the measurement (1.)",
    )
    parser.add_argument("--processes", type=int, default=3, help="processes of each kind (2.)")
    parser.add_argument("--up", type=float, default=3.0, help="seconds up before RSS (2.)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    t0 = time.perf_counter()
    results: dict[str, Any] = {"environment": environment(httpx=httpx.__version__)}
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(
            f"1/2 /health latency ({args.requests} requests, idle then 2 runs) …", file=sys.stderr
        )
        results["latency"] = latency(args.requests, args.warmup, args.run_seconds, tmp)
        print(f"2/2 idle RSS ({args.processes} + {args.processes} processes) …", file=sys.stderr)
        results["rss"] = rss(args.processes, args.up, tmp)
    results["elapsed_seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    sys.stderr.flush()
    print(table(results), flush=True)
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
