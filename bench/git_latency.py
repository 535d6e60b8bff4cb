"""Code from git: how long from `git push` to a run that uses the new code, and what a
pull that finds nothing new costs. Real repositories and serve processes, no mocks.

    .venv/bin/python bench/git_latency.py            # --help for counts and --out

1. push → new code runs: a bare repository in a temporary directory, a serve process
   ``dockyard serve flows/f.py:f --source BARE --interval 1`` whose flow prints a marker
   read from a file of its checkout. Each sample commits a new marker, then measures
   from just before ``git push`` to the time stamp of the log line in which a run
   started after the push prints the new marker. (a) ``webhook``: POST
   /api/sources/sync right after the push (pull interval 3600 s); (b) ``interval5``:
   DOCKYARD_SOURCE_PULL_INTERVAL=5 and no trigger, each push at a random phase (0-5 s) of the
   pull loop.
2. one no-change pull: POST /api/sources/sync N times on an idle process (each waited
   for until last_success_at moves), wall time per pull from
   dockyard_code_sync_duration_seconds and CPU (process + reaped children, from
   /proc/PID/stat) minus the CPU of an idle window of the same length.

Prints a table and writes bench/results/git_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _common import wait_for  # bench/ is on sys.path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "git_latency.json"
LISTENING = re.compile(r"webserver listening on (http://[\d.]+:\d+)")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}  # fmt: skip
FLOW = """\
from pathlib import Path

from dockyard import flow


@flow(name="f")
def f():
    print("marker", (Path(__file__).parent.parent / "marker.txt").read_text().strip())
"""
T = TypeVar("T")


def git(*args: str | Path, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", *map(str, args)], cwd=cwd, env=env, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"git {args}: {done.stderr.decode()}")
    return done.stdout.decode().strip()


class Repo:
    def __init__(self, root: Path) -> None:
        self.bare, self.work = root / "remote.git", root / "work"
        root.mkdir(parents=True)
        git("init", "-q", "--bare", "--initial-branch", "main", self.bare, cwd=root)
        git("init", "-q", "--initial-branch", "main", self.work, cwd=root)
        git("remote", "add", "origin", self.bare, cwd=self.work)
        (self.work / "flows").mkdir()
        (self.work / "flows" / "f.py").write_text(FLOW)

    def commit(self, marker: str) -> None:
        (self.work / "marker.txt").write_text(marker + "\n")
        git("add", "--all", cwd=self.work)
        git("commit", "-q", "-m", marker, cwd=self.work)

    def push(self) -> None:
        git("push", "-q", "origin", "HEAD:main", cwd=self.work)


@contextmanager
def serve(root: Path, name: str, extra_env: dict[str, str], args: list[str]) -> Iterator[Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"DOCKYARD_PORT": "0", "PYTHONUNBUFFERED": "1", **extra_env})
    env["DOCKYARD_SOURCE_DIR"] = str(root / f"checkouts-{name}")
    log = root / f"{name}.log"
    command = [sys.executable, "-m", "dockyard", "serve", "flows/f.py:f", *args]
    command += ["--state", str(root / f"{name}.db")]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=out)
    try:
        url = wait_for("webserver", lambda: (m := LISTENING.search(log.read_text())) and m[1])
        with httpx.Client(base_url=url, timeout=10) as client:
            yield process, client
    except BaseException:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def source(client: httpx.Client) -> dict[str, Any]:
    sources = client.get("/api/sources").json()
    return sources[0] if sources else {}


def marker_printed_at(client: httpx.Client, marker: str, after: datetime) -> float | None:
    """Epoch seconds of the log line where a run started after ``after`` printed it."""
    runs = client.get("/api/runs", params={"deployment": "f/f", "limit": 10}).json()["runs"]
    for run in runs:
        started = run["started_at"] and datetime.fromisoformat(run["started_at"])
        if not started or started < after:
            continue
        for line in client.get(f"/api/runs/{run['id']}/logs").json()["lines"]:
            if line["line"] == f"marker {marker}":
                return datetime.fromisoformat(line["at"]).timestamp()
    return None


def push_to_run(root: Path, mode: str, samples: int) -> list[float]:
    repo = Repo(root / mode)
    repo.commit("m0")
    repo.push()
    pull = "3600" if mode == "webhook" else "5"
    args = ["--source", str(repo.bare), "--interval", "1", "--source-pull-interval", pull]
    out = []
    with serve(root, mode, {}, args) as (_, client):
        wait_for("first revision", lambda: source(client).get("revision"))
        for i in range(1, samples + 1):
            marker = f"{mode}-{i}"
            repo.commit(marker)
            if mode != "webhook":
                # Push at a random phase of the pull loop: back-to-back samples would
                # otherwise always push just after a pull and wait a whole interval.
                time.sleep(random.uniform(0, 5))
            # Runs started before t0 cannot count: compare with the runner's own clock.
            t0 = time.time()
            after = datetime.fromtimestamp(t0).astimezone()
            repo.push()
            if mode == "webhook":
                assert client.post("/api/sources/sync").status_code == 202
            printed = wait_for(
                marker, lambda m=marker, a=after: marker_printed_at(client, m, a), 60
            )
            out.append(printed - t0)
            print(f"  {mode} #{i}: {out[-1]:.2f}s", flush=True)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def sync_metric(client: httpx.Client, suffix: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"dockyard_code_sync_duration_seconds_{suffix}{{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def noop_pull_cost(root: Path, pulls: int) -> dict[str, float]:
    repo = Repo(root / "noop")
    repo.commit("m0")
    repo.push()
    args = ["--source", str(repo.bare), "--interval", "3600", "--source-pull-interval", "3600"]
    with serve(root, "noop", {}, args) as (process, client):
        wait_for("first revision", lambda: source(client).get("revision"))
        time.sleep(1.0)  # let start-up settle before measuring (not a synchronisation)
        count0, sum0 = sync_metric(client, "count"), sync_metric(client, "sum")
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        for _ in range(pulls):
            before = source(client)["last_success_at"]
            client.post("/api/sources/sync")
            wait_for("noop pull", lambda b=before: source(client)["last_success_at"] != b)
        cpu1, wall1 = cpu_seconds(process.pid), time.monotonic()
        count1, sum1 = sync_metric(client, "count"), sync_metric(client, "sum")
        idle0 = cpu_seconds(process.pid)
        time.sleep(wall1 - wall0)  # an idle window as long as the measured one
        idle = cpu_seconds(process.pid) - idle0
    n = count1 - count0
    return {
        "pulls": n,
        "wall_seconds_per_pull": (sum1 - sum0) / n,
        "cpu_seconds_per_pull": (cpu1 - cpu0 - idle) / n,
        "idle_cpu_seconds_same_window": idle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--pulls", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dockyard-git-bench-") as tmp:
        root = Path(tmp)
        latency = {mode: push_to_run(root, mode, opts.samples) for mode in ("webhook", "interval5")}
        noop = noop_pull_cost(root, opts.pulls)
    summary = {
        mode: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
        for mode, v in latency.items()
    }
    print("\n| push → run with the new code | median | min | max | n |\n|---|---|---|---|---|")
    for mode, s in summary.items():
        print(f"| {mode} | {s['median']:.2f} s | {s['min']:.2f} s | {s['max']:.2f} s | {s['n']} |")
    print(
        f"\none no-change pull: {noop['wall_seconds_per_pull'] * 1000:.0f} ms wall, "
        f"{noop['cpu_seconds_per_pull'] * 1000:.0f} ms CPU (mean over {noop['pulls']:.0f})"
    )
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "when": datetime.now().astimezone().isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "push_to_new_code_seconds": {"summary": summary, "samples": latency},
        "noop_pull": noop,
    }
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
