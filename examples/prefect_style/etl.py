"""Extract, transform, load: three tasks, the first of which retries.

    python examples/prefect_style/etl.py
    dockyard serve examples/prefect_style/etl.py:etl --param rows=3

The source is flaky on purpose: the first attempt of each extract fails, the retry
succeeds, so the run shows the retry in its log and still completes.
"""

from __future__ import annotations

import json
from pathlib import Path

from dockyard import flow, get_run_logger, task

_attempts: dict[str, int] = {}


@task(retries=2, retry_delay_seconds=1)
def extract(day: str, rows: int) -> list[dict[str, object]]:
    _attempts[day] = _attempts.get(day, 0) + 1
    if _attempts[day] == 1:
        raise ConnectionError(f"source unavailable for {day} (attempt 1)")
    get_run_logger().info("extracted %d rows for %s on attempt %d", rows, day, _attempts[day])
    return [{"day": day, "id": i, "amount": i * 10} for i in range(rows)]


@task
def transform(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [
        {**record, "amount_eur": round(int(str(record["amount"])) * 0.9, 2)} for record in records
    ]


@task(log_prints=True)
def load(records: list[dict[str, object]], target: str) -> int:
    Path(target).write_text(json.dumps(records, indent=2))
    print(f"loaded {len(records)} rows into {target}")
    return len(records)


@flow(log_prints=True)
def etl(day: str = "2026-01-01", rows: int = 5, target: str = "etl_output.json") -> int:
    """Copy one day of records from the flaky source into a JSON file."""
    records = extract(day, rows)
    loaded = load(transform(records), target)
    print(f"etl for {day}: {loaded} rows")
    return loaded


if __name__ == "__main__":
    etl()
