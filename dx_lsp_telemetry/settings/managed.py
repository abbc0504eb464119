"""The machine's managed configuration: `dxTelemetry` keys an administrator sets for every user of
a machine, winning over the editor's user settings and the `DX_TELEMETRY_*` fallbacks.

VS Code attaches policies only to settings its own distribution lists, so an extension cannot
declare its own; this reads the same kind of sources with the standard library instead
(`managed_sources.py`), so it works in every editor, every fork and the CLI. Per key, the first
source that sets it wins. A source that cannot be read, or a value that does not validate, is a
problem named in `status` and is otherwise ignored: the user's setting applies, as VS Code does
with a policy value it cannot parse. The API token is never read from here.

LSP-free, pure stdlib. Sources are stat-ed at most every few seconds and re-read only when they
changed, so asking for the current configuration is cheap enough to do once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dx_lsp_telemetry.settings.settings import (
    SECTION,
    ParsedSettings,
    Settings,
    lookup,
    parse_settings,
)
from dx_lsp_telemetry.util.shown import is_unicode, show

#: the one extension-side key: the extension reads it itself, before any sidecar runs
INTERPRETER = "python.interpreter"
#: seconds between two looks at the sources (all windows agree within this, plus a second)
RECHECK_SECONDS = 3.0


def _leaves() -> dict[str, type]:
    """Every settable key, dotted, with the type of its default. `otlp.tools` is one key (its
    own keys are service names, which may hold dots)."""
    leaves: dict[str, type] = {INTERPRETER: str}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = prefix + key
            if isinstance(value, Mapping) and dotted != "otlp.tools":
                walk(value, dotted + ".")
            else:
                leaves[dotted] = type(value)

    walk(Settings().to_editor_dict(), "")
    return leaves


LEAVES: dict[str, type] = _leaves()
_GROUPS = {key.rsplit(".", i)[0] for key in LEAVES for i in range(1, key.count(".") + 1)}


def is_secret_key(name: str) -> bool:
    """`token`, `apiToken`, `DX_DATA_CLOUD_TOKEN`, `api_key`...: refused, never read."""
    plain = name.lower().replace("_", "").replace("-", "")
    return plain.endswith("token") or plain in ("apikey", "secret", "password")


@dataclass(frozen=True)
class Found:
    """What one source holds: its entries (dotted key -> raw value), what was wrong with it."""

    origin: str
    present: bool = False
    entries: Mapping[str, Any] = field(default_factory=dict)
    problems: Sequence[str] = ()
    #: the extension reads the interpreter from managed.json files only
    is_file: bool = False


class Source(Protocol):
    origin: str

    def signature(self) -> Hashable:
        """Cheap; changes whenever the content may have changed; None while it is absent."""
        ...

    def read(self) -> Found: ...


def entries_of(document: Any, origin: str, *, skip: Callable[[str], bool] | None = None) -> Found:
    """A JSON object, plist dict or registry key's values as dotted entries. Nested and dotted
    keys mean the same, with or without the `dxTelemetry` section around them; an unknown key
    or a token is a problem naming the key (never the value)."""
    if not isinstance(document, Mapping):
        problem = f"{origin}: expected an object of settings, got {show(document, 80)}"
        return Found(origin, True, {}, [problem])
    entries: dict[str, Any] = {}
    problems: list[str] = []

    def walk(node: Mapping[Any, Any], parts: list[str]) -> None:
        for raw_key, value in node.items():
            key = str(raw_key)
            if skip is not None and not parts and skip(key):
                continue
            path = [*parts, *key.split(".")]
            if path[0] == SECTION:
                path = path[1:]
            dotted = ".".join(path)
            if any(is_secret_key(part) for part in path):
                problems.append(
                    f"{origin}: {_key(dotted or key)} refused: the API token is never read from "
                    "the managed configuration (it comes from the editor's secret storage or "
                    "DX_DATA_CLOUD_TOKEN); remove it from there"
                )
            elif not path and isinstance(value, Mapping):
                walk(value, [])  # the whole section under `dxTelemetry`
            elif not path:
                problems.append(f"{origin}: {SECTION}: expected an object, got {show(value, 80)}")
            elif dotted in LEAVES:
                _add(entries, dotted, value)
            elif dotted.startswith("otlp.tools."):
                _add(entries, "otlp.tools", {dotted[len("otlp.tools.") :]: value})
            elif dotted in _GROUPS and isinstance(value, Mapping):
                walk(value, path)
            else:
                problems.append(f"{origin}: unknown key {_key(dotted)} ignored")

    walk(document, [])
    return Found(origin, True, entries, problems)


def _add(entries: dict[str, Any], key: str, value: Any) -> None:
    if key == "otlp.tools" and isinstance(value, Mapping) and isinstance(entries.get(key), dict):
        entries[key].update(value)  # a nested map and dotted entries in one source
    else:
        entries[key] = dict(value) if key == "otlp.tools" and isinstance(value, Mapping) else value


def _key(key: str) -> str:
    return show(key, 80)


def validate(found: Found) -> tuple[dict[str, Any], list[str]]:
    """Each entry through the settings' own parser; a bad one is dropped with its problem."""
    valid: dict[str, Any] = {}
    problems = list(found.problems)
    prefix = f"{found.origin}: "
    for key, value in found.entries.items():
        if value is None:
            problems.append(f"{prefix}{key}: null is no value (to leave it to users, remove it)")
        elif key == INTERPRETER:
            if not found.is_file:
                problems.append(
                    f"{prefix}{key} is not used from here: the extension reads the interpreter "
                    "before the sidecar starts, from the managed.json file only"
                )
            elif not isinstance(value, str) or not value.strip() or len(value) > 2000:
                problems.append(
                    f"{prefix}{key}: expected a path to a Python, got {show(value, 80)}"
                )
            elif not is_unicode(value):
                problems.append(f"{prefix}{key}: expected Unicode text, got {show(value, 80)}")
            else:
                valid[key] = value.strip()
        else:
            parsed = parse_settings({key: value}, {}, prefix=prefix)
            problems += parsed.problems
            if key == "otlp.tools" and isinstance(value, Mapping):
                valid[key] = dict(parsed.settings.otlp.tools)  # the good entries apply
            elif not parsed.problems:
                valid[key] = value
    return valid, problems


@dataclass(frozen=True)
class ManagedConfig:
    #: dotted key -> its value, each from the first source that sets it validly
    values: Mapping[str, Any] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)
    problems: Sequence[str] = ()
    #: every source looked at, in order of precedence, and those that exist
    looked_in: Sequence[str] = ()
    present: Sequence[str] = ()

    @classmethod
    def merge(cls, founds: Iterable[Found]) -> ManagedConfig:
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        problems: list[str] = []
        looked: list[str] = []
        present: list[str] = []
        for found in founds:
            looked.append(found.origin)
            if found.present:
                present.append(found.origin)
            valid, bad = validate(found)
            problems += bad
            for key, value in valid.items():
                if key not in values:
                    values[key], origins[key] = value, found.origin
        return cls(values, origins, problems, looked, present)

    def status(self, overrides: Iterable[str] = ()) -> dict[str, Any]:
        """`config.managed` of the status: what is managed, from where, and which of the
        editor's values it overrides (keys only). Empty on a machine without any source."""
        if not self.present:
            return {}
        return {
            "lookedIn": list(self.looked_in),
            "found": list(self.present),
            "values": {
                k: {"value": v, "from": self.origins[k]} for k, v in sorted(self.values.items())
            },
            "overrides": sorted(overrides),
        }


class ManagedSettings:
    """The current managed configuration, re-read only when a source changed, and looked at
    no more than every `recheck_seconds`."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = list(sources)
        self._recheck = recheck_seconds
        self._clock = clock
        self._checked_at: float | None = None
        self._signatures: list[Hashable] = []
        self._found: list[Found] = []
        self._config = ManagedConfig()
        #: how many times the configuration changed (0: never read)
        self.version = 0

    def current(self) -> ManagedConfig:
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._recheck:
            return self._config
        self._checked_at = now
        signatures = [_signature(s) for s in self._sources]
        if signatures == self._signatures and self.version:
            return self._config
        found: list[Found] = []
        for i, source in enumerate(self._sources):
            unchanged = self.version and self._signatures[i] == signatures[i]
            found.append(self._found[i] if unchanged else _read(source, signatures[i]))
        self._signatures, self._found = signatures, found
        config = ManagedConfig.merge(found)
        if config != self._config or not self.version:
            self._config = config
            self.version += 1
        return self._config


def _signature(source: Source) -> Hashable:
    try:
        return source.signature()
    except Exception as exc:  # a source must never stop the sidecar
        return ("error", repr(exc))


def _read(source: Source, signature: Hashable) -> Found:
    if signature is None:
        return Found(source.origin)
    try:
        return source.read()
    except Exception as exc:
        return Found(source.origin, True, {}, [f"{source.origin}: cannot be read ({exc}): ignored"])


def apply_managed(
    raw: Any, config: ManagedConfig, env: Mapping[str, str] | None = None
) -> ParsedSettings:
    """The editor's section (`raw`, as `parse_settings` takes it) with the managed values on top:
    managed > user settings > `DX_TELEMETRY_*` fallbacks > defaults."""
    section = raw[SECTION] if isinstance(raw, Mapping) and SECTION in raw else raw
    shape: list[str] = []
    if section is not None and not isinstance(section, Mapping):
        shape = parse_settings(section, env).problems  # names the shape; nothing else in it
        section = None
    user: Mapping[str, Any] = section or {}
    # a dotted key is read before a nested one, so these win over the user's, however written
    parsed = parse_settings({**user, **config.values}, env)
    overrides = [
        key
        for key, value in config.values.items()
        if (mine := lookup(user, key)) is not None and mine != value
    ]
    return ParsedSettings(
        parsed.settings,
        shape + parsed.problems + list(config.problems),
        parsed.unknown,
        config.status(overrides),
    )
