"""Fan out with .map, hold a shared argument still with unmapped, gather with wait.

python examples/prefect_style/mapping.py
dockyard serve examples/prefect_style/mapping.py:mapping
"""

from __future__ import annotations

from dockyard import flow, task, unmapped
from dockyard.futures import wait


@task(task_run_name="price-{city}")
def price(city: str, rates: dict[str, float]) -> float:
    return round(100 * rates.get(city, 1.0), 2)


@task
def report(total: float, count: int) -> str:
    return f"{count} cities, total {total:.2f}"


@flow(log_prints=True)
def mapping(cities: list[str] | None = None) -> str:
    """Price every city in parallel, then report once all prices are in."""
    cities = cities or ["Oslo", "Lima", "Hanoi", "Perth"]
    rates = {"Oslo": 1.5, "Lima": 0.6, "Hanoi": 0.4}
    futures = price.map(cities, unmapped(rates))
    done, not_done = wait(futures)
    assert not not_done
    prices = [future.result() for future in futures]  # in the order of `cities`
    for city, value in zip(cities, prices, strict=True):
        print(f"{city}: {value}")
    summary = report.submit(sum(prices), len(prices), wait_for=futures).result()
    print(summary)
    return summary


if __name__ == "__main__":
    mapping()
