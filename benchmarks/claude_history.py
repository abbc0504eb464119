"""A realistic, generated Claude Code history (`projects/<project>/<session>.jsonl`), from a seed.

What it holds, as Claude Code writes it (compact JSON, one object a line):
- user lines with large text (prompts, pasted code) and tool results;
- assistant lines with content and `message.usage`; one API response is written as one line per
  content block, sharing `message.id` + `requestId`, earlier blocks often with an intermediate
  `output_tokens` (streaming duplicates);
- resumed sessions that start with a verbatim copy of their predecessor's tail (cross-file
  duplicates);
- subagent transcripts under `<project>/<session>/subagents/agent-<id>.jsonl`
  (`isSidechain: true`, their own responses);
- a few summary, system and file-history-snapshot lines.

Each project is generated from its own random stream, so the first k projects of a history are
the same whatever the total: the 50 MB and 100 MB histories are subsets (hard links) of the
200 MB one, spread over the same days. `expected.json` holds the per-day totals after dedupe
(the larger token total of a response wins).

Usage: .venv/bin/python benchmarks/claude_history.py [DIR]   (generates, prints a summary)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import string
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

FORMAT = 3  # bump when the generated content changes: the cache is rebuilt
PROJECTS = 40
DAYS = 55
MiB = 1 << 20
#: the whole history; each project gets an equal share of it
TOTAL_BYTES = 200 * MiB
MODELS = (
    ("claude-sonnet-4-20250514", 0.62),
    ("claude-opus-4-1-20250805", 0.23),
    ("claude-3-5-haiku-20241022", 0.15),
)
_VOCABULARY = (
    "the a to of and in is for that it with as on this be are by or not from def return "
    "self import class if else elif while for try except raise yield async await lambda "
    "None True False function const let var export interface type string number boolean "
    "test assert expect value result error config path file line token usage model "
    "request response session event ledger index status window project build deploy "
    "refactor rename extract inline variable parameter argument module package version "
    "please can you fix update add remove explain why how what when where which should "
    "would could make sure check run the tests again failing passing green red diff patch"
)
WORDS = _VOCABULARY.split()
ALNUM = string.ascii_letters + string.digits


def default_end() -> date:
    """The history's last day: yesterday (UTC), so no record is in the future."""
    return datetime.now(timezone.utc).date() - timedelta(days=1)


@dataclass
class DayTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    events: int = 0

    def as_list(self) -> list[int]:
        return [
            self.input_tokens,
            self.output_tokens,
            self.cache_write_tokens,
            self.cache_read_tokens,
            self.events,
        ]


@dataclass
class ProjectStats:
    files: int = 0
    lines: int = 0
    bytes: int = 0
    responses: int = 0
    #: key -> (day, total, usage), the winning copy of each response
    winners: dict[str, tuple[str, int, tuple[int, int, int, int]]] = field(default_factory=dict)

    def count(self, key: str, day: str, usage: tuple[int, int, int, int]) -> None:
        total = sum(usage)
        old = self.winners.get(key)
        if old is None or total > old[1]:
            self.winners[key] = (day, total, usage)


class _Text:
    """Slices of one big deterministic text: fast, and escaping-heavy like real code."""

    def __init__(self, rng: random.Random) -> None:
        parts: list[str] = []
        size = 0
        while size < 4 * MiB:
            n = rng.randint(3, 14)
            words = " ".join(rng.choice(WORDS) for _ in range(n))
            tail = rng.choice((".\n", "\n    ", ' = "', '";\n', "(", "):\n        ", ", ", "\t"))
            parts.append(words + tail)
            size += len(words) + len(tail)
        self.base = "".join(parts)

    def take(self, rng: random.Random, n: int) -> str:
        start = rng.randrange(0, len(self.base) - n - 1)
        return self.base[start : start + n]


def _lognormal_int(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, int(rng.lognormvariate(0.0, sigma) * median)))


def _ident(rng: random.Random, prefix: str, n: int) -> str:
    return prefix + "".join(rng.choices(ALNUM, k=n))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _dump(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class _Project:
    def __init__(self, seed: int, index: int, end: date, text: _Text, budget: int) -> None:
        self.rng = random.Random(f"claude-history:{seed}:{index}")
        self.index = index
        self.first_day = end - timedelta(days=DAYS - 1)
        self.end = end
        self.text = text
        self.budget = budget
        name = self.rng.choice(("api", "web", "infra", "cli", "docs", "data", "ml", "mobile"))
        self.cwd = f"/home/dev/work/{name}-service-{index:02d}"
        self.dirname = self.cwd.replace("/", "-")
        self.stats = ProjectStats()

    def write(self, root: Path) -> ProjectStats:
        rng = self.rng
        project_dir = root / "projects" / self.dirname
        project_dir.mkdir(parents=True, exist_ok=True)
        # sessions spread evenly over the period whatever their number (a low-discrepancy
        # sequence), at a random hour of their day
        starts: list[datetime] = []
        previous: list[str] = []
        written = 0
        phase = rng.random()
        while written < self.budget:
            phase = (phase + 0.6180339887498949) % 1.0
            day = self.first_day + timedelta(days=int(phase * DAYS))
            start = datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(
                hours=rng.uniform(7, 20)
            )
            starts.append(start)
            session = _uuid(rng)
            lines = self._session(session, start, previous)
            path = project_dir / f"{session}.jsonl"
            data = "".join(lines)
            path.write_text(data, encoding="utf-8")
            written += len(data.encode())
            self.stats.files += 1
            self.stats.lines += len(lines)
            previous = lines
            if rng.random() < 0.18:  # a subagent (Task tool) with its own responses
                sub = project_dir / session / "subagents"
                sub.mkdir(parents=True, exist_ok=True)
                agent = "".join(rng.choices("0123456789abcdef", k=8))
                sub_lines = self._turns(
                    session,
                    start + timedelta(minutes=rng.uniform(1, 20)),
                    rng.randint(3, 12),
                    sidechain=True,
                    agent=agent,
                )
                data = "".join(sub_lines)
                (sub / f"agent-{agent}.jsonl").write_text(data, encoding="utf-8")
                written += len(data.encode())
                self.stats.files += 1
                self.stats.lines += len(sub_lines)
        self.stats.bytes = written
        return self.stats

    def _session(self, session: str, start: datetime, previous: list[str]) -> list[str]:
        rng = self.rng
        lines: list[str] = []
        if previous and rng.random() < 0.3:
            # a resumed session: the predecessor's last lines, copied verbatim
            lines.extend(previous[-rng.randint(5, 40) :])
            for line in lines:
                self._recount(line)
        lines.append(
            _dump(
                {
                    "type": "file-history-snapshot",
                    "messageId": _uuid(rng),
                    "snapshot": {"trackedFileBackups": {}, "timestamp": _ts(start)},
                    "isSnapshotUpdate": False,
                }
            )
            + "\n"
        )
        lines += self._turns(session, start, rng.randint(12, 70), sidechain=False, agent=None)
        if rng.random() < 0.5:
            lines.append(
                _dump(
                    {"type": "summary", "summary": self.text.take(rng, 60), "leafUuid": _uuid(rng)}
                )
                + "\n"
            )
        return lines

    def _recount(self, line: str) -> None:
        """A copied line counts again only through its key (the larger copy wins)."""
        if '"usage":{' not in line:
            return
        obj = json.loads(line)
        u = obj["message"]["usage"]
        usage = (
            u["input_tokens"],
            u["output_tokens"],
            u["cache_creation_input_tokens"],
            u["cache_read_input_tokens"],
        )
        key = f"{obj['message']['id']}:{obj['requestId']}"
        self.stats.count(key, obj["timestamp"][:10], usage)

    def _turns(
        self, session: str, t: datetime, turns: int, *, sidechain: bool, agent: str | None
    ) -> list[str]:
        rng, text = self.rng, self.text
        lines: list[str] = []
        parent: str | None = None
        context = rng.randint(8_000, 30_000)  # the conversation grows: cache reads grow
        model = rng.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0]
        common = {
            "isSidechain": sidechain,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": session,
            "version": "2.0.14",
            "gitBranch": rng.choice(("main", "feature/usage", "fix/tests")),
        }
        if agent:
            common["agentId"] = agent
        end_limit = datetime.combine(self.end, datetime.max.time(), timezone.utc) - timedelta(
            minutes=10
        )
        for _ in range(turns):
            t = min(t + timedelta(seconds=rng.uniform(20, 600)), end_limit)
            uid = _uuid(rng)
            prompt = text.take(rng, _lognormal_int(rng, 350, 1.1, 20, 40_000))
            lines.append(
                _dump(
                    {
                        "parentUuid": parent,
                        **common,
                        "type": "user",
                        "message": {"role": "user", "content": prompt},
                        "uuid": uid,
                        "timestamp": _ts(t),
                    }
                )
                + "\n"
            )
            parent = uid
            for call in range(rng.randint(1, 5)):
                t = min(t + timedelta(seconds=rng.uniform(2, 40)), end_limit)
                # all copies of a response on one day (a tie never straddles midnight)
                if (t + timedelta(seconds=3)).date() != t.date():
                    t -= timedelta(seconds=4)
                msg_id = _ident(rng, "msg_01", 22)
                req_id = _ident(rng, "req_011C", 20)
                output = _lognormal_int(rng, 350, 1.0, 1, 32_000)
                cache_write = rng.choice((0, 0, rng.randint(100, 6_000)))
                cache_read = context
                input_tokens = rng.choice((1, 3, 4, 6, 8, rng.randint(10, 3_000)))
                context += cache_write + output // 2
                usage = (input_tokens, output, cache_write, cache_read)
                blocks = rng.choice(
                    (
                        ["text"],
                        ["thinking", "text"],
                        ["text", "tool_use"],
                        ["thinking", "text", "tool_use"],
                        ["tool_use"],
                    )
                )
                tool_use = blocks[-1] == "tool_use"
                for b, kind in enumerate(blocks):
                    last = b == len(blocks) - 1
                    # earlier blocks: often a streaming snapshot with fewer output tokens
                    shown = output if last or rng.random() < 0.55 else max(1, output // 8)
                    lines.append(
                        self._assistant(
                            common,
                            parent,
                            model,
                            msg_id,
                            req_id,
                            kind,
                            (input_tokens, shown, cache_write, cache_read),
                            t + timedelta(milliseconds=300 * b),
                            stop="tool_use"
                            if tool_use and last
                            else ("end_turn" if last else None),
                        )
                    )
                    parent = self._last_uuid
                self.stats.responses += 1
                self.stats.count(f"{msg_id}:{req_id}", _ts(t)[:10], usage)
                if tool_use:
                    result = text.take(rng, _lognormal_int(rng, 550, 1.2, 10, 60_000))
                    uid = _uuid(rng)
                    lines.append(
                        _dump(
                            {
                                "parentUuid": parent,
                                **common,
                                "type": "user",
                                "message": {
                                    "role": "user",
                                    "content": [
                                        {
                                            "tool_use_id": _ident(rng, "toolu_01", 22),
                                            "type": "tool_result",
                                            "content": result,
                                        }
                                    ],
                                },
                                "uuid": uid,
                                "timestamp": _ts(t + timedelta(seconds=1)),
                                "toolUseResult": {"stdout": result[:200], "stderr": ""},
                            }
                        )
                        + "\n"
                    )
                    parent = uid
                elif call and rng.random() < 0.3:
                    break
            if rng.random() < 0.04:
                lines.append(
                    _dump(
                        {
                            "parentUuid": parent,
                            **common,
                            "type": "system",
                            "subtype": "compact_boundary",
                            "content": "Conversation compacted",
                            "level": "info",
                            "uuid": _uuid(rng),
                            "timestamp": _ts(t),
                        }
                    )
                    + "\n"
                )
        return lines

    _last_uuid: str = ""

    def _assistant(
        self,
        common: dict[str, object],
        parent: str | None,
        model: str,
        msg_id: str,
        req_id: str,
        kind: str,
        usage: tuple[int, int, int, int],
        t: datetime,
        stop: str | None,
    ) -> str:
        rng, text = self.rng, self.text
        if kind == "thinking":
            block: dict[str, object] = {
                "type": "thinking",
                "thinking": text.take(rng, _lognormal_int(rng, 300, 0.9, 20, 20_000)),
                "signature": _ident(rng, "Eq", 300),
            }
        elif kind == "tool_use":
            block = {
                "type": "tool_use",
                "id": _ident(rng, "toolu_01", 22),
                "name": rng.choice(("Read", "Edit", "Bash", "Grep", "Write")),
                "input": {
                    "file_path": f"{self.cwd}/src/m{rng.randrange(99)}.py",
                    "content": text.take(rng, _lognormal_int(rng, 200, 1.2, 0, 30_000)),
                },
            }
        else:
            block = {
                "type": "text",
                "text": text.take(rng, _lognormal_int(rng, 250, 1.0, 5, 20_000)),
            }
        input_tokens, output, cache_write, cache_read = usage
        uid = _uuid(rng)
        self._last_uuid = uid
        use: dict[str, object] = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_write,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": output,
            "service_tier": "standard",
        }
        return (
            _dump(
                {
                    "parentUuid": parent,
                    **common,
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [block],
                        "stop_reason": stop,
                        "stop_sequence": None,
                        "usage": use,
                    },
                    "requestId": req_id,
                    "type": "assistant",
                    "uuid": uid,
                    "timestamp": _ts(t),
                }
            )
            + "\n"
        )


@dataclass(frozen=True)
class History:
    """One generated history: `root` is what CLAUDE_CONFIG_DIR / `scan --path` point at."""

    root: Path
    projects: int
    files: int
    lines: int
    bytes: int
    first_day: date
    end: date
    #: day -> [input, output, cache write, cache read, events], deduped
    expected: dict[str, list[int]]

    def transcripts(self) -> Iterator[Path]:
        yield from sorted((self.root / "projects").rglob("*.jsonl"))


def _generate_full(dest: Path, seed: int, end: date) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    text = _Text(random.Random(f"claude-history-text:{seed}"))
    per_project = []
    for i in range(PROJECTS):
        project = _Project(seed, i, end, text, TOTAL_BYTES // PROJECTS)
        stats = project.write(tmp / "full")
        per_project.append(
            {
                "dir": project.dirname,
                "files": stats.files,
                "lines": stats.lines,
                "bytes": stats.bytes,
                "responses": stats.responses,
                "winners": {k: [d, *u] for k, (d, _, u) in stats.winners.items()},
            }
        )
    (tmp / "projects.json").write_text(json.dumps(per_project), encoding="utf-8")
    sizes = {
        str(p.relative_to(tmp / "full")): p.stat().st_size
        for p in sorted((tmp / "full").rglob("*.jsonl"))
    }
    (tmp / "manifest.json").write_text(json.dumps(sizes), encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def _subset(base: Path, name: str, projects: list[dict[str, object]]) -> Path:
    """The first projects, hard-linked (no copy) into their own CLAUDE_CONFIG_DIR."""
    root = base / name
    if root.exists():
        return root
    tmp = base / f"{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for project in projects:
        src = base / "full" / "projects" / str(project["dir"])
        for path in sorted(src.rglob("*.jsonl")):
            target = tmp / "projects" / str(project["dir"]) / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    os.replace(tmp, root)
    return root


def repair(base: Path) -> None:
    """Undo lines a benchmark appended (and did not get to remove): files back to their size."""
    manifest = json.loads((base / "manifest.json").read_text(encoding="utf-8"))
    for rel, size in manifest.items():
        path = base / "full" / rel
        if path.stat().st_size != size:
            if path.stat().st_size < size:
                raise RuntimeError(f"{path} shrank: delete {base} to generate it again")
            os.truncate(path, size)


def histories(
    cache: Path, sizes_mib: list[int], *, seed: int = 1, end: date | None = None
) -> dict[int, History]:
    """Histories of about these sizes (MiB, at most 200), generated once per (seed, end day)."""
    end = end or default_end()
    base = cache / f"claude-v{FORMAT}-seed{seed}-{end.isoformat()}"
    if not (base / "manifest.json").exists():
        for old in cache.glob("claude-v*"):  # yesterday's: dates moved on
            shutil.rmtree(old, ignore_errors=True)
        cache.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        print(
            f"generating a {TOTAL_BYTES // MiB} MiB Claude Code history in {base}", file=sys.stderr
        )
        _generate_full(base, seed, end)
        print(f"  generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    repair(base)
    projects: list[dict[str, Any]] = json.loads((base / "projects.json").read_text("utf-8"))
    result: dict[int, History] = {}
    for size in sizes_mib:
        count = max(1, min(PROJECTS, round(PROJECTS * size * MiB / TOTAL_BYTES)))
        chosen = projects[:count]
        root = base / "full" if count == PROJECTS else _subset(base, f"first{count}", chosen)
        expected: dict[str, DayTotals] = {}
        seen: dict[str, tuple[str, list[int]]] = {}  # key -> (day, usage) of the larger copy
        for project in chosen:
            for key, (day, *usage) in project["winners"].items():
                prior = seen.get(key)
                if prior is None or sum(usage) > sum(prior[1]):
                    seen[key] = (day, usage)
        for day, (i, o, w, r) in seen.values():
            totals = expected.setdefault(day, DayTotals())
            totals.input_tokens += i
            totals.output_tokens += o
            totals.cache_write_tokens += w
            totals.cache_read_tokens += r
            totals.events += 1
        result[size] = History(
            root=root,
            projects=count,
            files=sum(int(p["files"]) for p in chosen),
            lines=sum(int(p["lines"]) for p in chosen),
            bytes=sum(int(p["bytes"]) for p in chosen),
            first_day=end - timedelta(days=DAYS - 1),
            end=end,
            expected={d: t.as_list() for d, t in sorted(expected.items())},
        )
    return result


if __name__ == "__main__":
    cache = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parent.parent / ".cache" / "bench"
    )
    for size, h in histories(cache, [50, 100, 200]).items():
        print(
            f"~{size} MiB: {h.bytes / MiB:.1f} MiB, {h.projects} projects, {h.files} files, "
            f"{h.lines} lines, {sum(v[4] for v in h.expected.values())} responses, "
            f"{len(h.expected)} days ({h.first_day}..{h.end}) in {h.root}"
        )
