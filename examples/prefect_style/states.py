"""Look at states instead of catching exceptions: return_state, allow_failure, and the
rule that decides a flow's final state.

    python examples/prefect_style/states.py
    dockyard serve examples/prefect_style/states.py:states --param strict=true

A failed task only fails the flow when its failure reaches the flow: raised, returned, or
left in a returned future. Here the failure is inspected and the cleanup runs anyway.
"""

from __future__ import annotations

from dockyard import State, allow_failure, flow, task
from dockyard.states import Completed, Failed


@task
def check_quota(used: int, limit: int) -> int:
    if used > limit:
        raise ValueError(f"quota exceeded: {used} > {limit}")
    return limit - used


@task(log_prints=True)
def cleanup(label: str) -> None:
    print(f"cleanup after {label}")


@flow(log_prints=True)
def states(used: int = 12, limit: int = 10, strict: bool = False) -> State:
    """Completed with a message unless `strict`, in which case the failure decides."""
    state = check_quota(used, limit, return_state=True)
    print(f"quota check: {state.name}")

    future = check_quota.submit(used, limit)
    # allow_failure: cleanup waits for the check but runs even though it failed.
    cleanup.submit("quota", wait_for=[allow_failure(future)]).wait()

    if state.is_failed() and strict:
        return Failed(message="quota exceeded")
    if state.is_failed():
        return Completed(message="over quota, cleaned up")
    return Completed(message=f"{state.result()} left")


if __name__ == "__main__":
    states()
