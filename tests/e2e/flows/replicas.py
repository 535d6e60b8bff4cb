"""Flows of the replica tests (tests/e2e/test_replicas_*.py) and bench/replicas.py.

Every attempt keeps a ledger in the file ``$LEDGER`` (each serve process is given one in
its own directory, so no file is shared) as two lines::

    begin <run id> <slot> <attempt> <replica>/<pid> <start stamp> -
    end   <run id> <slot> <attempt> <replica>/<pid> <start stamp> <end stamp>

``<slot>`` is the run's scheduled time (UTC, whole seconds for interval slots),
``<replica>`` is ``$REPLICA`` (the name the test gave the serve process), stamps are
``time.time()``. Nothing is written when the attempt dies before it ends, so a ``begin``
without its ``end`` is an attempt that was killed.
"""

import os
import time
from pathlib import Path

from dockyard import flow, runtime


def _ledger(kind: str, start: float, end: float | None = None) -> None:
    slot = runtime.flow_run.scheduled_start_time
    fields = [
        kind,
        runtime.flow_run.id,
        slot.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if slot else "-",
        str(runtime.flow_run.run_count),
        f"{os.environ.get('REPLICA', '?')}/{os.getpid()}",
        f"{start:.6f}",
        "-" if end is None else f"{end:.6f}",
    ]
    # One write of a short line to a file opened for appending: lines never interleave.
    with Path(os.environ.get("LEDGER", "ledger.txt")).open("a") as out:
        out.write(" ".join(fields) + "\n")


@flow
def tick(seconds: float = 0.05):
    """Sleeps ``seconds`` between its two ledger lines."""
    start = time.time()
    _ledger("begin", start)
    time.sleep(seconds)
    _ledger("end", start, time.time())


@flow(retries=1, retry_delay_seconds=0)
def long_tick(seconds: float = 20.0):
    """``tick`` with one retry, for the run a killed replica leaves behind."""
    start = time.time()
    _ledger("begin", start)
    time.sleep(seconds)
    _ledger("end", start, time.time())


@flow
def talker(lines: int = 40, pause: float = 0.5):
    """Prints ``said <i> <stamp>`` every ``pause`` seconds (the stamp of the print)."""
    start = time.time()
    _ledger("begin", start)
    for i in range(lines):
        print(f"said {i} {time.time():.6f}", flush=True)
        time.sleep(pause)
    _ledger("end", start, time.time())
