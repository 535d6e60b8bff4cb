"""The warm executor's fork server: ``python -m dockyard.execution.forkserver FD PARENT``.

A single-threaded process that imports what a run needs once and then forks one child per
run, on request from the serve process over the socket ``FD`` (a ``SOCK_SEQPACKET`` pair:
one JSON message per datagram, with the run's stdout and stderr pipes passed along).

Each child is what ``python -m dockyard.execution.child`` would have been: its own session
and process group, the run's pipes as fds 1 and 2, ``/dev/null`` as stdin, the run's working
directory, environment and ``sys.path[0]``, and the kernel's SIGKILL when its parent dies.
The fork server itself gets SIGKILL when the serve process dies, so a ``kill -9`` of the
serve process still takes every run down with it.

It loads no user code: every run imports its flow's files itself, as a fresh interpreter
would, so a new code revision never sees the modules of an older one and the server is
the same for every revision.

Messages (JSON objects), serve → server: ``{"id", "spec_path", "cwd", "env"}`` with two fds.
Server → serve: ``{"ready", "pid", "preload_ms"}`` once, then ``{"id", "pid"}`` or
``{"id", "error"}`` for each request, and ``{"exit": pid, "code": code}`` whenever a child
ends (``code`` as asyncio reports it: negative for the signal that killed it).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from typing import Any

from dockyard.execution.environment import stamp_variable
from dockyard.execution.leftovers import RUN_ID_ENV, die_with_parent

PRELOAD = (
    "dockyard",
    "dockyard.execution.child",
    "dockyard.execution.loading",
    "dockyard.execution.inprocess",
    "dockyard.engine.flows",
    "dockyard.engine.context",
    "dockyard.engine.logs",
    "dockyard.engine.results",
    "dockyard.engine.tracebacks",
    "dockyard.core.names",
    "dockyard.api",
    "concurrent.futures.thread",
)
"""What every run imports before it reaches the user's code."""
MAX_MESSAGE = 1 << 20
RUN_ID_SLOT = 64
"""Characters reserved for the run id in the server's exec-time environment (see
``placeholder``): a run's ``/proc/PID/environ`` names its run, as leftovers.py expects."""


def placeholder() -> str:
    """The value of ``DOCKYARD_RUN_ID`` the server starts with: room for any run's id."""
    return "-" * RUN_ID_SLOT


def exercise() -> None:
    """Do once what every run does first, so that what it imports and caches on first use
    (pydantic's model machinery and plugin lookup) is in the children already."""
    from dockyard.core.parameters import validate_parameters

    def warm_up(value: int = 0) -> None:
        """Never called: only its parameters are validated."""

    validate_parameters(warm_up, {"value": 1})


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


class ForkServer:
    """Reads requests, forks children, reports their ends; never starts a thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def loop(self) -> int:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(self.wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is self.sock and not self._request():
                    return 0  # the serve process closed its end: nothing more to start
            self._drain_wakeups()
            self._reap()

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            send(self.sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def _request(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, 2)
        except InterruptedError:
            return True
        if not data:
            return False
        request = json.loads(data)
        try:
            if len(fds) != 2:
                send(self.sock, {"id": request["id"], "error": "expected two pipes"})
            elif threading.active_count() > 1:  # forking now could copy a held lock
                send(self.sock, {"id": request["id"], "error": "the fork server has threads"})
            else:
                pid = self._fork(request, fds[0], fds[1])
                send(self.sock, {"id": request["id"], "pid": pid})
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _fork(self, request: dict[str, Any], out: int, err: int) -> int:
        ready_r, ready_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            code = 1
            try:
                self._become_run(request, out, err, ready_w)
                from dockyard.execution import child

                sys.argv = [child.__file__, request["spec_path"]]  # as ``python -m`` sets it
                code = child.main_code(request["spec_path"])
            except BaseException as exc:  # its exit code tells the serve process
                print(f"dockyard: the run could not start: {exc}", file=sys.stderr, flush=True)
            finally:
                from dockyard.execution.child import exit_now

                exit_now(code)
        os.close(ready_w)
        # Until the child has its own session, the serve process could not signal its group.
        os.read(ready_r, 1)
        os.close(ready_r)
        return pid

    def _become_run(self, request: dict[str, Any], out: int, err: int, ready: int) -> None:
        """In the child: everything that makes it look like a fresh run process."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        os.setsid()
        os.dup2(out, 1)
        os.dup2(err, 2)
        die_with_parent(os.getppid())
        os.chdir(request["cwd"])
        env: dict[str, str] = request["env"]
        os.environ.clear()
        os.environ.update(env)
        stamp_variable(RUN_ID_ENV, env.get(RUN_ID_ENV, ""))
        sys.path[0] = os.getcwd()  # as ``python -m`` started in the run's directory
        gc.unfreeze()
        os.write(ready, b"1")
        os.close(ready)


def main() -> int:
    fd, parent = int(sys.argv[1]), int(sys.argv[2])
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the serve process
    sock = socket.socket(fileno=fd)
    began = time.perf_counter()
    for name in PRELOAD:
        importlib.import_module(name)
    exercise()
    preload_ms = round((time.perf_counter() - began) * 1000, 1)
    gc.collect()
    gc.freeze()  # children do not copy the pages of what is already imported
    send(sock, {"ready": True, "pid": os.getpid(), "preload_ms": preload_ms})
    return ForkServer(sock).loop()


if __name__ == "__main__":
    sys.exit(main())
