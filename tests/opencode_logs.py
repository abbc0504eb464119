"""OpenCode-schema databases written as OpenCode (and the rebuilt Kilo Code) write them.

The tables are those of OpenCode's first SQLite migration, `20260127222353_familiar_lady_ursula`
(OpenCode 1.2; the rebuilt Kilo Code ships the same), recorded in drizzle's
`__drizzle_migrations` as OpenCode's migrator does. The writer holds its connection open in WAL
mode, as a running OpenCode does, and writes what a session writes: the user message, the
assistant message (its `tokens` overwritten and its `cost` added to at every step), a
`step-start`, text and tool parts with the prompt in them, and a `step-finish` part per step.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SECRET = "refactor /home/dev/secret-project/payroll.py for ACME"
FIRST_MIGRATION = "20260127222353_familiar_lady_ursula"
FIRST_MIGRATION_MS = 1769552633000  # drizzle's created_at: the folder's timestamp

SCHEMA = """
CREATE TABLE `project` (
  `id` text PRIMARY KEY, `worktree` text NOT NULL, `vcs` text, `name` text, `icon_url` text,
  `icon_color` text, `time_created` integer NOT NULL, `time_updated` integer NOT NULL,
  `time_initialized` integer, `sandboxes` text NOT NULL
);
CREATE TABLE `message` (
  `id` text PRIMARY KEY, `session_id` text NOT NULL, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `data` text NOT NULL,
  CONSTRAINT `fk_message_session_id_session_id_fk` FOREIGN KEY (`session_id`)
    REFERENCES `session`(`id`) ON DELETE CASCADE
);
CREATE TABLE `part` (
  `id` text PRIMARY KEY, `message_id` text NOT NULL, `session_id` text NOT NULL,
  `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL,
  CONSTRAINT `fk_part_message_id_message_id_fk` FOREIGN KEY (`message_id`)
    REFERENCES `message`(`id`) ON DELETE CASCADE
);
CREATE TABLE `permission` (
  `project_id` text PRIMARY KEY, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `data` text NOT NULL
);
CREATE TABLE `session` (
  `id` text PRIMARY KEY, `project_id` text NOT NULL, `parent_id` text, `slug` text NOT NULL,
  `directory` text NOT NULL, `title` text NOT NULL, `version` text NOT NULL, `share_url` text,
  `summary_additions` integer, `summary_deletions` integer, `summary_files` integer,
  `summary_diffs` text, `revert` text, `permission` text, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `time_compacting` integer, `time_archived` integer,
  CONSTRAINT `fk_session_project_id_project_id_fk` FOREIGN KEY (`project_id`)
    REFERENCES `project`(`id`) ON DELETE CASCADE
);
CREATE TABLE `todo` (
  `session_id` text NOT NULL, `content` text NOT NULL, `status` text NOT NULL,
  `priority` text NOT NULL, `position` integer NOT NULL, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, CONSTRAINT `todo_pk` PRIMARY KEY(`session_id`, `position`)
);
CREATE TABLE `session_share` (
  `session_id` text PRIMARY KEY, `id` text NOT NULL, `secret` text NOT NULL, `url` text NOT NULL,
  `time_created` integer NOT NULL, `time_updated` integer NOT NULL
);
CREATE INDEX `message_session_idx` ON `message` (`session_id`);
CREATE INDEX `part_message_idx` ON `part` (`message_id`);
CREATE INDEX `part_session_idx` ON `part` (`session_id`);
CREATE INDEX `session_project_idx` ON `session` (`project_id`);
CREATE INDEX `session_parent_idx` ON `session` (`parent_id`);
CREATE INDEX `todo_session_idx` ON `todo` (`session_id`);
CREATE TABLE `__drizzle_migrations` (
  id INTEGER PRIMARY KEY, hash text NOT NULL, created_at numeric
);
"""

_counter = itertools.count(1)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def ascending(prefix: str, ts: datetime) -> str:
    """An OpenCode id: its prefix, the time and a counter in hex, then random-looking letters."""
    n = next(_counter)
    stamp = (ms(ts) * 0x1000 + n % 0x1000) & 0xFFFFFFFFFFFF
    return f"{prefix}_{stamp:012x}{hashlib.sha1(f'{prefix}{n}'.encode()).hexdigest()[:14]}"


def compact(value: Any) -> str:
    """As OpenCode stores JSON columns (JSON.stringify)."""
    return json.dumps(value, separators=(",", ":"))


def imported_id(prefix: str, value: str) -> str:
    """The Kilo Code importer's deterministic ids: `<prefix>_` + 26 hex of a SHA-1."""
    return f"{prefix}_{hashlib.sha1(value.encode()).hexdigest()[:26]}"


def step_tokens(inp: int, out: int, reasoning: int = 0, cr: int = 0, cw: int = 0) -> dict[str, Any]:
    return {"input": inp, "output": out, "reasoning": reasoning, "cache": {"read": cr, "write": cw}}


class OpenCodeDb:
    """A database being written by a running OpenCode (one open connection, WAL mode)."""

    def __init__(self, path: Path, *, schema: str = SCHEMA) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA foreign_keys = ON")
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'part'").fetchone():
            self.db.executescript(schema)
            if "__drizzle_migrations" in schema:
                self.db.execute(
                    "INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?, ?)",
                    (hashlib.sha256(FIRST_MIGRATION.encode()).hexdigest(), FIRST_MIGRATION_MS),
                )
        self.project = "4b0c5d1f2e3a4b5c6d7e8f90a1b2c3d4e5f60718"
        self.db.execute(
            "INSERT OR IGNORE INTO project VALUES"
            " (?, ?, 'git', NULL, NULL, NULL, 1, 1, NULL, '[]')",
            (self.project, "/home/dev/secret-project"),
        )

    def close(self) -> None:
        self.db.close()

    def session(
        self, ts: datetime, *, session_id: str | None = None, slug: str = "calm-forest"
    ) -> str:
        sid = session_id or ascending("ses", ts)
        self.db.execute(
            "INSERT INTO session (id, project_id, slug, directory, title, version, time_created,"
            " time_updated) VALUES (?, ?, ?, ?, ?, '1.2.0', ?, ?)",
            (sid, self.project, slug, "/home/dev/secret-project", SECRET, ms(ts), ms(ts)),
        )
        return sid

    def user(self, sid: str, ts: datetime, *, message_id: str | None = None) -> str:
        mid = message_id or ascending("msg", ts)
        data = {
            "role": "user",
            "time": {"created": ms(ts)},
            "agent": "build",
            "model": {"providerID": "anthropic", "modelID": "claude-sonnet-4-20250514"},
        }
        self._message(mid, sid, ts, data)
        self.part(sid, mid, ts, {"type": "text", "text": SECRET})
        return mid

    def assistant(
        self,
        sid: str,
        ts: datetime,
        steps: list[dict[str, Any]],
        *,
        costs: list[float | None] | None = None,
        model: str = "claude-sonnet-4-20250514",
        provider: str = "anthropic",
        message_id: str | None = None,
    ) -> list[str]:
        """An assistant message of several steps, written as OpenCode writes it; the ids of
        its step-finish parts."""
        mid = message_id or ascending("msg", ts)
        info: dict[str, Any] = {
            "role": "assistant",
            "time": {"created": ms(ts)},
            "parentID": "msg_parent",
            "modelID": model,
            "providerID": provider,
            "mode": "build",
            "agent": "build",
            "path": {"cwd": "/home/dev/secret-project", "root": "/home/dev/secret-project"},
            "cost": 0,
            "tokens": step_tokens(0, 0),
        }
        self._message(mid, sid, ts, info)
        finished = []
        for n, tokens in enumerate(steps):
            at = ts.replace(microsecond=0).timestamp() + n + 1
            when = datetime.fromtimestamp(at, timezone.utc)
            self.part(sid, mid, when, {"type": "step-start", "snapshot": "9f8e7d6c"})
            self.part(sid, mid, when, {"type": "text", "text": f"answer about {SECRET}"})
            self.part(
                sid,
                mid,
                when,
                {
                    "type": "tool",
                    "callID": f"toolu_{n}",
                    "tool": "bash",
                    "state": {
                        "status": "completed",
                        "input": {"command": f"cat {SECRET}"},
                        "output": SECRET,
                        "title": "cat",
                        "metadata": {},
                        "time": {"start": ms(when), "end": ms(when)},
                    },
                },
            )
            cost = (costs or [])[n] if costs and n < len(costs) else 0.001 * (n + 1)
            finish: dict[str, Any] = {"type": "step-finish", "reason": "tool-calls"}
            finish["snapshot"] = "1a2b3c4d"
            if cost is not None:
                finish["cost"] = cost
            finish["tokens"] = tokens
            finished.append(self.part(sid, mid, when, finish))
            # the message: tokens overwritten by the step's, cost accumulated
            info["tokens"] = tokens
            info["cost"] = round(info["cost"] + (cost or 0), 10)
            self.db.execute(
                "UPDATE message SET data = ?, time_updated = ? WHERE id = ?",
                (compact(info), ms(when), mid),
            )
        return finished

    def part(
        self, sid: str, mid: str, ts: datetime, data: dict[str, Any], *, part_id: str | None = None
    ) -> str:
        pid = part_id or ascending("prt", ts)
        self.db.execute(
            "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
            " time_updated = excluded.time_updated",
            (pid, mid, sid, ms(ts), ms(ts), compact(data)),
        )
        return pid

    def _message(self, mid: str, sid: str, ts: datetime, data: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO message (id, session_id, time_created, time_updated, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (mid, sid, ms(ts), ms(ts), compact(data)),
        )

    def delete_session(self, sid: str) -> None:
        self.db.execute("DELETE FROM session WHERE id = ?", (sid,))

    def imported_task(self, task: str, ts: datetime, turns: int, *, roo: bool = False) -> str:
        """A legacy (or Roo Code) task as the rebuilt Kilo Code's importer writes it: ids derived
        from the task id, the task id as the slug, messages of provider and model "legacy"
        with no usage, text and tool parts only."""
        source = f"roo:{task}" if roo else task
        sid = self.session(ts, session_id=imported_id("ses", source), slug=task)
        for index in range(2 * turns):
            mid = imported_id("msg", f"{source}:{index}")
            if index % 2 == 0:
                data: dict[str, Any] = {
                    "role": "user",
                    "time": {"created": ms(ts)},
                    "agent": "user",
                    "model": {"providerID": "legacy", "modelID": "legacy"},
                }
            else:
                data = {
                    "role": "assistant",
                    "time": {"created": ms(ts), "completed": ms(ts)},
                    "parentID": imported_id("msg", f"{source}:{index - 1}"),
                    "modelID": "legacy",
                    "providerID": "legacy",
                    "mode": "code",
                    "agent": "main",
                    "path": {"cwd": "/home/dev/secret-project", "root": "/home/dev/secret-project"},
                    "cost": 0,
                    "tokens": step_tokens(0, 0),
                }
            self._message(mid, sid, ts, data)
            self.part(
                sid,
                mid,
                ts,
                {"type": "text", "text": SECRET, "time": {"start": ms(ts), "end": ms(ts)}},
                part_id=imported_id("prt", f"{source}:{index}:0"),
            )
        return sid

    def legacy_message(self, sid: str, source: str, index: int) -> str:
        return imported_id("msg", f"{source}:{index}")

    def resumed_session(self, ts: datetime, provider: str, model: str, turns: int) -> str:
        """A Claude Code or Codex session as Kilo's `/resume-claude` and `/resume-codex` write it
        (Kilo-Org/kilocode `session-resume`: `mapTranscript`, through `SessionResumeImport.write`)
        into a new, empty session: new ascending ids, each assistant message under the source's
        provider and model with zero tokens and cost, text parts only (and tool and reasoning
        parts, never a step-start or step-finish), an import notice on the last one."""
        sid = self.session(ts)
        for _ in range(turns):
            user = ascending("msg", ts)
            self._message(
                user,
                sid,
                ts,
                {
                    "role": "user",
                    "time": {"created": ms(ts)},
                    "agent": "code",
                    "model": {"providerID": "kilo", "modelID": "kilo/auto"},
                },
            )
            self.part(sid, user, ts, {"type": "text", "text": SECRET})
            answer = ascending("msg", ts)
            self._message(
                answer,
                sid,
                ts,
                {
                    "role": "assistant",
                    "parentID": user,
                    "time": {"created": ms(ts), "completed": ms(ts)},
                    "mode": "code",
                    "agent": "code",
                    "cost": 0,
                    "tokens": step_tokens(0, 0),
                    "modelID": model,
                    "providerID": provider,
                    "path": {"cwd": "/home/dev/secret-project", "root": "/home/dev/secret-project"},
                    "finish": "stop",
                },
            )
            self.part(sid, answer, ts, {"type": "text", "text": f"answer about {SECRET}"})
        notice = "---\n*This conversation was imported from an external session.*"
        self.part(
            sid, answer, ts, {"type": "text", "text": notice, "synthetic": True, "ignored": True}
        )
        return sid

    def fork(self, sid: str, ts: datetime, *, zero_cost: bool = False) -> str:
        """The session forked at `ts` as OpenCode's and Kilo's `fork` write it: a new session,
        then every message again (its data, its own `time` included, under a new id) and every
        part again under a new id, step-finish parts with their tokens (`zero_cost`: Kilo sets
        their cost to 0); the new session's id."""
        forked = self.session(ts, slug="forked-forest")
        messages = self.db.execute(
            "SELECT id, data FROM message WHERE session_id = ? ORDER BY id", (sid,)
        ).fetchall()
        for old_id, data in messages:
            new_id = ascending("msg", ts)
            self._message(new_id, forked, ts, json.loads(data))
            parts = self.db.execute(
                "SELECT data FROM part WHERE message_id = ? ORDER BY id", (old_id,)
            ).fetchall()
            for (part_data,) in parts:
                part = json.loads(part_data)
                if zero_cost and part.get("type") == "step-finish":
                    part["cost"] = 0
                self.part(forked, new_id, ts, part)
        return forked
