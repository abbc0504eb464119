"""Logging to stderr (and, in the sidecar, to `window/logMessage`), with the token masked.

pygls logs every message it sends at INFO, payloads included, so its logger stays at WARNING
and its records are never forwarded to the editor (that would recurse).
"""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from collections.abc import Callable

PACKAGE_LOGGER = "dx_lsp_telemetry"
TOKEN_MARK = "[DX token]"
#: a credential after "Bearer", whoever's it is (not our own mark)
_BEARER_VALUE = re.compile(r"(?i)\b(bearer)(\s+)(?!\[)[^\s\"'<>,;)]+")


def scrub_secret(text: str, token: str | None) -> str:
    """`text` without `token` and without any `Bearer <value>`: for whatever a server says
    (it may echo the request's headers) before it is kept or shown."""
    if token:
        text = text.replace(token, TOKEN_MARK)
    return _BEARER_VALUE.sub(r"\1\2[redacted]", text)


class RedactToken(logging.Filter):
    """Belt and braces: the token never reaches a log line, whoever formats it."""

    def __init__(self, token: str | None) -> None:
        super().__init__()
        self._token = token if token and len(token) >= 4 else None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_secret(message, self._token)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        if self._token is None:
            return True
        if record.exc_info and record.exc_info[1] is not None:
            text = str(record.exc_info[1])
            if self._token in text:
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{record.msg} (details withheld: they contained the token)"
        return True


#: how `recordUsage` answers when the ledger cannot be written (server.py)
NOT_RECORDED = "not recorded: "


class Throttle:
    """Counts occurrences per kind and says which to log: the first `first`, then the 10th,
    100th, 1000th...: a flood of the same complaint stays a handful of lines."""

    def __init__(self, first: int = 3) -> None:
        self._first = first
        self._counts: Counter[str] = Counter()

    def __call__(self, kind: str) -> int | None:
        """This occurrence's number if it is to be logged, else None."""
        self._counts[kind] += 1
        n = self._counts[kind]
        if n <= self._first or str(n).rstrip("0") == "1":
            return n
        return None


class _DropAnswered(logging.Filter):
    """pygls logs a traceback for every error a handler raises, though the caller gets it as
    its answer: a refused event (-32602), a day that cannot be re-sent (-32803), an event the
    ledger cannot take (an unusable data folder, which status and the log already show). Only
    other internal errors, which are bugs, keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        # imported here: pygls loads lsprotocol (a third of a second), which the CLI never needs
        from pygls.exceptions import JsonRpcException, JsonRpcInternalError

        if isinstance(exc, JsonRpcInternalError):
            return not str(exc).startswith(NOT_RECORDED)
        return not isinstance(exc, JsonRpcException)


def setup_logging(token: str | None, level: int = logging.INFO) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger(PACKAGE_LOGGER).setLevel(level)
    for noisy in ("pygls", "httpx", "httpcore", "watchdog", "filelock", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("pygls").addFilter(_DropAnswered())
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_DropAnswered())
    logging.captureWarnings(True)
    return handler


class _Sentence(logging.Formatter):
    """A record as a terminal user reads it: the message, after `warning: ` for a warning."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def setup_cli_logging(token: str | None, *, verbose: bool) -> None:
    """The CLI's verbs: no log line unless `--verbose`, and then as plain sentences (a verb
    says what matters itself; times and logger names are for the sidecar's log)."""
    handler = setup_logging(token, logging.INFO if verbose else logging.WARNING)
    handler.setFormatter(_Sentence("%(message)s"))
    if not verbose:
        handler.setLevel(logging.CRITICAL + 1)


class ForwardToEditor(logging.Handler):
    """Sends this package's records to the editor through `send` (called on the loop thread)."""

    def __init__(
        self,
        send: Callable[[int, str], None],
        schedule: Callable[[Callable[[], None]], None],
        token: str | None,
    ) -> None:
        super().__init__(logging.INFO)
        self._send = send
        self._schedule = schedule
        self.addFilter(RedactToken(token))
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(PACKAGE_LOGGER):
            return
        try:
            text = self.format(record)
            level = record.levelno
            self._schedule(lambda: self._send(level, text))
        except Exception:
            self.handleError(record)
