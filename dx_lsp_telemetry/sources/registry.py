"""The known sources, by settings name and by label (the `--source` of the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dx_lsp_telemetry.settings.settings import Settings
from dx_lsp_telemetry.sources.aider import Aider
from dx_lsp_telemetry.sources.base import Source
from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.cline import Cline, KiloCode, RooCode
from dx_lsp_telemetry.sources.codex import Codex
from dx_lsp_telemetry.sources.continue_dev import Continue
from dx_lsp_telemetry.sources.copilot_chat import CopilotChat
from dx_lsp_telemetry.sources.copilot_cli import CopilotCli
from dx_lsp_telemetry.sources.droid import Droid
from dx_lsp_telemetry.sources.gemini_cli import GeminiCli
from dx_lsp_telemetry.sources.goose import Goose
from dx_lsp_telemetry.sources.junie import Junie
from dx_lsp_telemetry.sources.opencode import OpenCode
from dx_lsp_telemetry.sources.qwen_code import QwenCode
from dx_lsp_telemetry.sources.zed import Zed

#: settings name -> class (sources keep per-process caches, so each user makes its own)
SOURCES: dict[str, type[Source]] = {
    cls.name: cls
    for cls in (
        ClaudeCode,
        Codex,
        Cline,
        RooCode,
        KiloCode,
        Continue,
        CopilotChat,
        GeminiCli,
        OpenCode,
        CopilotCli,
        QwenCode,
        Droid,
        Goose,
        Zed,
        Junie,
        Aider,
    )
}


def by_label(label: str) -> type[Source] | None:
    """The source `scan --source` names: by its label (`claude-code`) or settings key
    (`claudeCode`)."""
    return SOURCES.get(label) or next((c for c in SOURCES.values() if c.label == label), None)


def homes_for(
    source: Source, settings: Settings, env: Mapping[str, str], path: str = ""
) -> list[Path]:
    """Where `source` looks: `path` (the CLI's --path), the setting, or the tool's defaults."""
    return source.homes(path or settings.sources[source.name].path, env)
