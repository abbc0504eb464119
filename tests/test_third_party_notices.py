"""The licence and the third-party notices the .vsix carries (`scripts/third_party_notices.py`).

The notices are checked against two sources the script does not read: requirements.txt (what
the Python bundle must hold) and package-lock.json (the extension's run-time npm packages), on
a real esbuild bundle made for the test. Needs the built bundle (`make ext-libs`) and the
extension's node_modules (`make ext-deps`); without them that test is a skip saying which.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "vscode-extension"
LIBS = EXT / "bundled" / "libs"
SCRIPT = ROOT / "scripts" / "third_party_notices.py"
HEADING = re.compile(r"^## (.+) (\S+)$", re.MULTILINE)


def notices(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_one_mit_licence_everywhere() -> None:
    root, extension = ROOT / "LICENSE", EXT / "LICENSE"
    assert root.read_text() == extension.read_text(), "LICENSE and vscode-extension/LICENSE differ"
    assert root.read_text().startswith("MIT License\n")
    assert re.search(r'^license = "MIT"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert json.loads((EXT / "package.json").read_text())["license"] == "MIT"
    assert "!THIRD_PARTY_NOTICES.md" in (EXT / ".vscodeignore").read_text().splitlines()


def required_pythons() -> set[tuple[str, str]]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (EXT / "requirements.txt").read_text(), re.M)
    return {(normalized(name), version) for name, version in pins}


def locked_npm_runtime() -> set[tuple[str, str]]:
    """The packages npm installs for the extension at run time (not its dev tools)."""
    lock = json.loads((EXT / "package-lock.json").read_text())
    return {
        (path.rsplit("node_modules/", 1)[1], entry["version"])
        for path, entry in lock["packages"].items()
        if path and not entry.get("dev")
    }


def test_the_notices_name_every_bundled_package(tmp_path: Path) -> None:
    if not (LIBS / ".installed").is_file():
        pytest.skip(f"the Python bundle is not built ({LIBS}): run `make ext-libs`")
    if not (LIBS / "dx_lsp_telemetry" / "sources" / "prices.LICENSE").is_file():
        pytest.skip(f"the bundle ({LIBS}) is older than the source: run `make ext-libs`")
    node = shutil.which("node")
    if node is None or not (EXT / "node_modules" / "esbuild").is_dir():
        pytest.skip("no node, or no extension node_modules: run `make ext-deps`")
    bundle = tmp_path / "dist"
    built = subprocess.run(
        [node, "esbuild.mjs", "--production", f"--outdir={bundle}"],
        cwd=EXT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    output = tmp_path / "THIRD_PARTY_NOTICES.md"
    done = notices("--metafile", str(bundle / "meta.json"), "--output", str(output))
    assert done.returncode == 0, done.stderr
    text = output.read_text()

    sections = dict(HEADING.findall(text))
    named = {(normalized(name), version) for name, version in sections.items()}
    python = required_pythons()
    npm = {(normalized(name), version) for name, version in locked_npm_runtime()}
    assert python <= named, f"missing from the notices: {sorted(python - named)}"
    assert npm <= named, f"missing from the notices: {sorted(npm - named)}"
    prices = json.loads((ROOT / "dx_lsp_telemetry/sources/prices.json").read_text())
    data = {("genai-prices (price data)", prices["genai_prices"])}
    bundled = python | npm | data
    assert named == bundled, f"named, not bundled: {sorted(named - bundled)}"
    assert {"smol-toml", "vscode-languageclient", "pygls", "watchdog"} <= set(sections)

    # each package's own licence text follows its heading
    for body in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading = body.splitlines()[0]
        fenced = re.findall(r"^(`{3,})text\n(.*?)\n\1$", body, re.MULTILINE | re.DOTALL)
        assert fenced and all(len(t) > 100 for _, t in fenced), heading
    smol_toml = text.split("\n## smol-toml ", 1)[1].split("\n## ", 1)[0]
    assert "Redistribution and use in source and binary forms" in smol_toml  # BSD-3-Clause


def fake_libs(tmp_path: Path, *, licence: bool) -> Path:
    """A bundle of one distribution, as pip writes it, with or without its licence file."""
    libs = tmp_path / "libs"
    info = libs / "acme_lib-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: acme-lib\nVersion: 1.2.3\nLicense-Expression: MIT\n"
        "License-File: LICENSE\n\nA library.\n"
    )
    if licence:
        (info / "licenses").mkdir()
        (info / "licenses" / "LICENSE").write_text("Copyright (c) Acme\n" + "x" * 200)
    return libs


def test_a_package_without_a_licence_file_stops_the_build_naming_it(tmp_path: Path) -> None:
    done = notices("--libs", str(fake_libs(tmp_path, licence=False)), "--output", "/dev/null")
    assert done.returncode == 1
    assert "acme-lib 1.2.3" in done.stderr and "ships no licence file" in done.stderr


def test_a_metafile_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    metafile = tmp_path / "meta.json"
    metafile.write_text("not json")
    libs = fake_libs(tmp_path, licence=True)
    done = notices("--libs", str(libs), "--metafile", str(metafile), "--output", "/dev/null")
    assert done.returncode == 1
    assert f"cannot read esbuild's metafile {metafile}" in done.stderr


def test_check_vsix_refuses_a_package_without_the_notices_or_with_others(tmp_path: Path) -> None:
    written = tmp_path / "THIRD_PARTY_NOTICES.md"
    written.write_text("# Third-party notices\n")
    vsix = tmp_path / "x.vsix"
    with zipfile.ZipFile(vsix, "w") as z:
        z.writestr("extension/package.json", "{}")
    done = notices("--output", str(written), "--check-vsix", str(vsix))
    assert done.returncode == 1 and "has no extension/THIRD_PARTY_NOTICES.md" in done.stderr
    with zipfile.ZipFile(vsix, "w") as z:
        z.writestr("extension/THIRD_PARTY_NOTICES.md", "# older\n")
    done = notices("--output", str(written), "--check-vsix", str(vsix))
    assert done.returncode == 1 and "is not the one just written" in done.stderr
    with zipfile.ZipFile(vsix, "w") as z:
        z.writestr("extension/THIRD_PARTY_NOTICES.md", written.read_text())
    assert notices("--output", str(written), "--check-vsix", str(vsix)).returncode == 0
