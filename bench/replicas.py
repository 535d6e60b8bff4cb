"""Three replicas on one PostgreSQL database: throughput, failover, latency, round trips.

    .venv/bin/python bench/replicas.py                # --help: --levels, --window, --runs, …

Real ``dockyard serve`` processes (each in its own temporary directory, only the database
shared) on a private PostgreSQL server (``tests/pg.py``: a throwaway cluster with fsync
off, pg_stat_statements loaded), serving ``tests/e2e/flows/replicas.py``, whose flows
keep a ledger of their own attempts.

1. slots/s: for each ``--levels`` D, a fresh database and one replica (the baseline of
   the same run), then three replicas, serving D
   deployments on a 1 s interval (a flow that returns at once) for ``--window`` seconds.
   Counted: slots due in the window, slots run (ledger), missed, run twice, lateness
   (``started_at - scheduled_at`` in the database). A level keeps up when no slot was
   missed or run twice and the lateness p90 stays under 1 s.
2. ad-hoc runs, one at a time (``--runs``): POST on replica i % 3, then the run's
   ``started_at`` is polled in the database (superuser connection, every 5 ms).
   Submit → start latency is ``started_at`` minus the time just before the POST (one
   machine, one clock), split by whether another replica than the one posted to started
   it, and (since ``started_at`` is the clock of the tick that took the run, which may
   precede the POST) also until the poll first sees it started. The same runs give the
   database round trips per run: pg_stat_statements calls of the replicas' role while
   the runs go, minus the idle rate of the three replicas measured for ``--idle``
   seconds just before, divided by the runs.
3. failover (``--failovers``): a 60 s run with one retry; its replica gets SIGKILL;
   measured from the kill to the retry's ``started_at`` on another replica
   (``DOCKYARD_REPLICA_TIMEOUT=6``, heartbeat 1 s). The killed replica is started again
   and the retry cancelled before the next repetition.

Prints a markdown table and writes every figure and sample to
bench/results/replicas.json. Every wait has a deadline; the replicas get SIGTERM when a
part is done, and any still running when the script leaves (a failure) SIGKILL
(``tests.helpers.Replicas``). Exit 1 if a slot ran twice.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _common import BenchError, environment, wait_for  # bench/ is on sys.path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # tests.pg and tests.helpers, from the repo

from tests.helpers import FLOWS, REPLICA_TOKEN, Replicas  # noqa: E402
from tests.pg import ROLE, PgServer, unavailable_reason  # noqa: E402

DEFAULT_OUT = BENCH_DIR / "results" / "replicas.json"
REPLICAS = 3
FAILOVER_TIMEOUT = 6.0
ADHOC_CONFIG = """deployments:
  - entrypoint: replicas.py:tick
    name: adhoc
    parameters: {seconds: 0}
  - entrypoint: replicas.py:long_tick
    name: long
"""
TERMINAL = ("Completed", "Failed", "Cancelled", "Crashed")


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    n = len(ordered)
    if n == 0:
        return {"median": None, "p90": None, "min": None, "n": 0, "samples": []}
    return {
        "median": statistics.median(ordered),
        "p90": ordered[max(0, math.ceil(0.9 * n) - 1)],  # nearest rank
        "min": ordered[0],
        "n": n,
        "samples": samples,
    }


# -- the database server ------------------------------------------------------------------


def start_server() -> PgServer:
    reason = unavailable_reason()
    if reason is not None:
        raise BenchError(reason)
    server = PgServer.create()
    with (server.data / "postgresql.conf").open("a") as conf:
        conf.write("shared_preload_libraries = 'pg_stat_statements'\n")
        conf.write("pg_stat_statements.track = all\n")
    server.start()
    return server


def new_database(server: PgServer) -> tuple[str, str]:
    name = server.create_database()
    server.query(name, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return name, server.url(name)


def statement_calls(server: PgServer, database: str) -> collections.Counter[str]:
    """pg_stat_statements calls of the replicas' role on ``database``, by first keyword."""
    rows = server.query(
        database,
        "SELECT s.query, s.calls FROM pg_stat_statements s "
        "JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid "
        f"WHERE r.rolname = '{ROLE}' AND d.datname = '{database}'",
    )
    calls: collections.Counter[str] = collections.Counter()
    for query, count in rows:
        calls[str(query).split(None, 1)[0].upper()] += int(str(count))
    return calls


def reset_statements(server: PgServer, database: str) -> None:
    server.query(database, "SELECT pg_stat_statements_reset()")


def prepare(root: Path, config: str) -> None:
    """Each replica's directory: its own copy of the flows, with ``config`` beside them."""
    for i in range(1, REPLICAS + 1):
        directory = root / f"r{i}"
        shutil.copytree(FLOWS, directory / "flows")
        (directory / "flows" / "bench.yaml").write_text(config)


# -- 1. slots/s ---------------------------------------------------------------------------


def slot_config(deployments: int) -> str:
    lines = ["deployments:"]
    for i in range(1, deployments + 1):
        lines += [
            "  - entrypoint: replicas.py:tick",
            f"    name: s{i:02d}",
            "    schedules: [{interval: 1}]",
            "    parameters: {seconds: 0}",
        ]
    return "\n".join(lines) + "\n"


def slots_level(
    server: PgServer, deployments: int, window: float, root: Path, count: int = REPLICAS
) -> dict[str, Any]:
    """One level with ``count`` replicas (1: the baseline of the same run)."""
    database, url = new_database(server)
    prepare(root, slot_config(deployments))
    with Replicas(root, url, ["--config", "flows/bench.yaml"]) as replicas:
        replicas.start_all(count)
        began = time.time()
        end = time.monotonic() + window
        wait_for("the window to pass", lambda: time.monotonic() >= end, window + 30, poll=0.5)
        ended = time.time()
        due = range(math.floor(began) + 1, math.floor(ended) + 1)
        expected = deployments * len(due)

        def ran() -> int:
            rows = server.query(
                database,
                "SELECT count(*) FROM runs WHERE trigger = 'schedule' AND state = 'Completed' "
                f"AND scheduled_at >= to_timestamp({due[0]}) "
                f"AND scheduled_at <= to_timestamp({due[-1]})",
            )
            return int(str(rows[0][0]))

        try:  # the backlog of the window drains (or the level did not keep up)
            wait_for("the window's slots to run", lambda: ran() >= expected, 60, poll=0.5)
        except BenchError:
            pass
        replicas.stop_all()
    rows = server.query(
        database,
        "SELECT id, slot_key, extract(epoch FROM scheduled_at), "
        "extract(epoch FROM started_at - scheduled_at), owner, state FROM runs "
        f"WHERE trigger = 'schedule' AND scheduled_at >= to_timestamp({due[0]}) "
        f"AND scheduled_at <= to_timestamp({due[-1]})",
    )
    begun = collections.Counter(line.run_id for line in replicas.ledgers() if line.kind == "begin")
    run = [r for r in rows if begun[str(r[0])] > 0]
    late = [float(str(r[3])) for r in run if r[3] is not None]
    lateness = summary(late)
    twice = sum(1 for r in rows if begun[str(r[0])] > 1)
    result = {
        "replicas": count,
        "deployments": deployments,
        "window_seconds": ended - began,
        "slots_due": expected,
        "slots_run": len(run),
        "slots_missed": expected - len(run),
        "slots_run_twice": twice,
        "slots_per_second": len(run) / len(due),
        "replicas_used": len({r[4] for r in run}),
        "lateness_seconds": lateness,
    }
    result["kept_up"] = bool(
        result["slots_missed"] == 0 and twice == 0 and (lateness["p90"] or 0.0) < 1.0
    )
    server.drop_database(database)
    return result


# -- 2. ad-hoc runs: latency and round trips ----------------------------------------------


def post(url: str, deployment: str, parameters: dict[str, Any]) -> str:
    answer = httpx.post(
        f"{url}/api/deployments/{deployment}/runs",
        json={"parameters": parameters},
        headers={"Authorization": f"Bearer {REPLICA_TOKEN}"},
        timeout=30,
    )
    if answer.status_code != 201:
        raise BenchError(f"POST {deployment} answered {answer.status_code}: {answer.text}")
    return str(answer.json()["id"])


def run_row(server: PgServer, database: str, run_id: str) -> tuple[Any, ...] | None:
    rows = server.query(
        database,
        "SELECT state, extract(epoch FROM started_at), owner, attempt, "
        "extract(epoch FROM created_at) FROM runs "
        f"WHERE id = '{run_id}'",
    )
    return rows[0] if rows else None


def await_run(
    server: PgServer,
    database: str,
    run_id: str,
    what: str,
    ok: Callable[[tuple[Any, ...]], object],
    deadline: float,
    poll: float = 0.02,
) -> tuple[Any, ...]:
    """Poll the run's row (state, started_at, owner, attempt, created_at; times as epoch
    seconds) until ``ok`` of it."""

    def probe() -> tuple[Any, ...] | None:
        row = run_row(server, database, run_id)
        return row if row is not None and ok(row) else None

    return wait_for(what, probe, deadline, poll=poll)


def adhoc_runs(
    server: PgServer, database: str, replicas: Replicas, runs: int, idle: float
) -> dict[str, Any]:
    members = replicas.running()
    ids = {r["pid"]: r["id"] for r in members[0].get("/api/replicas").json()}
    reset_statements(server, database)
    idle_began = time.monotonic()
    end = idle_began + idle
    wait_for("the idle window to pass", lambda: time.monotonic() >= end, idle + 30, poll=0.5)
    idle_calls = statement_calls(server, database)
    idle_seconds = time.monotonic() - idle_began
    reset_statements(server, database)
    began = time.monotonic()
    same: list[float] = []
    other: list[float] = []
    seen: list[float] = []
    early = 0
    for i in range(runs):
        member = members[i % len(members)]
        posted = time.time()
        run_id = post(member.url, "tick/adhoc", {})
        row = await_run(
            server, database, run_id, "the run to start", lambda r: r[1] is not None, 30, 0.005
        )
        seen.append(time.time() - posted)
        started = float(str(row[1]))
        (same if row[2] == ids[member.pid] else other).append(started - posted)
        early += started < float(str(row[4]))
        await_run(server, database, run_id, "the run to end", lambda r: r[0] in TERMINAL, 60)
    busy_seconds = time.monotonic() - began
    calls = statement_calls(server, database)
    idle_rate = sum(idle_calls.values()) / idle_seconds
    per_run = (sum(calls.values()) - idle_rate * busy_seconds) / runs
    kinds = {
        kind: (n - idle_calls.get(kind, 0) / idle_seconds * busy_seconds) / runs
        for kind, n in calls.most_common()
    }
    return {
        "latency_seconds": summary(same + other),
        "latency_observed_running_seconds": summary(seen),
        "started_at_before_created_at": early,
        "latency_started_elsewhere_seconds": summary(other),
        "latency_started_on_posted_replica_seconds": summary(same),
        "round_trips_per_run": per_run,
        "round_trips_per_run_by_kind": kinds,
        "transactions_per_run": kinds.get("BEGIN", 0.0),
        "idle_round_trips_per_second": idle_rate,
        "idle_seconds": idle_seconds,
        "busy_seconds": busy_seconds,
        "round_trips_counted_by": (
            "pg_stat_statements calls of the replicas' role (every statement psycopg sends "
            "is one round trip, BEGIN and COMMIT included), minus the idle rate"
        ),
    }


# -- 3. failover ----------------------------------------------------------------------------


def failovers(server: PgServer, database: str, replicas: Replicas, count: int) -> dict[str, Any]:
    seconds: list[float] = []
    for _ in range(count):
        members = replicas.running()
        run_id = post(members[0].url, "long-tick/long", {"seconds": 60})
        owner = await_run(
            server, database, run_id, "the long run to start", lambda r: r[0] == "Running", 30
        )[2]
        by_id = {r["id"]: r["pid"] for r in members[0].get("/api/replicas").json()}
        victim = next(m for m in members if m.pid == by_id.get(owner))
        killed = time.time()
        victim.served.signal(signal.SIGKILL)
        victim.served.wait_exit(timeout=30)
        row = await_run(
            server, database, run_id, "the retry to run elsewhere",
            lambda r: r[0] == "Running" and r[3] == 2, FAILOVER_TIMEOUT * 5 + 30,
        )  # fmt: skip
        seconds.append(float(str(row[1])) - killed)
        survivor = next(m for m in replicas.running())
        httpx.post(
            f"{survivor.url}/api/runs/{run_id}/cancel",
            headers={"Authorization": f"Bearer {REPLICA_TOKEN}"},
            timeout=30,
        )
        victim.stack.close()
        replicas.start(victim.name)
    return {"replica_timeout_seconds": FAILOVER_TIMEOUT, "failover_seconds": summary(seconds)}


# -- report ---------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f} ms"


def table(results: dict[str, Any]) -> str:
    out = [
        "| replicas | deployments × 1 s | slots due | run | missed | run twice | slots/s | "
        "lateness p50 / p90 | kept up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for level in results["slots"]:
        late = level["lateness_seconds"]
        out.append(
            f"| {level.get('replicas', REPLICAS)} | {level['deployments']} | "
            f"{level['slots_due']} | {level['slots_run']} | "
            f"{level['slots_missed']} | {level['slots_run_twice']} | "
            f"{level['slots_per_second']:.1f} | {ms(late['median'])} / {ms(late['p90'])} | "
            f"{'yes' if level['kept_up'] else 'no'} |"
        )
    adhoc, fail = results["adhoc"], results["failover"]["failover_seconds"]
    out += ["", "| figure | median | p90 | min | n |", "|---|---:|---:|---:|---:|"]
    for label, s, fmt in (
        ("ad-hoc POST → started_at (any replica)", adhoc["latency_seconds"], ms),
        (
            "ad-hoc POST → Running seen in the database",
            adhoc["latency_observed_running_seconds"],
            ms,
        ),
        ("… started by another replica", adhoc["latency_started_elsewhere_seconds"], ms),
        (
            "… started by the replica posted to",
            adhoc["latency_started_on_posted_replica_seconds"],
            ms,
        ),
        (
            f"kill -9 → retry Running elsewhere (timeout {FAILOVER_TIMEOUT:g} s)",
            fail,
            lambda v: "–" if v is None else f"{v:.1f} s",
        ),
    ):
        out.append(
            f"| {label} | {fmt(s['median'])} | {fmt(s['p90'])} | {fmt(s['min'])} | {s['n']} |"
        )
    out.append("")
    out.append(
        f"Database round trips per ad-hoc run: {adhoc['round_trips_per_run']:.1f} statements "
        f"({adhoc['transactions_per_run']:.1f} transactions), pg_stat_statements, after "
        f"subtracting {adhoc['idle_round_trips_per_second']:.1f} statements/s of three idle "
        "replicas."
    )
    if adhoc["started_at_before_created_at"]:
        out.append(
            f"{adhoc['started_at_before_created_at']} of {adhoc['latency_seconds']['n']} runs "
            "have a started_at before their created_at (the taking tick's clock): hence the "
            "row measured by polling."
        )
    env = results["environment"]
    out.append(
        f"({env['platform']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"dockyard {env['dockyard']}, PostgreSQL {env['postgresql']}, "
        f"{results['elapsed_seconds']:.0f} s)"
    )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="2,4,6", help="deployments per level (1.)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per level (1.)")
    parser.add_argument("--runs", type=int, default=30, help="ad-hoc runs one at a time (2.)")
    parser.add_argument("--idle", type=float, default=15.0, help="idle seconds measured (2.)")
    parser.add_argument("--failovers", type=int, default=3, help="kill -9 repetitions (3.)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",") if n.strip()]

    t0 = time.perf_counter()
    server = start_server()
    version = server.query("postgres", "SHOW server_version")[0][0]
    results: dict[str, Any] = {"environment": environment(postgresql=version), "slots": []}
    root = Path(tempfile.mkdtemp(prefix="dockyard-bench-replicas-"))
    try:
        for i, deployments in enumerate(levels, start=1):
            for count in (1, REPLICAS):  # the baseline first: one replica, same load
                print(f"1/3 slots/s: {deployments} deployments × 1 s on {count} replica(s) …",
                      file=sys.stderr)  # fmt: skip
                level = slots_level(
                    server, deployments, args.window, root / f"level{i}-{count}", count
                )
                results["slots"].append(level)
        database, url = new_database(server)
        prepare(root / "adhoc", ADHOC_CONFIG)
        env = {"DOCKYARD_REPLICA_TIMEOUT": f"{FAILOVER_TIMEOUT:g}", "DOCKYARD_HEARTBEAT": "1"}
        with Replicas(root / "adhoc", url, ["--config", "flows/bench.yaml"], **env) as replicas:
            replicas.start_all(REPLICAS)
            print(f"2/3 ad-hoc runs ({args.runs}), idle {args.idle:g} s first …", file=sys.stderr)
            results["adhoc"] = adhoc_runs(server, database, replicas, args.runs, args.idle)
            print(f"3/3 failover ({args.failovers} × kill -9) …", file=sys.stderr)
            results["failover"] = failovers(server, database, replicas, args.failovers)
            replicas.stop_all()
    except AssertionError as exc:  # a wait of tests.helpers timed out
        raise BenchError(str(exc)) from None
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
    results["elapsed_seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    sys.stderr.flush()
    print(table(results), flush=True)
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 1 if any(level["slots_run_twice"] for level in results["slots"]) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
