"""A flow that records how late its body started, for ``bench/prefect_suite.py``.

The first thing the body does is read the clock; it then appends one line
``<scheduled start> <body start> <deployment>`` (Unix seconds, the format of
bench/flows/lateness.py) to the file named by ``$BENCH_LATENESS_FILE``. The scheduled
start is Prefect's ``runtime.flow_run.scheduled_start_time``, so the difference is
measured inside the flow, after every cost Prefect adds.
"""

import os
import time

from prefect import flow, runtime


@flow
def lateness():
    started = time.time()
    scheduled = runtime.flow_run.scheduled_start_time.timestamp()
    line = f"{scheduled:.6f} {started:.6f} {runtime.deployment.name}\n"
    # One write(2) on an O_APPEND file: lines of runs that end together never interleave.
    fd = os.open(os.environ["BENCH_LATENESS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
