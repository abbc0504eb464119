"""Calendar days in the `dayBoundary` zone, and when a day is complete.

Ledger files are per UTC date; a local day overlaps one or two of them.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

DayBoundary = Literal["utc", "local"]

#: Late log lines still arrive after midnight; a day is final this long after it ends.
COMPLETION_GRACE = timedelta(minutes=10)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def day_of(ts: datetime, boundary: DayBoundary) -> date:
    if boundary == "utc":
        return ts.astimezone(timezone.utc).date()
    return ts.astimezone().date()


def day_start(d: date, boundary: DayBoundary) -> datetime:
    """The first instant of `d` in the zone, as an aware UTC datetime."""
    midnight = datetime.combine(d, time())
    if boundary == "utc":
        return midnight.replace(tzinfo=timezone.utc)
    return midnight.astimezone().astimezone(timezone.utc)


def day_end(d: date, boundary: DayBoundary) -> datetime:
    return day_start(d + timedelta(days=1), boundary)


def complete_at(d: date, boundary: DayBoundary) -> datetime:
    return day_end(d, boundary) + COMPLETION_GRACE


def is_complete(d: date, now: datetime, boundary: DayBoundary) -> bool:
    return now >= complete_at(d, boundary)


def window_days(now: datetime, boundary: DayBoundary, backfill_days: int) -> list[date]:
    """Today and the backfill window, newest first."""
    today = day_of(now, boundary)
    return [today - timedelta(days=i) for i in range(backfill_days + 1)]


#: status lists at least this many days (the report's default), so a day that just left a short
#: backfill window still shows, as `expired`, where the user looks
SHOWN_DAYS = 14


def shown_days(now: datetime, boundary: DayBoundary, backfill_days: int) -> list[date]:
    """The days a status lists, newest first: today and the backfill window, or the last
    `SHOWN_DAYS` days where the window is shorter."""
    return window_days(now, boundary, max(backfill_days, SHOWN_DAYS - 1))


def utc_dates_overlapping(first: date, last: date, boundary: DayBoundary) -> list[date]:
    """The UTC ledger files that hold events of the zone days `first`..`last`."""
    start = day_start(first, boundary).date()
    end = (day_end(last, boundary) - timedelta(microseconds=1)).date()
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, microseconds only when present."""
    # isoformat's default (`auto`) is that rule: microseconds only when not 0
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


#: Python 3.11's fromisoformat reads a `Z` (as UTC); older ones do not
_READS_Z = sys.version_info >= (3, 11)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_ts(text: str) -> datetime:
    """RFC 3339 with an offset or `Z` (naive timestamps are refused), as aware UTC."""
    if (
        len(text) in (20, 24, 27)  # ...T09:30:00Z, with .123 or .123456: what the ledger holds
        and text[-1] == "Z"
        and text[10] == "T"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
        and (len(text) == 20 or text[19] == ".")
        and text.isascii()  # fromisoformat reads ASCII digits only, as the pattern does
    ):
        try:
            if _READS_Z:  # this runs for every ledger line indexed: the shortest way
                return datetime.fromisoformat(text)
            return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
        except ValueError:
            pass  # e.g. month 13: the error below names the field
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError("expected an RFC 3339 timestamp with an offset, like 2026-01-15T09:30:00Z")
    fraction = m.group(7)
    if (
        m.group(8)
        and text[10] == "T"
        and (fraction is None or len(fraction) in (3, 6))
        and text.isascii()  # `\d` also matches other scripts' digits; fromisoformat does not
    ):
        # the usual `...T09:30:00.123Z`: the same value from the C parser (3.10 reads this form)
        try:
            return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
        except ValueError:
            pass  # e.g. month 13: the error below names the field
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "0").ljust(6, "0")[:6])
    if m.group(8):
        offset = timedelta(0)
    else:
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        if m.group(9) == "-":
            offset = -offset
    parsed = datetime(year, month, day, hour, minute, second, micros, timezone(offset))
    return parsed.astimezone(timezone.utc)
