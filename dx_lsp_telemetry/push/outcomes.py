"""What a push's outcome means for retrying (README.md's retry table), without the HTTP client.

Kept apart from `dx.py` so a sidecar that never pushes never imports httpx.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    SUCCESS = "success"
    NOT_REACHED = "not_reached"  # DNS, refused, connect timeout, TLS: safe to retry
    THROTTLED = "throttled"  # 429/503/408: retry after Retry-After
    REJECTED = "rejected"  # 400/422/other 4xx/ok:false: retry only a changed record
    CREDENTIALS = "credentials"  # 401/403: pause until the token or settings change
    NOT_FOUND = "not_found"  # 404/redirect: pause until settings change
    AMBIGUOUS = "ambiguous"  # may have been stored: never re-sent by itself


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    error: str | None = None
    dx_id: str | None = None
    retry_after: float | None = None


RETRY_BASE_SECONDS = 60.0
RETRY_CAP_SECONDS = 3600.0


def backoff_span(attempts: int) -> float:
    """60 s doubling per attempt, capped at 1 h."""
    # the exponent is bounded: 60 s x 2^1024 would not fit a float
    return float(min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 32)))


def retry_delay(attempts: int, retry_after: float | None, jitter: float) -> float:
    """How long a day waits after a transient failure (`jitter` in [0, 1)): the backoff, each x
    [0.5, 1], or DX's `Retry-After` plus a random part of the backoff, so machines DX throttled
    together (they read the same `Retry-After`) come back spread out, not together."""
    if retry_after is None:
        return backoff_span(attempts) * (0.5 + 0.5 * jitter)
    return retry_after + backoff_span(attempts) * jitter
