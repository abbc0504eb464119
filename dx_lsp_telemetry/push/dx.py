"""The DX Data Cloud client: one `aiToolMetrics.push`, its outcome sorted into a retry class.

The push is not known to be idempotent, so only outcomes that prove DX did not process the
request are retried by themselves (the retry table in README.md, "Days, pushes and retries").
"""

from __future__ import annotations

import email.utils
import json
import math
import time
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from dx_lsp_telemetry import __version__
from dx_lsp_telemetry.push.outcomes import Outcome, PushResult
from dx_lsp_telemetry.settings.instance_url import instance_url_problem, is_loopback_host
from dx_lsp_telemetry.util.logs import scrub_secret

PUSH_PATH = "/api/aiToolMetrics.push"
MAX_RETRY_AFTER = 3600.0
TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
#: DX's answer is a few hundred bytes; more than this is not read (nor kept in memory)
ANSWER_CAP = 1024 * 1024


class DxClient:
    def __init__(
        self,
        instance_url: str,
        token: str,
        timeout: httpx.Timeout = TIMEOUT,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`transport`: httpx's own by default; the fleet benchmark passes an in-process DX."""
        problem = instance_url_problem(instance_url)
        if problem:  # the token never travels in clear text, whatever the caller checked
            raise ValueError(problem)
        self._url = instance_url.rstrip("/") + PUSH_PATH
        self._token = token
        host = urlsplit(instance_url).hostname or ""
        self._http = httpx.Client(
            timeout=timeout,
            # HTTPS_PROXY and friends apply, except to loopback: a proxy would see the token
            trust_env=not is_loopback_host(host),
            follow_redirects=False,
            # a fresh connection per push: a stale keep-alive socket would turn a clean
            # retry into an ambiguous "disconnected" outcome
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                # a compressed answer could inflate past ANSWER_CAP from a few bytes
                "Accept-Encoding": "identity",
                "User-Agent": f"dx-lsp-telemetry/{__version__}",
            },
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def push(self, record: dict[str, Any]) -> PushResult:
        try:
            # streamed: the answer is read up to ANSWER_CAP, whatever DX (or a proxy) sends
            with self._http.stream("POST", self._url, json=record) as response:
                content = _read_capped(response)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return PushResult(Outcome.NOT_REACHED, f"could not reach DX: {self._describe(exc)}")
        except httpx.LocalProtocolError:
            # refused before sending: a header value (the token) cannot travel in HTTP. The
            # exception text quotes the header, so it is not repeated here.
            return PushResult(
                Outcome.NOT_REACHED,
                "the request could not be sent: the token holds a line break or spaces around it",
            )
        except httpx.TimeoutException as exc:
            return PushResult(
                Outcome.AMBIGUOUS,
                f"no answer from DX in time, the record may be stored: {self._describe(exc)}",
            )
        except httpx.HTTPError as exc:
            return PushResult(
                Outcome.AMBIGUOUS,
                "the connection broke after sending, the record may be stored: "
                + self._describe(exc),
            )
        return classify(response.status_code, response.headers, content, secret=self._token)

    def _describe(self, exc: Exception) -> str:
        return scrub_secret(_describe(exc), self._token)


def classify(
    status: int, headers: Mapping[str, str], content: bytes | None, *, secret: str | None = None
) -> PushResult:
    """The retry class of DX's answer. `content` is None when the body was unreadable (over
    ANSWER_CAP, or in an encoding not asked for). Everything DX says that is kept or shown
    (its error text, a redirect's Location) is scrubbed of `secret` and any bearer value."""
    body = _json_body(content)
    detail = _dx_error(body, secret)
    if status == 200:
        if content is None:
            return PushResult(
                Outcome.AMBIGUOUS,
                "DX answered 200 with an unreadable answer (over "
                f"{ANSWER_CAP // (1024 * 1024)} MiB, or in an encoding not asked for), "
                "the record may be stored",
            )
        if body is None or not isinstance(body.get("ok"), bool):
            return PushResult(
                Outcome.AMBIGUOUS,
                "DX answered 200 without a readable ok field, the record may be stored",
            )
        if body["ok"]:
            return PushResult(Outcome.SUCCESS, dx_id=_record_id(body))
        return PushResult(Outcome.REJECTED, f"DX refused the record: {detail or 'ok: false'}")
    label = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status in (429, 503, 408):
        return PushResult(
            Outcome.THROTTLED, f"DX is busy ({label})", retry_after=_retry_after(headers)
        )
    if status in (401, 403):
        return PushResult(Outcome.CREDENTIALS, f"DX refused the token ({label})")
    if status == 404:
        return PushResult(Outcome.NOT_FOUND, f"no aiToolMetrics.push at this instanceUrl ({label})")
    if 300 <= status < 400:
        where = scrub_secret(headers.get("location", "?"), secret)[:300]
        return PushResult(
            Outcome.NOT_FOUND, f"DX redirected to {where} ({label}): check instanceUrl"
        )
    if 400 <= status < 500:
        return PushResult(Outcome.REJECTED, f"DX refused the record ({label})")
    if 200 < status < 300:
        return PushResult(Outcome.AMBIGUOUS, f"DX answered an unexpected {label}")
    return PushResult(
        Outcome.AMBIGUOUS, f"DX failed while handling the record, it may be stored ({label})"
    )


def _read_capped(response: httpx.Response) -> bytes | None:
    """The answer's body, or None if it is larger than ANSWER_CAP (the rest is never read:
    closing the response drops the connection) or in an encoding we cannot bound."""
    raw = bytearray()
    for chunk in response.iter_raw():
        raw += chunk
        if len(raw) > ANSWER_CAP:
            return None
    return _decoded(bytes(raw), response.headers.get("content-encoding", ""))


def _decoded(raw: bytes, encoding: str) -> bytes | None:
    """`raw` decoded, at most ANSWER_CAP bytes of it. We ask for identity; a server that
    compresses anyway is decoded with a bound (a few KiB of gzip can hold gigabytes)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return None
    try:
        # wbits 47: a gzip or zlib header, detected
        data = zlib.decompressobj(47).decompress(raw, ANSWER_CAP + 1)
    except zlib.error:
        return None
    return data if len(data) <= ANSWER_CAP else None


def _json_body(content: bytes | None) -> dict[str, Any] | None:
    if content is None:
        return None
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _dx_error(body: dict[str, Any] | None, secret: str | None) -> str | None:
    if body is None:
        return None
    # scrubbed before clipping: a clip must not cut a token in two and keep half of it
    parts = [scrub_secret(str(body[k]), secret)[:300] for k in ("error", "message") if body.get(k)]
    return " - ".join(parts) or None


def _record_id(body: dict[str, Any]) -> str | None:
    for holder in (body, body.get("data"), body.get("record")):
        if isinstance(holder, dict) and holder.get("id") is not None:
            return str(holder["id"])
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


__all__ = ["PUSH_PATH", "DxClient", "Outcome", "PushResult", "classify"]
