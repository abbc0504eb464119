"""The shortcuts of an initial scan against what they stand for: each must give exactly what the
plain path gives (the same ledger bytes, the same lines and states, the same timestamps, the same
session ids), on ordinary input and on the odd cases around each shortcut.

- `LedgerLines` (records straight to ledger text) against `to_event(...).to_ledger()` written
  by `LedgerWriter.append_lines`;
- `appended_lines_containing` against `appended_lines` filtered;
- Claude Code's timestamp shortcut against `parse_ts`; its line finder for a main transcript's
  own message ids against iterating the file; the ids taken along while a main transcript is
  read against the ids a sidechain look-up reads from it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dx_lsp_telemetry.ledger.ledger import LedgerWriter, UsageLine, complete_lines, parse_line
from dx_lsp_telemetry.record.events import MAX_TOKENS
from dx_lsp_telemetry.settings.days import parse_ts
from dx_lsp_telemetry.sources import claude_code, tail
from dx_lsp_telemetry.sources.base import SourceRecord
from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.reading import IngestOptions, LedgerLines, to_event

SONNET = "claude-sonnet-4-20250514"
RECORDED_AT = re.compile(rb',"recorded_at":"[^"]*"')
FIXTURE = HealthCheck.function_scoped_fixture  # a fresh folder per example all the same

# -- records straight to ledger lines ---------------------------------------------------------

#: quotes, backslashes, controls, non-ASCII, lone surrogates
odd_text = st.text(st.characters(exclude_categories=()), max_size=12)
models = st.one_of(
    st.none(),
    st.sampled_from([SONNET, "claude-opus-4-1-20250805", "gpt-5", "", 'ünïcødé "m"\\\n']),
    odd_text,
)
tokens = st.one_of(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, MAX_TOKENS))
offsets = st.sampled_from([0, 330, -480, 14 * 60, -12 * 60, 45])
timestamps = st.builds(
    lambda day, second, micro, offset: (
        (datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(days=day, seconds=second))
        .replace(microsecond=micro)
        .astimezone(timezone(timedelta(minutes=offset)))
    ),
    st.integers(0, 400),
    st.integers(0, 86_399),
    st.one_of(st.just(0), st.sampled_from([1000, 650_000, 999_999]), st.integers(0, 999_999)),
    offsets,
)
costs = st.one_of(
    st.none(),
    st.floats(0, 1000, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 0.0123, 0.5, 3.0, 1e-9]),
)


@st.composite
def records(draw: st.DrawFn) -> SourceRecord:
    cache_write = draw(tokens)
    return SourceRecord(
        key=draw(st.one_of(st.sampled_from(["msg:msg_01:req_01", "line:s:f.jsonl:0"]), odd_text)),
        timestamp=draw(timestamps),
        model=draw(models),
        input_tokens=draw(tokens),
        output_tokens=draw(tokens),
        cache_write_tokens=cache_write,
        cache_read_tokens=draw(tokens),
        cost_usd=draw(costs),
        cache_write_1h_tokens=draw(st.integers(0, cache_write)),
    )


def plain_text(record: SourceRecord, options: IngestOptions) -> str:
    """What `LedgerWriter.append_lines` encodes for `to_event(...)`, before `recorded_at`."""
    line = to_event(ClaudeCode(), record, options).to_ledger()
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=400, deadline=None)
@given(records(), st.booleans(), st.sampled_from(["claude-code", "claude team ü", 'a"b\\c']))
@example(
    SourceRecord("k", datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc), SONNET, 1000, 500, 2000),
    True,
    "claude-code",
)
def test_ledger_lines_are_the_lines_the_events_would_be(
    record: SourceRecord, estimate: bool, tool: str
) -> None:
    options = IngestOptions(tool, estimate=estimate)
    day, text = LedgerLines(ClaudeCode(), options)(record)
    assert text == plain_text(record, options)
    assert day == record.timestamp.astimezone(timezone.utc).date()


def test_the_ledger_holds_the_same_bytes_and_reads_back_the_same_events(tmp_path: Path) -> None:
    options = IngestOptions("claude-code", estimate=True)
    source = ClaudeCode()
    base = datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone.utc)
    batch = [
        SourceRecord(f"msg:m{i}:r{i}", base + timedelta(seconds=i), model, i, 7 * i, 3, 11 * i)
        for i, model in enumerate([SONNET, None, "a-model-nobody-prices", "ü\u2028\x00", SONNET])
    ]
    batch.append(batch[0]._replace(cost_usd=0.0123, key="with a cost"))
    fast, plain = LedgerWriter(tmp_path / "fast"), LedgerWriter(tmp_path / "plain")
    lines = LedgerLines(source, options)
    fast.append_encoded([lines(r) for r in batch])
    plain.append_events([to_event(source, r, options) for r in batch])
    names = sorted(p.name for p in (tmp_path / "plain").glob("*.jsonl"))
    assert names == sorted(p.name for p in (tmp_path / "fast").glob("*.jsonl"))
    assert len(names) == 2  # across midnight: two files
    for name in names:
        a = (tmp_path / "fast" / name).read_bytes()
        b = (tmp_path / "plain" / name).read_bytes()
        assert RECORDED_AT.sub(b"", a) == RECORDED_AT.sub(b"", b)
        assert a.count(b'"recorded_at":') == a.count(b"\n")
        expected = [to_event(source, r, options) for r in batch]
        for _, raw in complete_lines(a, 0):
            parsed = parse_line(raw)
            assert isinstance(parsed, UsageLine) and parsed.event in expected


def test_a_model_that_cannot_be_utf8_fails_the_same_way(tmp_path: Path) -> None:
    options = IngestOptions("claude-code", estimate=False)
    record = SourceRecord("k", datetime(2026, 3, 1, tzinfo=timezone.utc), "bad \udc80", 1, 1)
    with pytest.raises(UnicodeEncodeError):
        LedgerWriter(tmp_path / "fast").append_encoded([LedgerLines(ClaudeCode(), options)(record)])
    with pytest.raises(UnicodeEncodeError):
        LedgerWriter(tmp_path / "plain").append_events([to_event(ClaudeCode(), record, options)])


# -- only the lines that matter -----------------------------------------------------------------

NEEDLE = b'"usage"'
line_bytes = st.one_of(
    st.sampled_from([b"", b'{"usage":1}', b'x"usage"x', b'"usag', b'e"', b"\r", b"plain"]),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(line_bytes, max_size=30),
    st.lists(line_bytes, max_size=10),
    st.booleans(),
    st.sampled_from([1, 3, 7, 64, 1 << 20]),
)
def test_lines_containing_are_the_appended_lines_that_contain_it(
    tmp_path_factory: pytest.TempPathFactory,
    first: list[bytes],
    later: list[bytes],
    partial: bool,
    chunk: int,
) -> None:
    path = tmp_path_factory.mktemp("tail") / "log.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in first) + (b'{"usage"' if partial else b""))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(tail, "CHUNK", chunk)
        plain_state: dict[str, Any] = {}
        fast_state: dict[str, Any] = {}
        for _ in range(2):  # a first read, then what was appended since
            plain = [(o, ln) for o, ln in tail.appended_lines(path, plain_state) if NEEDLE in ln]
            fast = list(tail.appended_lines_containing(path, fast_state, NEEDLE))
            assert fast == plain
            assert fast_state == plain_state
            with open(path, "ab") as f:
                f.write(b"".join(line + b"\n" for line in later))


def test_a_needle_must_be_part_of_one_line(tmp_path: Path) -> None:
    for needle in (b"", b"a\nb"):
        with pytest.raises(ValueError):
            tail.appended_lines_containing(tmp_path / "x", {}, needle)


# -- Claude Code ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-15T09:30:00.123Z",
        "2026-01-15T09:30:00.000Z",
        "2026-01-15T09:30:00.999Z",
        "2024-02-29T23:59:59.500Z",
        "2025-02-29T23:59:59.500Z",  # no such day
        "2026-13-15T09:30:00.123Z",
        "2026-01-15T24:00:00.000Z",
        "2026-01-15T09:60:00.000Z",
        "2026-01-15T09:30:60.000Z",
        "2026-W03-4T09:30:00.123Z",  # an ISO week date: fromisoformat would take it
        "2026-01-15t09:30:00.123Z",
        "2026-01-15T09:30:00.123z",
        "2026-01-15 09:30:00.123Z",
        "2026-01-15T09:30:00,123Z",
        "2026-01-15T09:30:00.12Z",
        "2026-01-15T09:30:00.1234Z",
        "2026-01-15T09:30:00.123456Z",
        "2026-01-15T09:30:00Z",
        "2026-01-15T09:30:00.123+00:00",
        "2026-01-15T09:30:00.123+05:30",
        "2026-01-15T09:30:00.123-08:00",
        "2026-01-15T09:30:00.123",
        "\u0662026-01-15T09:30:00.123Z",  # an Arabic-Indic digit
        "2026-01-15T09:30:00.12\u0663Z",
        "+026-01-15T09:30:00.123Z",
        " 2026-01-15T09:30:00.123Z",
        "2026-01-15T09:30:00.123Z ",
        "",
        "yesterday",
        12,
        None,
        ["2026-01-15T09:30:00.123Z"],
    ],
)
def test_the_timestamp_shortcut_is_parse_ts(text: Any) -> None:
    try:
        expected: Any = parse_ts(text)
    except Exception as exc:
        expected = type(exc)
    try:
        got: Any = claude_code._timestamp(text)
    except Exception as exc:
        got = type(exc)
    assert got == expected
    if isinstance(expected, datetime):
        assert got.tzinfo is timezone.utc and got.utcoffset() == expected.utcoffset()


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_the_timestamp_shortcut_is_parse_ts_for_any_millisecond(when: datetime) -> None:
    text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    text = f"{when.year:04d}" + text[text.index("-") :]
    assert claude_code._timestamp(text) == parse_ts(text)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(line_bytes, max_size=20), st.booleans(), st.sampled_from([1, 5, 64, 1 << 20]))
def test_lines_with_are_the_lines_of_the_file_that_contain_it(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], partial: bool, chunk: int
) -> None:
    path = tmp_path_factory.mktemp("lines") / "main.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"" if partial else b"\n"))
    with open(path, "rb") as f:
        expected = [line.rstrip(b"\n") for line in f if NEEDLE in line]
    with pytest.MonkeyPatch.context() as m, open(path, "rb") as f:
        m.setattr(claude_code, "CHUNK", chunk)
        assert list(claude_code._lines_with(f, NEEDLE)) == expected


def usage_line(message: Any, *, sidechain: bool = False, **extra: Any) -> str:
    line = {"isSidechain": sidechain, "sessionId": "s1", "message": message, **extra}
    return json.dumps(line, separators=(",", ":")) + "\n"


def msg(message_id: Any) -> dict[str, Any]:
    return {"id": message_id, "model": SONNET, "usage": {"input_tokens": 1, "output_tokens": 2}}


ORDINARY = [
    usage_line(msg("msg_a"), timestamp="2026-01-15T09:30:00.123Z", requestId="r1"),
    usage_line(msg("msg_b"), timestamp="yesterday"),  # no record, still the session's own id
    usage_line(msg("msg_side"), sidechain=True, timestamp="2026-01-15T09:30:00.123Z"),
    usage_line(msg(12)),
    usage_line({"usage": {}}),
    usage_line(None),
    '{"message":{"id":"msg_torn","usage":{"input_tokens":1\n',  # unreadable
    '["usage", 1]\n',
    '{"type":"user","message":{"role":"user","content":"no usage here","id":"msg_user"}}\n',
    '{"message": {"id": "msg_spaced", "usage": {}}, "isSidechain" : true}\n',
]


@pytest.mark.parametrize(
    ("lines", "taken_along"),
    [
        (ORDINARY, True),
        ([*ORDINARY, usage_line(["usage"])], False),  # a look-up fails on it
        ([*ORDINARY, usage_line("usage")], False),
        ([*ORDINARY, usage_line(msg("msg_tail"))[:-1]], False),  # still being written
        ([*ORDINARY, usage_line(msg("msg_tail"))[:-5]], False),
    ],
    ids=["ordinary", "list message", "text message", "unterminated", "torn"],
)
def test_own_ids_read_along_are_those_a_sidechain_look_up_reads(
    tmp_path: Path, lines: list[str], taken_along: bool
) -> None:
    project = tmp_path / "projects" / "-home-dev-proj"
    main = project / "s1.jsonl"
    (project / "s1" / "subagents").mkdir(parents=True)
    main.write_text("".join(lines))
    source = ClaudeCode()
    source.read(main, {})
    remembered = source._sessions.get("s1")
    if not taken_along:  # (its own sidechain line looked the session up: no main transcript)
        assert remembered is None or remembered.signature == []
        return
    assert remembered is not None
    try:
        expected = set(claude_code._own_message_ids(main))
    except AttributeError:
        pytest.fail("a look-up fails on this transcript: nothing may be taken along")
    # (`"isSidechain" : true`, spaced, is not taken for a sidechain line by either)
    assert remembered.own_ids == expected == {"msg_a", "msg_b", "msg_spaced"}
    assert remembered.signature == [(str(main), main.stat().st_size)]
    # what a sidechain line of the session then finds is what a fresh reader finds
    sub = project / "s1" / "subagents" / "agent-1.jsonl"
    sub.write_text(usage_line(msg("msg_a"), sidechain=True, timestamp="2026-01-15T09:30:01.000Z"))
    assert source.read(sub, {}).records == ClaudeCode().read(sub, {}).records == []


def taken_along(source: ClaudeCode, main: Path) -> bool:
    known = source._sessions.get(main.stem)
    return known is not None and known.signature == [(str(main), main.stat().st_size)]


def test_a_main_transcript_without_subagents_or_read_from_an_offset_takes_nothing_along(
    tmp_path: Path,
) -> None:
    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    alone = project / "s1.jsonl"
    alone.write_text("".join(ORDINARY))
    source = ClaudeCode()
    source.read(alone, {})
    assert not taken_along(source, alone)
    (project / "s1").mkdir()
    state: dict[str, Any] = {}
    source.read(alone, state)  # from 0: taken along
    assert taken_along(source, alone)
    later = ClaudeCode()
    with open(alone, "a") as f:
        f.write(usage_line(msg("msg_c")))
    later.read(alone, state)  # from the checkpoint: not the whole file
    assert not taken_along(later, alone)
