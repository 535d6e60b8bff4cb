"""A flow that does nothing: what is left of a run is Prefect's own overhead."""

from prefect import flow


@flow
def noop():
    pass
