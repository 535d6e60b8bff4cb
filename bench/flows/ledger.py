"""A flow that keeps a ledger of its own attempts, for ``bench/faults.py``.

Every attempt appends ``start <run id> <pid>`` before it works and ``end …`` as the body's
last step; before starting it looks up the pids of earlier attempts of the same run in the
ledger and appends ``DUPLICATE …`` if one of them is still alive: two attempts of one run
at once is what must never happen. Its completion hook, which runs once the attempt's
report is written, appends ``reported …``: a run must never start again after that.
"""

import fcntl
import os
import random
import time
from pathlib import Path

from dockyard import flow

LEDGER = Path(os.environ.get("LEDGER", "ledger.txt"))


def _append(line: str) -> list[str]:
    with LEDGER.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        before = fh.read().splitlines()
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return before


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _reported(flow, flow_run, state):
    _append(f"reported {os.environ['DOCKYARD_RUN_ID']} {os.getpid()}")


@flow(retries=2, retry_delay_seconds=0, on_completion=[_reported])
def ledger(low: float = 0.2, high: float = 1.5):
    run_id = os.environ["DOCKYARD_RUN_ID"]
    me = os.getpid()
    before = _append(f"start {run_id} {me}")
    for line in before:
        kind, rid, pid = line.split()[:3]
        if kind == "start" and rid == run_id and int(pid) != me and _alive(int(pid)):
            _append(f"DUPLICATE {run_id} {pid} {me}")
    time.sleep(random.uniform(low, high))
    _append(f"end {run_id} {me}")
