"""The `dxTelemetry` settings: parsed from the editor's dict, with env fallbacks.

A malformed value never stops the sidecar: it is named in `problems` and its default is used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dx_lsp_telemetry.settings.days import DayBoundary
from dx_lsp_telemetry.util.shown import is_unicode, show

SECTION = "dxTelemetry"

#: Source setting names and the DX tool name each pushes under by default.
SOURCE_TOOLS: dict[str, str] = {
    "claudeCode": "claude-code",
    "codex": "codex",
    "cline": "cline",
    "rooCode": "roo-code",
    "kiloCode": "kilo-code",
    "continue": "continue",
    "opencode": "opencode",
    "geminiCli": "gemini-cli",
    "qwenCode": "qwen-code",
    "droid": "droid",
    "goose": "goose",
    "zed": "zed",
    "junie": "junie",
    "aider": "aider",
    "copilotChat": "copilot-chat",
    "copilotCli": "copilot-cli",
}

#: Keys of the section that belong to the extension, not the sidecar.
_EXTENSION_ONLY = {"python", "trace"}

#: `machineSuffix`: a short name of this machine, appended to the tools it pushes
MACHINE_SUFFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
#: between a tool and this machine's suffix in the pushed tool name
SUFFIX_SEPARATOR = "@"

_ENV_FALLBACKS = {
    "email": "DX_TELEMETRY_EMAIL",
    "tool": "DX_TELEMETRY_TOOL",
    "instanceUrl": "DX_TELEMETRY_INSTANCE_URL",
}
#: the fallbacks that name where days go (and so which push states a reader sees)
DESTINATION_ENV = (_ENV_FALLBACKS["email"], _ENV_FALLBACKS["instanceUrl"])

#: the OTLP receiver's port: never 4317/4318 (a developer's own collector)
OTLP_PORT = 4319
OTLP_PORT_RANGE = (1024, 65535)
#: `otlp.tools` entries read (a service name is short; more is a mistake)
OTLP_MAX_TOOLS = 100
_OTLP_ENV = {"otlp.enabled": "DX_TELEMETRY_OTLP_ENABLED", "otlp.port": "DX_TELEMETRY_OTLP_PORT"}


@dataclass(frozen=True)
class SourceSettings:
    enabled: bool
    tool: str
    path: str


@dataclass(frozen=True)
class OtlpSettings:
    enabled: bool = False
    port: int = OTLP_PORT
    #: `service.name` -> DX tool name; a service not named here is pushed under its own name
    tools: Mapping[str, str] = field(default_factory=dict)

    def tool_for(self, service: str) -> str:
        return self.tools.get(service) or service


@dataclass(frozen=True)
class Settings:
    enabled: bool = True
    email: str = ""
    tool: str = ""
    instance_url: str = ""
    #: appended to every tool this machine pushes (`claude-code@laptop`); "" for none
    machine_suffix: str = ""
    day_boundary: DayBoundary = "utc"
    flush_enabled: bool = True
    flush_delay_seconds: int = 3600
    backfill_days: int = 7
    report_inactive_days: bool = True
    model_breakdowns: bool = False
    retention_days: int = 90
    spend_estimate: bool = True
    sources: Mapping[str, SourceSettings] = field(
        default_factory=lambda: {
            name: SourceSettings(False, tool, "") for name, tool in SOURCE_TOOLS.items()
        }
    )
    otlp: OtlpSettings = field(default_factory=OtlpSettings)

    def pushed_tool(self, tool: str) -> str:
        """The name DX gets for `tool` from this machine: with `machineSuffix`, two machines
        of one developer push two tools instead of two records under one (email, date, tool)."""
        return f"{tool}{SUFFIX_SEPARATOR}{self.machine_suffix}" if self.machine_suffix else tool

    def to_editor_dict(self) -> dict[str, Any]:
        """The nested camelCase form the editor sends (and `parse_settings` reads)."""
        return {
            "enabled": self.enabled,
            "email": self.email,
            "tool": self.tool,
            "instanceUrl": self.instance_url,
            "machineSuffix": self.machine_suffix,
            "dayBoundary": self.day_boundary,
            "flush": {
                "enabled": self.flush_enabled,
                "delaySeconds": self.flush_delay_seconds,
                "backfillDays": self.backfill_days,
            },
            "reportInactiveDays": self.report_inactive_days,
            "modelBreakdowns": self.model_breakdowns,
            "retentionDays": self.retention_days,
            "spend": {"estimate": self.spend_estimate},
            "sources": {
                name: {"enabled": s.enabled, "tool": s.tool, "path": s.path}
                for name, s in self.sources.items()
            },
            "otlp": {
                "enabled": self.otlp.enabled,
                "port": self.otlp.port,
                "tools": dict(self.otlp.tools),
            },
        }


@dataclass(frozen=True)
class ParsedSettings:
    settings: Settings
    problems: list[str]
    #: Keys this version does not know (a typo, or a newer extension): logged, not fatal.
    unknown: list[str]
    #: What the machine's managed configuration set (`managed.py`), as `status` shows it.
    managed: Mapping[str, Any] = field(default_factory=dict)


class _Reader:
    """Reads typed values out of the raw section, collecting a problem per bad value."""

    def __init__(self, raw: Mapping[str, Any], prefix: str = f"{SECTION}.") -> None:
        self.raw = raw
        #: what a problem names before the key: the section, or a managed file
        self.prefix = prefix
        self.problems: list[str] = []
        self._bad_groups: set[str] = set()

    def get(self, dotted: str) -> Any:
        if dotted in self.raw:  # a client that flattens dotted keys
            return self.raw[dotted]
        node: Any = self.raw
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, Mapping):
                group = ".".join(parts[:depth])
                if node is not None and group not in self._bad_groups:
                    self._bad_groups.add(group)  # e.g. "flush": 5, named once
                    self.bad(group, "an object", node)
                return None
            node = node.get(part)
        return node

    def bad(self, dotted: str, expected: str, value: Any) -> None:
        self.problems.append(f"{self.prefix}{dotted}: expected {expected}, got {_show(value)}")

    def boolean(self, dotted: str, default: bool) -> bool:
        value = self.get(dotted)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad(dotted, "true or false", value)
            return default
        return value

    def integer(self, dotted: str, default: int, low: int, high: int) -> int:
        value = self.get(dotted)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.bad(dotted, f"an integer from {low} to {high}", value)
            return default
        return value

    def string(self, dotted: str, default: str = "", max_len: int = 2000) -> str:
        value = self.get(dotted)
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > max_len:
            self.bad(dotted, f"a string of at most {max_len} characters", value)
            return default
        if not is_unicode(value):  # it would reach files and DX as is
            self.bad(dotted, "Unicode text, not a lone surrogate", value)
            return default
        return value.strip()


def _show(value: Any) -> str:
    """At most 80 characters of `value` however large or deep (Python's notation)."""
    return show(value, 80, python=True)


def lookup(raw: Any, dotted: str) -> Any:
    """The raw value at `dotted` in a section (nested or dotted keys), or None."""
    return _Reader(raw).get(dotted) if isinstance(raw, Mapping) else None


def parse_settings(
    raw: Any, env: Mapping[str, str] | None = None, *, prefix: str = f"{SECTION}."
) -> ParsedSettings:
    """Parse the `dxTelemetry` section (or `{"dxTelemetry": {...}}`) into `Settings`.
    `prefix` names where a bad value came from in its problem (`dxTelemetry.` by default)."""
    env = os.environ if env is None else env
    problems: list[str] = []
    if isinstance(raw, Mapping) and SECTION in raw:
        raw = raw[SECTION]
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(f"{SECTION}: expected an object of settings, got {_show(raw)}")
        raw = {}
    r = _Reader(raw, prefix)

    boundary = r.get("dayBoundary")
    day_boundary: DayBoundary = "utc"
    if boundary == "local":
        day_boundary = "local"
    elif boundary not in (None, "utc"):
        r.bad("dayBoundary", '"utc" or "local"', boundary)

    sources: dict[str, SourceSettings] = {}
    for name, default_tool in SOURCE_TOOLS.items():
        tool = r.string(f"sources.{name}.tool", default_tool, 100) or default_tool
        sources[name] = SourceSettings(
            enabled=r.boolean(f"sources.{name}.enabled", False),
            tool=tool,
            path=r.string(f"sources.{name}.path"),
        )

    settings = Settings(
        enabled=r.boolean("enabled", True),
        email=r.string("email", max_len=320),
        tool=r.string("tool", max_len=100),
        instance_url=r.string("instanceUrl").rstrip("/"),
        machine_suffix=_machine_suffix(r),
        day_boundary=day_boundary,
        flush_enabled=r.boolean("flush.enabled", True),
        flush_delay_seconds=r.integer("flush.delaySeconds", 3600, 0, 86_400),
        backfill_days=r.integer("flush.backfillDays", 7, 0, 365),
        report_inactive_days=r.boolean("reportInactiveDays", True),
        model_breakdowns=r.boolean("modelBreakdowns", False),
        retention_days=r.integer("retentionDays", 90, 1, 3650),
        spend_estimate=r.boolean("spend.estimate", True),
        sources=sources,
        otlp=_otlp(r, env),
    )
    fallbacks = {
        key: env.get(var, "").strip()
        for key, var in _ENV_FALLBACKS.items()
        if env.get(var, "").strip()
    }
    settings = replace(
        settings,
        email=settings.email or fallbacks.get("email", ""),
        tool=settings.tool or fallbacks.get("tool", ""),
        instance_url=settings.instance_url or fallbacks.get("instanceUrl", "").rstrip("/"),
    )
    problems.extend(r.problems)
    unknown = sorted(
        str(k) for k in raw if str(k).split(".")[0] not in _KNOWN_TOP | _EXTENSION_ONLY
    )
    return ParsedSettings(settings, problems, [f"{SECTION}.{k}" for k in unknown])


_KNOWN_TOP = {
    "enabled",
    "email",
    "tool",
    "instanceUrl",
    "machineSuffix",
    "dayBoundary",
    "flush",
    "reportInactiveDays",
    "modelBreakdowns",
    "retentionDays",
    "spend",
    "sources",
    "otlp",
}


def _machine_suffix(r: _Reader) -> str:
    """`machineSuffix`: letters, digits, `.`, `_`, `-`, at most 32; anything else is named and
    ignored (this machine then pushes plain tool names, as with none set)."""
    value = r.string("machineSuffix", max_len=200)
    if value and not MACHINE_SUFFIX.fullmatch(value):
        r.bad(
            "machineSuffix",
            "1 to 32 letters, digits, '.', '_' or '-' (e.g. laptop), a letter or digit first",
            value,
        )
        return ""
    return value


def _otlp(r: _Reader, env: Mapping[str, str]) -> OtlpSettings:
    """`otlp.*`; `enabled` and `port` fall back to `DX_TELEMETRY_OTLP_*` where not sent."""
    low, high = OTLP_PORT_RANGE
    enabled, port = False, OTLP_PORT
    if r.get("otlp.enabled") is not None:
        enabled = r.boolean("otlp.enabled", False)
    elif text := env.get(_OTLP_ENV["otlp.enabled"], "").strip():
        if text.lower() in ("true", "1", "false", "0"):
            enabled = text.lower() in ("true", "1")
        else:
            r.problems.append(
                f"{_OTLP_ENV['otlp.enabled']}: expected true or false, got {_show(text)}"
            )
    if r.get("otlp.port") is not None:
        port = r.integer("otlp.port", OTLP_PORT, low, high)
    elif text := env.get(_OTLP_ENV["otlp.port"], "").strip():
        if text.isdigit() and low <= int(text) <= high:
            port = int(text)
        else:
            r.problems.append(
                f"{_OTLP_ENV['otlp.port']}: expected a port from {low} to {high}, got {_show(text)}"
            )
    return OtlpSettings(enabled, port, _otlp_tools(r))


def _otlp_tools(r: _Reader) -> dict[str, str]:
    """`otlp.tools`: each bad entry is a problem naming its key; the good ones still apply."""
    raw = r.get("otlp.tools")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        r.bad("otlp.tools", "an object of service.name -> DX tool name", raw)
        return {}
    tools: dict[str, str] = {}
    for key in sorted(map(str, raw)):
        value = raw[key]
        shown = key if len(key) <= 80 else key[:77] + "..."
        if len(tools) >= OTLP_MAX_TOOLS:
            r.problems.append(f"{r.prefix}otlp.tools: at most {OTLP_MAX_TOOLS} entries are read")
            break
        if not 1 <= len(key) <= 200 or not is_unicode(key):
            r.bad(f"otlp.tools.{shown}", "a service name of 1 to 200 characters", key)
        elif (
            not isinstance(value, str)
            or not 1 <= len(value.strip()) <= 100
            or not is_unicode(value)
        ):
            r.bad(f"otlp.tools.{shown}", "a DX tool name of 1 to 100 characters", value)
        else:
            tools[key] = value.strip()
    return tools


def env_fallback(key: str) -> str | None:
    """The environment variable that fills setting `key` where it is empty, if any."""
    return _ENV_FALLBACKS.get(key)
