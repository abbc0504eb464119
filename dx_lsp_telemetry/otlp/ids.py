"""Event ids of usage received over OTLP, from each record's own identity.

Exporters re-send a batch they saw no answer for (429, 502, 503, 504, a lost connection), so
the same record must always get the same id: the ledger keeps one version per id. Ids are
hashes: session, prompt and request ids never reach the ledger as they are.
"""

from __future__ import annotations

from hashlib import blake2b

from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.claude_keys import request_key
from dx_lsp_telemetry.sources.ingest import event_id

_CLAUDE = ClaudeCode()


def claude_request(request_id: str) -> str:
    """The id the Claude Code transcript source gives the same request (its `requestId`)."""
    return event_id(_CLAUDE, request_key(request_id))


def of_parts(*parts: str) -> str:
    """An id for a record known by these parts only (no channel but OTLP shares it)."""
    text = "\x00".join(parts)
    digest = blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"otlp:{digest}"
