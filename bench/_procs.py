"""Processes for ``bench/suite.py``: serve processes, bare interpreters, /proc readings.

Every process started here is stopped in a ``finally`` (SIGTERM, then SIGKILL with its
descendants after ``STOP_DEADLINE``); every wait goes through ``_common.wait_for`` and so
has a deadline.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from _common import BenchError, wait_for  # bench/ is on sys.path

LISTENING = re.compile(r"webserver listening on (http://[\d.]+:\d+)")
SERVING_MARK = "deployment(s) from"  # "serving N deployment(s) from PATH (limit …)"
START_DEADLINE = 60.0  # seconds for a serve process to listen / be serving / be healthy
STOP_DEADLINE = 15.0  # seconds between SIGTERM and SIGKILL of a process we started
CLK_TCK = os.sysconf("SC_CLK_TCK")


def child_env(**extra: str) -> dict[str, str]:
    """The caller's environment without DOCKYARD_* settings (they would change serve)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"PYTHONUNBUFFERED": "1", "DOCKYARD_PORT": "0", **extra})
    return env


# -- /proc --------------------------------------------------------------------------------


def machine_cpu_seconds() -> float:
    """CPU time all processes of the machine have used (busy jiffies of /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK  # guest is in user


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    todo.append(int(child))
    return found


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and its live descendants, plus what their reaped children used."""
    total = 0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            fields = _stat(member)  # fields[0] is the state (field 3 of proc(5))
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def _status_kib(pid: int, key: str, path: str = "status") -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise BenchError(f"no {key} for pid {pid}")


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS:") / 1024


def tree_memory_mib(pid: int) -> dict[str, float]:
    """RSS summed over ``pid`` and its descendants, and PSS (shared pages split between
    the processes that share them, as forked children do)."""
    rss = pss = 0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, BenchError):
            rss += _status_kib(member, "VmRSS:")
            pss += _status_kib(member, "Pss:", "smaps_rollup")
    return {"rss": rss / 1024, "pss": pss / 1024}


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# -- statistics ---------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank


def median(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# -- processes ----------------------------------------------------------------------------


class Proc:
    """A started process whose merged stdout/stderr goes to a file in ``tmp``."""

    def __init__(
        self, argv: list[str], tmp: Path, name: str, *, env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:  # fmt: skip
        self.argv, self.name = argv, name
        self.log = tmp / f"{name}.log"
        self.started = time.perf_counter()
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                argv, cwd=tmp, env=env or child_env(), stdin=stdin, stdout=out, stderr=out
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise BenchError(
                f"{self.name} (pid {self.pid}) exited with {self.popen.returncode}:\n"
                + self.output()[-2000:]
            )

    def wait_output(
        self, what: str, pattern: re.Pattern[str], deadline: float, poll: float = 0.02
    ) -> str:
        def found() -> str | None:
            self.check_alive()
            match = pattern.search(self.output())
            return match.group(1) if match else None

        return wait_for(f"{self.name} {what}", found, deadline, poll)

    def stop(self) -> int:
        """SIGTERM, wait up to STOP_DEADLINE, then SIGKILL it and its descendants."""
        if self.popen.poll() is None:
            left = descendants(self.pid)
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                print(f"warning: {self.name} ignored SIGTERM; killing it", file=sys.stderr)
                for pid in [self.pid, *left, *descendants(self.pid)]:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                self.popen.wait(timeout=STOP_DEADLINE)
        if self.popen.stdin is not None:
            self.popen.stdin.close()
        return self.popen.returncode


class Serve(Proc):
    """``dockyard serve ARGS`` on a free loopback port and its own state file in ``tmp``."""

    def __init__(
        self, args: list[str], tmp: Path, name: str, *, grace: float = 2.0, **env: str
    ) -> None:
        self.state = tmp / f"{name}.db"
        argv = [sys.executable, "-m", "dockyard", "serve", *args]
        argv += ["--state", str(self.state), "--shutdown-grace", f"{grace:g}"]
        super().__init__(argv, tmp, name, env=child_env(**env))
        self.started_wall = time.time()

    def url(self, deadline: float = START_DEADLINE, poll: float = 0.02) -> str:
        return self.wait_output("to listen", LISTENING, deadline, poll)

    def wait_serving(self, deadline: float = START_DEADLINE) -> None:
        self.wait_output("to be serving", re.compile(f"({re.escape(SERVING_MARK)})"), deadline)

    def store(self) -> Any:
        """The state file, opened read-only in use (the schema exists once serving)."""
        from dockyard.store import open_store

        return open_store(self.state)


@contextlib.contextmanager
def group() -> Iterator[list[Proc]]:
    """A list to append started processes to; every one is stopped on the way out."""
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for proc in procs:
            code = proc.stop()
            if code not in (0, -signal.SIGTERM):
                print(f"warning: {proc.name} (pid {proc.pid}) exited with {code}", file=sys.stderr)


@contextlib.contextmanager
def serving(args: list[str], tmp: Path, name: str, **kwargs: Any) -> Iterator[Serve]:
    with group() as procs:
        serve = Serve(args, tmp, name, **kwargs)
        procs.append(serve)
        yield serve


def write_config(path: Path, deployments: list[dict[str, Any]], **top: Any) -> Path:
    """A dockyard.yaml with these deployments (JSON is YAML: no dumper needed)."""
    import json

    path.write_text(json.dumps({**top, "deployments": deployments}, indent=1), encoding="utf-8")
    return path


def result(
    value: float,
    unit: str,
    stat: str,
    samples: Sequence[float],
    *,
    n: int | None = None,
    series: dict[str, list[float]] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """One scenario's entry in bench/results/<target>.json (bench/README.md: the format)."""
    entry: dict[str, Any] = {
        "value": value,
        "unit": unit,
        "stat": stat,
        "n": len(samples) if n is None else n,
        "params": params,
        "samples": list(samples),
    }
    if series is not None:
        entry["series"] = series
    return entry


def drain_lateness(out: Path, start: int, end: int, expected: int, proc: Any) -> None:
    """Until the window has passed and every slot ran, or 10 s more (then what is still
    pending counts as never run). ``proc``: the serve process (it has ``check_alive()``)."""
    deadline = time.monotonic() + (end - time.time()) + 10
    while time.monotonic() < deadline:
        proc.check_alive()
        if time.time() >= end and len(lateness_slots(out, start, end)) >= expected:
            return
        time.sleep(0.2)


def lateness_slots(out: Path, start: int, end: int) -> dict[tuple[str, float], float]:
    """Lateness of each slot in [start, end) whose body ran (the first body, if twice)."""
    found: dict[tuple[str, float], float] = {}
    if not out.exists():
        return found
    for line in out.read_text().splitlines():
        scheduled, began, deployment = line.split()
        key = (deployment, round(float(scheduled), 3))
        if start <= key[1] < end and key not in found:
            found[key] = float(began) - float(scheduled)
    return found


def throughput_series(levels: Sequence[int], measure: Callable[[int], dict[str, Any]]) -> Any:
    """``adhoc.rate4``: the throughput at limit 4, with the throughput at every limit of
    ``levels`` as its series (``measure(limit)`` gives one figure; limit 4 first)."""
    rates: dict[int, float] = {}
    main = None
    for limit in sorted(levels, key=lambda x: x != 4):  # the headline figure first
        entry = measure(limit)
        rates[limit] = entry["value"]
        main = entry if limit == 4 else main
        print(
            f"    limit {limit}: {entry['value']:.2f} runs/s ({entry['n']} runs)", file=sys.stderr
        )
    assert main is not None
    main["series"] = {"x": list(levels), "y": [rates[x] for x in levels]}
    return {"adhoc.rate4": main}


class FeedThread:
    """A thread that keeps runs coming until told to stop (``stop.set()``) or ``cap`` s.

    ``opened()`` gives a context that yields the step: one call keeps the backlog full and
    returns how many runs have ended so far. Errors are kept for ``warm()`` to raise.
    """

    def __init__(
        self,
        opened: Callable[[], AbstractContextManager[Callable[[], int]]],
        cap: float,
        *,
        warm_after: int,
        pause: float,
    ) -> None:
        self.opened, self.cap, self.warm_after, self.pause = opened, cap, warm_after, pause
        self.stop = threading.Event()
        self.done = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def warm(self) -> bool:
        if self.error is not None:
            raise BenchError(f"feeding runs failed: {self.error!r}")
        return self.done >= self.warm_after

    def _run(self) -> None:
        deadline = time.monotonic() + self.cap
        try:
            with self.opened() as step:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    self.done = step()
                    self.stop.wait(self.pause)
        except BaseException as exc:  # reported by warm() / the check after the measurement
            self.error = exc
