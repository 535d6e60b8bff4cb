"""The floors of ``bench/suite.py``: what the machine allows, measured in the same run.

Bare interpreters, an import of the packages the target's serve imports, a bare
FastAPI+uvicorn app. Each function returns scenario entries (``_procs.result``).
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _common import BenchError, wait_for  # bench/ is on sys.path
from _procs import (
    Proc,
    child_env,
    group,
    machine_cpu_seconds,
    median,
    percentile,
    result,
    rss_mib,
    tree_cpu_seconds,
)

PASS = [sys.executable, "-c", "pass"]
BARE_APP = """
import socket, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/health")
async def health():
    return {}
# An IPPROTO_TCP socket, as dockyard.web.server.bind() makes: asyncio sets TCP_NODELAY
# only on those (bench/README.md: the delayed-ACK finding).
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
print("port", sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"""
REQUEST_TIMEOUT = 10.0


def _spawn(argv: list[str]) -> None:
    subprocess.run(argv, env=child_env(), check=True, timeout=60, stdin=subprocess.DEVNULL)


def _timed_spawns(argv: list[str], n: int) -> list[float]:
    _spawn(argv)  # warm the page cache
    seconds = []
    for _ in range(n):
        t0 = time.perf_counter()
        _spawn(argv)
        seconds.append(time.perf_counter() - t0)
    return seconds


def spawn(n: int) -> dict[str, Any]:
    """floor.spawn: start → exit of ``python -c pass`` (same python, same environment)."""
    seconds = _timed_spawns(PASS, n)
    return result(median(seconds), "s", "median", seconds, p99=percentile(seconds, 0.99))


def cpu_of(work: Callable[[], int], idle_seconds: float, pid: int | None = None) -> dict[str, Any]:
    """CPU per unit of ``work`` (it returns how many units it did), less the rate measured
    in an idle window of ``idle_seconds`` just before: of the machine (/proc/stat, every
    process) and, with ``pid``, of that process tree (reaped children included).

    On a quiet machine the two agree; when other load shares the machine only the tree's
    figure means anything (``idle_cpu_rate`` says how busy the machine was, in cores)."""
    tree = (lambda: tree_cpu_seconds(pid)) if pid is not None else (lambda: 0.0)
    m0, p0, t0 = machine_cpu_seconds(), tree(), time.monotonic()
    time.sleep(idle_seconds)  # a measurement window, not a wait for a condition
    m1, p1, t1 = machine_cpu_seconds(), tree(), time.monotonic()
    count = work()
    m2, p2, t2 = machine_cpu_seconds(), tree(), time.monotonic()
    if count <= 0:
        raise BenchError("no unit of work was done while measuring CPU")
    idle, busy = t1 - t0, t2 - t1
    out: dict[str, Any] = {
        "machine_cpu_per_unit": (m2 - m1 - (m1 - m0) / idle * busy) / count,
        "machine_idle_cpu_rate": (m1 - m0) / idle,
        "busy_seconds": busy,
        "idle_seconds": idle,
        "count": count,
    }
    if pid is not None:
        out["tree_cpu_per_unit"] = (p2 - p1 - (p1 - p0) / idle * busy) / count
        out["tree_idle_cpu_rate"] = (p1 - p0) / idle
    return out


def spawn_cpu(n: int, idle_seconds: float) -> dict[str, Any]:
    """floor.spawn_cpu: CPU of one ``python -c pass`` (getrusage of the reaped child), the
    median of ``n``; the machine's figure (/proc/stat) over the same spawns in params."""
    own: list[float] = []

    def work() -> int:
        for _ in range(n):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            _spawn(PASS)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            own.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return n

    _spawn(PASS)
    cpu = cpu_of(work, idle_seconds)
    return result(median(own), "CPU-s", "median", own, method="getrusage(RUSAGE_CHILDREN)", **cpu)


def imports(packages: list[str], n: int, rss_n: int, tmp: Path) -> dict[str, dict[str, Any]]:
    """floor.import (start → exit of ``python -c "import …"``) and floor.import_rss (VmRSS
    of such a process once it has imported them)."""
    code = "import " + ", ".join(packages) if packages else "pass"
    seconds = _timed_spawns([sys.executable, "-c", code], n)
    held = code + "\nimport sys\nprint('imported', flush=True)\nsys.stdin.read()"
    rss: list[float] = []
    with group() as procs:
        for i in range(rss_n):
            proc = Proc([sys.executable, "-c", held], tmp, f"import-rss-{i}", stdin=subprocess.PIPE)
            procs.append(proc)
            proc.wait_output("to import", re.compile("(imported)"), 60)
            rss.append(rss_mib(proc.pid))
    return {
        "floor.import": result(median(seconds), "s", "median", seconds, packages=packages),
        "floor.import_rss": result(median(rss), "MiB", "median", rss, packages=packages),
    }


def health_latencies(client: httpx.Client, n: int) -> list[float]:
    """Seconds per request for ``n`` sequential GET /health; any non-200 fails the bench."""
    seconds = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get("/health")
        seconds.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise BenchError(f"/health answered {response.status_code}: {response.text[:200]}")
    return seconds


def uvicorn_health(n: int, warmup: int, tmp: Path) -> dict[str, Any]:
    """floor.uvicorn_health_p99: a bare FastAPI app on uvicorn answering ``{}``."""
    with group() as procs:
        proc = Proc([sys.executable, "-c", BARE_APP], tmp, "bare-uvicorn")
        procs.append(proc)
        port = proc.wait_output("to bind", re.compile(r"port (\d+)"), 60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=REQUEST_TIMEOUT) as client:

            def up() -> bool:
                try:
                    return client.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for("the bare app to answer", up, 60)
            health_latencies(client, warmup)
            seconds = health_latencies(client, n)
    return result(
        percentile(seconds, 0.99), "s", "p99", seconds, p50=percentile(seconds, 0.5),
        warmup=warmup, client="one keep-alive httpx.Client, sequential",
    )  # fmt: skip


def spawn_rate(n: int, concurrency: int, cap_seconds: float) -> dict[str, Any]:
    """floor.spawn_rate4: ``n`` bare ``python -c pass``, ``concurrency`` at a time."""
    _spawn(PASS)
    lock, done, ends = threading.Lock(), [0], []
    t0 = time.perf_counter()
    deadline = t0 + cap_seconds

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                if done[0] >= n:
                    return
                done[0] += 1
            _spawn(PASS)
            with lock:
                ends.append(time.perf_counter() - t0)

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - t0
    return result(
        len(ends) / elapsed, "runs/s", "rate", sorted(ends), requested=n,
        concurrency=concurrency, elapsed_seconds=elapsed, capped=len(ends) < n,
    )  # fmt: skip
