"""Where the data lives: `DX_TELEMETRY_HOME` or the platform's user data dir."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dx_lsp_telemetry.util.private import private_dir, tighten

APP_NAME = "dx-lsp-telemetry"


@dataclass(frozen=True)
class DataPaths:
    home: Path

    @property
    def ledger_dir(self) -> Path:
        return self.home / "ledger"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def journal_file(self) -> Path:
        return self.home / "journal.jsonl"

    @property
    def config_file(self) -> Path:
        """The editor's last settings (never the token), so the CLI pushes as the editor does."""
        return self.home / "settings.json"

    @property
    def leader_lock(self) -> Path:
        return self.home / "leader.lock"

    @property
    def push_lock(self) -> Path:
        return self.home / "push.lock"

    @property
    def ledger_lock(self) -> Path:
        return self.ledger_dir / ".lock"

    @property
    def sources_dir(self) -> Path:
        return self.home / "sources"

    def ensure(self) -> None:
        """The data folder and its subfolders, owner-only; an older version's modes tightened."""
        private_dir(self.home)
        for d in (self.ledger_dir, self.outbox_dir):
            private_dir(d, within=self.home)
        tighten(self.home)


def resolve_home(env: Mapping[str, str] | None = None) -> DataPaths:
    env = os.environ if env is None else env
    override = env.get("DX_TELEMETRY_HOME", "").strip()
    if override:
        return DataPaths(Path(override).expanduser())
    import platformdirs  # only when no override is set (tests and managed machines set one)

    return DataPaths(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))
