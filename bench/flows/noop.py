"""A flow that does nothing: what is left of a run is dockyard's own overhead."""

from dockyard import flow


@flow
def noop():
    pass
