"""An OTLP request body: its media type, its Content-Encoding, its JSON.

Only OTLP/HTTP with a JSON body (`application/json`) is decoded. `application/x-protobuf` is
refused with 415 naming http/json: every tool this receiver takes usage from can export
http/json, and the pure-Python `protobuf` and `opentelemetry-proto` wheels would add 262 KB to
the .vsix (18 %), 1.4 MB installed, 0.27 s and 21 MiB when first loaded, and need Python >=
3.10 (measured; README). `google.protobuf.json_format` is never used for OTLP JSON: it reads the
hex trace and span ids as base64.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

#: the OTLP/HTTP paths and their signals
SIGNALS = {"/v1/logs": "logs", "/v1/metrics": "metrics", "/v1/traces": "traces"}
JSON = "application/json"
PROTOBUF = "application/x-protobuf"
#: a body after gzip: a gzip bomb stops here (a few KB can inflate to GBs)
MAX_DECODED_BYTES = 4 << 20


class BodyError(Exception):
    """A body that cannot be taken: the HTTP status and a message naming what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def media_type_problem(content_type: str | None) -> str | None:
    """Why a body of this Content-Type is refused (415), or None."""
    kind = media_type(content_type)
    if kind == JSON:
        return None
    if kind == PROTOBUF:
        return (
            "application/x-protobuf is not accepted here: export OTLP as http/json "
            '(OTEL_EXPORTER_OTLP_PROTOCOL=http/json, Gemini CLI otlpProtocol "http", Codex '
            'protocol = "json")'
        )
    shown = kind[:60] or "none"
    return f"Content-Type {shown!r} is not OTLP: send application/json (OTLP http/json)"


def encoding_problem(content_encoding: str | None) -> str | None:
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("identity", "gzip", "x-gzip"):
        return None
    return f"Content-Encoding {coding[:40]!r} is not supported: send gzip or none"


def decoded(body: bytes, content_encoding: str | None) -> bytes:
    """The body without its Content-Encoding, at most MAX_DECODED_BYTES."""
    coding = (content_encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    out: list[bytes] = []
    size = 0
    data = body
    while True:  # one gzip member after another (concatenated members are one stream)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, MAX_DECODED_BYTES - size + 1)
        except zlib.error as exc:
            raise BodyError(400, f"the gzip body cannot be decompressed: {exc}") from None
        size += len(chunk)
        if size > MAX_DECODED_BYTES or inflater.unconsumed_tail:
            raise BodyError(
                413, f"the body exceeds {MAX_DECODED_BYTES} bytes decompressed; export less"
            )
        out.append(chunk)
        if not inflater.eof:
            raise BodyError(400, "the gzip body is cut short")
        data = inflater.unused_data
        if not data:
            return b"".join(out)


def parse_json(data: bytes) -> dict[str, Any]:
    """The OTLP JSON request object (`{}` for an empty body, which OTLP allows)."""
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except UnicodeDecodeError:
        raise BodyError(400, "the JSON body is not UTF-8") from None
    except ValueError as exc:
        raise BodyError(400, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BodyError(400, "the JSON body is nested too deeply") from None
    if not isinstance(value, dict):
        raise BodyError(400, "the body must be one OTLP export request object")
    return value
