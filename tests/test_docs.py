"""No comment or docstring sends a reader to a document that is not in the project (the README's
module table is held to the package by tests/test_architecture.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: files the build writes, named in the code that writes or checks them
GENERATED = {"THIRD_PARTY_NOTICES.md"}
SKIPPED_FOLDERS = {
    ".git",
    "node_modules",
    ".cache",
    ".venv",
    "dist",
    "out",
    "bundled",
    "__pycache__",
}


def project_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        if SKIPPED_FOLDERS.isdisjoint(path.relative_to(ROOT).parts) and path.is_file():
            found.append(path)
    return found


def is_document(folders: str, name: str) -> bool:
    """A document a reader is sent to (an upper-case name, or one in a `docs`, `reference` or
    `shared` folder), not a file a test writes."""
    shouty = re.fullmatch(r"[A-Z][A-Z0-9_-]*\.md", name) is not None
    return shouty or not {"docs", "reference", "shared"}.isdisjoint(folders.split("/"))


def test_no_comment_cites_a_document_outside_the_project() -> None:
    files = project_files()
    names = {p.name for p in files} | GENERATED
    cited: dict[str, list[str]] = {}
    for path in files:
        if path.suffix not in (".py", ".ts", ".mjs", ".mk") and path.name != "Makefile":
            continue
        for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for folders, name in re.findall(r"((?:[\w.-]+/)*)([\w.-]+\.md)\b", line):
                if is_document(folders, name) and name not in names:
                    cited.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{line_no}")
    assert not cited, f"cited, but not in the project (say it in the README instead): {cited}"
