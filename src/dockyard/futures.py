"""Futures of submitted tasks: ``from dockyard.futures import wait`` (``prefect.futures``)."""

from dockyard.engine.futures import (
    DoneAndNotDoneFutures,
    PrefectFuture,
    PrefectFutureList,
    as_completed,
    resolve_futures_to_results,
    resolve_futures_to_states,
    wait,
)

PrefectConcurrentFuture = PrefectFuture

__all__ = [
    "DoneAndNotDoneFutures",
    "PrefectConcurrentFuture",
    "PrefectFuture",
    "PrefectFutureList",
    "as_completed",
    "resolve_futures_to_results",
    "resolve_futures_to_states",
    "wait",
]
