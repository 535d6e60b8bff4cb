"""Flows that report how their run process was started, for the warm-executor tests."""

import json
import os
import sys
import time
from pathlib import Path

from dockyard import flow


@flow
def where(out: str):
    """Write what a run process looks like from inside to ``out``."""
    environ = Path("/proc/self/environ").read_bytes().split(b"\0")
    marker = [e.decode() for e in environ if e.startswith(b"DOCKYARD_RUN_ID=")]
    report = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "sid": os.getsid(0),
        "pgid": os.getpgid(0),
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "argv1": sys.argv[1] if len(sys.argv) > 1 else None,
        "run_id": os.environ.get("DOCKYARD_RUN_ID"),
        "proc_environ": marker,
        "stdin": os.readlink("/proc/self/fd/0"),
        "secret": os.environ.get("DOCKYARD_API_TOKEN"),
        "main": sys.modules["__main__"].__name__,
    }
    Path(out).write_text(json.dumps(report))
    print("reported from", os.getpid())


@flow
def hang(pid_file: str):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)
