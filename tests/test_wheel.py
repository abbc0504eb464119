"""The sidecar's wheel (`make wheel`), installed as a user outside VS Code installs it: into a fresh
venv of the oldest supported Python (3.9: the wheel is pure Python, and 3.9 is where it can break;
the bundle's tests cover the newest), by that venv's own pip, then `dx-lsp-telemetry --version`,
`demo`, `record` and `report` from the script pip made.

Offline: the dependencies are not fetched from PyPI but taken from the extension's bundle
(`bundled/libs`, the pins of requirements.txt) through a `.pth` file, without the bundle's own
`dx_lsp_telemetry`, and `pip check` proves the wheel's declared requirements are met by those
pins. `make test` builds both first; a wheel or bundle missing or older than the source is a
skip saying which (as is an interpreter that is not here).
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from dx_lsp_telemetry import __version__
from tests.test_bundled_pythons import LIBS, PYTHONS, Python

ROOT = Path(__file__).resolve().parent.parent
WHEEL = ROOT / "dist" / f"dx_lsp_telemetry-{__version__}-py3-none-any.whl"


def _source_files() -> dict[str, bytes]:
    package = ROOT / "dx_lsp_telemetry"
    return {
        p.relative_to(ROOT).as_posix(): p.read_bytes()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel() -> Path:
    if not WHEEL.is_file():
        pytest.skip(f"no wheel at {WHEEL}: run `make wheel` (make test does)")
    with zipfile.ZipFile(WHEEL) as z:
        packaged = {n: z.read(n) for n in z.namelist() if n.startswith("dx_lsp_telemetry/")}
        names = z.namelist()
    if packaged != _source_files():
        pytest.skip(f"the wheel ({WHEEL}) is older than the source: run `make wheel`")
    assert f"dx_lsp_telemetry-{__version__}.dist-info/licenses/LICENSE" in names
    return WHEEL


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle's third-party packages alone (links to them), for a `.pth` file."""
    if not (LIBS / ".installed").is_file():
        pytest.skip(f"the bundle is not built ({LIBS}): run `make ext-libs`")
    folder = tmp_path_factory.mktemp("dependencies")
    for entry in LIBS.iterdir():
        if not entry.name.startswith(("dx_lsp_telemetry", ".")):
            (folder / entry.name).symlink_to(entry)
    return folder


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DX_TELEMETRY_", "DX_DATA_CLOUD", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env["DX_TELEMETRY_HOME"] = str(home)
    return env


def _run(command: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env=_env(home),
        cwd=cwd,  # not the checkout: its dx_lsp_telemetry must not be the one imported
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("python", PYTHONS[:1])  # the oldest
def test_the_wheel_installs_and_runs(
    python: Python, wheel: Path, dependencies: Path, tmp_path: Path
) -> None:
    assert python.path is not None
    home = tmp_path / "home"
    venv = tmp_path / "venv"
    made = _run([python.path, "-m", "venv", str(venv)], home, tmp_path)
    assert made.returncode == 0, made.stderr
    py = str(venv / "bin" / "python")
    site = _run(
        [py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], home, tmp_path
    )
    (Path(site.stdout.strip()) / "bundle-dependencies.pth").write_text(f"{dependencies}\n")
    pip = [py, "-m", "pip", "--disable-pip-version-check"]
    installed = _run([*pip, "install", "--no-index", "--no-deps", str(wheel)], home, tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    checked = _run([*pip, "check"], home, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the wheel's package, not the bundle's nor the checkout's
    where = _run([py, "-c", "import dx_lsp_telemetry as p; print(p.__file__)"], home, tmp_path)
    assert where.stdout.startswith(site.stdout.strip()), where.stdout

    cli = str(venv / "bin" / "dx-lsp-telemetry")
    version = _run([cli, "--version"], home, tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"dx-lsp-telemetry {__version__}"
    demo = _run([cli, "demo"], home, tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert '"output_tokens": 2790' in demo.stdout
    event = ["--tool", "acme-ai", "--input-tokens", "1200", "--output-tokens", "300"]
    recorded = _run([cli, "record", *event, "--cost-usd", "0.01"], home, tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    report = _run([cli, "report", "--days", "1"], home, tmp_path)
    assert report.returncode == 0, report.stderr
    assert "acme-ai" in report.stdout and "1,500" in report.stdout and "$0.01" in report.stdout
