"""Where a machine's managed configuration comes from, per OS (`managed.py` merges them).

In order of precedence, as GitHub Copilot orders its own (the OS's device management first: a
local file is the easiest to change):
- Windows: the registry key `SOFTWARE\\Policies\\dx-telemetry\\dx-lsp-telemetry` in HKLM, then
  in HKCU (both writable by administrators only), then
  `%ProgramData%\\dx-lsp-telemetry\\managed.json`.
  The key lies outside `SOFTWARE\\Policies\\Microsoft`, where cloud-only Intune cannot write.
- macOS: the managed preferences of the domain `dx-telemetry.dx-lsp-telemetry` (the extension's
  id) that a configuration profile installs in `/Library/Managed Preferences` (the machine's,
  then the user's), then `/Library/Application Support/dx-lsp-telemetry/managed.json`.
- Linux and others: `/etc/dx-lsp-telemetry/managed.json`.
- Anywhere: `DX_TELEMETRY_MANAGED_FILE`, for tests: one more JSON file, read last, so it can add
  keys but never undo one the machine's own sources set.
"""

from __future__ import annotations

import importlib
import json
import os
import plistlib
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

from dx_lsp_telemetry.settings.managed import LEAVES, Found, Source, entries_of
from dx_lsp_telemetry.util.shown import show

APP = "dx-lsp-telemetry"
#: the macOS preferences domain and the Windows key's vendor/product: the extension's id
DOMAIN = "dx-telemetry.dx-lsp-telemetry"
REGISTRY_KEY = r"SOFTWARE\Policies\dx-telemetry\dx-lsp-telemetry"
TEST_FILE_ENV = "DX_TELEMETRY_MANAGED_FILE"
#: larger is not a configuration: read no further
MAX_BYTES = 1 << 20

# winreg's value types (the numbers are Windows'; winreg exists only there)
REG_NONE, REG_SZ, REG_EXPAND_SZ, REG_BINARY = 0, 1, 2, 3
REG_DWORD, REG_MULTI_SZ, REG_QWORD = 4, 7, 11
_REG_NAMES = {REG_NONE: "REG_NONE", REG_BINARY: "REG_BINARY", REG_MULTI_SZ: "REG_MULTI_SZ"}


class _File:
    """A file of settings, read whole when its stat changes."""

    #: the extension reads the interpreter from managed.json files only
    is_file = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.origin = str(path)

    def signature(self) -> Hashable:
        return _stat_signature(self.path)

    def read(self) -> Found:
        data, problem = _read_bytes(self.path)
        found = self._bad(problem) if problem else self._decode(data)
        return replace(found, is_file=self.is_file)

    def _decode(self, data: bytes) -> Found:
        raise NotImplementedError

    def _bad(self, why: str) -> Found:
        return Found(self.origin, True, {}, [f"{self.origin}: {why}: ignored, user settings apply"])


class JsonFile(_File):
    """A JSON object of settings (`managed.json`)."""

    is_file = True

    def _decode(self, data: bytes) -> Found:
        try:
            document = json.loads(data.decode("utf-8-sig"))  # Notepad writes a BOM
        except UnicodeDecodeError:
            return self._bad("is not UTF-8 text")
        except (ValueError, RecursionError) as exc:
            return self._bad(f"is not valid JSON ({exc})")
        return entries_of(document, self.origin)


class Plist(_File):
    """A managed preferences plist (XML or binary) of `DOMAIN`."""

    def _decode(self, data: bytes) -> Found:
        try:
            document = plistlib.loads(data)
        except (plistlib.InvalidFileException, ExpatError, ValueError, OverflowError) as exc:
            return self._bad(f"is not a property list ({exc or type(exc).__name__})")
        # a profile's own bookkeeping (PayloadUUID, ...) may sit beside the settings
        return entries_of(document, self.origin, skip=lambda key: key.startswith("Payload"))


def _stat_signature(path: Path) -> Hashable:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # e.g. a folder the user may not enter: read() names it
        return ("error", exc.errno)
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def _read_bytes(path: Path) -> tuple[bytes, str | None]:
    """The file's bytes, or why there are none."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        return b"", f"cannot be read ({exc.strerror or exc})"
    if len(data) > MAX_BYTES:
        return b"", f"larger than {MAX_BYTES >> 20} MiB"
    return data, None


# -- the Windows registry ---------------------------------------------------------------------


def registry_entries(
    values: Iterable[tuple[str, Any, int]],
    origin: str,
    expand: Callable[[str], str] = lambda text: text,
) -> Found:
    """A registry key's values (name, data, type) as entries. A name is a dotted key
    (`flush.delaySeconds`; a subkey `flush` with a value `delaySeconds` is the same). Group
    Policy and ADMX write booleans and numbers as REG_DWORD and text as REG_SZ; "true",
    "false" and digits in a REG_SZ are read too, and `otlp.tools` is a REG_SZ holding a JSON
    object. Pure, so it is tested where winreg does not exist."""
    document: dict[str, Any] = {}
    problems: list[str] = []
    for name, data, kind in values:
        if kind not in (REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD):
            type_name = _REG_NAMES.get(kind, f"type {kind}")
            problems.append(
                f"{origin}: {show(name, 80)}: a {type_name} value holds no setting "
                "(use REG_DWORD for true/false and numbers, REG_SZ for text)"
            )
            continue
        if kind == REG_EXPAND_SZ and isinstance(data, str):
            data = expand(data)
        try:
            document[name] = _registry_value(name, data)
        except ValueError as exc:
            problems.append(f"{origin}: {show(name, 80)}: {exc}")
    found = entries_of(document, origin)
    return Found(origin, True, found.entries, problems + list(found.problems))


def _registry_value(name: str, data: Any) -> Any:
    key = name[len("dxTelemetry.") :] if name.startswith("dxTelemetry.") else name
    kind = LEAVES.get(key)
    if kind is bool:
        if isinstance(data, int) and data in (0, 1):
            return bool(data)
        if isinstance(data, str) and data.strip().lower() in ("true", "false", "1", "0"):
            return data.strip().lower() in ("true", "1")
    elif kind is int and isinstance(data, str) and data.strip().isdigit():
        return int(data.strip())
    elif kind is dict and isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ValueError(f"expected a JSON object in the REG_SZ, got {show(data, 80)}") from exc
    return data  # the settings' parser names a type that does not fit


class RegistryKey:
    """`REGISTRY_KEY` in one hive, with its subkeys (two levels: `sources\\codex`)."""

    def __init__(self, hive_name: str, path: str = REGISTRY_KEY) -> None:
        self.hive_name = hive_name
        self.path = path
        self.origin = f"{hive_name}\\{path}"

    def _open(self, path: str) -> Any:
        winreg = _winreg()
        hive = getattr(winreg, self.hive_name)
        return winreg.OpenKey(hive, path, 0, winreg.KEY_READ)

    def _collect(
        self,
        path: str,
        prefix: str,
        depth: int,
        keys: list[tuple[str, int]],
        values: list[tuple[str, Any, int]],
    ) -> None:
        """Each key's last write time into `keys`, each value (dotted name, data, type) into
        `values`, `depth` levels of subkeys down."""
        winreg = _winreg()
        with self._open(path) as key:
            subkeys, count, written = winreg.QueryInfoKey(key)
            keys.append((path, written))
            for i in range(count):
                name, data, kind = winreg.EnumValue(key, i)
                values.append((prefix + name, data, kind))
            names = [winreg.EnumKey(key, i) for i in range(subkeys)] if depth else []
        for sub in names:
            try:
                self._collect(f"{path}\\{sub}", f"{prefix}{sub}.", depth - 1, keys, values)
            except FileNotFoundError:
                continue  # deleted meanwhile: the next signature differs

    def signature(self) -> Hashable:
        keys: list[tuple[str, int]] = []
        try:
            self._collect(self.path, "", 2, keys, [])
        except FileNotFoundError:
            return None
        return tuple(keys)

    def read(self) -> Found:
        winreg = _winreg()
        values: list[tuple[str, Any, int]] = []
        try:
            self._collect(self.path, "", 2, [], values)
        except FileNotFoundError:
            return Found(self.origin)
        except OSError as exc:
            return Found(self.origin, True, {}, [f"{self.origin}: cannot be read ({exc}): ignored"])
        return registry_entries(values, self.origin, winreg.ExpandEnvironmentStrings)


def _winreg() -> Any:
    """winreg exists on Windows only (untyped here, so this type-checks everywhere)."""
    return importlib.import_module("winreg")


# -- per OS -----------------------------------------------------------------------------------


def machine_sources(
    env: Mapping[str, str] | None = None, platform: str = sys.platform
) -> list[Source]:
    """This machine's sources, in order of precedence."""
    env = os.environ if env is None else env
    sources: list[Source] = []
    if platform == "win32":
        program_data = env.get("ProgramData") or env.get("PROGRAMDATA") or r"C:\ProgramData"
        sources += [RegistryKey("HKEY_LOCAL_MACHINE"), RegistryKey("HKEY_CURRENT_USER")]
        sources.append(JsonFile(Path(program_data) / APP / "managed.json"))
    elif platform == "darwin":
        managed = Path("/Library/Managed Preferences")
        sources.append(Plist(managed / f"{DOMAIN}.plist"))
        user = _user_name()
        if user:
            sources.append(Plist(managed / user / f"{DOMAIN}.plist"))
        sources.append(JsonFile(Path("/Library/Application Support") / APP / "managed.json"))
    else:
        sources.append(JsonFile(Path("/etc") / APP / "managed.json"))
    test_file = env.get(TEST_FILE_ENV, "").strip()
    if test_file:
        sources.append(JsonFile(Path(test_file)))
    return sources


def _user_name() -> str:
    """The account's own name (not $USER, which anyone can set)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return ""
