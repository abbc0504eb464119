"""The README's Neovim setup, run as written, in a real headless Neovim.

The README's two Lua blocks are taken from README.md itself: the first becomes
`<config>/nvim/plugin/dx-telemetry.lua` of a fresh config folder (where the README says it goes),
the second is run as a plugin would run it. `dx-lsp-telemetry` on Neovim's PATH is this
checkout's sidecar. A Claude Code transcript in the test's HOME checks that the source the
settings enable is read. A small driver (below) waits on conditions, each with a deadline, and
writes what it saw to a JSON file this test checks.

Both branches of the setup run: the 0.11 one (`vim.lsp.config`, `vim.lsp.enable`,
`client:request`), and the 0.10 one (`vim.lsp.start(config)`, `client.request`) on the same
Neovim with `has('nvim-0.11')` made false (or natively, on a Neovim 0.10). `make nvim` installs
Neovim 0.11.4 (the `NVIM` variable names it); without a Neovim >= 0.10 the test is a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.harness import sidecar_env
from tests.source_logs import claude_assistant, claude_usage, write_lines

ROOT = Path(__file__).resolve().parent.parent
SETUP_FIRST_LINE = "-- ~/.config/nvim/plugin/dx-telemetry.lua"
PLUGIN_FIRST_LINE = "-- in your own plugin"
#: a Claude Code call in the test's HOME, for the enabled `claudeCode` source
CLAUDE = {
    "input_tokens": 100,
    "output_tokens": 50,
    "cache_write_tokens": 0,
    "cache_read_tokens": 900,
}

DRIVER = r"""
local result = { notes = {} }
vim.notify = function(msg) table.insert(result.notes, msg) end
local function client() return vim.lsp.get_clients({ name = 'dx_telemetry' })[1] end
local function status()
  local c, answer = client(), nil
  if not c then return nil end
  c:request('dxTelemetry/status', nil, function(err, s) answer = { err = err, status = s } end)
  vim.wait(10000, function() return answer ~= nil end, 20)
  return answer and answer.status
end
local function finish()
  local f = assert(io.open(os.getenv('DX_NVIM_RESULT'), 'w'))
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd('qall!')
end
result.started = vim.wait(30000, function()
  local c = client()
  return c ~= nil and c.initialized == true
end, 20)
if not result.started then return finish() end
result.before = status()
dofile(os.getenv('DX_NVIM_PLUGIN'))
result.counted = vim.wait(30000, function()
  local s = status()
  local tools = s and s.today.tools or {}
  local outbox = s ~= nil and s.config.destination == 'outbox'
  return outbox and tools['acme-ai'] ~= nil and tools['claude-code'] ~= nil
end, 100)
result.after = status()
vim.cmd('DxTelemetryStatus')
vim.wait(10000, function() return #result.notes > 0 end, 20)
result.status_changed = vim.wait(5000, function() return vim.g.dx_telemetry_status ~= nil end, 20)
result.clients = #vim.lsp.get_clients()
result.buffers_attached = #vim.lsp.get_buffers_by_client_id(client().id)
finish()
"""

#: run before any config: the 0.10 branch of the setup on a Neovim 0.11
AS_010 = (
    "lua local has = vim.fn.has; "
    "vim.fn.has = function(f) if f == 'nvim-0.11' then return 0 end return has(f) end"
)


def lua_block(first_line: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks: list[str] = re.findall(r"^```lua\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"README.md has {len(found)} Lua blocks starting {first_line!r}"
    return found[0]


def neovim() -> tuple[str | None, tuple[int, int], str]:
    """(path, version, why not) of the Neovim to use: $NVIM (`make nvim`), else `nvim`."""
    command = os.environ.get("NVIM") or shutil.which("nvim")
    if not command or not Path(command).is_file():
        found = f"NVIM={os.environ.get('NVIM')!r}, none on the PATH"
        return None, (0, 0), f"no Neovim ({found}): run `make nvim` (make test does)"
    try:
        first = subprocess.run(
            [command, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired) as e:
        return None, (0, 0), f"{command} --version failed: {e}"
    m = re.match(r"NVIM v(\d+)\.(\d+)", first)
    version = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if version < (0, 10):
        return None, version, f"{command} is {first!r}: the setup needs 0.10 (`make nvim`)"
    return command, version, ""


NVIM, NVIM_VERSION, NO_NVIM = neovim()


def _branches() -> list[object]:
    params: list[object] = []
    for branch in ("0.11", "0.10"):
        reason = NO_NVIM
        if not reason and branch == "0.11" and NVIM_VERSION < (0, 11):
            reason = f"Neovim {NVIM_VERSION} runs only the 0.10 branch"
        marks = [pytest.mark.skip(reason)] if reason else []
        params.append(pytest.param(branch, id=f"branch-{branch}", marks=marks))
    return params


def sidecar_gone(pid: int) -> bool:
    """Exited (a zombie no init has reaped yet counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("branch", _branches())
def test_the_readme_neovim_setup(branch: str, tmp_path: Path) -> None:
    assert NVIM is not None
    home, config, data = tmp_path / "home", tmp_path / "config", tmp_path / "xdg-data"
    (config / "nvim" / "plugin").mkdir(parents=True)
    (config / "nvim" / "plugin" / "dx-telemetry.lua").write_text(lua_block(SETUP_FIRST_LINE))
    plugin = lua_block(PLUGIN_FIRST_LINE)
    if branch == "0.10":  # as the README says to write it for 0.10
        plugin = plugin.replace("client:request(", "client.request(")
        plugin = plugin.replace("client:notify(", "client.notify(")
    (tmp_path / "plugin.lua").write_text(plugin)
    (tmp_path / "driver.lua").write_text(DRIVER)

    bin_dir, pids = tmp_path / "bin", tmp_path / "sidecar-pids"
    bin_dir.mkdir()
    launcher = bin_dir / "dx-lsp-telemetry"  # this checkout's sidecar, as the wheel's command
    launcher.write_text(
        f'#!/bin/sh\necho $$ >> "{pids}"\n'
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m dx_lsp_telemetry "$@"\n'
    )
    launcher.chmod(0o755)

    at = datetime.now(timezone.utc) - timedelta(minutes=1)
    usage = claude_usage(100, 50, 0, 900)
    line = claude_assistant(at, "s-neovim", "msg_nvim_1", "req_nvim_1", usage)
    write_lines(home / ".claude" / "projects" / "-home-dev-proj" / "s-neovim.jsonl", [line])
    (home / "notes.md").write_text("# notes\n")
    (home / "tool.py").write_text("print('hi')\n")

    env = {
        k: v
        for k, v in sidecar_env(tmp_path / "dx-home", token=None).items()
        if not k.startswith(("XDG_", "NVIM", "VIM", "MYVIMRC", "CLAUDE_", "CODEX_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(config),
        XDG_DATA_HOME=str(data),
        XDG_STATE_HOME=str(tmp_path / "xdg-state"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        DX_NVIM_RESULT=str(tmp_path / "result.json"),
        DX_NVIM_PLUGIN=str(tmp_path / "plugin.lua"),
    )
    before_config = ["--cmd", AS_010] if branch == "0.10" and NVIM_VERSION >= (0, 11) else []
    command = [NVIM, "--headless", *before_config, "-c", f"luafile {tmp_path / 'driver.lua'}"]
    done = subprocess.run(
        [*command, "-O", str(home / "notes.md"), str(home / "tool.py")],  # both open, side by side
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["started"], result

    before = result["before"]
    assert before["config"]["destination"] == "dx", before["config"]  # instanceUrl applied
    problems = " ".join(before["config"]["problems"])
    assert "DX_DATA_CLOUD_TOKEN" in problems and "email" not in problems, problems

    assert result["counted"], result
    after = result["after"]
    assert after["config"]["destination"] == "outbox"  # the settings change, applied at once
    acme = after["today"]["tools"]["acme-ai"]
    assert (acme["events"], acme["input_tokens"], acme["output_tokens"]) == (1, 1200, 300)
    assert acme["spend_cents"] == 1.0
    claude = after["today"]["tools"]["claude-code"]
    assert {k: claude[k] for k in CLAUDE} == CLAUDE and claude["events"] == 1

    assert "  acme-ai: 1500 tokens, $0.01" in result["notes"][0], result["notes"]
    assert "  claude-code: 1050 tokens" in result["notes"][0], result["notes"]
    assert result["status_changed"] is True
    assert result["clients"] == 1  # one sidecar, whatever the buffers
    if branch == "0.11":  # vim.lsp.enable attached the files opened to that one client
        assert result["buffers_attached"] == 2, result

    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 1, started
    deadline = time.monotonic() + 5
    while not sidecar_gone(started[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sidecar_gone(started[0]), "the sidecar outlived Neovim"
