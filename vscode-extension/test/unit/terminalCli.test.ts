// The terminal launchers: their text (quoting, what they pass on, what they never hold), and the
// sh launcher run for real by /bin/sh with the machine's Python, from folders whose names hold
// spaces, quotes and `$`, against a stand-in bundled package that reports what it was given.

import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LauncherSpec, cmdLauncher, cmdQuoted, launcherFiles, shLauncher, shQuote } from '../../src/cliLauncher';
import type { LaunchProblem } from '../../src/launch';
import { FoundPython, probePython } from '../../src/python';
import { COLLECTION_DESCRIPTION, PathCollection, TerminalCli, terminalsAway } from '../../src/terminalCli';
import { recordingLogger } from './helpers';

const TOKEN = 'dx-secret-token-0123456789';

class FakeCollection implements PathCollection {
  persistent = false;
  description: string | { value: string } | undefined;
  readonly vars = new Map<string, string>();
  prepend(variable: string, value: string): void {
    this.vars.set(variable, value);
  }
  clear(): void {
    this.vars.clear();
  }
}

function spec(over: Partial<LauncherSpec> = {}): LauncherSpec {
  return {
    python: '/usr/bin/python3',
    pythonArgs: [],
    libs: '/ext/bundled/libs',
    binDir: '/gs/bin',
    delimiter: ':',
    join: path.posix.join,
    extensionVersion: '0.1.0',
    ...over,
  };
}

describe('terminal launcher text', () => {
  it('quotes any path as one sh word', () => {
    assert.strictEqual(shQuote(`/a b/it's "x" $HOME`), `'/a b/it'\\''s "x" $HOME'`);
    for (const value of ['plain', 'a b', "it's", '"q"', '$HOME `id` \\n', "''", '']) {
      const r = spawnSync('/bin/sh', ['-c', `printf %s ${shQuote(value)}`], { encoding: 'utf8' });
      assert.strictEqual(r.stdout, value, `sh read ${shQuote(value)} back`);
    }
  });

  it('sh: runs the runner with "$@", the libs first on PYTHONPATH, PYTHONUTF8, the editor data folder only where the shell has none', () => {
    const text = shLauncher(spec({ dataHome: "/data/it's" }));
    assert.ok(text.startsWith('#!/bin/sh\n'));
    assert.ok(text.includes(`PYTHONPATH="$libs\${PYTHONPATH:+:$PYTHONPATH}"`), text);
    assert.ok(text.includes('PYTHONUTF8=1'));
    assert.ok(text.includes(`if [ -z "\${DX_TELEMETRY_HOME:-}" ]; then DX_TELEMETRY_HOME='/data/it'\\''s'; export DX_TELEMETRY_HOME; fi`), text);
    assert.ok(text.trimEnd().endsWith(`exec "$python" '/gs/bin/dx-lsp-telemetry-run.py' "$@"`), text);
    assert.ok(!shLauncher(spec()).includes('DX_TELEMETRY_HOME='), 'no data folder line when the editor has none');
    assert.ok(!text.includes('DX_DATA_CLOUD_TOKEN='), 'the token is never set');
  });

  it('sh: a command found by name (py -3) keeps its arguments and is not tested with -x', () => {
    const text = shLauncher(spec({ python: 'py', pythonArgs: ['-3'] }));
    assert.ok(text.includes(`exec "$python" '-3' '/gs/bin/dx-lsp-telemetry-run.py' "$@"`), text);
    assert.ok(!text.includes('[ ! -x'), text);
  });

  it('cmd: %% for %, quoted paths, %*, no delayed expansion, CRLF; a double quote is refused', () => {
    const win = spec({
      python: 'C:\\Program Files (x86)\\100% py\\python.exe',
      libs: 'C:\\Users\\a&b!\\ext\\bundled\\libs',
      binDir: 'C:\\Users\\a&b!\\gs\\bin',
      dataHome: 'D:\\dx home',
      delimiter: ';',
      join: path.win32.join,
    });
    const text = cmdLauncher(win);
    const lines = text.split('\r\n');
    assert.strictEqual(lines[0], '@echo off');
    assert.ok(!/[^\r]\n/.test(text), 'CRLF line ends only');
    assert.ok(lines.includes('setlocal DisableDelayedExpansion'));
    assert.ok(lines.includes('set "DXT_PYTHON=C:\\Program Files (x86)\\100%% py\\python.exe"'), text);
    assert.ok(lines.includes('set "DXT_LIBS=C:\\Users\\a&b!\\ext\\bundled\\libs"'), text);
    assert.ok(lines.includes('if defined PYTHONPATH set "PYTHONPATH=%DXT_LIBS%;%PYTHONPATH%"'), text);
    assert.ok(lines.includes('if not defined PYTHONPATH set "PYTHONPATH=%DXT_LIBS%"'), text);
    assert.ok(lines.includes('set "PYTHONUTF8=1"'));
    assert.ok(lines.includes('if not defined DX_TELEMETRY_HOME set "DX_TELEMETRY_HOME=D:\\dx home"'), text);
    assert.ok(lines.includes('"%DXT_PYTHON%" "C:\\Users\\a&b!\\gs\\bin\\dx-lsp-telemetry-run.py" %*'), text);
    assert.ok(lines.includes('exit /b %ERRORLEVEL%'));
    const gone = lines.find((l) => l.startsWith('>&2 echo') && l.includes('%DXT_LIBS%')) ?? '';
    assert.ok(gone.includes(' ^(updated or uninstalled^). ') && gone.includes('wheel ^(README, The command line^).'), `echo escapes what cmd acts on: ${gone}`);
    assert.throws(() => cmdQuoted('C:\\a"b'), /cannot be written in a \.cmd file/);
    assert.throws(() => cmdLauncher(spec({ python: 'C:\\x\r\ny' })), /line break/);
  });

  it('writes the .cmd only for Windows, where the sh launcher (Git Bash) uses its separator', () => {
    assert.deepStrictEqual(
      launcherFiles(spec(), 'linux').map((f) => [f.name, f.mode]),
      [
        ['dx-lsp-telemetry', 0o755],
        ['dx-lsp-telemetry-run.py', 0o644],
      ],
    );
    const win = launcherFiles(spec({ delimiter: ';', python: 'C:\\py\\python.exe' }), 'win32');
    assert.deepStrictEqual(
      win.map((f) => f.name),
      ['dx-lsp-telemetry', 'dx-lsp-telemetry-run.py', 'dx-lsp-telemetry.cmd'],
    );
    assert.ok(win[0].text.includes('${PYTHONPATH:+;$PYTHONPATH}'));
  });
});

// -- run for real ------------------------------------------------------------------------------

/** A stand-in for the bundled package: prints what it was started with, exits with $DXT_EXIT. */
const STAND_IN_MAIN = `import json, os, sys
print(json.dumps({
    "argv": sys.argv[1:],
    "path0": sys.path[0],
    "PYTHONPATH": os.environ.get("PYTHONPATH"),
    "PYTHONUTF8": os.environ.get("PYTHONUTF8"),
    "DX_TELEMETRY_HOME": os.environ.get("DX_TELEMETRY_HOME"),
    "token": os.environ.get("DX_DATA_CLOUD_TOKEN"),
    "cwd": os.getcwd(),
}))
sys.exit(int(os.environ.get("DXT_EXIT", "0")))
`;

interface Seen {
  argv: string[];
  path0: string;
  PYTHONPATH: string | null;
  PYTHONUTF8: string | null;
  DX_TELEMETRY_HOME: string | null;
  token: string | null;
  cwd: string;
}

describe('the terminal launcher, run by /bin/sh', function () {
  this.timeout(30_000);
  let root: string;
  let libs: string;
  let binDir: string;
  let work: string;
  let python: FoundPython;

  before(async function () {
    if (process.platform === 'win32') {
      this.skip();
    }
    const probed = await probePython('python3', []);
    assert.ok(probed.version && probed.executable, `python3 is needed: ${probed.error}`);
    python = { command: 'python3', args: [], source: 'path', found: true, version: probed.version, executable: probed.executable, description: 'python3' };
  });

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'dx-term-'));
    const odd = path.join(root, `it's a "dir" $HOME`);
    libs = path.join(odd, 'ext 0.1.0', 'bundled', 'libs');
    fs.mkdirSync(path.join(libs, 'dx_lsp_telemetry'), { recursive: true });
    fs.writeFileSync(path.join(libs, 'dx_lsp_telemetry', '__init__.py'), '');
    fs.writeFileSync(path.join(libs, 'dx_lsp_telemetry', '__main__.py'), STAND_IN_MAIN);
    binDir = path.join(odd, 'global storage', 'bin');
    // the terminal's folder: a workspace with a package of the same name, which must not run
    work = path.join(root, 'work space');
    fs.mkdirSync(path.join(work, 'dx_lsp_telemetry'), { recursive: true });
    fs.writeFileSync(path.join(work, 'dx_lsp_telemetry', '__init__.py'), '');
    fs.writeFileSync(path.join(work, 'dx_lsp_telemetry', '__main__.py'), 'print("the workspace\'s copy ran")\nraise SystemExit(9)\n');
  });

  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  function install(
    found: FoundPython | LaunchProblem = python,
    env: NodeJS.ProcessEnv = {},
    away?: string,
  ): { cli: TerminalCli; collection: FakeCollection; log: ReturnType<typeof recordingLogger> } {
    const collection = new FakeCollection();
    const log = recordingLogger();
    const cli = new TerminalCli({ collection, binDir, libs, extensionVersion: '0.1.0', log, away, platform: 'linux', delimiter: ':' });
    cli.update(found, env);
    return { cli, collection, log };
  }

  /** As a terminal does: the collection's PATH in front, the command typed by name. */
  function typed(collection: FakeCollection, args: string[], env: NodeJS.ProcessEnv = {}) {
    const base: NodeJS.ProcessEnv = { PATH: `${collection.vars.get('PATH') ?? ''}${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: root, ...env };
    return spawnSync('/bin/sh', ['-c', 'dx-lsp-telemetry "$@"', 'sh', ...args], { cwd: work, env: base, encoding: 'utf8' });
  }

  it('puts the folder on PATH (persistent, described) and passes every argument through exactly', async () => {
    const { cli, collection } = install(python, { DX_TELEMETRY_HOME: path.join(root, "data 'home'"), DX_DATA_CLOUD_TOKEN: TOKEN });
    assert.strictEqual(await cli.problemNow(), undefined);
    assert.deepStrictEqual([...collection.vars], [['PATH', `${binDir}:`]]);
    assert.strictEqual(collection.persistent, true);
    assert.strictEqual(collection.description, COLLECTION_DESCRIPTION);
    assert.strictEqual(fs.statSync(path.join(binDir, 'dx-lsp-telemetry')).mode & 0o777, 0o755);
    assert.deepStrictEqual(fs.readdirSync(binDir).sort(), ['dx-lsp-telemetry', 'dx-lsp-telemetry-run.py']);
    for (const name of fs.readdirSync(binDir)) {
      assert.ok(!fs.readFileSync(path.join(binDir, name), 'utf8').includes(TOKEN), `the token is not in ${name}`);
    }

    const args = ['report', '--days', '3', 'a b', "it's", '"q"', '$HOME', '*', '', 'é ü'];
    const r = typed(collection, args);
    assert.strictEqual(r.status, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as Seen;
    assert.deepStrictEqual(seen.argv, args);
    assert.strictEqual(seen.PYTHONPATH, libs);
    assert.strictEqual(seen.PYTHONUTF8, '1');
    assert.strictEqual(seen.DX_TELEMETRY_HOME, path.join(root, "data 'home'"), "the editor's data folder");
    assert.strictEqual(seen.token, null, 'no token reaches the command line from the launcher');
    assert.strictEqual(fs.realpathSync(seen.path0), fs.realpathSync(binDir), "sys.path[0] is the launchers' folder, not the shell's");
    assert.strictEqual(fs.realpathSync(seen.cwd), fs.realpathSync(work), "the command runs in the shell's folder");
  });

  it("keeps the shell's own PYTHONPATH (after the libs), DX_TELEMETRY_HOME and token, and its exit code", () => {
    const { collection } = install(python, { DX_TELEMETRY_HOME: '/editor/home' });
    const r = typed(collection, ['flush'], { PYTHONPATH: '/mine', DX_TELEMETRY_HOME: '/shell/home', DX_DATA_CLOUD_TOKEN: TOKEN, DXT_EXIT: '1' });
    assert.strictEqual(r.status, 1, r.stderr);
    const seen = JSON.parse(r.stdout) as Seen;
    assert.strictEqual(seen.PYTHONPATH, `${libs}:/mine`);
    assert.strictEqual(seen.DX_TELEMETRY_HOME, '/shell/home', 'a value the shell sets wins');
    assert.strictEqual(seen.token, TOKEN, 'a token the user exports is used');
    const none = JSON.parse(typed(install(python, {}).collection, []).stdout) as Seen;
    assert.strictEqual(none.DX_TELEMETRY_HOME, null, 'without one in the editor, none is set');
  });

  it('is rewritten when the interpreter changes, and only then', () => {
    const first = install();
    const launcher = path.join(binDir, 'dx-lsp-telemetry');
    const inode = fs.statSync(launcher).ino;
    assert.ok(first.log.lines.some((l) => l.includes('wrote dx-lsp-telemetry, dx-lsp-telemetry-run.py')), first.log.lines.join('\n'));
    const again = install();
    assert.strictEqual(fs.statSync(launcher).ino, inode, 'the same interpreter: nothing written');
    assert.ok(!again.log.lines.some((l) => l.includes('wrote')), again.log.lines.join('\n'));

    const link = path.join(root, 'other python', "py'3");
    fs.mkdirSync(path.dirname(link));
    fs.symlinkSync(python.executable, link);
    const moved = install({ ...python, command: link, executable: link, source: 'setting' });
    assert.ok(fs.readFileSync(launcher, 'utf8').includes(`python=${shQuote(link)}`));
    assert.notStrictEqual(fs.statSync(launcher).ino, inode, 'replaced by a rename, never rewritten in place');
    assert.ok(moved.log.lines.some((l) => l.includes(`runs ${link} (wrote dx-lsp-telemetry in `)), moved.log.lines.join('\n'));
    assert.strictEqual(typed(moved.collection, ['status']).status, 0);

    // that interpreter goes away: the launcher says so, with the CLI's exit code for configuration
    fs.unlinkSync(link);
    const gone = typed(moved.collection, ['status']);
    assert.strictEqual(gone.status, 2);
    assert.match(gone.stderr, /^dx-lsp-telemetry: .*py'3: the Python this launcher runs is gone\. Reload the VS Code window/);
  });

  it('says what happened when the extension that wrote it is gone (updated or uninstalled)', () => {
    const { collection } = install();
    fs.renameSync(libs, `${libs}.old`);
    const r = typed(collection, ['report']);
    assert.strictEqual(r.status, 2);
    assert.strictEqual(r.stdout, '');
    assert.match(r.stderr, /^dx-lsp-telemetry: .*libs: the DX Telemetry extension that wrote this launcher is not installed there any more \(updated or uninstalled\)\. Run it again once the extension has started; outside VS Code, install the command line from its wheel \(README, "The command line"\)\.\n$/);
  });

  it('takes the folder off the PATH when no Python is found, or the launcher cannot be written', async () => {
    const { cli, collection } = install();
    assert.ok(collection.vars.has('PATH'));
    const none: LaunchProblem = { problem: 'No Python >= 3.9 found.', advice: ['install one'] };
    const log = recordingLogger();
    const fresh = new TerminalCli({ collection, binDir, libs, extensionVersion: '0.1.0', log, platform: 'linux', delimiter: ':' });
    fresh.update(none, {});
    assert.strictEqual(collection.vars.size, 0);
    assert.strictEqual(await fresh.problemNow(), 'no Python was found (No Python >= 3.9 found.)');
    assert.ok(log.lines.some((l) => l.startsWith('warn terminals: no dx-lsp-telemetry on their PATH: no Python was found')));
    assert.strictEqual(await cli.problemNow(), undefined);

    fs.rmSync(binDir, { recursive: true });
    fs.writeFileSync(binDir, 'a file where the folder goes');
    const blocked = install();
    assert.strictEqual(blocked.collection.vars.size, 0);
    assert.match((await blocked.cli.problemNow()) ?? '', /^its launcher could not be written: /);
  });

  it("leaves the PATH alone where the window's terminals run on another host than this extension", async () => {
    assert.strictEqual(terminalsAway(undefined, 'ui'), undefined, 'a local window');
    assert.strictEqual(terminalsAway('ssh-remote+box', 'workspace'), undefined, 'running on the remote host, beside its terminals');
    const away = terminalsAway('ssh-remote+box', 'ui');
    assert.match(away ?? '', /^this window's terminals run on ssh-remote\+box, and DX Telemetry runs on this machine/);
    const { cli, collection, log } = install(python, {}, away);
    assert.strictEqual(collection.vars.size, 0);
    assert.ok(!fs.existsSync(binDir), 'no launcher written');
    assert.strictEqual(await cli.problemNow(), away);
    assert.ok(log.lines.some((l) => l.startsWith("warn terminals: no dx-lsp-telemetry on their PATH: this window's terminals run on ssh-remote+box")));
  });

  it('answers the command only once the first interpreter search is done', async () => {
    const collection = new FakeCollection();
    const cli = new TerminalCli({ collection, binDir, libs, extensionVersion: '0.1.0', log: recordingLogger(), platform: 'linux', delimiter: ':' });
    let answered: string | undefined | null = null;
    const waiting = cli.problemNow().then((p) => (answered = p));
    await new Promise((resolve) => setImmediate(resolve));
    assert.strictEqual(answered, null, 'still waiting');
    cli.update(python, {});
    await waiting;
    assert.strictEqual(answered, undefined);
  });
});
