"""The settings the editor last gave a sidecar, kept in the data folder (`settings.json`), so the
CLI pushes as the editor does and reads every day's state for the same destination.

The file holds the editor's own section (its `DX_TELEMETRY_*` fallbacks applied, from the
editor's environment) and the destination the sidecar used (the managed configuration applied
too):

    {"dxTelemetry": {...}, "destination": {"instanceUrl": "...", "email": "..."}}

A push state belongs to (destination, email, date, tool), so a reader that worked out the
destination from its own environment could call a pushed day `pending`. The CLI reads the
destination from this file; its own `DX_TELEMETRY_EMAIL` and `DX_TELEMETRY_INSTANCE_URL` count
only in a data folder where no editor has saved settings. The managed configuration it reads
itself still wins, as it does in every window.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from dx_lsp_telemetry.managed import ManagedConfig, apply_managed
from dx_lsp_telemetry.paths import DataPaths
from dx_lsp_telemetry.private import create_private_text, private_dir
from dx_lsp_telemetry.settings import DESTINATION_ENV, SECTION, ParsedSettings, Settings

#: the keys of the destination, as the settings name them
DESTINATION_KEYS = ("instanceUrl", "email")


def save_editor_settings(paths: DataPaths, section: Settings, effective: Settings) -> None:
    """Replace the file whole (another process never reads half of it); raises OSError."""
    body = {
        SECTION: section.to_editor_dict(),
        "destination": {"instanceUrl": effective.instance_url, "email": effective.email},
    }
    private_dir(paths.home)
    tmp = paths.config_file.with_name(f".settings.{os.getpid()}.tmp")
    with create_private_text(tmp) as f:
        f.write(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, paths.config_file)


def read_editor_settings(
    paths: DataPaths,
    managed: ManagedConfig,
    env: Mapping[str, str],
    warn: Callable[[str], None],
) -> ParsedSettings:
    """The settings a reader outside the editor (the CLI) works with: the managed
    configuration, then the editor's saved settings and destination, then, only where no
    editor saved any, the reader's own `DX_TELEMETRY_*` fallbacks."""
    raw: Any = None
    try:
        raw = json.loads(paths.config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        warn(f"ignoring unreadable {paths.config_file}: {exc}")
    if raw is None:  # no editor ever ran here: the reader's environment names the destination
        return apply_managed(None, managed, env)
    # the editor's fallbacks are in the file already; the reader's must not move its days
    parsed = apply_managed(raw, managed, {k: v for k, v in env.items() if k not in DESTINATION_ENV})
    saved = _destination(raw, warn, paths)
    if saved is None:  # a file of an earlier version: its section names the destination
        return parsed
    kept = {key: value for key, value in saved.items() if key not in managed.values}
    settings = replace(
        parsed.settings,
        instance_url=kept.get("instanceUrl", parsed.settings.instance_url),
        email=kept.get("email", parsed.settings.email),
    )
    return replace(parsed, settings=settings)


def _destination(raw: Any, warn: Callable[[str], None], paths: DataPaths) -> dict[str, str] | None:
    if not (isinstance(raw, Mapping) and SECTION in raw and "destination" in raw):
        return None
    saved = raw["destination"]
    if not (
        isinstance(saved, Mapping)
        and all(isinstance(saved.get(key), str) for key in DESTINATION_KEYS)
    ):
        warn(f"{paths.config_file}: ignoring a malformed destination: {saved!r:.80}")
        return None
    return {key: saved[key].strip() for key in DESTINATION_KEYS}
