"""The OTLP/HTTP receiver of the leader sidecar, on 127.0.0.1 only.

One sidecar per machine listens: the leader (it holds the leader lock for life); when it exits,
the sidecar that takes the lock over binds the port. A port another program holds is a problem
in status, tried again every RETRY_SECONDS, never a crash.

What is refused before a body is read: a Host that is not loopback (DNS rebinding: a web page
whose name resolves to 127.0.0.1 sends its own Host), any request a browser marks with an
`Origin`, paths other than the three OTLP ones (404), methods other than POST (405; no CORS
preflight is ever answered), and content types other than OTLP JSON (415: a page's plain-text
or form POST needs no preflight, so it must fail here). No CORS header is ever sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.otlp import body
from dx_lsp_telemetry.otlp.http import HttpServer, Request, Response, error
from dx_lsp_telemetry.settings.settings import SECTION, Settings
from dx_lsp_telemetry.sources.claude_keys import KeyEpoch, key_epoch

if TYPE_CHECKING:
    from dx_lsp_telemetry.otlp.export import Record

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
RETRY_SECONDS = 10.0
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback_host_header(header: str) -> bool:
    """`127.0.0.1`, `localhost` or `[::1]`, with or without a port."""
    host = header.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return False
    else:
        name, _, port_text = host.partition(":")
        port = port_text if _ else None
    if port is not None and not (port.isdigit() and len(port) <= 5):
        return False
    return name in _LOOPBACK_NAMES


def check(request: Request) -> Response | None:
    """The refusals decided on the head alone (the body is then never read)."""
    host = request.headers.get("host")
    if host is None:
        return error(400, "a Host header is required")
    if not is_loopback_host_header(host):
        return error(
            421, f"this receiver answers for 127.0.0.1 and localhost only, not {host[:80]!r}"
        )
    if "origin" in request.headers:
        return error(403, "requests from web pages are refused")
    if request.path not in body.SIGNALS:
        return error(
            404, f"{request.path[:80]} is not an OTLP path: use /v1/logs, /v1/metrics or /v1/traces"
        )
    if request.method != "POST":
        return error(405, f"{request.method[:20]} is not allowed: OTLP exports POST", Allow="POST")
    problem = body.media_type_problem(request.headers.get("content-type"))
    if problem is None:
        problem = body.encoding_problem(request.headers.get("content-encoding"))
    if problem is not None:
        return error(415, problem)
    return None


class OtlpReceiver:
    def __init__(
        self,
        paths: DataPaths,
        record: Record,
        settings: Callable[[], Settings],
        on_change: Callable[[], None],
    ) -> None:
        self._paths = paths
        self._record = record
        self._settings = settings
        self._on_change = on_change
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="dx-otlp")
        self._epoch: KeyEpoch | None = None
        #: the port wanted (None: off), and the task that listens on it
        self._wanted: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.state = "off"
        self.port: int | None = None
        self.problem: str | None = None

    def apply(self, settings: Settings, leader: bool) -> None:
        """Listen, move or stop to match the settings and leadership (on the event loop)."""
        wanted = settings.otlp.port if settings.enabled and settings.otlp.enabled else None
        if not leader:
            if self._task is not None:
                self._stop_task()
            self._wanted = None
            self._set("standby" if wanted is not None else "off", None, None)
            return
        if wanted == self._wanted and self._task is not None:
            return
        self._stop_task()
        self._wanted = wanted
        if wanted is None:
            self._set("off", None, None)
        else:
            self._set("starting", wanted, None)
            self._task = asyncio.ensure_future(self._listen(wanted))

    def status(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"state": self.state}
        if self.port is not None:
            shown["port"] = self.port
        if self.problem:
            shown["problem"] = self.problem
        return shown

    async def stop(self) -> None:
        task = self._stop_task()
        if task is not None:
            with contextlib.suppress(BaseException):  # the editor's exit waits for nobody
                await asyncio.wait_for(task, 0.5)
        self._decoder.shutdown(wait=False)

    def _stop_task(self) -> asyncio.Task[None] | None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    async def _listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        if self._epoch is None:
            try:
                self._epoch = await loop.run_in_executor(
                    self._decoder, key_epoch, self._paths.sources_dir
                )
            except OSError as exc:  # an unusable data folder: requests get 503 anyway
                log.warning("otlp: cannot read the Claude Code key epoch: %s", exc)
        # loaded only when the receiver is on: the sidecar's start-up does not wait for it
        from dx_lsp_telemetry.otlp.export import Exports

        exports = Exports(self._record, self._settings, lambda: self._epoch, self._decoder)
        server = HttpServer(check, exports.handle)
        try:
            while True:
                try:
                    await server.start(HOST, port)
                    break
                except OSError as exc:
                    self._set("problem", port, _bind_problem(port, exc))
                    await asyncio.sleep(RETRY_SECONDS)
            log.info("otlp: listening on http://%s:%d (OTLP http/json)", HOST, port)
            self._set("listening", port, None)
            await asyncio.Event().wait()  # until cancelled
        finally:
            await server.close()

    def _set(self, state: str, port: int | None, problem: str | None) -> None:
        if (state, port, problem) == (self.state, self.port, self.problem):
            return
        if problem and problem != self.problem:
            log.warning("%s", problem)
        self.state, self.port, self.problem = state, port, problem
        self._on_change()


def _bind_problem(port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        what = f"another program already uses port {port} on {HOST}"
    else:
        what = f"cannot listen on {HOST}:{port} ({exc.strerror or exc})"
    return (
        f"OTLP receiver: {what}; set {SECTION}.otlp.port to a free port (and point the AI tools' "
        f"exporters at it), or stop that program. Tried again every {RETRY_SECONDS:.0f} s"
    )
