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
