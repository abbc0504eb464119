"""The package's shape stays what the README draws: no import circles among its modules or its
packages, no module over MAX_LINES, and the README's module table names every module.

Imports are read from the source (ast), wherever they are: at the top, inside a function (a
lazy import is still a dependency), under `TYPE_CHECKING`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dx_lsp_telemetry"
NAME = PACKAGE.name
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that `name` imports (`from pkg import module` counts the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            wanted.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            wanted.add(target)
            wanted.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in wanted if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_graph_is_read() -> None:
    # a parser that found nothing would pass every test below
    assert f"{NAME}.ledger.ledger" in GRAPH[f"{NAME}.ledger.recorder"]
    assert f"{NAME}.lsp.stdio" in GRAPH[f"{NAME}.lsp.server"]  # `from pkg import module`
    assert f"{NAME}.sources.parallel" in GRAPH[f"{NAME}.sources.ingest"]  # inside a function


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_modules() -> None:
    assert _cycles(GRAPH) == []


def test_no_import_circle_among_packages() -> None:
    packages: dict[str, set[str]] = {_package_of(m): set() for m in MODULES}
    for module, targets in GRAPH.items():
        for target in targets:
            # every module may name the root package (`__version__`); it imports nothing back
            if target != NAME and _package_of(target) != _package_of(module):
                packages[_package_of(module)].add(_package_of(target))
    assert _cycles(packages) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_too_long(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by concern"


def test_the_readme_table_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("| package | modules | what they hold |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named: set[str] = set()
    for row in rows:
        package_cell, modules_cell = row.split("|")[1:3]
        package = package_cell.strip().strip("`").strip("/")
        prefix = NAME if package == NAME else f"{NAME}.{package.replace('/', '.')}"
        named.update(f"{prefix}.{m}" for m in re.findall(r"`([a-z_0-9]+)`", modules_cell))
    expected = {m for m, p in MODULES.items() if p.name != "__init__.py"}
    assert sorted(expected - named) == [], "modules missing from the README's module table"
    assert sorted(named - expected) == [], "the README's module table names modules that are gone"
