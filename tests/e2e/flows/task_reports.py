"""Flows that report task runs for the serve-side tests of task runs and tags.

``reports``, ``dies_in_a_task`` and ``waits_in_a_task`` write the task-run lines the task
engine writes, by hand, to the file their envelope names (the child's ``sys.argv[1]``), so
the serve side is tested on exactly the lines it gets, whatever the engine does. ``tasks``
uses real ``@task`` calls.
"""

import json
import os
import signal
import sys
import time
from datetime import UTC, datetime

from dockyard import flow, task


def _task_runs_path() -> str:
    with open(sys.argv[1], encoding="utf-8") as fh:  # the run's envelope
        return str(json.load(fh)["task_runs_path"])


def _report(task_id: str, name: str, state: str, **fields: object) -> None:
    now = datetime.now(UTC).isoformat()
    line = {"id": task_id, "run_id": "not-this-run", "name": name, "task_key": name[:-2],
            "state": state, "started_at": now, **fields}  # fmt: skip
    with open(_task_runs_path(), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


@flow
def reports(count: int = 2, garbage: bool = False):
    """``count`` task runs, each Running then Completed (the last one a cache hit)."""
    started = [datetime.now(UTC).isoformat() for _ in range(count)]
    for i in range(count):
        _report(f"t{i}", f"say-{i}", "Running", started_at=started[i])
    if garbage:
        with open(_task_runs_path(), "a", encoding="utf-8") as fh:
            fh.write('not json\n{"id": 5}\n[1, 2]\n')
    for i in range(count):
        done = datetime.now(UTC).isoformat()
        _report(
            f"t{i}", f"say-{i}", "Completed", started_at=started[i], ended_at=done,
            cache_hit=i == count - 1,
        )  # fmt: skip
    print(f"reported {count} task runs", flush=True)
    return count


@flow
def dies_in_a_task():
    """Killed while one task run is Running and one Pending (one ended before)."""
    _report("done", "first-0", "Completed", ended_at=datetime.now(UTC).isoformat())
    _report("left", "second-0", "Running")
    _report("queued", "third-0", "Pending", started_at=None)
    os.kill(os.getpid(), signal.SIGKILL)


@flow
def waits_in_a_task(seconds: float = 60.0, marker: str = ""):
    """One task run Running until the run is cancelled."""
    _report("waiting", "wait-0", "Running")
    if marker:
        with open(marker, "w") as fh:
            fh.write("reported")
    time.sleep(seconds)


@flow
def shows_tags():
    """Prints the run's tags as the flow sees them (``dockyard.runtime.flow_run.tags``)."""
    from dockyard.runtime import flow_run

    print("tags: " + ",".join(flow_run.tags), flush=True)


@task
def say(word: str) -> str:
    print(word, flush=True)
    return word


@task(task_run_name="shout-{word}")
def shout(word: str) -> str:
    raise ValueError(f"too loud: {word}")


@flow
def tasks():
    """Real task runs: two that complete and one that fails (caught by the flow)."""
    say("hello")
    say("again")
    try:
        shout("hey")
    except ValueError:
        pass
    return "done"
