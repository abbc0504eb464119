"""The managed configuration's parts (`managed.py`, `managed_sources.py`) on real files: the
keys it takes (nested, dotted, under `dxTelemetry`), the token refused, each bad value named with
its source and key, precedence over user settings and env fallbacks, re-reading on change only,
real plists written by plistlib, registry values through the pure reader (and the real registry
on Windows)."""

from __future__ import annotations

import json
import os
import plistlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.settings.managed import (
    LEAVES,
    Found,
    ManagedConfig,
    ManagedSettings,
    apply_managed,
    entries_of,
)
from dx_lsp_telemetry.settings.managed_sources import (
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_QWORD,
    REG_SZ,
    JsonFile,
    Plist,
    RegistryKey,
    machine_sources,
    registry_entries,
)
from dx_lsp_telemetry.settings.settings import parse_settings

SECRET = "sekrit-0123456789"


def managed(tmp_path: Path, document: Any, name: str = "managed.json") -> ManagedConfig:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return ManagedSettings([JsonFile(path)]).current()


def values(config: ManagedConfig) -> dict[str, Any]:
    return dict(config.values)


# -- keys ------------------------------------------------------------------------------------


def test_nested_dotted_and_sectioned_keys_mean_the_same(tmp_path: Path) -> None:
    expected = {
        "enabled": False,
        "flush.delaySeconds": 1800,
        "sources.codex.enabled": True,
        "otlp.tools": {"codex_exec": "codex", "a.b": "ab"},
    }
    forms = [
        {
            "enabled": False,
            "flush": {"delaySeconds": 1800},
            "sources": {"codex": {"enabled": True}},
            "otlp": {"tools": {"codex_exec": "codex", "a.b": "ab"}},
        },
        {
            "enabled": False,
            "flush.delaySeconds": 1800,
            "sources.codex.enabled": True,
            "otlp.tools.codex_exec": "codex",
            "otlp.tools": {"a.b": "ab"},
        },
        {
            "dxTelemetry": {
                "enabled": False,
                "flush.delaySeconds": 1800,
                "sources.codex": {"enabled": True},
                "otlp.tools": {"codex_exec": "codex", "a.b": "ab"},
            }
        },
        {
            "dxTelemetry.enabled": False,
            "dxTelemetry.flush.delaySeconds": 1800,
            "dxTelemetry.sources": {"codex.enabled": True},
            "dxTelemetry.otlp.tools": {"codex_exec": "codex", "a.b": "ab"},
        },
    ]
    for i, form in enumerate(forms):
        config = managed(tmp_path, form, f"m{i}.json")
        assert values(config) == expected, form
        assert config.problems == [], form


def test_every_setting_of_the_section_can_be_managed() -> None:
    defaults = parse_settings({}, {}).settings.to_editor_dict()
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and prefix + key != "otlp.tools":
                walk(value, f"{prefix}{key}.")
            else:
                flat[prefix + key] = value

    walk(defaults, "")
    assert set(LEAVES) == {*flat, "python.interpreter"}
    found = entries_of(flat, "m")
    assert dict(found.entries) == flat and found.problems == []


def test_a_token_is_refused_by_any_name_and_never_quoted(tmp_path: Path) -> None:
    config = managed(
        tmp_path,
        {
            "token": SECRET,
            "apiToken": SECRET,
            "dxTelemetry": {"DX_DATA_CLOUD_TOKEN": SECRET},
            "flush": {"api_key": SECRET},
            "email": "dev@example.com",
        },
    )
    assert values(config) == {"email": "dev@example.com"}
    problems = "\n".join(config.problems)
    assert SECRET not in problems
    for key in ("token", "apiToken", "DX_DATA_CLOUD_TOKEN", "flush.api_key"):
        assert f'managed.json: "{key}" refused: the API token is never read' in problems, key
    assert len(config.problems) == 4


def test_unknown_keys_and_a_document_of_the_wrong_shape_are_named(tmp_path: Path) -> None:
    config = managed(tmp_path, {"flsh": {"delaySeconds": 5}, "flush": {"later": 1}, "sources": 3})
    assert values(config) == {}
    assert [p.split(": ", 1)[1] for p in config.problems] == [
        'unknown key "flsh" ignored',
        'unknown key "flush.later" ignored',
        'unknown key "sources" ignored',
    ]
    for document in ([1, 2], "text", 5, None):
        shaped = managed(tmp_path, document, "shape.json")
        assert len(shaped.problems) == 1 and "expected an object of settings" in shaped.problems[0]


def test_each_bad_value_is_named_with_its_file_and_key_and_the_rest_applies(tmp_path: Path) -> None:
    config = managed(
        tmp_path,
        {
            "enabled": "no",
            "dayBoundary": "tuesday",
            "flush": {"delaySeconds": -1, "backfillDays": 3},
            "retentionDays": 1.5,
            "email": None,
            "tool": ["a"],
            "otlp": {"port": 80, "tools": {"ok": "fine", "bad": 7}},
            "python.interpreter": 42,
        },
    )
    where = str(tmp_path / "managed.json")
    assert values(config) == {"flush.backfillDays": 3, "otlp.tools": {"ok": "fine"}}
    assert sorted(config.problems) == sorted(
        [
            f'{where}: enabled: expected true or false, got "no"',
            f'{where}: dayBoundary: expected "utc" or "local", got "tuesday"',
            f"{where}: flush.delaySeconds: expected an integer from 0 to 86400, got -1",
            f"{where}: retentionDays: expected an integer from 1 to 3650, got 1.5",
            f"{where}: email: null is no value (to leave it to users, remove it)",
            f"{where}: tool: expected a string of at most 100 characters, got ['a']",
            f"{where}: otlp.port: expected an integer from 1024 to 65535, got 80",
            f"{where}: otlp.tools.bad: expected a DX tool name of 1 to 100 characters, got 7",
            f"{where}: python.interpreter: expected a path to a Python, got 42",
        ]
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"enabled": false,', "is not valid JSON (Expecting property name enclosed"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
        (b" " * (1 << 20) + b"{}", "larger than 1 MiB"),
    ],
)
def test_an_unusable_file_is_named_and_ignored_whole(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "managed.json"
    path.write_bytes(content)
    config = ManagedSettings([JsonFile(path)]).current()
    assert config.values == {}
    assert len(config.problems) == 1
    assert config.problems[0].startswith(f"{path}: {why}"), config.problems
    assert config.problems[0].endswith("ignored, user settings apply")
    assert config.present == [str(path)]


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "managed.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"enabled": False}).encode())
    assert values(ManagedSettings([JsonFile(path)]).current()) == {"enabled": False}


def test_a_folder_in_its_place_is_named(tmp_path: Path) -> None:
    path = tmp_path / "managed.json"
    path.mkdir()
    config = ManagedSettings([JsonFile(path)]).current()
    assert config.values == {}
    assert len(config.problems) == 1
    assert config.problems[0].startswith(f"{path}: cannot be read (")
    assert config.problems[0].endswith("): ignored, user settings apply")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root reads any file: modes do not bind"
)
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "managed.json"
    path.write_text('{"enabled": false}')
    path.chmod(0)
    config = ManagedSettings([JsonFile(path)]).current()
    assert config.values == {}
    assert config.problems == [
        f"{path}: cannot be read (Permission denied): ignored, user settings apply"
    ]


# -- precedence --------------------------------------------------------------------------------


def test_managed_beats_user_settings_which_beat_env_fallbacks_and_defaults(tmp_path: Path) -> None:
    config = managed(
        tmp_path,
        {"email": "boss@example.com", "otlp.enabled": True, "flush": {"delaySeconds": 1800}},
    )
    env = {
        "DX_TELEMETRY_EMAIL": "env@example.com",
        "DX_TELEMETRY_TOOL": "env-tool",
        "DX_TELEMETRY_OTLP_ENABLED": "false",
    }
    user = {"email": "me@example.com", "flush": {"enabled": False, "delaySeconds": 5}}
    parsed = apply_managed({"dxTelemetry": user}, config, env)
    s = parsed.settings
    assert s.email == "boss@example.com"  # managed over user over env
    assert s.tool == "env-tool"  # nobody set it: the fallback
    assert s.otlp.enabled is True  # managed over the fallback
    assert (s.flush_enabled, s.flush_delay_seconds) == (False, 1800)
    assert s.backfill_days == 7  # the default
    assert parsed.problems == []
    assert parsed.managed["overrides"] == ["email", "flush.delaySeconds"]
    assert parsed.managed["values"]["email"] == {
        "value": "boss@example.com",
        "from": str(tmp_path / "managed.json"),
    }
    # the user's bad value for a managed key is no problem: it is not used
    bad_user = apply_managed({"flush": {"delaySeconds": "soon"}, "enabled": 5}, config, {})
    assert bad_user.settings.flush_delay_seconds == 1800
    assert bad_user.problems == ["dxTelemetry.enabled: expected true or false, got 5"]


def test_a_bad_managed_value_leaves_the_user_setting_in_effect(tmp_path: Path) -> None:
    config = managed(tmp_path, {"flush": {"delaySeconds": "soon"}, "enabled": False})
    parsed = apply_managed({"flush": {"delaySeconds": 5}}, config, {})
    assert (parsed.settings.flush_delay_seconds, parsed.settings.enabled) == (5, False)
    assert len(parsed.problems) == 1 and "flush.delaySeconds" in parsed.problems[0]
    # a section that is no object: named, and the managed values still apply
    shaped = apply_managed("nonsense", config, {})
    assert shaped.settings.enabled is False
    assert shaped.problems[0].startswith("dxTelemetry: expected an object of settings")


def test_without_any_source_nothing_changes_and_status_shows_nothing() -> None:
    config = ManagedSettings([JsonFile(Path("/nonexistent/managed.json"))]).current()
    assert (config.values, config.problems, config.present) == ({}, [], [])
    assert config.looked_in == ["/nonexistent/managed.json"]
    parsed = apply_managed({"enabled": False}, config, {})
    assert parsed == parse_settings({"enabled": False}, {})


def test_per_key_the_first_source_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"enabled": False, "flush.delaySeconds": "x"}))
    second.write_text(json.dumps({"enabled": True, "flush.delaySeconds": 60, "tool": "t"}))
    config = ManagedSettings([JsonFile(first), JsonFile(second)]).current()
    assert values(config) == {"enabled": False, "flush.delaySeconds": 60, "tool": "t"}
    assert dict(config.origins) == {
        "enabled": str(first),
        "flush.delaySeconds": str(second),
        "tool": str(second),
    }


# -- reading cheaply ---------------------------------------------------------------------------


class CountingFile(JsonFile):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.stats = 0

    def signature(self) -> Any:
        self.stats += 1
        return super().signature()

    def read(self) -> Found:
        self.reads += 1
        return super().read()


def test_sources_are_looked_at_every_few_seconds_and_read_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "managed.json"
    source = CountingFile(path)
    now = [100.0]
    reader = ManagedSettings([source], recheck_seconds=3.0, clock=lambda: now[0])
    assert reader.current().values == {} and source.reads == 0  # absent: nothing to read
    path.write_text('{"enabled": false}')
    assert reader.current().values == {} and source.stats == 1  # not looked at again yet
    now[0] += 3.0
    assert values(reader.current()) == {"enabled": False}
    assert (source.stats, source.reads, reader.version) == (2, 1, 2)
    for _ in range(5):
        now[0] += 3.0
        reader.current()
    assert (source.stats, source.reads, reader.version) == (7, 1, 2)  # unchanged: not read
    os.utime(path, ns=(0, 1_000_000_000))
    now[0] += 3.0
    assert values(reader.current()) == {"enabled": False}
    assert (source.reads, reader.version) == (2, 2)  # read again, the same: no new version
    path.write_text('{"enabled": true, "tool": "x"}')
    now[0] += 3.0
    assert values(reader.current()) == {"enabled": True, "tool": "x"}
    assert reader.version == 3
    path.unlink()
    now[0] += 3.0
    assert reader.current().values == {} and reader.version == 4


# -- macOS: managed preferences ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY])
def test_a_managed_preferences_plist(tmp_path: Path, fmt: plistlib.PlistFormat) -> None:
    path = tmp_path / "dx-telemetry.dx-lsp-telemetry.plist"
    document = {
        "PayloadUUID": "5E2E4E4C-0000-0000-0000-000000000000",
        "enabled": False,
        "flush": {"delaySeconds": 1800},
        "sources.codex.enabled": True,
        "otlp.tools": {"codex_exec": "codex"},
        "dayBoundary": "local",
        "retentionDays": 30.0,
        "apiToken": SECRET,
    }
    path.write_bytes(plistlib.dumps(document, fmt=fmt))
    config = ManagedSettings([Plist(path)]).current()
    assert values(config) == {
        "enabled": False,
        "flush.delaySeconds": 1800,
        "sources.codex.enabled": True,
        "otlp.tools": {"codex_exec": "codex"},
        "dayBoundary": "local",
    }
    assert len(config.problems) == 2
    assert f"{path}: retentionDays: expected an integer from 1 to 3650, got 30.0" in config.problems
    assert any('"apiToken" refused' in p for p in config.problems)
    assert SECRET not in "\n".join(config.problems)


def test_a_broken_plist_and_an_interpreter_outside_managed_json_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.plist"
    broken.write_bytes(plistlib.dumps({"enabled": False})[:-20])
    config = ManagedSettings([Plist(broken)]).current()
    assert config.values == {}
    assert len(config.problems) == 1 and "is not a property list" in config.problems[0]
    elsewhere = tmp_path / "interp.plist"
    elsewhere.write_bytes(plistlib.dumps({"python": {"interpreter": "/usr/bin/python3"}}))
    problems = ManagedSettings([Plist(elsewhere)]).current().problems
    assert problems == [
        f"{elsewhere}: python.interpreter is not used from here: the extension reads the "
        "interpreter before the sidecar starts, from the managed.json file only"
    ]


# -- Windows: the registry -----------------------------------------------------------------------


def test_registry_values_become_settings() -> None:
    found = registry_entries(
        [
            ("enabled", 0, REG_DWORD),
            ("modelBreakdowns", "true", REG_SZ),
            ("flush.delaySeconds", 1800, REG_DWORD),
            ("flush.backfillDays", " 3 ", REG_SZ),
            ("retentionDays", 30, REG_QWORD),
            ("sources.codex.path", "%USERPROFILE%\\.codex", REG_EXPAND_SZ),
            ("sources.codex.enabled", 1, REG_DWORD),
            ("otlp.tools", '{"codex_exec": "codex"}', REG_SZ),
            ("dxTelemetry.email", "dev@example.com", REG_SZ),
        ],
        "HKLM\\X",
        expand=lambda text: text.replace("%USERPROFILE%", "C:\\Users\\dev"),
    )
    assert dict(found.entries) == {
        "enabled": False,
        "modelBreakdowns": True,
        "flush.delaySeconds": 1800,
        "flush.backfillDays": 3,
        "retentionDays": 30,
        "sources.codex.path": "C:\\Users\\dev\\.codex",
        "sources.codex.enabled": True,
        "otlp.tools": {"codex_exec": "codex"},
        "email": "dev@example.com",
    }
    assert found.problems == []
    config = ManagedConfig.merge([found])
    assert values(config) == dict(found.entries) and config.problems == []


def test_registry_values_that_hold_no_setting_are_named() -> None:
    found = registry_entries(
        [
            ("enabled", 2, REG_DWORD),
            ("tool", 7, REG_DWORD),
            ("flush.enabled", b"\x01", REG_BINARY),
            ("otlp.tools", "{not json", REG_SZ),
            ("apiToken", SECRET, REG_SZ),
            ("nonsense", 1, REG_DWORD),
        ],
        "HKLM\\X",
    )
    config = ManagedConfig.merge([found])
    assert config.values == {}
    assert sorted(config.problems) == sorted(
        [
            'HKLM\\X: "flush.enabled": a REG_BINARY value holds no setting (use REG_DWORD for '
            "true/false and numbers, REG_SZ for text)",
            'HKLM\\X: "otlp.tools": expected a JSON object in the REG_SZ, got "{not json"',
            'HKLM\\X: "apiToken" refused: the API token is never read from the managed '
            "configuration (it comes from the editor's secret storage or DX_DATA_CLOUD_TOKEN); "
            "remove it from there",
            'HKLM\\X: unknown key "nonsense" ignored',
            "HKLM\\X: enabled: expected true or false, got 2",
            "HKLM\\X: tool: expected a string of at most 100 characters, got 7",
        ]
    )


@pytest.fixture
def test_key() -> Iterator[str]:
    """A scratch key under HKCU (Policies needs an administrator), removed afterwards."""
    import winreg  # type: ignore[import-not-found,unused-ignore]

    path = rf"Software\dx-lsp-telemetry-test-{os.getpid()}"
    w: Any = winreg
    with w.CreateKey(w.HKEY_CURRENT_USER, path) as key:
        w.SetValueEx(key, "enabled", 0, w.REG_DWORD, 0)
        w.SetValueEx(key, "flush.delaySeconds", 0, w.REG_DWORD, 1800)
        w.SetValueEx(key, "otlp.tools", 0, w.REG_SZ, '{"codex_exec": "codex"}')
    with w.CreateKey(w.HKEY_CURRENT_USER, path + r"\sources\codex") as key:
        w.SetValueEx(key, "enabled", 0, w.REG_DWORD, 1)
    yield path
    for sub in (r"\sources\codex", r"\sources", ""):
        w.DeleteKey(w.HKEY_CURRENT_USER, path + sub)


@pytest.mark.skipif(sys.platform != "win32", reason="winreg exists on Windows only")
def test_the_real_registry(test_key: str) -> None:
    source = RegistryKey("HKEY_CURRENT_USER", test_key)
    reader = ManagedSettings([source], recheck_seconds=0)
    assert values(reader.current()) == {
        "enabled": False,
        "flush.delaySeconds": 1800,
        "otlp.tools": {"codex_exec": "codex"},
        "sources.codex.enabled": True,
    }
    assert reader.current().problems == []


@pytest.mark.skipif(sys.platform != "win32", reason="winreg exists on Windows only")
def test_a_registry_key_that_does_not_exist_is_absent() -> None:
    source = RegistryKey("HKEY_CURRENT_USER", r"Software\no-such-key-dx-lsp-telemetry")
    assert source.signature() is None
    config = ManagedSettings([source]).current()
    assert (config.values, config.problems, config.present) == ({}, [], [])


# -- where each OS looks -------------------------------------------------------------------------


def test_where_each_os_looks_in_order_of_precedence() -> None:
    def origins(platform: str, env: dict[str, str]) -> list[str]:
        return [s.origin for s in machine_sources(env, platform)]

    policies = r"SOFTWARE\Policies\dx-telemetry\dx-lsp-telemetry"
    assert origins("win32", {"ProgramData": r"D:\PD"}) == [
        f"HKEY_LOCAL_MACHINE\\{policies}",
        f"HKEY_CURRENT_USER\\{policies}",
        str(Path(r"D:\PD") / "dx-lsp-telemetry" / "managed.json"),
    ]
    mac = origins("darwin", {})
    assert mac[0] == "/Library/Managed Preferences/dx-telemetry.dx-lsp-telemetry.plist"
    assert mac[-1] == "/Library/Application Support/dx-lsp-telemetry/managed.json"
    if len(mac) == 3:  # the user's own managed preferences, by account name
        assert mac[1].endswith("/dx-telemetry.dx-lsp-telemetry.plist")
    assert origins("linux", {}) == ["/etc/dx-lsp-telemetry/managed.json"]
    # the tests' file comes last: it can never undo what the machine's own sources set
    assert origins("linux", {"DX_TELEMETRY_MANAGED_FILE": "/tmp/m.json"}) == [
        "/etc/dx-lsp-telemetry/managed.json",
        "/tmp/m.json",
    ]
