"""One OTLP export request: its usage records into ledger events, and the answer.

200 (`{}`) only once every event is written to the ledger; 503 with `Retry-After` when the
ledger cannot be written (the exporter sends the batch again: the same records get the same
ids, so what was written before adds nothing); the partial-success form where records were
refused (an exporter never re-sends those); 400 for a body that is not an export request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Union

from dx_lsp_telemetry.otlp import body, otlp_json, usage
from dx_lsp_telemetry.otlp.http import Request, Response, error
from dx_lsp_telemetry.record.events import EventError, to_decimal
from dx_lsp_telemetry.settings.days import format_ts
from dx_lsp_telemetry.settings.settings import Settings
from dx_lsp_telemetry.sources import pricing
from dx_lsp_telemetry.sources.claude_keys import KeyEpoch
from dx_lsp_telemetry.util.logs import Throttle

log = logging.getLogger(__name__)
_throttle = Throttle()

_REJECTED = {
    "logs": "rejectedLogRecords",
    "metrics": "rejectedDataPoints",
    "traces": "rejectedSpans",
}
RETRY_AFTER_SECONDS = 5
#: what a partial success quotes of the refusals
MAX_MESSAGES = 5
Outcome = Union[dict[str, Any], BaseException]
Record = Callable[[dict[str, Any], Callable[[Outcome], None]], None]


@dataclass
class Decoded:
    usages: list[usage.Usage] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    ignored: int = 0


def decode(signal: str, raw: bytes, content_encoding: str | None) -> Decoded:
    """The usage records of a request body (off the event loop: a batch may be MBs)."""
    request = body.parse_json(body.decoded(raw, content_encoding))
    found = Decoded()
    if signal == "metrics":  # they restate the requests the events carry: never added
        found.ignored = otlp_json.data_points(request)
        return found
    views = otlp_json.log_records(request) if signal == "logs" else otlp_json.spans(request)
    take = usage.from_log if signal == "logs" else usage.from_span
    for view in views:
        try:
            taken = take(view)  # type: ignore[arg-type]
        except usage.RecordError as exc:
            found.rejected.append(str(exc))
            continue
        if taken is None or taken.token_total == 0:
            # not usage; or none in it (Codex 0.169 sends each `response.completed` twice,
            # first without counts; the log sources skip empty records too)
            found.ignored += 1
        else:
            found.usages.append(taken)
    return found


def to_event(
    found: usage.Usage, settings: Settings, epoch: KeyEpoch | None
) -> dict[str, Any] | None:
    """The `recordUsage` event of a usage record, or None where another channel counts it."""
    source = usage.LOG_SOURCES.get(found.family)
    if source is not None:
        configured = settings.sources.get(source)
        if configured is not None and configured.enabled:
            return None  # that tool's log source counts it (README: which channel wins)
    if (
        found.family == usage.CLAUDE
        and epoch is not None
        and epoch.legacy
        and found.timestamp < epoch.since
    ):
        return None  # from before the cut-over: the transcript counts it (`claude_keys`)
    event: dict[str, Any] = {
        "tool": settings.otlp.tool_for(found.service),
        "timestamp": format_ts(found.timestamp),
        "event_id": found.event_id,
        "source": f"otlp:{found.service}"[:100],
        "input_tokens": found.input_tokens,
        "output_tokens": found.output_tokens,
        "cache_write_tokens": found.cache_write_tokens,
        "cache_read_tokens": found.cache_read_tokens,
    }
    if found.model is not None:
        event["model"] = found.model
    if found.cost_usd is not None:
        event["cost_usd"] = found.cost_usd
    elif settings.spend_estimate:
        cents = _estimate(found)
        if cents is not None:
            event["spend_cents"] = cents
            event["metrics"] = {"spend_estimated_cents": cents}
    return event


def _estimate(found: usage.Usage) -> float | None:
    estimate: Decimal | None = pricing.estimate_cents(
        found.model,
        found.timestamp,
        input_tokens=found.input_tokens,
        output_tokens=found.output_tokens,
        cache_write_tokens=found.cache_write_tokens,
        cache_read_tokens=found.cache_read_tokens,
    )
    if estimate is None or not estimate > 0:
        return None
    return float(to_decimal(float(estimate)))


class Exports:
    """Answers the export requests, recording through the sidecar's own path (`record`: the
    validation, duplicate check and group commit of `recordUsage`)."""

    def __init__(
        self,
        record: Record,
        settings: Callable[[], Settings],
        epoch: Callable[[], KeyEpoch | None],
        executor: Executor,
    ) -> None:
        self._record = record
        self._settings = settings
        self._epoch = epoch
        self._executor = executor

    async def handle(self, request: Request) -> Response:
        signal = body.SIGNALS[request.path]
        loop = asyncio.get_running_loop()
        encoding = request.headers.get("content-encoding")
        try:
            found = await loop.run_in_executor(
                self._executor, decode, signal, request.body, encoding
            )
        except body.BodyError as exc:
            return error(exc.status, exc.message)
        except otlp_json.ShapeError as exc:
            return error(400, f"not an OTLP export request: {exc}")
        settings, epoch = self._settings(), self._epoch()
        rejected = list(found.rejected)
        ignored = found.ignored
        answers: list[asyncio.Future[Outcome]] = []
        for taken in found.usages:
            event = to_event(taken, settings, epoch)
            if event is None:
                ignored += 1
                continue
            answer: asyncio.Future[Outcome] = loop.create_future()
            try:
                self._record(event, _settle(answer))
            except EventError as exc:
                rejected.append(f"{taken.family} event: {exc}")
                continue
            answers.append(answer)
        outcomes = [await a for a in answers]
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        log.debug(
            "otlp %s: %d events, %d ignored, %d rejected",
            request.path,
            len(answers) - len(failed),
            ignored,
            len(rejected),
        )
        if failed:
            if (n := _throttle("storage")) is not None:
                log.warning("otlp: the ledger cannot be written now (%d): %s", n, failed[0])
            return error(
                503,
                f"the usage ledger cannot be written now ({failed[0]}); send again later",
                Retry_After=str(RETRY_AFTER_SECONDS),
            )
        if rejected:
            more = len(rejected) - MAX_MESSAGES
            message = "; ".join(rejected[:MAX_MESSAGES]) + (
                f"; and {more} more" if more > 0 else ""
            )
            partial = {_REJECTED[signal]: len(rejected), "errorMessage": message}
            return Response(200, json.dumps({"partialSuccess": partial}).encode())
        return Response(200, b"{}")


def _settle(answer: asyncio.Future[Outcome]) -> Callable[[Outcome], None]:
    def done(outcome: Outcome) -> None:
        if not answer.done():
            answer.set_result(outcome)

    return done
