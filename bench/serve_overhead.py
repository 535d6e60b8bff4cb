"""How much does `dockyard serve` cost? Real processes, no mocks.

    .venv/bin/python bench/serve_overhead.py        # or: make bench

Three figures (see bench/README.md for what each one means):

1. serve start -> first run Completed, interval 1 s, no-op flow (N fresh processes);
2. duration of a no-op run as the runner records it (ended_at - started_at), next to
   the start-to-exit time of `python -c "pass"` and of importing the run child;
3. idle RSS of a serve process (cron far away) next to a bare sleeping interpreter.

Prints a markdown table and writes everything (samples too) to
bench/results/serve_overhead.json. Every wait has a deadline and every process this
script starts is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from _common import BenchError, environment, wait_for  # bench/ is on sys.path

from dockyard.core.states import RunState
from dockyard.store import open_store

BENCH_DIR = Path(__file__).resolve().parent
NOOP = BENCH_DIR / "flows" / "noop.py"
DEFAULT_OUT = BENCH_DIR / "results" / "serve_overhead.json"
READY_MARK = "deployment(s) from"  # dockyard's "serving N deployment(s) from PATH" log line

STOP_DEADLINE = 15.0  # seconds between SIGTERM and SIGKILL of a process we started
READY_DEADLINE = 30.0  # seconds for a serve process to log that it is serving
POLL = 0.02  # seconds between reads of the state file

T = TypeVar("T")


# -- processes ----------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The caller's environment without DOCKYARD_* settings, which would change serve."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["DOCKYARD_PORT"] = "0"  # the webserver is on by default: a free port each
    return env


def dockyard_cmd() -> list[str]:
    script = Path(sys.executable).parent / "dockyard"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dockyard"]


class Proc:
    """A started process whose merged stdout/stderr is drained by a thread."""

    def __init__(self, argv: list[str], *, cwd: Path) -> None:
        self.argv = argv
        self.lines: list[tuple[float, str]] = []
        self.ready = threading.Event()
        self.started_wall = time.time()
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _drain(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append((time.perf_counter(), line.rstrip("\n")))
            if READY_MARK in line:
                self.ready.set()

    def wait_ready(self, deadline: float = READY_DEADLINE) -> None:
        end = time.monotonic() + deadline
        while not self.ready.wait(timeout=0.05):
            if self.popen.poll() is not None:
                raise BenchError(f"{self.describe()} exited with {self.popen.returncode}")
            if time.monotonic() > end:
                raise BenchError(f"{self.describe()} not serving after {deadline:g} s")

    def stop(self, deadline: float = STOP_DEADLINE) -> int:
        """SIGTERM, wait up to ``deadline``, then SIGKILL; returns the exit code."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                print(f"warning: {self.describe()} ignored SIGTERM; killing", file=sys.stderr)
                self.popen.kill()
                self.popen.wait(timeout=deadline)
        self._reader.join(timeout=2)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        return self.popen.returncode

    def describe(self) -> str:
        tail = "\n    ".join(line for _, line in self.lines[-10:])
        return f"pid {self.pid} ({' '.join(self.argv[-6:])})" + (
            f"; last output:\n    {tail}" if tail else ""
        )


@contextmanager
def started(*argvs: list[str], cwd: Path) -> Iterator[list[Proc]]:
    """Start processes; stop every one of them on the way out, whatever happens."""
    procs: list[Proc] = []
    try:
        for argv in argvs:
            procs.append(Proc(argv, cwd=cwd))
        yield procs
    finally:
        for proc in procs:
            code = proc.stop()
            if code not in (0, -signal.SIGTERM):
                print(f"warning: {proc.describe()} exited with {code}", file=sys.stderr)


def serve_argv(state: Path, *schedule: str) -> list[str]:
    return [
        *dockyard_cmd(),
        "serve",
        f"{NOOP}:noop",
        *schedule,
        "--state",
        str(state),
        "--shutdown-grace",
        "5",
    ]


# -- statistics ---------------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[max(0, math.ceil(0.9 * n) - 1)],  # nearest rank
        "min": ordered[0],
        "n": n,
        "samples": samples,
    }


# -- 1. serve start -> first Completed ----------------------------------------------------


def first_completed(n: int, tmp: Path) -> dict[str, Any]:
    seconds: list[float] = []
    for i in range(n):
        state = tmp / f"first-{i}.db"
        with started(serve_argv(state, "--interval", "1"), cwd=tmp) as (proc,):
            proc.wait_ready()  # the schema exists: opening the store now cannot race it
            store = open_store(state)
            try:
                run = wait_for(
                    "the first Completed run",
                    lambda store=store: next(
                        iter(store.list_runs(states=[RunState.COMPLETED], limit=1, order="asc")),
                        None,
                    ),
                    deadline=20,
                )
            finally:
                store.close()
        assert run.ended_at is not None
        seconds.append(run.ended_at.timestamp() - proc.started_wall)
    return summary(seconds)


# -- 2. no-op run duration and interpreter baselines --------------------------------------


def noop_runs(n: int, tmp: Path) -> tuple[dict[str, Any], dict[str, int]]:
    state = tmp / "runs.db"
    with started(serve_argv(state, "--interval", "1"), cwd=tmp) as (proc,):
        proc.wait_ready()
        store = open_store(state)
        try:
            wait_for(
                f"{n} Completed runs",
                lambda: store.count_runs(states=[RunState.COMPLETED]) >= n,
                deadline=n * 1.0 + 30,
            )
            done = store.list_runs(states=[RunState.COMPLETED], limit=n, order="asc")
            others = {
                s.value: store.count_runs(states=[s])
                for s in (RunState.FAILED, RunState.CRASHED, RunState.CANCELLED)
            }
        finally:
            store.close()
    durations = [r.duration_seconds for r in done if r.duration_seconds is not None]
    return summary(durations), others


def interpreter_start(code: str, n: int) -> dict[str, Any]:
    argv = [sys.executable, "-c", code]
    env = child_env()
    subprocess.run(argv, env=env, check=True, timeout=30)  # warm the page cache
    seconds = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, timeout=30, stdin=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - t0)
    return summary(seconds)


# -- 3. idle memory -----------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise BenchError(f"no VmRSS for pid {pid}")


def idle_rss(n: int, up: float, tmp: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    # A daily cron two hours from now (UTC): it does not fire while we measure.
    at = datetime.now(UTC) + timedelta(hours=2)
    cron = ["--cron", f"{at.minute} {at.hour} * * *", "--timezone", "UTC"]
    serves = [serve_argv(tmp / f"idle-{i}.db", *cron) for i in range(n)]
    sleeps = [[sys.executable, "-c", "import time; time.sleep(30)"] for _ in range(n)]
    with started(*serves, *sleeps, cwd=tmp) as procs:
        for proc in procs[:n]:
            proc.wait_ready()
        for proc in procs:  # each one is measured once it has been up `up` seconds
            time.sleep(max(0.0, proc.started + up - time.perf_counter()))
            if proc.popen.poll() is not None:
                raise BenchError(f"{proc.describe()} exited early")
        serve_rss = [rss_mib(p.pid) for p in procs[:n]]
        bare_rss = [rss_mib(p.pid) for p in procs[n:]]
        for i in range(n):  # idle means idle: no run was started meanwhile
            store = open_store(tmp / f"idle-{i}.db")
            try:
                if store.count_runs():
                    print(f"warning: idle {procs[i].describe()} started runs", file=sys.stderr)
            finally:
                store.close()
        stop_seconds = [_sigterm_to_exit(p) for p in procs[:n]]
    return summary(serve_rss), summary(bare_rss), summary(stop_seconds)


def _sigterm_to_exit(proc: Proc) -> float:
    """Seconds from SIGTERM to exit of an idle serve process (it drains nothing)."""
    t0 = time.perf_counter()
    proc.popen.send_signal(signal.SIGTERM)
    try:
        code = proc.popen.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{proc.describe()} did not exit on SIGTERM") from None
    elapsed = time.perf_counter() - t0
    if code != 0:
        print(f"warning: {proc.describe()} exited {code} on SIGTERM", file=sys.stderr)
    return elapsed


# -- report -------------------------------------------------------------------------------


def fmt_seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def table(results: dict[str, Any]) -> str:
    rows = [
        ("serve start → first run Completed (interval 1 s, no-op)", "first_completed", fmt_seconds),
        ("no-op run: started_at → ended_at", "noop_run", fmt_seconds),
        ('baseline: `python -c "pass"` start → exit', "python_pass", fmt_seconds),
        (
            'baseline: `python -c "import dockyard.execution.child"` start → exit',
            "python_import_child",
            fmt_seconds,
        ),
        ("idle serve process: SIGTERM → exit", "idle_sigterm_exit", fmt_seconds),
        ("idle serve process RSS (up 3 s)", "serve_rss_mib", lambda v: f"{v:.1f} MiB"),
        (
            'baseline: `python -c "import time; time.sleep(30)"` RSS',
            "bare_rss_mib",
            lambda v: f"{v:.1f} MiB",
        ),
    ]
    out = ["| figure | median | p90 | min | n |", "|---|---:|---:|---:|---:|"]
    for label, key, fmt in rows:
        s = results[key]
        out.append(
            f"| {label} | {fmt(s['median'])} | {fmt(s['p90'])} | {fmt(s['min'])} | {s['n']} |"
        )
    r = results["ratios"]
    out.append("")
    out.append(
        f'Median no-op run = {r["noop_run_vs_python_pass"]:.1f}× `python -c "pass"` and '
        f"{r['noop_run_vs_import_child']:.1f}× importing the run child; "
        f"idle serve RSS = {r['serve_rss_vs_bare']:.1f}× a bare interpreter."
    )
    env = results["environment"]
    out.append(
        f"({env['platform']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"dockyard {env['dockyard']}, {results['elapsed_seconds']:.0f} s)"
    )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=5, help="fresh serve processes (1.)")
    parser.add_argument("--runs", type=int, default=20, help="no-op runs gathered (2.)")
    parser.add_argument("--baseline", type=int, default=20, help="interpreter starts (2.)")
    parser.add_argument("--idle", type=int, default=3, help="idle processes of each kind (3.)")
    parser.add_argument("--up", type=float, default=3.0, help="seconds up before RSS (3.)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    t0 = time.perf_counter()
    results: dict[str, Any] = {"environment": environment()}
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"1/3 serve start → first Completed ({args.starts} processes) …", file=sys.stderr)
        results["first_completed"] = first_completed(args.starts, tmp)
        print(f"2/3 no-op runs ({args.runs}) and interpreter baselines …", file=sys.stderr)
        results["noop_run"], results["noop_run_other_states"] = noop_runs(args.runs, tmp)
        results["python_pass"] = interpreter_start("pass", args.baseline)
        results["python_import_child"] = interpreter_start(
            "import dockyard.execution.child", args.baseline
        )
        print(f"3/3 idle RSS ({args.idle} + {args.idle} processes) …", file=sys.stderr)
        results["serve_rss_mib"], results["bare_rss_mib"], results["idle_sigterm_exit"] = idle_rss(
            args.idle, args.up, tmp
        )
    results["ratios"] = {
        "noop_run_vs_python_pass": results["noop_run"]["median"] / results["python_pass"]["median"],
        "noop_run_vs_import_child": results["noop_run"]["median"]
        / results["python_import_child"]["median"],
        "serve_rss_vs_bare": results["serve_rss_mib"]["median"] / results["bare_rss_mib"]["median"],
    }
    results["elapsed_seconds"] = time.perf_counter() - t0
    if any(results["noop_run_other_states"].values()):
        print(f"warning: runs not Completed: {results['noop_run_other_states']}", file=sys.stderr)
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
