"""`dxTelemetry.otlp.*`: defaults, a clear problem naming each bad value (the rest applies), the
`DX_TELEMETRY_OTLP_*` fallbacks where the editor sends nothing; and the Host check."""

from __future__ import annotations

import pytest

from dx_lsp_telemetry.otlp.receiver import is_loopback_host_header
from dx_lsp_telemetry.settings.settings import OtlpSettings, parse_settings


def test_the_defaults_are_off_on_4319_with_the_services_own_names() -> None:
    parsed = parse_settings({}, {})
    assert parsed.settings.otlp == OtlpSettings(False, 4319, {})
    assert parsed.settings.otlp.tool_for("gemini-cli") == "gemini-cli"
    assert parsed.problems == []
    assert parsed.settings.to_editor_dict()["otlp"] == {"enabled": False, "port": 4319, "tools": {}}


def test_bad_values_are_named_and_the_rest_applies() -> None:
    parsed = parse_settings(
        {
            "otlp": {
                "enabled": True,
                "port": 80,
                "tools": {
                    "codex_exec": "codex",
                    "claude-code": 7,
                    "gemini-cli": " ",
                    "x" * 300: "y",
                },
            }
        },
        {},
    )
    otlp = parsed.settings.otlp
    assert (otlp.enabled, otlp.port, dict(otlp.tools)) == (True, 4319, {"codex_exec": "codex"})
    assert otlp.tool_for("codex_exec") == "codex"
    problems = "\n".join(parsed.problems)
    assert "dxTelemetry.otlp.port: expected an integer from 1024 to 65535, got 80" in problems
    assert "dxTelemetry.otlp.tools.claude-code: expected a DX tool name" in problems
    assert "dxTelemetry.otlp.tools.gemini-cli: expected a DX tool name" in problems
    assert "dxTelemetry.otlp.tools.xxx" in problems and "x" * 100 not in problems
    assert len(parsed.problems) == 4
    for raw in ({"otlp": 5}, {"otlp": {"tools": ["claude-code"]}}, {"otlp": {"enabled": "yes"}}):
        bad = parse_settings(raw, {})
        assert bad.settings.otlp == OtlpSettings()
        assert len(bad.problems) == 1 and "dxTelemetry.otlp" in bad.problems[0]


def test_the_env_fallbacks_apply_only_where_no_setting_is_sent() -> None:
    env = {"DX_TELEMETRY_OTLP_ENABLED": "true", "DX_TELEMETRY_OTLP_PORT": "14319"}
    assert parse_settings({}, env).settings.otlp == OtlpSettings(True, 14319, {})
    sent = parse_settings({"otlp": {"enabled": False, "port": 5000}}, env).settings.otlp
    assert (sent.enabled, sent.port) == (False, 5000)
    bad = parse_settings({}, {"DX_TELEMETRY_OTLP_ENABLED": "on", "DX_TELEMETRY_OTLP_PORT": "99"})
    assert bad.settings.otlp == OtlpSettings()
    assert [p.split(":")[0] for p in bad.problems] == [
        "DX_TELEMETRY_OTLP_ENABLED",
        "DX_TELEMETRY_OTLP_PORT",
    ]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:4319", True),
        ("localhost", True),
        ("LocalHost:80", True),
        ("[::1]", True),
        ("[::1]:4319", True),
        ("127.0.0.2", False),  # loopback, but no name a tool is told to use
        ("localhost.", False),
        ("localhost.attacker.example", False),
        ("attacker.example", False),
        ("127.0.0.1:80:80", False),
        ("[::1]x", False),
        ("[::1]:port", False),
        ("", False),
        ("0.0.0.0", False),
    ],
)
def test_the_host_header_check(host: str, loopback: bool) -> None:
    assert is_loopback_host_header(host) is loopback
