"""The warm executor: runs forked from a fork server that has imported dockyard already.

``WarmExecutor`` starts ``python -m dockyard.execution.forkserver`` once, and asks it for
one child per attempt. A forked child costs a fork and the import of the flow's own files,
where a fresh interpreter costs its start and dockyard's imports on every run. The child
is an attempt exactly as ``SubprocessExecutor`` starts one: the same envelope and result
files, its own process group, stdout and stderr piped to this process, the same
environment, the same crash semantics (it dies with the serve process).

When the fork server cannot start, dies, or cannot fork, the attempt starts in a fresh
interpreter instead and the log says so once; a fork server that died is started again
for the next run, up to ``MAX_RESTARTS`` times in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from dockyard.execution.environment import child_environment
from dockyard.execution.forkserver import MAX_MESSAGE, placeholder
from dockyard.execution.leftovers import RUN_ID_ENV
from dockyard.execution.process import (
    EXIT_POLL,
    RunFiles,
    RunProcess,
    SubprocessExecutor,
    run_environment,
    watch,
)
from dockyard.execution.spec import LineSink, RunSpec

logger = logging.getLogger("dockyard")

START_TIMEOUT = 60.0
"""Seconds the fork server may take to import dockyard and say it is ready."""
MAX_RESTARTS = 3
"""Fork servers started in a row without one forking a run, before giving up on them."""


class ForkFailed(RuntimeError):
    """The fork server could not start this attempt (the caller starts it fresh)."""


class Forked:
    """A run process forked by the fork server: its exit code comes from the server."""

    def __init__(self, pid: int, code: asyncio.Future[int]) -> None:
        self.pid = pid
        self._code = code
        self.returncode: int | None = None
        self._transports: list[asyncio.BaseTransport] = []

    def ended(self, code: int) -> None:
        if not self._code.done():
            self._code.set_result(code)

    async def exited(self) -> int:
        self.returncode = await asyncio.shield(self._code)
        return self.returncode

    def close_pipes(self) -> None:
        for transport in self._transports:
            transport.close()

    def close(self) -> None:
        self.close_pipes()


class ForkServerClient:
    """This process's end of one fork server."""

    def __init__(self, process: asyncio.subprocess.Process, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.pid = process.pid
        self.forked_any = False
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._children: dict[int, Forked] = {}
        self._early: dict[int, int] = {}
        """Exit codes that arrived before the fork's reply was read (a very short run)."""
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.alive = True
        self._stderr: asyncio.Task[None] | None = None
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    @classmethod
    async def start(cls, cwd: Path) -> ForkServerClient:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "dockyard.execution.forkserver",
                str(theirs.fileno()), str(os.getpid()),
                cwd=cwd, pass_fds=(theirs.fileno(),),
                env=child_environment({"PYTHONUNBUFFERED": "1", RUN_ID_ENV: placeholder()}),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
        finally:
            theirs.close()
        ours.setblocking(False)
        client = cls(process, ours)
        assert process.stderr is not None
        client._stderr = asyncio.create_task(_log_stderr(process.stderr))
        try:
            hello = await asyncio.wait_for(asyncio.shield(client._ready), START_TIMEOUT)
        except (TimeoutError, ForkFailed) as exc:
            await client.close()
            raise ForkFailed(f"the fork server did not start: {exc or 'timed out'}") from None
        except BaseException:  # cancelled: the process is stopping
            await asyncio.shield(client.close())
            raise
        logger.info(
            "warm executor: runs are forked from process %d (dockyard imported in %s ms)",
            client.pid, hello.get("preload_ms"),
        )  # fmt: skip
        return client

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            self._dispatch(json.loads(data))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "exit" in message:
            pid, code = int(message["exit"]), int(message["code"])
            child = self._children.pop(pid, None)
            if child is None:
                self._early[pid] = code
            else:
                child.ended(code)
        elif "ready" in message:
            if not self._ready.done():
                self._ready.set_result(message)
        else:
            reply = self._replies.pop(int(message["id"]), None)
            if reply is not None and not reply.done():
                reply.set_result(message)

    def _lost(self) -> None:
        """The server is gone (its children got SIGKILL from the kernel with it)."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(OSError, RuntimeError):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        for future in [self._ready, *self._replies.values()]:
            if not future.done():
                future.set_exception(ForkFailed("the fork server exited"))
        self._replies.clear()
        for pid, child in self._children.items():
            asyncio.get_running_loop().create_task(_ended_with_server(pid, child))
        self._children.clear()

    async def fork(self, spec: RunSpec, files: RunFiles, env: dict[str, str], sink: LineSink,
                   ) -> RunProcess:  # fmt: skip
        """Ask the server for the attempt's process; ForkFailed if it cannot give one."""
        if not self.alive:
            raise ForkFailed("the fork server exited")
        loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        request_id = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._replies[request_id] = reply
        request = {"id": request_id, "spec_path": str(files.spec), "cwd": spec.base_dir,
                   "env": env}  # fmt: skip
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], [out_w, err_w])
            answer = await reply
        except OSError as exc:  # EMSGSIZE (a huge environment), EAGAIN, EPIPE
            self._replies.pop(request_id, None)
            for fd in (out_r, err_r):
                os.close(fd)
            raise ForkFailed(f"could not reach the fork server: {exc}") from None
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        if "pid" not in answer:
            for fd in (out_r, err_r):
                os.close(fd)
            raise ForkFailed(str(answer.get("error") or "no process"))
        self.forked_any = True
        pid = int(answer["pid"])
        child = Forked(pid, loop.create_future())
        if pid in self._early:
            child.ended(self._early.pop(pid))
        else:
            self._children[pid] = child
        stdout, out_transport = await _read_pipe(out_r)
        stderr, err_transport = await _read_pipe(err_r)
        child._transports = [out_transport, err_transport]
        return watch(child, spec, files, stdout, stderr, sink, child.close_pipes)

    async def close(self) -> None:
        """Stop the server (runs it forked are not its business once it is asked to go)."""
        self._lost()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        if self._stderr is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr


async def _read_pipe(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", buffering=0)
    )
    return reader, transport


async def _ended_with_server(pid: int, child: Forked) -> None:
    """A child of a fork server that died was SIGKILLed by the kernel: its code, once gone."""
    while _alive(pid):  # noqa: ASYNC110 - no event tells when a non-child has gone
        await asyncio.sleep(EXIT_POLL)
    child.ended(-signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


async def _log_stderr(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        logger.warning("warm executor: %s", line.decode(errors="replace").rstrip())


def forking_available() -> str | None:
    """Why runs cannot be forked on this system (None: they can)."""
    if not sys.platform.startswith("linux"):
        return f"forking runs is only supported on Linux, not {sys.platform}"
    if not hasattr(socket, "send_fds") or not hasattr(os, "fork"):
        return "this Python cannot pass file descriptors or fork"
    return None


class WarmExecutor(SubprocessExecutor):
    """Forks each attempt from a warm fork server; a fresh interpreter when it cannot."""

    def __init__(self, work_dir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(work_dir, env)
        self._server: ForkServerClient | None = None
        self._starting: asyncio.Task[ForkServerClient | None] | None = None
        self._failures = 0
        self._disabled = forking_available()
        self._said: str | None = None
        if self._disabled:
            self._fallback(self._disabled)

    def helper_pids(self) -> set[int]:
        return {self._server.pid} if self._server is not None and self._server.alive else set()

    async def warm_up(self) -> None:
        await self._ensure()

    async def _ensure(self) -> ForkServerClient | None:
        if self._server is not None and self._server.alive:
            return self._server
        if self._disabled:
            return None
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._start_server())
        return await asyncio.shield(self._starting)

    async def _start_server(self) -> ForkServerClient | None:
        old, self._server = self._server, None
        if old is not None:
            if not old.forked_any:
                self._failures += 1
            await old.close()
            logger.warning("warm executor: the fork server exited; starting a new one")
        if self._failures >= MAX_RESTARTS:
            self._disabled = f"the fork server failed {self._failures} times in a row"
            self._fallback(self._disabled)
            return None
        try:
            self._server = await ForkServerClient.start(self.work_dir)
        except (OSError, ForkFailed) as exc:
            self._failures += 1
            self._fallback(str(exc))
            return None
        return self._server

    def _fallback(self, why: str) -> None:
        if self._said != why:
            self._said = why
            logger.warning("warm executor: %s; runs start in a fresh interpreter", why)

    async def start(self, spec: RunSpec, sink: LineSink) -> RunProcess:
        server = await self._ensure()
        if server is None:
            return await super().start(spec, sink)
        if not Path(spec.base_dir).is_dir():  # noqa: ASYNC240 - what exec would have said
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), spec.base_dir)
        files = RunFiles.write(spec, self.work_dir, parent_pid=server.pid)
        try:
            handle = await server.fork(spec, files, run_environment(spec, self.env), sink)
        except ForkFailed as exc:
            logger.warning(
                "warm executor: could not fork run %s (%s); it starts in a fresh interpreter",
                spec.run_id[:8], exc,
            )  # fmt: skip
            files.remove()
            return await super().start(spec, sink)
        self._failures = 0
        return handle

    async def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        if self._server is not None:
            await self._server.close()
            self._server = None


def make_executor(kind: str, work_dir: Path) -> SubprocessExecutor:
    """The executor ``DOCKYARD_EXECUTOR`` names: ``warm`` (forked runs) or ``fresh``."""
    return WarmExecutor(work_dir) if kind == "warm" else SubprocessExecutor(work_dir)
