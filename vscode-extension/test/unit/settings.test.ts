import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type * as vscode from 'vscode';
import { TOKEN_ENV, bundledLibs, sidecarEnv, sidecarLaunch } from '../../src/launch';
import { SECTION, classifyChange, expandPath, interpreterSetting, sectionSnapshot } from '../../src/settings';

/** What getConfiguration returns: the values as properties, plus methods. */
function configuration(values: Record<string, unknown>): vscode.WorkspaceConfiguration {
  const get = (key: string) => key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], values);
  return Object.freeze({
    ...values,
    get,
    has: (key: string) => get(key) !== undefined,
    inspect: () => undefined,
    update: () => Promise.resolve(),
  }) as unknown as vscode.WorkspaceConfiguration;
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
  it('snapshots the section as nested plain JSON, as the sidecar expects it', () => {
    const config = configuration({
      enabled: true,
      email: 'dev@example.com',
      flush: { enabled: true, delaySeconds: 0, backfillDays: 7 },
      sources: { claudeCode: { enabled: true, tool: 'claude-code', path: '' } },
    });
    const snapshot = sectionSnapshot((section) => {
      assert.strictEqual(section, SECTION);
      return config;
    });
    assert.deepStrictEqual(snapshot, {
      enabled: true,
      email: 'dev@example.com',
      flush: { enabled: true, delaySeconds: 0, backfillDays: 7 },
      sources: { claudeCode: { enabled: true, tool: 'claude-code', path: '' } },
    });
    assert.strictEqual(JSON.stringify(snapshot).includes('function'), false);
  });

  it('reads and expands the interpreter setting', () => {
    const read = () => configuration({ python: { interpreter: '  ~/py/bin/python3 ' } });
    assert.strictEqual(interpreterSetting(read, {}, '/home/u'), path.join('/home/u', 'py/bin/python3'));
    assert.strictEqual(interpreterSetting(() => configuration({}), {}, '/home/u'), '');
    assert.strictEqual(interpreterSetting(() => configuration({ python: { interpreter: 42 } }), {}, '/h'), '');
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
});

describe('package.json contributions', () => {
  const INTERFACE_SETTINGS: Record<string, unknown> = {
    enabled: true,
    email: '',
    tool: '',
    instanceUrl: '',
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

  it('contributes every INTERFACE.md setting with its default and a description, and nothing else', () => {
    assert.deepStrictEqual(Object.keys(props).sort(), Object.keys(INTERFACE_SETTINGS).map((k) => `dxTelemetry.${k}`).sort());
    for (const [key, value] of Object.entries(INTERFACE_SETTINGS)) {
      const p = props[`dxTelemetry.${key}`];
      assert.deepStrictEqual(p.default, value, key);
      assert.ok((p.markdownDescription ?? p.description ?? '').length > 20, `${key} has a description`);
    }
  });

  it('machine-scopes what would let a repository redirect the telemetry or pick a program', () => {
    for (const key of ['email', 'tool', 'instanceUrl', 'python.interpreter', 'otlp.port', ...Object.keys(SOURCES).map((s) => `sources.${s}.path`)]) {
      assert.ok(['machine', 'application'].includes(props[`dxTelemetry.${key}`].scope ?? ''), key);
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
    // what getConfiguration('dxTelemetry') holds when nothing is set: the defaults, nested by dots
    const nested: Record<string, unknown> = {};
    for (const [key, p] of Object.entries(props)) {
      const parts = key.replace(/^dxTelemetry\./, '').split('.');
      let node = nested;
      for (const part of parts.slice(0, -1)) {
        node = (node[part] ??= {}) as Record<string, unknown>;
      }
      node[parts[parts.length - 1]] = p.default;
    }
    (nested.otlp as Record<string, unknown>).tools = { 'claude-code': 'claude-code', codex_exec: 'codex' };
    const snapshot = sectionSnapshot(() => configuration(nested));
    for (const [key, p] of Object.entries(props)) {
      const parts = key.replace(/^dxTelemetry\./, '').split('.');
      const value = parts.reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], snapshot);
      assert.deepStrictEqual(value, key === 'dxTelemetry.otlp.tools' ? { 'claude-code': 'claude-code', codex_exec: 'codex' } : p.default, key);
    }
    assert.strictEqual((snapshot.otlp as Record<string, unknown>).port, 4319);
    assert.strictEqual(((snapshot.sources as Record<string, Record<string, unknown>>).aider).tool, 'aider');
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
