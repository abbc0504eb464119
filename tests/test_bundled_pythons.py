"""The bundled sidecar (the .vsix's `bundled/libs`, no venv) on the oldest supported Python (3.9,
macOS's `/usr/bin/python3`) and on the newest Python on this machine: every module imports from
the bundle alone, `demo`, `scan` of a real Aider log and an LSP session over stdio, each started
as the extension starts it (`python -m dx_lsp_telemetry`, PYTHONPATH and cwd the bundle).

`make test` builds the bundle first (`make ext-libs`). Interpreters are pyenv's
(`~/.pyenv/versions/3.N.M`) or `python3.N` on the PATH. One that is not here, or a bundle that
is missing or older than the source, is a skip that says which and why (`-ra` lists them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import BASE_SETTINGS, sidecar_env, start_sidecar, stop_sidecar
from tests.test_source_aider import write_recent_log

ROOT = Path(__file__).resolve().parent.parent
LIBS = ROOT / "vscode-extension" / "bundled" / "libs"
OLDEST = (3, 9)
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
VERSION_CODE = "import sys; print(*sys.version_info[:3])"
Version = tuple[int, int, int]


@dataclass(frozen=True)
class Python:
    role: str  # "oldest" or "newest"
    path: str | None
    version: Version | None
    missing: str = ""  # why `path` is None


def _runs_as(command: str) -> Version | None:
    """The version `command` reports when run, or None (pyenv's shims exist but fail)."""
    try:
        done = subprocess.run(
            [command, "-I", "-c", VERSION_CODE], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def _candidates() -> list[tuple[Version, str]]:
    """(claimed version, command), newest first: pyenv's releases, then python3.N on the PATH."""
    found: list[tuple[Version, str]] = []
    if PYENV_VERSIONS.is_dir():
        for entry in PYENV_VERSIONS.iterdir():
            m = re.fullmatch(r"3\.(\d+)\.(\d+)", entry.name)  # releases only, no 3.14.0a1
            exe = entry / "bin" / f"python3.{m.group(1)}" if m else None
            if m and exe and exe.is_file():
                found.append(((3, int(m.group(1)), int(m.group(2))), str(exe)))
    for minor in range(OLDEST[1], 30):
        on_path = shutil.which(f"python3.{minor}")
        if on_path:
            found.append(((3, minor, -1), on_path))  # -1: after pyenv's of the same minor
    return sorted(found, reverse=True)


def _first_running(role: str, candidates: list[tuple[Version, str]], wanted: str) -> Python:
    for claimed, command in candidates:
        version = _runs_as(command)
        if version and version[:2] == claimed[:2]:
            return Python(role, command, version)
    looked = f"looked for {PYENV_VERSIONS}/3.N.M/bin/python3.N and python3.N on the PATH"
    return Python(role, None, None, f"no {wanted} runs on this machine ({looked})")


def find_pythons() -> list[Python]:
    candidates = _candidates()
    oldest = [c for c in candidates if c[0][:2] == OLDEST]
    newer = [c for c in candidates if c[0][:2] > OLDEST]
    return [
        _first_running("oldest", oldest, "Python 3.9"),
        _first_running("newest", newer, "Python newer than 3.9"),
    ]


def _param(python: Python) -> object:
    if python.path is None:
        reason = f"the bundled sidecar is NOT tried on the {python.role} Python: {python.missing}"
        return pytest.param(python, id=f"{python.role}-missing", marks=pytest.mark.skip(reason))
    return pytest.param(python, id=f"{python.role}-{'.'.join(map(str, python.version or ()))}")


PYTHONS = [_param(p) for p in find_pythons()]


def _files(package: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(package)): p.read_bytes()
        for p in package.rglob("*")
        if p.suffix in (".py", ".json") and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def libs() -> Path:
    """The built bundle, if it holds this checkout's sidecar."""
    if not (LIBS / ".installed").is_file():
        pytest.skip(f"the bundle is not built ({LIBS}): run `make ext-libs` (make test does)")
    if _files(LIBS / "dx_lsp_telemetry") != _files(ROOT / "dx_lsp_telemetry"):
        pytest.skip(f"the bundle ({LIBS}) is older than the source: run `make ext-libs`")
    return LIBS


@pytest.fixture(scope="module")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bytecode of every test's runs, per interpreter (the file names carry its tag): the bundle
    stays as built, and only the first run of each interpreter compiles it."""
    return tmp_path_factory.mktemp("pycache")


def bundle_env(home: Path, pycache: Path) -> dict[str, str]:
    """The extension's environment for the sidecar (launch.ts): the bundle on PYTHONPATH (and
    nothing else of ours: this checkout's own PYTHONPATH would shadow it), PYTHONUTF8."""
    env = sidecar_env(home)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(LIBS)
    env["PYTHONUTF8"] = "1"
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run(python: Python, home: Path, pycache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert python.path is not None
    return subprocess.run(
        [python.path, *args],
        cwd=LIBS,
        env=bundle_env(home, pycache),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


IMPORT_ALL = """
import importlib, json, pkgutil, sys
import dx_lsp_telemetry
for info in pkgutil.walk_packages(dx_lsp_telemetry.__path__, "dx_lsp_telemetry."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
files = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}
print(json.dumps({"version": list(sys.version_info[:3]), "files": files}))
"""


@pytest.mark.parametrize("python", PYTHONS)
def test_every_module_imports_from_the_bundle_alone(
    python: Python, libs: Path, home: Path, pycache: Path
) -> None:
    done = run(python, home, pycache, "-S", "-c", IMPORT_ALL)  # -S: no site-packages at all
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert tuple(found["version"]) == python.version
    files: dict[str, str | None] = found["files"]
    ours = {n for n in files if n.split(".")[0] == "dx_lsp_telemetry"}
    assert len(ours) > 50, sorted(ours)
    outside = {
        name: file
        for name, file in files.items()
        if file
        and ("site-packages" in file or "dist-packages" in file or name in ours)
        and not Path(file).resolve().is_relative_to(libs.resolve())
    }
    assert not outside, f"imported from outside the bundle: {outside}"
    for package in ("pygls", "lsprotocol", "cattrs", "httpx", "watchdog", "filelock"):
        assert str(files.get(package)).startswith(str(libs)), (package, files.get(package))


@pytest.mark.parametrize("python", PYTHONS)
def test_demo(python: Python, libs: Path, home: Path, pycache: Path) -> None:
    done = run(python, home, pycache, "-m", "dx_lsp_telemetry", "demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recordUsage demo-2" in done.stdout and "(duplicate: replaces" in done.stdout
    assert '"tool": "demo-assistant"' in done.stdout  # the outbox record, printed
    assert '"output_tokens": 2790' in done.stdout


@pytest.mark.parametrize("python", PYTHONS)
def test_scan_of_a_real_aider_log(
    python: Python, libs: Path, home: Path, pycache: Path, tmp_path: Path
) -> None:
    log = tmp_path / "aider-analytics.jsonl"
    write_recent_log(log)
    scan = ["scan", "--source", "aider", "--path", str(log)]
    done = run(python, home, pycache, "-m", "dx_lsp_telemetry", *scan)
    assert done.returncode == 0, done.stderr
    assert "aider: 1 file, 2 records read" in done.stdout
    report = run(python, home, pycache, "-m", "dx_lsp_telemetry", "report", "--json")
    assert report.returncode == 0, report.stderr
    totals = [d["totals"] for d in json.loads(report.stdout)["days"] if d["tool"] == "aider"]
    assert sum(t["input_tokens"] for t in totals) == 2402
    assert sum(t["output_tokens"] for t in totals) == 101


@pytest.mark.parametrize("python", PYTHONS)
async def test_lsp_session(python: Python, libs: Path, home: Path, pycache: Path) -> None:
    assert python.path is not None
    client = await start_sidecar(
        home, BASE_SETTINGS, env=bundle_env(home, pycache), python=python.path, cwd=libs
    )
    try:
        answer = await client.record(event_id="py-1", input_tokens=120, output_tokens=34)
        assert answer["recorded"] and not answer["duplicate"], answer
        again = await client.record(event_id="py-1", input_tokens=120, output_tokens=40)
        assert again["duplicate"], again
        status = await client.status()
        assert status["config"]["ok"], status["config"]
        totals = status["today"]["tools"]["acme-ai"]
        assert (totals["events"], totals["input_tokens"], totals["output_tokens"]) == (1, 120, 40)
    finally:
        await stop_sidecar(client)  # shutdown, exit; a kill only if it would not stop
    assert client.process.returncode == 0, "\n".join(client.stderr_lines)
