"""What a file's reader already emitted, kept in the file's checkpoint state.

Tools that re-write a message whole each time it is updated (Gemini CLI) repeat its counts many
times; the key alone would keep the ledger right, this keeps it from growing a line per copy.
Keys are kept hashed: short, and no session or message id needs to be readable there.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

from dx_lsp_telemetry.sources.base import FileState

SLOT = "sent"


def is_new(state: FileState, key: str, values: list[Any]) -> bool:
    """Whether `key` was not emitted from this file with these `values` yet (then it is now)."""
    memo = state.get(SLOT)
    if not isinstance(memo, dict):
        memo = state[SLOT] = {}
    slot = blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    if memo.get(slot) == values:
        return False
    memo[slot] = values
    return True
