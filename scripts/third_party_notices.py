"""Write the third-party notices of the .vsix: every package whose code or data it carries.

    python scripts/third_party_notices.py [--extension DIR] [--metafile PATH] [--libs DIR]
        [--output PATH] [--check-vsix VSIX]

`make vsix` runs it between esbuild and vsce, so the file always describes the bundle being
packaged. Nothing here is written by hand: each entry comes from the package's own metadata and
licence files, as installed for the build:

- the Python sidecar's dependencies, from the `*.dist-info` folders in `bundled/libs` (what
  `pip install --target` put there from requirements.txt): name, version, licence, licence files;
- the JavaScript that esbuild bundled into `dist/extension.js`, from esbuild's metafile (every
  input file it read; a package counts once any of its files is in the bundle) and each
  package's `package.json` and licence files. The production bundle drops licence comments
  (`legalComments: 'none'`), so this file is where those notices go;
- data vendored into the sidecar (`prices.json`, from genai-prices), from the notice
  `make prices` writes beside it.

A package without a licence file stops the build with its name: a notice cannot be made up.
`--check-vsix` then checks that the packaged .vsix holds exactly the file written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from email.message import Message
from importlib.metadata import PathDistribution
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "vscode-extension"
NOTICES = "THIRD_PARTY_NOTICES.md"
OWN = "dx-lsp-telemetry"
PRICES = Path("dx_lsp_telemetry") / "sources" / "prices.json"
LICENCE_FILE = re.compile(r"(licen[cs]e|copying|notice)([.-].*)?", re.IGNORECASE)
JS_PACKAGE_DIR = re.compile(r"^(.*node_modules/(?:@[^/]+/)?[^/]+)/")


class NoticeError(Exception):
    """Something the notices cannot be made from; the message names it."""


@dataclass(frozen=True)
class Notice:
    name: str
    version: str
    licence: str
    source: str
    shipped_as: str
    texts: list[tuple[str, str]] = field(default_factory=list)  # (file name, its text)


def normalized(name: str) -> str:
    """PEP 503's form of a Python distribution name (`typing_extensions` is `typing-extensions`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- Python: the sidecar's bundle ------------------------------------------------------------


def _python_licence(meta: Message) -> str:
    expression = meta.get("License-Expression")
    if expression:
        return str(expression)
    free_text = str(meta.get("License") or "").strip()
    if free_text and "\n" not in free_text and len(free_text) <= 60:
        return free_text
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return ", ".join(c.split(" :: ")[-1] for c in classifiers)
    return "see the licence text"


def _python_source(meta: Message) -> str:
    urls = dict(
        u.split(", ", 1) for u in meta.get_all("Project-URL") or [] if ", " in u
    )  # "Source, https://..."
    for label in ("Source", "Source code", "Repository", "GitHub", "Homepage"):
        if urls.get(label):
            return urls[label]
    return str(meta.get("Home-page") or f"https://pypi.org/project/{meta['Name']}/")


def _licence_files(folder: Path) -> list[Path]:
    """A dist-info's `licenses/` (PEP 639) and its top-level LICENSE, COPYING, NOTICE files (older
    wheels; `License-File` headers are not always written: httpx 0.28.1 has none)."""
    found = [f for f in sorted((folder / "licenses").rglob("*")) if f.is_file()]
    found += [f for f in sorted(folder.iterdir()) if f.is_file() and LICENCE_FILE.fullmatch(f.name)]
    return found


def _read_all(files: list[Path]) -> list[tuple[str, str]]:
    return [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files]


def python_notices(libs: Path) -> list[Notice]:
    if not libs.is_dir():
        raise NoticeError(f"no Python bundle at {libs}: run `make ext-libs`")
    notices = []
    for info in sorted(libs.glob("*.dist-info")):
        meta: Message = PathDistribution(info).metadata  # type: ignore[assignment]
        if normalized(meta["Name"]) == OWN:
            continue
        texts = _read_all(_licence_files(info))
        if not texts:
            raise NoticeError(f"{meta['Name']} {meta['Version']} ({info}) ships no licence file")
        notices.append(
            Notice(
                meta["Name"],
                meta["Version"],
                _python_licence(meta),
                _python_source(meta),
                "bundled/libs (the Python sidecar's dependencies)",
                texts,
            )
        )
    if not notices:
        raise NoticeError(f"{libs} holds no *.dist-info: run `make ext-libs`")
    return notices


# -- JavaScript: what esbuild put into dist/extension.js -------------------------------------


def bundled_js_packages(metafile: Path, base: Path) -> list[Path]:
    """The folders of the npm packages that have at least one file in the bundle."""
    try:
        inputs = json.loads(metafile.read_text(encoding="utf-8"))["inputs"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NoticeError(f"cannot read esbuild's metafile {metafile}: {e}") from e
    found = {m.group(1) for path in inputs if (m := JS_PACKAGE_DIR.match(path.replace("\\", "/")))}
    return sorted((base / p).resolve() for p in found)


def _js_source(package: dict[str, object], name: str) -> str:
    repository = package.get("repository")
    if isinstance(repository, dict):
        repository = repository.get("url")
    if isinstance(repository, str) and repository:
        url = re.sub(r"^git\+|\.git$", "", repository)
        url = re.sub(r"^git://", "https://", url)
        return re.sub(r"^github:", "https://github.com/", url)
    homepage = package.get("homepage")
    return homepage if isinstance(homepage, str) else f"https://www.npmjs.com/package/{name}"


def js_notices(metafile: Path, base: Path) -> list[Notice]:
    notices = []
    for folder in bundled_js_packages(metafile, base):
        try:
            package = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise NoticeError(f"cannot read {folder / 'package.json'}: {e}") from e
        name, version = str(package.get("name")), str(package.get("version"))
        texts = _read_all(
            [f for f in sorted(folder.iterdir()) if f.is_file() and LICENCE_FILE.fullmatch(f.name)]
        )
        if not texts:
            raise NoticeError(f"{name} {version} ({folder}) ships no licence file")
        notices.append(
            Notice(
                name,
                version,
                str(package.get("license") or "see the licence text"),
                _js_source(package, name),
                "dist/extension.js (bundled by esbuild)",
                texts,
            )
        )
    if not notices:
        raise NoticeError(f"{metafile} names no npm package: is it esbuild's metafile?")
    return notices


# -- Data vendored into the sidecar ----------------------------------------------------------


def data_notices(libs: Path) -> list[Notice]:
    prices = libs / PRICES
    licence = prices.with_suffix(".LICENSE")
    try:
        version = str(json.loads(prices.read_text(encoding="utf-8"))["genai_prices"])
        text = licence.read_text(encoding="utf-8")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NoticeError(f"cannot read the price data's origin ({prices}, {licence}): {e}") from e
    # its first line, as scripts/export_prices.py writes it: "... genai-prices V (URL), under ..."
    origin = re.search(r"genai-prices (\S+) \((\S+)\), under its licence, (\S+):", text)
    if not origin or origin.group(1) != version:
        raise NoticeError(f"{licence} does not describe genai-prices {version}: run `make prices`")
    return [
        Notice(
            "genai-prices (price data)",
            version,
            origin.group(3),
            origin.group(2),
            f"bundled/libs/{PRICES.as_posix()} (converted by scripts/export_prices.py)",
            [(licence.name, text)],
        )
    ]


# -- The file --------------------------------------------------------------------------------


def _fenced(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.strip()}\n{fence}"


def render(own_version: str, notices: list[Notice]) -> str:
    lines = [
        "# Third-party notices",
        "",
        f"The DX Telemetry extension and its sidecar, dx-lsp-telemetry {own_version}, are under",
        "the MIT licence (LICENSE). The .vsix also carries the third-party software below, each",
        "under its own licence, reproduced here as the package ships it. This file is written by",
        "scripts/third_party_notices.py from the packages' own metadata when the .vsix is built.",
        "",
        "| package | version | licence | in the .vsix as |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n.name} | {n.version} | {n.licence} | {n.shipped_as} |" for n in notices]
    for n in notices:
        lines += ["", f"## {n.name} {n.version}", "", f"{n.licence}; {n.source}"]
        for file_name, text in n.texts:
            lines += ["", f"{file_name}:", "", _fenced(text)]
    return "\n".join(lines) + "\n"


def check_vsix(vsix: Path, expected: str) -> None:
    member = f"extension/{NOTICES}"
    try:
        with zipfile.ZipFile(vsix) as z:
            packaged = z.read(member).decode("utf-8")
    except KeyError:
        raise NoticeError(f"{vsix} has no {member}: is it in .vscodeignore's list?") from None
    except (OSError, zipfile.BadZipFile) as e:
        raise NoticeError(f"cannot read {vsix}: {e}") from e
    if packaged != expected:
        raise NoticeError(f"{vsix}'s {member} is not the one just written: package it again")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--extension", type=Path, default=EXTENSION, help="the extension folder")
    parser.add_argument(
        "--metafile", type=Path, help="esbuild's (default: <extension>/dist/meta.json)"
    )
    parser.add_argument(
        "--libs", type=Path, help="the Python bundle (default: <extension>/bundled/libs)"
    )
    parser.add_argument("--output", type=Path, help=f"default: <extension>/{NOTICES}")
    parser.add_argument("--check-vsix", type=Path, help="check that this .vsix holds the file")
    args = parser.parse_args(argv)
    extension: Path = args.extension
    libs = args.libs or extension / "bundled" / "libs"
    output = args.output or extension / NOTICES
    try:
        if args.check_vsix:
            check_vsix(args.check_vsix, output.read_text(encoding="utf-8"))
            print(f"{args.check_vsix} holds {output.name}", file=sys.stderr)
            return 0
        own = json.loads((extension / "package.json").read_text(encoding="utf-8"))["version"]
        notices = (
            python_notices(libs)
            + js_notices(args.metafile or extension / "dist" / "meta.json", extension)
            + data_notices(libs)
        )
    except (NoticeError, OSError, ValueError, KeyError) as e:
        print(f"third_party_notices: {e}", file=sys.stderr)
        return 1
    output.write_text(render(str(own), notices), encoding="utf-8")
    print(f"wrote {output}: {len(notices)} packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
