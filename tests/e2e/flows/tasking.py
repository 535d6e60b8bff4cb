"""Prefect-style flows with tasks, served by the e2e tests of tasks inside served runs."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from dockyard import flow, get_run_logger, runtime, task
from dockyard.tasks import task_input_hash

_attempts: dict[str, int] = {}


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(hours=1))
def expensive(x: int, marker_dir: str) -> int:
    with open(Path(marker_dir) / "expensive.calls", "a") as fh:
        fh.write(f"{x}\n")
    return x * 10


@flow
def cached(x: int, marker_dir: str) -> int:
    return expensive(x, marker_dir)


@task(retries=2)
def flaky() -> str:
    _attempts["flaky"] = _attempts.get("flaky", 0) + 1
    if _attempts["flaky"] < 3:
        raise ConnectionError(f"attempt {_attempts['flaky']} failed")
    return "third time lucky"


@task
def announce(text: str) -> str:
    get_run_logger().warning("announcing %s", text)
    return text


@flow
def talkative() -> dict[str, object]:
    logger = get_run_logger()
    logger.info("run logger line from %s", runtime.flow_run.name)
    result = announce(flaky())
    return {"name": runtime.flow_run.name, "id": runtime.flow_run.id, "result": result}


@task
def busy(item: int, marker_dir: str) -> int:
    beat = Path(marker_dir) / f"busy-{item}.beat"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        beat.write_text(f"{os.getpid()} {time.monotonic()}")
        time.sleep(0.05)
    return item


@flow
def long_map(marker_dir: str) -> list[int]:
    return busy.map(range(8), marker_dir=marker_dir).result()
