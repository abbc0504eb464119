"""Install the pinned real tools (`tests/real/tools.py`) that are missing:
`python -m tests.real.install [NAME ...]`. npm packages go to
`.cache/real-tools/<name>-<version>/` (npm's own cache in `.cache/npm`), Aider into a venv of
its own there (pip's cache in `.cache/pip`). A folder is keyed by version, so a new pin
installs beside the old one; a complete install (its `.installed` stamp) is not touched."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from tests.real.tools import REPO, TOOLS, Tool

CACHE = REPO / ".cache"


def install(cls: type[Tool]) -> float:
    target = cls.install_dir()
    shutil.rmtree(target, ignore_errors=True)  # an install cut short starts over
    started = time.monotonic()
    if cls.package == "aider-chat":
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
        pip = [str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        spec = f"{cls.package}=={cls.version}"
        subprocess.run([*pip, "install", "-q", "--cache-dir", str(CACHE / "pip"), spec], check=True)
    else:
        npm = ["npm", "install", "--prefix", str(target), "--cache", str(CACHE / "npm")]
        quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run([*npm, *quiet, f"{cls.package}@{cls.version}"], check=True)
    if not cls.exe().is_file():
        sys.exit(f"{cls.name} {cls.version} installed, but there is no {cls.exe()}")
    cls.stamp().touch()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(TOOLS))
    names = parser.parse_args().names or list(TOOLS)
    unknown = sorted(set(names) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tools: {', '.join(unknown)} (known: {', '.join(TOOLS)})")
    for name in names:
        cls = TOOLS[name]
        if cls.installed():
            print(f"{name} {cls.version}: installed")
            continue
        seconds = install(cls)
        print(f"{name} {cls.version}: installed in {seconds:.1f} s")


if __name__ == "__main__":
    main()
