"""OTLP JSON export requests walked into flat views of log records and spans.

OTLP's JSON rules: lowerCamelCase keys; 64-bit integers as decimal strings or numbers (both
are seen: Claude Code 2.1.233 sends numbers); trace and span ids as hex; attribute values as
`AnyValue` objects (`stringValue`, `intValue`, `doubleValue`, `boolValue`, `arrayValue`,
`kvlistValue`, `bytesValue`). Unknown fields are ignored. A body whose shape is wrong (a list
where an object belongs, a key that is not a string) is refused whole, naming where.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: nesting of arrayValue / kvlistValue decoded (deeper is kept as None: no usage lives there)
MAX_VALUE_DEPTH = 4


class ShapeError(ValueError):
    """The request is not an OTLP export request; the message says where."""


Attributes = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    attributes: Attributes
    scope: str

    @property
    def service(self) -> str:
        name = self.attributes.get("service.name")
        return name if isinstance(name, str) and name else "unknown_service"


@dataclass(frozen=True)
class LogView:
    resource: Resource
    attributes: Attributes
    #: what may name the event (tools vary): `eventName` (Codex: its source line), the
    #: `event.name` attribute (Claude Code: the short `api_request`), a string body
    names: tuple[str, ...]
    time_ns: int | None
    observed_ns: int | None


@dataclass(frozen=True)
class SpanView:
    resource: Resource
    attributes: Attributes
    name: str
    trace_id: str
    span_id: str
    start_ns: int | None
    end_ns: int | None


def log_records(request: dict[str, Any]) -> Iterator[LogView]:
    for resource, scope_item, where in _scopes(request, "resourceLogs", "scopeLogs"):
        for i, record in enumerate(_list(scope_item, "logRecords", where)):
            at = f"{where}.logRecords[{i}]"
            if not isinstance(record, dict):
                raise ShapeError(f"{at}: expected an object")
            attributes = attributes_of(record.get("attributes"), at)
            yield LogView(
                resource,
                attributes,
                _log_names(record, attributes),
                _nanos(record.get("timeUnixNano"), f"{at}.timeUnixNano"),
                _nanos(record.get("observedTimeUnixNano"), f"{at}.observedTimeUnixNano"),
            )


def spans(request: dict[str, Any]) -> Iterator[SpanView]:
    for resource, scope_item, where in _scopes(request, "resourceSpans", "scopeSpans"):
        for i, span in enumerate(_list(scope_item, "spans", where)):
            at = f"{where}.spans[{i}]"
            if not isinstance(span, dict):
                raise ShapeError(f"{at}: expected an object")
            name = span.get("name")
            yield SpanView(
                resource,
                attributes_of(span.get("attributes"), at),
                name if isinstance(name, str) else "",
                _hex_id(span.get("traceId"), f"{at}.traceId"),
                _hex_id(span.get("spanId"), f"{at}.spanId"),
                _nanos(span.get("startTimeUnixNano"), f"{at}.startTimeUnixNano"),
                _nanos(span.get("endTimeUnixNano"), f"{at}.endTimeUnixNano"),
            )


def data_points(request: dict[str, Any]) -> int:
    """How many metric data points the request holds (all ignored: they restate requests)."""
    count = 0
    for _, scope_item, where in _scopes(request, "resourceMetrics", "scopeMetrics"):
        for i, metric in enumerate(_list(scope_item, "metrics", where)):
            if not isinstance(metric, dict):
                raise ShapeError(f"{where}.metrics[{i}]: expected an object")
            for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
                data = metric.get(kind)
                if isinstance(data, dict) and isinstance(data.get("dataPoints"), list):
                    count += len(data["dataPoints"])
    return count


def _scopes(
    request: dict[str, Any], top: str, scoped: str
) -> Iterator[tuple[Resource, dict[str, Any], str]]:
    for r, item in enumerate(_list(request, top, "")):
        where = f"{top}[{r}]"
        if not isinstance(item, dict):
            raise ShapeError(f"{where}: expected an object")
        raw_resource = item.get("resource") or {}
        if not isinstance(raw_resource, dict):
            raise ShapeError(f"{where}.resource: expected an object")
        resource_attributes = attributes_of(raw_resource.get("attributes"), f"{where}.resource")
        for s, scope_item in enumerate(_list(item, scoped, where)):
            at = f"{where}.{scoped}[{s}]"
            if not isinstance(scope_item, dict):
                raise ShapeError(f"{at}: expected an object")
            scope = scope_item.get("scope") or {}
            if not isinstance(scope, dict):
                raise ShapeError(f"{at}.scope: expected an object")
            name = scope.get("name")
            yield (
                Resource(resource_attributes, name if isinstance(name, str) else ""),
                scope_item,
                at,
            )


def _list(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{where + '.' if where else ''}{key}: expected a list")
    return value


def attributes_of(raw: Any, where: str) -> Attributes:
    """`[{"key": k, "value": AnyValue}, ...]` as `{k: value}` (the last of a repeated key)."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ShapeError(f"{where}.attributes: expected a list")
    result: Attributes = {}
    for pair in raw:
        key = pair.get("key") if type(pair) is dict else None
        if type(key) is not str:
            i = raw.index(pair)
            raise ShapeError(f"{where}.attributes[{i}]: expected an object with a string key")
        value = pair.get("value")
        # most values are strings: taken without a call (a batch holds thousands)
        if type(value) is dict and type(text := value.get("stringValue")) is str:
            result[key] = text
        else:
            result[key] = any_value(value, 0)
    return result


def any_value(raw: Any, depth: int) -> Any:
    """An `AnyValue` as a Python value. Integers stay as sent where they are not integers (a
    count that is not a number is refused by whoever reads it, naming the attribute)."""
    if not isinstance(raw, dict):
        return None
    if "stringValue" in raw:
        return raw["stringValue"]
    if "intValue" in raw:
        value = raw["intValue"]
        if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 20:
            return int(value)
        return value
    if "doubleValue" in raw:
        value = raw["doubleValue"]
        if isinstance(value, str):  # proto3 JSON allows "1.5", "NaN", "Infinity"
            try:
                return float(value)
            except ValueError:
                return value
        return value
    if "boolValue" in raw:
        return raw["boolValue"]
    if depth >= MAX_VALUE_DEPTH:
        return None
    if "arrayValue" in raw:
        values = (
            (raw["arrayValue"] or {}).get("values") if isinstance(raw["arrayValue"], dict) else None
        )
        return [any_value(v, depth + 1) for v in values] if isinstance(values, list) else []
    if "kvlistValue" in raw:
        kv = raw["kvlistValue"]
        values = kv.get("values") if isinstance(kv, dict) else None
        if not isinstance(values, list):
            return {}
        return {
            p["key"]: any_value(p.get("value"), depth + 1)
            for p in values
            if isinstance(p, dict) and isinstance(p.get("key"), str)
        }
    return None  # bytesValue, or an empty AnyValue: nothing usage is made of


def _log_names(record: dict[str, Any], attributes: Attributes) -> tuple[str, ...]:
    body = any_value(record.get("body"), MAX_VALUE_DEPTH)
    return tuple(
        n
        for n in (record.get("eventName"), attributes.get("event.name"), body)
        if isinstance(n, str) and 0 < len(n) <= 200
    )


def _nanos(raw: Any, where: str) -> int | None:
    """A fixed64 timestamp: a decimal string or a number; 0 (unset) is None."""
    if raw is None:
        return None
    if isinstance(raw, str) and raw.isdigit() and len(raw) <= 20:
        value = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    else:
        raise ShapeError(f"{where}: expected nanoseconds since the epoch as a decimal string")
    if value < 0:
        raise ShapeError(f"{where}: expected nanoseconds since the epoch, not a negative number")
    return value or None


def _hex_id(raw: Any, where: str) -> str:
    """Trace and span ids are hex in OTLP JSON (never base64), in any case."""
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str) or len(raw) > 64:
        raise ShapeError(f"{where}: expected a hex id")
    try:
        bytes.fromhex(raw)
    except ValueError:
        raise ShapeError(f"{where}: expected a hex id, got {raw[:40]!r}") from None
    return raw.lower()
