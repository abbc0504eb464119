import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type * as vscode from 'vscode';
import { TOKEN_ENV, bundledLibs, sidecarEnv, sidecarLaunch } from '../../src/launch';
import { KeyLevels, SECTION, classifyChange, contributedKeys, expandPath, interpreterSetting, sectionSnapshot, userValue, workspaceOverrides } from '../../src/settings';

/**
 * VS Code's levels in memory, each as its settings.json holds it (flat dotted keys, or the
 * nested-object spelling), and `inspect` as the extension host computes it: each level's value
 * tree looked up by the key. Nothing is filtered, as VS Code before 1.132 kept the nested spelling.
 */
class Levels {
  readonly defaults: Record<string, unknown> = {};
  readonly user: Record<string, unknown> = {};
  readonly workspace: Record<string, unknown> = {};
  readonly folder: Record<string, unknown> = {};
  inspect = (key: string): KeyLevels | undefined => {
    const at = (level: Record<string, unknown>) => lookup(tree(level), key);
    return { defaultValue: at(this.defaults), globalValue: at(this.user), workspaceValue: at(this.workspace), workspaceFolderValue: at(this.folder) };
  };
}

function tree(flat: Record<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const parts = key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      node = (node[part] ??= {}) as Record<string, unknown>;
    }
    const last = parts[parts.length - 1];
    const old = node[last];
    node[last] = typeof old === 'object' && old && typeof value === 'object' && value ? { ...old, ...value } : value;
  }
  return root;
}

function lookup(root: Record<string, unknown>, key: string): unknown {
  return key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], root);
}

const EXTENSION_ROOT = path.resolve(__dirname, '..', '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(EXTENSION_ROOT, 'package.json'), 'utf8')) as {
  contributes: {
    configuration: { properties: Record<string, { type: string; default: unknown; scope?: string; description?: string; markdownDescription?: string }> };
    commands: Array<{ command: string; title: string }>;
  };
  activationEvents: string[];
  engines: { vscode: string };
  extensionDependencies?: string[];
  main: string;
};

describe('settings', () => {
  const KEYS = ['enabled', 'email', 'dayBoundary', 'flush.enabled', 'flush.delaySeconds', 'sources.claudeCode.enabled', 'sources.claudeCode.path', 'python.interpreter'].map(
    (k) => `${SECTION}.${k}`,
  );
  const defaults = (l: Levels) =>
    Object.assign(l.defaults, {
      'dxTelemetry.enabled': true,
      'dxTelemetry.email': '',
      'dxTelemetry.dayBoundary': 'utc',
      'dxTelemetry.flush.enabled': true,
      'dxTelemetry.flush.delaySeconds': 600,
      'dxTelemetry.sources.claudeCode.enabled': false,
      'dxTelemetry.sources.claudeCode.path': '',
      'dxTelemetry.python.interpreter': '',
    });

  it('snapshots the user values over the defaults, nested as the sidecar expects them', () => {
    const l = new Levels();
    defaults(l);
    Object.assign(l.user, { 'dxTelemetry.email': 'dev@example.com', 'dxTelemetry.flush.delaySeconds': 0, 'dxTelemetry.sources': { claudeCode: { enabled: true } } });
    assert.deepStrictEqual(sectionSnapshot(l.inspect, KEYS), {
      enabled: true,
      email: 'dev@example.com',
      dayBoundary: 'utc',
      flush: { enabled: true, delaySeconds: 0 },
      sources: { claudeCode: { enabled: true, path: '' } },
      python: { interpreter: '' },
    });
  });

  it("never takes a workspace's or a folder's value, in either spelling, and names the ones it ignored", () => {
    const l = new Levels();
    defaults(l);
    Object.assign(l.user, { 'dxTelemetry.flush.delaySeconds': 0 });
    // flat keys (VS Code drops these itself for application/machine scope) and the nested
    // spellings its scope filter lets through, which getConfiguration() would merge
    Object.assign(l.workspace, {
      'dxTelemetry.enabled': false,
      'dxTelemetry.flush': { delaySeconds: 86400, enabled: false },
      dxTelemetry: { dayBoundary: 'local', bogus: 1, python: { interpreter: '/tmp/evil' } },
    });
    Object.assign(l.folder, { 'dxTelemetry.sources': { claudeCode: { enabled: true, path: '/tmp/elsewhere' } } });
    const snapshot = sectionSnapshot(l.inspect, KEYS);
    assert.deepStrictEqual(snapshot, {
      enabled: true,
      email: '',
      dayBoundary: 'utc',
      flush: { enabled: true, delaySeconds: 0 },
      sources: { claudeCode: { enabled: false, path: '' } },
      python: { interpreter: '' },
    });
    assert.strictEqual(interpreterSetting(l.inspect, {}, '/home/u'), '');
    assert.deepStrictEqual(workspaceOverrides(l.inspect, KEYS), [
      'dxTelemetry.enabled',
      'dxTelemetry.dayBoundary',
      'dxTelemetry.flush.enabled',
      'dxTelemetry.flush.delaySeconds',
      'dxTelemetry.sources.claudeCode.enabled',
      'dxTelemetry.sources.claudeCode.path',
      'dxTelemetry.python.interpreter',
    ]);
    assert.deepStrictEqual(workspaceOverrides(new Levels().inspect, KEYS), []);
  });

  it("passes the user's own unknown top-level keys (a typo the sidecar names), never a workspace's", () => {
    const l = new Levels();
    defaults(l);
    Object.assign(l.user, { 'dxTelemetry.enabeld': false, 'dxTelemetry.trace.server': 'off' });
    Object.assign(l.workspace, { 'dxTelemetry.fromRepo': true });
    const snapshot = sectionSnapshot(l.inspect, KEYS);
    assert.strictEqual(snapshot.enabeld, false);
    assert.deepStrictEqual(snapshot.trace, { server: 'off' });
    assert.ok(!('fromRepo' in snapshot));
    assert.strictEqual(snapshot.enabled, true);
  });

  it('reads the user value, else the default (where VS Code reports a policy), of one key', () => {
    assert.strictEqual(userValue(() => ({ defaultValue: 1, globalValue: 2, workspaceValue: 3 }), 'k'), 2);
    assert.strictEqual(userValue(() => ({ defaultValue: 1, workspaceValue: 3, workspaceFolderValue: 4 }), 'k'), 1);
    assert.strictEqual(userValue(() => ({ defaultValue: true, globalValue: false }), 'k'), false, 'a false user value is a value');
    assert.strictEqual(userValue(() => undefined, 'k'), undefined);
  });

  it('reads and expands the interpreter setting', () => {
    const read = (value: unknown) => () => ({ defaultValue: '', globalValue: value });
    assert.strictEqual(interpreterSetting(read('  ~/py/bin/python3 '), {}, '/home/u'), path.join('/home/u', 'py/bin/python3'));
    assert.strictEqual(interpreterSetting(read(undefined), {}, '/home/u'), '');
    assert.strictEqual(interpreterSetting(read(42), {}, '/h'), '');
    assert.strictEqual(expandPath('${userHome}/x/${env:PYDIR}/python', { PYDIR: 'p311' }, '/home/u'), '/home/u/x/p311/python');
  });

  it('restarts only for the interpreter; other dxTelemetry changes are live', () => {
    const change = (...keys: string[]) =>
      ({ affectsConfiguration: (s: string) => keys.some((k) => k === s || k.startsWith(`${s}.`)) }) as vscode.ConfigurationChangeEvent;
    assert.strictEqual(classifyChange(change('dxTelemetry.python.interpreter')), 'restart');
    assert.strictEqual(classifyChange(change('dxTelemetry.flush.delaySeconds')), 'live');
    assert.strictEqual(classifyChange(change('dxTelemetry.email')), 'live');
    assert.strictEqual(classifyChange(change('editor.fontSize')), 'none');
  });
});

describe('the sidecar launch', () => {
  it('prepends the bundled libs to PYTHONPATH, sets PYTHONUTF8 and the token, keeps the rest', () => {
    const base = { PATH: '/usr/bin', PYTHONPATH: '/mine', DX_TELEMETRY_HOME: '/data', [TOKEN_ENV]: 'inherited' };
    const env = sidecarEnv(base, '/ext/bundled/libs', 'tok-123', ':');
    assert.strictEqual(env.PYTHONPATH, '/ext/bundled/libs:/mine');
    assert.strictEqual(env.PYTHONUTF8, '1');
    assert.strictEqual(env[TOKEN_ENV], 'tok-123');
    assert.strictEqual(env.PATH, '/usr/bin');
    assert.strictEqual(env.DX_TELEMETRY_HOME, '/data');
    assert.strictEqual(base[TOKEN_ENV], 'inherited', 'the editor environment is not modified');
    const none = sidecarEnv({ PATH: '/usr/bin', [TOKEN_ENV]: 'stale' }, '/libs', undefined, ':');
    assert.strictEqual(none.PYTHONPATH, '/libs');
    assert.ok(!(TOKEN_ENV in none), 'no token: the variable is absent, not empty');
  });

  it('runs `-m dx_lsp_telemetry` with no transport flags, from the bundled libs folder, token not in argv', () => {
    const launch = sidecarLaunch({ command: 'py', args: ['-3'], description: 'x' }, '/ext', { PATH: '/bin' }, 'secret-token');
    assert.strictEqual(launch.command, 'py');
    assert.deepStrictEqual(launch.args, ['-3', '-m', 'dx_lsp_telemetry']);
    assert.strictEqual(launch.cwd, bundledLibs('/ext'));
    assert.ok(!JSON.stringify([launch.command, launch.args]).includes('secret-token'));
  });

  it("starts the Remote Reader's sidecar as `serve --reader`, without the token", () => {
    const launch = sidecarLaunch({ command: 'python3', args: [], description: 'x' }, '/ext', { PATH: '/bin', [TOKEN_ENV]: 'inherited' }, undefined, ['serve', '--reader']);
    assert.deepStrictEqual(launch.args, ['-m', 'dx_lsp_telemetry', 'serve', '--reader']);
    assert.ok(!(TOKEN_ENV in launch.env), 'a reader never pushes: no token, not even an inherited one');
  });
});

describe('package.json contributions', () => {
  const INTERFACE_SETTINGS: Record<string, unknown> = {
    enabled: true,
    email: '',
    tool: '',
    instanceUrl: '',
    machineSuffix: '',
    dayBoundary: 'utc',
    'flush.enabled': true,
    'flush.delaySeconds': 3600,
    'flush.backfillDays': 7,
    reportInactiveDays: true,
    modelBreakdowns: false,
    retentionDays: 90,
    'spend.estimate': true,
    'python.interpreter': '',
    'otlp.enabled': false,
    'otlp.port': 4319,
    'otlp.tools': {},
  };
  const SOURCES: Record<string, string> = {
    claudeCode: 'claude-code',
    codex: 'codex',
    cline: 'cline',
    rooCode: 'roo-code',
    kiloCode: 'kilo-code',
    continue: 'continue',
    geminiCli: 'gemini-cli',
    copilotChat: 'copilot-chat',
    copilotCli: 'copilot-cli',
    opencode: 'opencode',
    qwenCode: 'qwen-code',
    aider: 'aider',
    droid: 'droid',
    goose: 'goose',
    zed: 'zed',
    junie: 'junie',
  };
  for (const [name, tool] of Object.entries(SOURCES)) {
    INTERFACE_SETTINGS[`sources.${name}.enabled`] = false;
    INTERFACE_SETTINGS[`sources.${name}.tool`] = tool;
    INTERFACE_SETTINGS[`sources.${name}.path`] = '';
  }
  const props = manifest.contributes.configuration.properties;

  it('contributes every setting of the README\'s table with its default and a description, and nothing else', () => {
    assert.deepStrictEqual(Object.keys(props).sort(), Object.keys(INTERFACE_SETTINGS).map((k) => `dxTelemetry.${k}`).sort());
    for (const [key, value] of Object.entries(INTERFACE_SETTINGS)) {
      const p = props[`dxTelemetry.${key}`];
      assert.deepStrictEqual(p.default, value, key);
      assert.ok((p.markdownDescription ?? p.description ?? '').length > 20, `${key} has a description`);
    }
  });

  it('scopes every setting application or machine, so no workspace changes one: machine for what names this host\'s paths, port and name', () => {
    const machine = (key: string) =>
      key === 'dxTelemetry.python.interpreter' || key === 'dxTelemetry.otlp.port' || key === 'dxTelemetry.machineSuffix' || /^dxTelemetry\.sources\.\w+\.path$/.test(key);
    for (const [key, p] of Object.entries(props)) {
      assert.strictEqual(p.scope, machine(key) ? 'machine' : 'application', key);
      assert.match(p.markdownDescription ?? '', machine(key) ? /Machine scope/ : /Application scope/, `${key} says its scope`);
    }
  });

  it('gives every source the shape and scopes of the first ones, and a description of what it reads', () => {
    for (const name of Object.keys(SOURCES)) {
      for (const leaf of ['enabled', 'tool', 'path']) {
        const p = props[`dxTelemetry.sources.${name}.${leaf}`];
        const model = props[`dxTelemetry.sources.claudeCode.${leaf}`];
        assert.strictEqual(p.type, model.type, `${name}.${leaf}`);
        assert.strictEqual(p.scope, model.scope, `${name}.${leaf}`);
      }
      assert.match(props[`dxTelemetry.sources.${name}.enabled`].markdownDescription ?? '', /^Read .*never prompts or code/, name);
    }
    assert.match(props['dxTelemetry.sources.aider.path'].markdownDescription ?? '', /analytics log \*\*file\*\*/);
    const port = props['dxTelemetry.otlp.port'] as { minimum?: number; maximum?: number };
    assert.deepStrictEqual([port.minimum, port.maximum], [1024, 65535]);
  });

  it('passes every contributed setting to the sidecar: the snapshot holds each at its nested path', () => {
    // nothing set but one user value: every key at its default, nested by dots
    const l = new Levels();
    for (const [key, p] of Object.entries(props)) {
      l.defaults[key] = p.default;
    }
    l.user['dxTelemetry.otlp.tools'] = { 'claude-code': 'claude-code', codex_exec: 'codex' };
    const keys = contributedKeys(manifest);
    assert.deepStrictEqual(keys, Object.keys(props));
    const snapshot = sectionSnapshot(l.inspect, keys);
    for (const [key, p] of Object.entries(props)) {
      const value = lookup(snapshot, key.replace(/^dxTelemetry\./, ''));
      assert.deepStrictEqual(value, key === 'dxTelemetry.otlp.tools' ? { 'claude-code': 'claude-code', codex_exec: 'codex' } : p.default, key);
    }
    assert.strictEqual((snapshot.otlp as Record<string, unknown>).port, 4319);
    assert.strictEqual(((snapshot.sources as Record<string, Record<string, unknown>>).aider).tool, 'aider');
    assert.deepStrictEqual(contributedKeys({}), []);
    assert.deepStrictEqual(contributedKeys(undefined), []);
  });

  it('contributes the fixed command ids, activates on startup, has no hard dependency on the Python extension', () => {
    const ids = manifest.contributes.commands.map((c) => c.command).sort();
    assert.deepStrictEqual(ids, [
      'dxTelemetry.clearApiToken',
      'dxTelemetry.connectAiTools',
      'dxTelemetry.disconnectAiTools',
      'dxTelemetry.flushNow',
      'dxTelemetry.markPushed',
      'dxTelemetry.openDataFolder',
      'dxTelemetry.openUsageInTerminal',
      'dxTelemetry.recordUsage',
      'dxTelemetry.resendDay',
      'dxTelemetry.setApiToken',
      'dxTelemetry.showLog',
      'dxTelemetry.showUsage',
    ]);
    assert.ok(manifest.contributes.commands.some((c) => c.command === 'dxTelemetry.showUsage' && c.title === 'Show Usage'));
    assert.deepStrictEqual(manifest.activationEvents, ['onStartupFinished']);
    assert.strictEqual(manifest.extensionDependencies, undefined);
    assert.strictEqual(manifest.engines.vscode, '^1.82.0');
  });
});
