"""Fault injection: does any run execute twice, or any request answer 5xx? Real processes.

    .venv/bin/python bench/faults.py                 # --help for counts and --out

1. kill -9 loop: one state file, ``bench/flows/ledger.py`` served every second (2
   retries, each attempt 0.2–1.5 s); ``--cycles`` times a serve process is started,
   left to work 1–4 s and killed with SIGKILL (every fifth cycle a second serve process
   runs on the same state file meanwhile). A last process settles what is left. The
   flow's ledger records every attempt; an attempt that finds an earlier attempt of its
   run still alive writes DUPLICATE. Counted: cycles, runs, attempts, duplicates, slots
   run twice, runs started again after an attempt had reported Completed (its completion
   hook writes to the ledger once the report is on disk), runs left Running, and runs
   whose body ended twice: a kill in the instant between a flow's return and its report
   reruns it (runs are at least once), so that count is a figure, not a failure.
2. concurrent ad-hoc POSTs: ``--posts`` POST /api/deployments/…/runs at once against one
   serve process, then every run is waited for. Counted: answers by status, 5xx, runs
   created, runs executed more than once.

Prints the figures and writes them to bench/results/faults.json. Exit 1 if a duplicate,
a 5xx or a lost run was found.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import BenchError, environment, wait_for  # bench/ is on sys.path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "faults.json"
LISTENING = re.compile(r"webserver listening on (http://[\d.]+:\d+)")
DEPLOYMENT = "ledger/ledger"


def serve(tmp: Path, state: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update(
        DOCKYARD_PORT="0", DOCKYARD_HEARTBEAT="0.5", DOCKYARD_KILL_DELAY="1",
        LEDGER=str(tmp / "ledger.txt"), PYTHONUNBUFFERED="1",
    )  # fmt: skip
    argv = [sys.executable, "-m", "dockyard", "serve", "flows/ledger.py:ledger"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*argv, *extra, "--state", str(state)], cwd=tmp, env=env, stdout=out, stderr=out
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def ledger(tmp: Path) -> list[list[str]]:
    path = tmp / "ledger.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def store_runs(state: Path) -> list[Any]:
    from dockyard.store import open_store

    with open_store(state) as store:
        return store.list_runs(limit=100_000, order="asc")


def kill_loop(cycles: int, tmp: Path) -> dict[str, Any]:
    from dockyard.core.states import RunState

    state, log = tmp / "state.db", tmp / "serve.log"
    rng = random.Random(7)
    for cycle in range(cycles):
        first = serve(tmp, state, log, "--interval", "1")
        second = serve(tmp, state, log, "--interval", "1") if cycle % 5 == 4 else None
        time.sleep(rng.uniform(2.0, 6.0))  # the fault's timing is the random part
        stop(first, signal.SIGKILL)
        if second is not None:
            stop(second, signal.SIGKILL)
    settle = serve(tmp, state, log, "--interval", "3600", "--no-pause-on-shutdown")
    try:

        def settled() -> bool:
            runs = store_runs(state)
            return not any(
                r.state in (RunState.RUNNING, RunState.PENDING, RunState.SCHEDULED)
                and r.scheduled_at.timestamp() < time.time()
                for r in runs
            )

        wait_for("every run to settle", settled, deadline=180, poll=0.5)
    finally:
        stop(settle)
    runs = store_runs(state)
    entries = ledger(tmp)
    slots = collections.Counter(r.slot_key for r in runs if r.slot_key)
    ends = collections.Counter(e[1] for e in entries if e[0] == "end")
    return {
        **_rerun_after_report(entries),
        "cycles": cycles,
        "runs": len(runs),
        "attempts": sum(1 for e in entries if e[0] == "start"),
        "duplicates": sum(1 for e in entries if e[0] == "DUPLICATE"),
        "slots_run_twice": sum(1 for n in slots.values() if n > 1),
        "runs_completed_twice": sum(1 for n in ends.values() if n > 1),
        "states": dict(collections.Counter(r.state.value for r in runs)),
    }


def _rerun_after_report(entries: list[list[str]]) -> dict[str, int]:
    """Runs started again after one of their attempts had reported Completed."""
    reported: set[str] = set()
    again: set[str] = set()
    for kind, run_id, *_ in entries:
        if kind == "reported":
            reported.add(run_id)
        elif kind == "start" and run_id in reported:
            again.add(run_id)
    return {"reported": len(reported), "runs_started_after_reporting": len(again)}


async def _post_all(url: str, posts: int) -> collections.Counter[int]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(i: int) -> int:
            answer = await client.post(f"/api/deployments/{DEPLOYMENT}/runs", json={})
            return answer.status_code

        codes = await asyncio.gather(*(one(i) for i in range(posts)))
    return collections.Counter(codes)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


def concurrent_posts(posts: int, tmp: Path) -> dict[str, Any]:
    from dockyard.core.states import RunState

    state, log = tmp / "state.db", tmp / "serve.log"
    process = serve(tmp, state, log, "--interval", "86400", "--limit", "20")
    try:
        url = wait_for(
            "the webserver to listen",
            lambda: (m := LISTENING.search(log.read_text(errors="replace"))) and m.group(1),
        )
        # The webserver listens before the store is open; until then the API answers 503
        # (starting, with Retry-After). Counted here are answers of a started process.
        wait_for("the process to be ready", lambda: _status(f"{url}/ready") == 200)
        codes = asyncio.run(_post_all(url, posts))

        def done() -> bool:
            runs = store_runs(state)
            return len(runs) >= codes[201] + codes[202] and all(
                r.state in (RunState.COMPLETED, RunState.FAILED) for r in runs
            )

        wait_for("every posted run to finish", done, deadline=600, poll=1.0)
    finally:
        stop(process)
    runs = store_runs(state)
    starts = collections.Counter(e[1] for e in ledger(tmp) if e[0] == "start")
    return {
        "requests": posts,
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "5xx": sum(n for code, n in codes.items() if code >= 500),
        "runs": len(runs),
        "runs_executed_twice": sum(1 for n in starts.values() if n > 1),
        "runs_not_executed": sum(1 for r in runs if starts[r.id] == 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    results: dict[str, Any] = {"environment": environment()}
    try:
        for name, fn, count in (
            ("kill_loop", kill_loop, args.cycles),
            ("concurrent_posts", concurrent_posts, args.posts),
        ):
            tmp = Path(tempfile.mkdtemp(prefix=f"dockyard-bench-{name}-"))
            shutil.copytree(BENCH_DIR / "flows", tmp / "flows")
            try:
                results[name] = fn(count, tmp)
            except BenchError as exc:
                log = (tmp / "serve.log").read_text(errors="replace").splitlines()[-30:]
                raise BenchError(f"{name}: {exc}\n" + "\n".join(log)) from None
            finally:
                if os.environ.get("KEEP") is None:
                    shutil.rmtree(tmp, ignore_errors=True)
            print(json.dumps({name: results[name]}, indent=2), flush=True)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    loop, posts = results["kill_loop"], results["concurrent_posts"]
    bad = (
        loop["duplicates"] + loop["slots_run_twice"] + loop["runs_started_after_reporting"]
        + posts["5xx"] + posts["runs_executed_twice"] + posts["runs_not_executed"]
    )  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
