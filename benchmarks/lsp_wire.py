"""A small, fast LSP client over stdio for the benchmarks: raw base-protocol framing, no pygls.

pygls's own client costs more per message than a fast server does, so it would measure itself.
Here the bytes are parsed straight in the subprocess protocol's `pipe_data_received` (no reader
task to wake up), each response is stamped with `perf_counter()` as its chunk arrives, and a
callback may send the next request at once, in the same write as the others of that chunk.

Only the names of the README's "The LSP interface" are used, so this keeps working whatever the
sidecar's internals become.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: the sidecar, as the extension starts it
SIDECAR = (sys.executable, "-m", "dx_lsp_telemetry")
STDERR_KEEP = 64 * 1024

Message = dict[str, Any]
#: (the message, the perf_counter() moment its chunk arrived)
OnResponse = Callable[[Message, float], None]


def frame(message: Mapping[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would point a sidecar at real data."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DX_", "CLAUDE_", "CODEX_", "XDG_")) and k != "HOME"
    }
    env.update(extra)
    return env


def proc_status_kib(pid: int, key: str) -> int:
    """A `kB` field of /proc/PID/status, e.g. VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def cpu_ns(pid: int) -> int:
    """CPU time of all the threads of process `pid`: its CPUCLOCK_SCHED clock id, as
    clock_getcpuclockid() would make it (no /proc parsing, ns resolution)."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


class LspError(RuntimeError):
    """The server answered with an error, or broke the protocol, or died."""


class _Pipes(asyncio.SubprocessProtocol):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.conn._feed(data, time.perf_counter())
        else:
            err = self.conn.stderr
            err += data
            if len(err) > STDERR_KEEP:
                del err[: len(err) - STDERR_KEEP]

    def process_exited(self) -> None:
        self.conn._exited()


class Connection:
    """One server process and its stdio; requests are answered through callbacks or futures."""

    def __init__(self) -> None:
        self.transport: asyncio.SubprocessTransport | None = None
        self.pid = 0
        self.stderr = bytearray()
        self.notifications: dict[str, int] = {}
        self._buf = bytearray()
        self._waiting: dict[int, OnResponse] = {}
        self._next_id = 1
        self._out: list[bytes] = []
        self._in_feed = False
        self._exit: asyncio.Future[None] | None = None
        self._problem: str | None = None

    @classmethod
    async def spawn(
        cls, cmd: Sequence[str], env: Mapping[str, str], cwd: Path = ROOT
    ) -> Connection:
        loop = asyncio.get_running_loop()
        conn = cls()
        conn._exit = loop.create_future()
        transport, _ = await loop.subprocess_exec(
            lambda: _Pipes(conn),
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
        )
        conn.transport = transport
        conn.pid = transport.get_pid()
        return conn

    # -- sending ---------------------------------------------------------------------------

    def new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def send_raw(self, data: bytes) -> None:
        """Bytes of whole frames; inside a response callback they go out with the others."""
        if self._in_feed:
            self._out.append(data)
            return
        assert self.transport is not None
        stdin = self.transport.get_pipe_transport(0)
        if not isinstance(stdin, asyncio.WriteTransport) or stdin.is_closing():
            raise LspError("the server's stdin is closed")
        stdin.write(data)

    def expect(self, request_id: int, on_response: OnResponse) -> None:
        self._waiting[request_id] = on_response

    def forget(self, request_id: int) -> None:
        """A request expected but never sent after all."""
        self._waiting.pop(request_id, None)

    def request_frame(self, method: str, params: Any, on_response: OnResponse) -> bytes:
        """The frame of a new request, its answer awaited by `on_response` (send it yourself)."""
        request_id = self.new_id()
        self._waiting[request_id] = on_response
        return frame({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    def notify(self, method: str, params: Any) -> None:
        self.send_raw(frame({"jsonrpc": "2.0", "method": method, "params": params}))

    async def call(self, method: str, params: Any, timeout: float = 120.0) -> Any:
        """Send a request, await its result; an error answer raises LspError."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Message] = loop.create_future()

        def answered(message: Message, _t: float) -> None:
            if not done.done():
                done.set_result(message)

        def exited(_: asyncio.Future[None]) -> None:
            if not done.done():
                done.set_exception(
                    LspError(f"the server exited during {method}: {self.stderr_tail()}")
                )

        assert self._exit is not None
        self._exit.add_done_callback(exited)
        try:
            self.send_raw(self.request_frame(method, params, answered))
            message = await asyncio.wait_for(done, timeout)
        finally:
            self._exit.remove_done_callback(exited)
        if "error" in message:
            raise LspError(f"{method}: {message['error']}")
        return message.get("result")

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    # -- receiving -------------------------------------------------------------------------

    def _feed(self, data: bytes, arrived: float) -> None:
        buf = self._buf
        buf += data
        pos = 0
        self._in_feed = True
        try:
            while True:
                head_end = buf.find(b"\r\n\r\n", pos)
                if head_end < 0:
                    break
                length = _content_length(bytes(buf[pos:head_end]))
                start = head_end + 4
                if len(buf) < start + length:
                    break
                message = json.loads(buf[start : start + length])
                pos = start + length
                self._dispatch(message, arrived)
        finally:
            self._in_feed = False
            del buf[:pos]
            if self._out:
                out, self._out = self._out, []
                self.send_raw(b"".join(out))

    def _dispatch(self, message: Message, arrived: float) -> None:
        method = message.get("method")
        if method is None:
            handler = self._waiting.pop(message.get("id"), None)  # type: ignore[arg-type]
            if handler is None:
                self._problem = f"an answer to no request: {str(message)[:200]}"
                return
            handler(message, arrived)
        elif "id" in message:
            # a server request (workDoneProgress/create, registerCapability, ...): accept it
            self.send_raw(frame({"jsonrpc": "2.0", "id": message["id"], "result": None}))
        else:
            self.notifications[method] = self.notifications.get(method, 0) + 1

    def _exited(self) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(None)

    def check(self) -> None:
        if self._problem:
            raise LspError(self._problem)

    # -- the process -----------------------------------------------------------------------

    def rss_mib(self) -> float:
        return proc_status_kib(self.pid, "VmRSS") / 1024

    def cpu_ns(self) -> int:
        return cpu_ns(self.pid)

    def stderr_tail(self, limit: int = 2000) -> str:
        return self.stderr[-limit:].decode(errors="replace")

    async def close(self, timeout: float = 10.0) -> None:
        """`shutdown`, `exit`, stdin closed; killed if it does not exit by `timeout`."""
        assert self.transport is not None and self._exit is not None
        try:
            if not self._exit.done():
                await self.call("shutdown", None, timeout)
                self.notify("exit", None)
        except (LspError, asyncio.TimeoutError, OSError):
            pass
        stdin = self.transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), timeout)
        except asyncio.TimeoutError:
            self.kill()
            await self._exit
        self.transport.close()

    def kill(self) -> None:
        assert self.transport is not None
        if self.transport.get_returncode() is None:
            self.transport.kill()


def _content_length(header: bytes) -> int:
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise LspError(f"a message without Content-Length: {header[:200]!r}")


def initialize_params(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "processId": os.getpid(),  # the sidecar exits if this process dies
        "rootUri": None,
        "capabilities": {},
        "initializationOptions": dict(settings),
    }
