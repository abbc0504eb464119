"""Produce the committed captures of one real tool: `python -m tests.real.capture TOOL`.

Runs the tool for two prompts (the second resuming the first session where the tool can)
against the fake model API, with its OTLP exporter (http/json) pointed at a capture server,
then replaces `tests/real/captures/<TOOL>/` with what came out: `otlp/NNNN-<signal>.json` (the
bodies as received), `files/` (the tool's own logs, per `Tool.kept`), `fake-api.jsonl` (what
the fake answered, usage included) and `run.json` (version, commands, exit codes, timings).
With `--subagent` (Claude Code), the first prompt has the tool run a subagent (the fake's
`SUBAGENT_PROMPT`), into `tests/real/captures/<TOOL>-subagent/`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from tests.real.fake_model_api import FakeModelApi
from tests.real.otlp_capture import OtlpCapture
from tests.real.protocols.anthropic import SUBAGENT_PROMPT
from tests.real.tools import REPO, TOOLS, Tool

CAPTURES = REPO / "tests" / "real" / "captures"
PROMPTS = ("Say hello.", "Say goodbye.")
#: every capture is made in this sandbox, so the paths inside the files are the same each time
SANDBOX = Path("/tmp/dx-real-capture")


def wait_for_quiet(capture: OtlpCapture, quiet: float = 3.0, deadline: float = 30.0) -> None:
    """Until no export has arrived for `quiet` seconds (the exporters flush on exit, or on
    their 1 s interval), or `deadline` passes."""
    end = time.monotonic() + deadline
    seen, since = len(capture.exports), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        if len(capture.exports) != seen:
            seen, since = len(capture.exports), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def capture(name: str, *, subagent: bool = False) -> Path:
    cls = TOOLS[name]
    if not cls.installed():
        sys.exit(f"{name} {cls.version} is not installed at {cls.exe()}: run `make real-tools`")
    folder = f"{name}-subagent" if subagent else name
    prompts = (SUBAGENT_PROMPT, *PROMPTS[1:]) if subagent else PROMPTS
    root = SANDBOX / folder
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with FakeModelApi(log=root / "fake-api.jsonl") as api, OtlpCapture(root / "otlp") as otlp:
        tool: Tool = cls(root, api.url, otlp.url)
        tool.setup()
        for text in prompts:
            tool.prompt(text)
        wait_for_quiet(otlp)
    out = CAPTURES / folder
    shutil.rmtree(out, ignore_errors=True)
    (out / "files").mkdir(parents=True)
    shutil.copytree(root / "otlp", out / "otlp")
    shutil.copy2(root / "fake-api.jsonl", out / "fake-api.jsonl")
    for pattern in cls.kept:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                target = out / "files" / path.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    run = {
        "tool": name,
        "package": cls.package,
        "version": cls.version,
        "sandbox": str(root),
        "prompts": [
            {
                "args": [
                    a.replace(str(cls.install_dir()), f"<{name}-{cls.version}>") for a in p.args
                ],
                "returncode": p.returncode,
                "seconds": round(p.seconds, 2),
            }
            for p in tool.prompts_run
        ],
        "model_calls": len(api.calls),
        "otlp_exports": [f"{e.signal} {e.content_type} {e.user_agent}" for e in otlp.exports],
    }
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("--subagent", action="store_true", help="the first prompt runs a subagent")
    args = parser.parse_args()
    out = capture(args.tool, subagent=args.subagent)
    print(f"captured into {out.relative_to(REPO)}:")
    for path in sorted(out.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(out)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
