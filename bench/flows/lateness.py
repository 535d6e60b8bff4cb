"""A flow that records how late its body started, for ``bench/suite.py``'s lateness scenarios.

The first thing the body does is read the clock; it then appends one line
``<scheduled start> <body start> <deployment>`` (Unix seconds) to the file named by the
``out`` parameter or, without one, by ``$BENCH_LATENESS_FILE``. The scheduled start is
what the run exposes as ``runtime.flow_run.scheduled_start_time`` (the slot's time), so
the difference is measured inside the flow, after every cost dockyard adds.
"""

import os
import time

from dockyard import flow
from dockyard.runtime import flow_run


@flow
def lateness(out: str = ""):
    started = time.time()
    scheduled = flow_run.scheduled_start_time.timestamp()
    line = f"{scheduled:.6f} {started:.6f} {flow_run.deployment_name}\n"
    # One write(2) on an O_APPEND file: lines of runs that end together never interleave.
    fd = os.open(out or os.environ["BENCH_LATENESS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
