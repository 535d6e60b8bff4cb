"""A flow that sleeps: a run that occupies a runner slot without using the CPU."""

import time

from dockyard import flow


@flow
def sleeper(seconds: float = 30.0):
    time.sleep(seconds)
    return seconds
