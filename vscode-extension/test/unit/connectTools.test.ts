import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RECEIVER_SETTING, SystemPaths, ToolContext, ToolId, ToolPlan, planTools, systemPaths } from '../../src/aiTools';
import { previewText, summary } from '../../src/connectPreview';
import type { Json } from '../../src/jsonConfig';
import { parseTomlConfig } from '../../src/tomlConfig';
import {
  FileChange,
  SettingsChange,
  SettingsRecord,
  SettingsStore,
  applyFileChange,
  applySettingsChange,
  planFileUndo,
  planSettingsUndo,
} from '../../src/toolChange';

/** VS Code's layered configuration, in memory: defaults, user, workspace, and what a policy forces. */
class FakeSettings implements SettingsStore {
  readonly defaults = new Map<string, unknown>();
  readonly user = new Map<string, unknown>();
  readonly workspace = new Map<string, unknown>();
  readonly policy = new Map<string, unknown>();
  inspect(key: string) {
    return { defaultValue: this.defaults.get(key), globalValue: this.user.get(key), workspaceValue: this.workspace.get(key), workspaceFolderValue: undefined };
  }
  effective(key: string): unknown {
    for (const layer of [this.policy, this.workspace, this.user, this.defaults]) {
      if (layer.has(key)) {
        return layer.get(key);
      }
    }
    return undefined;
  }
  updateGlobal(key: string, value: Json | undefined): Promise<void> {
    if (value === undefined) {
      this.user.delete(key);
    } else {
      this.user.set(key, value);
    }
    return Promise.resolve();
  }
}

interface Machine {
  home: string;
  system: string;
  settings: FakeSettings;
  extensions: Set<string>;
  ctx(port?: number): ToolContext;
}

function machine(): Machine {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dx-connect-'));
  const home = path.join(root, 'home');
  const system = path.join(root, 'etc');
  fs.mkdirSync(home);
  fs.mkdirSync(system);
  const settings = new FakeSettings();
  settings.defaults.set(RECEIVER_SETTING, false);
  const extensions = new Set<string>();
  const paths: SystemPaths = {
    claudeManaged: [path.join(system, 'claude-code', 'managed-settings.json'), path.join(system, 'claude-code', 'managed-settings.d')],
    geminiSystem: [path.join(system, 'gemini-cli', 'settings.json')],
    codexManaged: [path.join(system, 'codex', 'managed_config.toml')],
  };
  return {
    home,
    system,
    settings,
    extensions,
    ctx: (port = 4319) => ({
      home,
      env: { PATH: path.join(root, 'no-bin') },
      platform: 'linux',
      port,
      sourcePath: () => '',
      hasExtension: (id) => extensions.has(id),
      settings,
      system: paths,
    }),
  };
}

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

function plan(ctx: ToolContext, tool: ToolId): ToolPlan {
  const found = planTools(ctx).find((p) => p.tool === tool);
  assert.ok(found, tool);
  return found;
}

function fileChange(p: ToolPlan): FileChange {
  assert.strictEqual(p.state, 'ready', `${p.name}: ${p.state} ${p.reason ?? ''}`);
  assert.strictEqual(p.change?.kind, 'file');
  return p.change as FileChange;
}

const CLAUDE_SETTINGS = '{\n  // team defaults\n  "model": "opus",\n  "env": {\n    "ANTHROPIC_API_KEY": "sk-ant-secret" // mine\n  },\n  "permissions": { "allow": ["Bash(ls)"] }\n}\n';

describe('Connect AI Tools: the tools', () => {
  it('finds only the tools that are there; the receiver is offered while it is off', () => {
    const m = machine();
    const plans = planTools(m.ctx());
    assert.deepStrictEqual(
      plans.map((p) => [p.tool, p.state]),
      [['receiver', 'ready'], ['claudeCode', 'absent'], ['geminiCli', 'absent'], ['codex', 'absent'], ['copilotChat', 'absent']],
    );
    const receiver = plans[0].change as SettingsChange;
    assert.deepStrictEqual(receiver.keys, [{ key: RECEIVER_SETTING, had: false, value: true }]);
    m.settings.user.set(RECEIVER_SETTING, true);
    assert.strictEqual(plan(m.ctx(), 'receiver').state, 'connected');
  });

  it("the receiver is the user's setting alone: a workspace value neither connects nor disconnects it", () => {
    const m = machine();
    m.settings.workspace.set(RECEIVER_SETTING, true);
    assert.strictEqual(plan(m.ctx(), 'receiver').state, 'ready');
    m.settings.user.set(RECEIVER_SETTING, true);
    m.settings.workspace.set(RECEIVER_SETTING, false);
    assert.strictEqual(plan(m.ctx(), 'receiver').state, 'connected');
  });

  it('Claude Code: sets the env block in ~/.claude/settings.json, keeps the rest, Disconnect gives back the original bytes', () => {
    const m = machine();
    const file = path.join(m.home, '.claude', 'settings.json');
    write(file, CLAUDE_SETTINGS);
    fs.chmodSync(file, 0o640);
    const p = plan(m.ctx(), 'claudeCode');
    const change = fileChange(p);
    assert.strictEqual(p.where, '~/.claude/settings.json');
    assert.strictEqual(summary(change), 'env: +CLAUDE_CODE_ENABLE_TELEMETRY, +OTEL_LOGS_EXPORTER, +OTEL_EXPORTER_OTLP_PROTOCOL, +OTEL_EXPORTER_OTLP_ENDPOINT');
    const record = applyFileChange(change);
    const written = fs.readFileSync(file, 'utf8');
    assert.strictEqual(
      written,
      '{\n  // team defaults\n  "model": "opus",\n  "env": {\n    "ANTHROPIC_API_KEY": "sk-ant-secret", // mine\n' +
        '    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",\n    "OTEL_LOGS_EXPORTER": "otlp",\n    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",\n' +
        '    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4319"\n  },\n  "permissions": { "allow": ["Bash(ls)"] }\n}\n',
    );
    assert.strictEqual(fs.statSync(file).mode & 0o777, 0o640, 'permissions kept');
    assert.ok(!JSON.stringify(record).includes('sk-ant-secret'), 'the record keeps no other part of the file');
    assert.strictEqual(plan(m.ctx(), 'claudeCode').state, 'connected');
    const undo = planFileUndo([record]);
    assert.ok(undo.ok);
    applyFileChange(undo.change);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), CLAUDE_SETTINGS, 'byte for byte');
  });

  it('a file it created is deleted again; a symlinked settings file stays a symlink', () => {
    const m = machine();
    fs.mkdirSync(path.join(m.home, '.claude'));
    const created = applyFileChange(fileChange(plan(m.ctx(), 'claudeCode')));
    const file = path.join(m.home, '.claude', 'settings.json');
    assert.ok(fs.existsSync(file));
    const undo = planFileUndo([created]);
    assert.ok(undo.ok && undo.change.after === undefined);
    applyFileChange(undo.change);
    assert.ok(!fs.existsSync(file), 'deleted: it did not exist before');

    const dotfiles = path.join(m.home, 'dotfiles', 'claude.json');
    write(dotfiles, '{"model": "opus"}\n');
    fs.symlinkSync(dotfiles, file);
    const record = applyFileChange(fileChange(plan(m.ctx(), 'claudeCode')));
    assert.ok(fs.lstatSync(file).isSymbolicLink(), 'still a symlink');
    assert.match(fs.readFileSync(dotfiles, 'utf8'), /"OTEL_LOGS_EXPORTER": "otlp"/);
    const back = planFileUndo([record]);
    assert.ok(back.ok);
    applyFileChange(back.change);
    assert.strictEqual(fs.readFileSync(dotfiles, 'utf8'), '{"model": "opus"}\n');
  });

  it('after the developer edited the file, Disconnect removes only our keys and leaves one they changed', () => {
    const m = machine();
    const file = path.join(m.home, '.claude', 'settings.json');
    write(file, CLAUDE_SETTINGS);
    const record = applyFileChange(fileChange(plan(m.ctx(), 'claudeCode')));
    const edited = fs
      .readFileSync(file, 'utf8')
      .replace('"model": "opus"', '"model": "sonnet"')
      .replace('"OTEL_LOGS_EXPORTER": "otlp"', '"OTEL_LOGS_EXPORTER": "console"');
    fs.writeFileSync(file, edited);
    const undo = planFileUndo([record]);
    assert.ok(undo.ok);
    assert.deepStrictEqual(undo.leftAlone, ['OTEL_LOGS_EXPORTER']);
    applyFileChange(undo.change);
    const now = fs.readFileSync(file, 'utf8');
    assert.strictEqual(now, CLAUDE_SETTINGS.replace('"model": "opus"', '"model": "sonnet"').replace('"sk-ant-secret" // mine', '"sk-ant-secret", // mine\n    "OTEL_LOGS_EXPORTER": "console"'));
  });

  it('connecting again on another port, then Disconnect, still gives back the original', () => {
    const m = machine();
    const file = path.join(m.home, '.claude', 'settings.json');
    write(file, '{\n  "env": {\n    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9999"\n  }\n}\n');
    const original = fs.readFileSync(file, 'utf8');
    const first = plan(m.ctx(), 'claudeCode');
    assert.ok(first.notes.some((n) => n.includes('replaces the endpoint http://127.0.0.1:9999')), first.notes.join('|'));
    const r1 = applyFileChange(fileChange(first));
    const second = plan(m.ctx(5000), 'claudeCode');
    assert.strictEqual(summary(second.change!), 'env: ~OTEL_EXPORTER_OTLP_ENDPOINT');
    const r2 = applyFileChange(fileChange(second));
    const undo = planFileUndo([r1, r2]);
    assert.ok(undo.ok);
    applyFileChange(undo.change);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), original);
  });

  it('a malformed settings.json is reported, not overwritten', () => {
    const m = machine();
    const file = path.join(m.home, '.claude', 'settings.json');
    const broken = '{\n  "model": "opus",\n  "env": {\n';
    write(file, broken);
    const p = plan(m.ctx(), 'claudeCode');
    assert.strictEqual(p.state, 'broken');
    assert.match(p.reason ?? '', /settings\.json is not valid JSON \(line \d+, column \d+: \w+\); it is left as it is/);
    assert.strictEqual(p.change, undefined);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), broken);
    write(file, '{"env": ["x"]}');
    assert.match(plan(m.ctx(), 'claudeCode').reason ?? '', /"env" in settings\.json is not an object/);
  });

  it("Claude Code locked by the organisation's managed settings (a file or a drop-in) is shown as managed", () => {
    const m = machine();
    write(path.join(m.home, '.claude', 'settings.json'), '{}');
    write(path.join(m.system, 'claude-code', 'managed-settings.json'), '{"permissions": {"deny": []}}');
    assert.strictEqual(plan(m.ctx(), 'claudeCode').state, 'ready', 'managed settings that leave telemetry alone lock nothing');
    write(path.join(m.system, 'claude-code', 'managed-settings.d', '10-otel.json'), '{ // fleet\n "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.corp"}}');
    const p = plan(m.ctx(), 'claudeCode');
    assert.strictEqual(p.state, 'managed');
    assert.match(p.reason ?? '', /^managed by your organisation \(.*10-otel\.json sets OTEL_EXPORTER_OTLP_ENDPOINT\)$/);
    assert.match(previewText('Connect AI Tools', [p]), /# Claude Code: ~\/\.claude\/settings\.json\n# {3}managed by your organisation .*; not changed/);
    write(path.join(m.system, 'claude-code', 'managed-settings.json'), '{ not json');
    assert.match(plan(m.ctx(), 'claudeCode').reason ?? '', /^managed by your organisation \(.* is not valid JSON/);
  });

  it('Claude Code already exporting with headers, or with a logs endpoint of its own, is not redirected', () => {
    const m = machine();
    const file = path.join(m.home, '.claude', 'settings.json');
    write(file, '{"env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.corp", "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc"}}');
    assert.strictEqual(plan(m.ctx(), 'claudeCode').state, 'blocked');
    write(file, '{"env": {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:4318/v1/logs"}}');
    assert.match(plan(m.ctx(), 'claudeCode').reason ?? '', /OTEL_EXPORTER_OTLP_LOGS_ENDPOINT .* wins/);
  });

  it("Gemini CLI: the telemetry block (http, local, prompts off); its system settings lock it; an outfile blocks it", () => {
    const m = machine();
    const file = path.join(m.home, '.gemini', 'settings.json');
    const original = '{\n  "theme": "GitHub", // dark\n  "telemetry": {\n    "enabled": false\n  }\n}\n';
    write(file, original);
    const p = plan(m.ctx(), 'geminiCli');
    const record = applyFileChange(fileChange(p));
    assert.strictEqual(
      fs.readFileSync(file, 'utf8'),
      '{\n  "theme": "GitHub", // dark\n  "telemetry": {\n    "enabled": true,\n    "target": "local",\n    "otlpEndpoint": "http://127.0.0.1:4319",\n    "otlpProtocol": "http",\n    "logPrompts": false\n  }\n}\n',
    );
    const undo = planFileUndo([record]);
    assert.ok(undo.ok);
    applyFileChange(undo.change);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), original);

    write(file, '{"telemetry": {"outfile": "/tmp/t.log"}}');
    assert.strictEqual(plan(m.ctx(), 'geminiCli').state, 'blocked');
    write(path.join(m.system, 'gemini-cli', 'settings.json'), '{"telemetry": {"enabled": false}}');
    const managed = plan(m.ctx(), 'geminiCli');
    assert.strictEqual(managed.state, 'managed');
    assert.match(managed.reason ?? '', /gemini-cli\/settings\.json sets telemetry\)$/);
  });

  it("Codex: [otel] exporter in config.toml (full logs URL, json), undone byte for byte; managed_config.toml locks it", () => {
    const m = machine();
    const file = path.join(m.home, '.codex', 'config.toml');
    const original = '# my Codex\nmodel = "gpt-5"\n\n[otel]\nenvironment = "dev" # keep\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n';
    write(file, original);
    const record = applyFileChange(fileChange(plan(m.ctx(), 'codex')));
    const written = fs.readFileSync(file, 'utf8');
    assert.strictEqual(written, original.replace('[otel]\n', '[otel]\nexporter = { otlp-http = { endpoint = "http://127.0.0.1:4319/v1/logs", protocol = "json" } }\n'));
    const parsed = parseTomlConfig(written, 'config.toml');
    assert.ok(parsed.ok && (parsed.value.otel as Record<string, unknown>).environment === 'dev');
    assert.strictEqual(plan(m.ctx(), 'codex').state, 'connected');
    const undo = planFileUndo([record]);
    assert.ok(undo.ok);
    applyFileChange(undo.change);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), original);

    write(file, '[otel]\nexporter = { otlp-http = { endpoint = "https://otel.corp/v1/logs", protocol = "json", headers = { "x-key" = "k" } } }\n');
    assert.strictEqual(plan(m.ctx(), 'codex').state, 'blocked');
    write(file, 'model = \n');
    assert.match(plan(m.ctx(), 'codex').reason ?? '', /config\.toml is not valid TOML/);
    write(file, '');
    write(path.join(m.system, 'codex', 'managed_config.toml'), '[otel]\nexporter = "none"\n');
    assert.strictEqual(plan(m.ctx(), 'codex').state, 'managed');
  });

  it('GitHub Copilot Chat: its otel user settings, undone to what was there; a policy locks it', async () => {
    const m = machine();
    m.extensions.add('GitHub.copilot-chat');
    const key = (k: string) => `github.copilot.chat.otel.${k}`;
    m.settings.defaults.set(key('enabled'), false);
    m.settings.defaults.set(key('otlpEndpoint'), 'http://localhost:4318');
    m.settings.user.set(key('protocol'), 'http/protobuf');
    const p = plan(m.ctx(), 'copilotChat');
    assert.strictEqual(p.state, 'ready');
    assert.strictEqual(p.where, 'User settings');
    const change = p.change as SettingsChange;
    const record: SettingsRecord = await applySettingsChange(m.settings, change);
    assert.deepStrictEqual(Object.fromEntries(m.settings.user), {
      [key('enabled')]: true,
      [key('exporterType')]: 'otlp-http',
      [key('otlpEndpoint')]: 'http://127.0.0.1:4319',
      [key('protocol')]: 'http/json',
    });
    assert.match(previewText('Connect AI Tools', [p]), /-  "github\.copilot\.chat\.otel\.protocol": "http\/protobuf"\n\+  "github\.copilot\.chat\.otel\.protocol": "http\/json"/);
    const undo = planSettingsUndo([record], m.settings);
    assert.ok(undo.ok);
    await applySettingsChange(m.settings, undo.change);
    assert.deepStrictEqual(Object.fromEntries(m.settings.user), { [key('protocol')]: 'http/protobuf' });

    // a policy forcing what the defaults say shows only once a value is written: refused, taken back
    m.settings.policy.set(key('enabled'), false);
    const quiet = plan(m.ctx(), 'copilotChat');
    assert.strictEqual(quiet.state, 'ready');
    await assert.rejects(applySettingsChange(m.settings, quiet.change as SettingsChange), /managed by your organisation \(a policy sets github\.copilot\.chat\.otel\.enabled\); nothing changed/);
    assert.deepStrictEqual(Object.fromEntries(m.settings.user), { [key('protocol')]: 'http/protobuf' });
    // one forcing a value of its own is seen at once
    m.settings.policy.set(key('otlpEndpoint'), 'https://otel.corp');
    const locked = plan(m.ctx(), 'copilotChat');
    assert.strictEqual(locked.state, 'managed');
    assert.match(locked.reason ?? '', /policy sets github\.copilot\.chat\.otel\.(enabled|otlpEndpoint)/);
  });

  it('system paths per platform', () => {
    assert.deepStrictEqual(systemPaths('linux', {}).claudeManaged, ['/etc/claude-code/managed-settings.json', '/etc/claude-code/managed-settings.d']);
    assert.deepStrictEqual(systemPaths('darwin', {}).geminiSystem, ['/Library/Application Support/GeminiCli/settings.json']);
    assert.deepStrictEqual(systemPaths('win32', {}).claudeManaged[0], 'C:\\ProgramData\\ClaudeCode\\managed-settings.json');
    assert.deepStrictEqual(systemPaths('linux', { GEMINI_CLI_SYSTEM_SETTINGS_PATH: '/opt/g.json' }).geminiSystem, ['/opt/g.json']);
    assert.deepStrictEqual(systemPaths('linux', {}).codexManaged, ['/etc/codex/managed_config.toml']);
  });

  it('refuses to write a file that changed since the preview', () => {
    const m = machine();
    const file = path.join(m.home, '.claude', 'settings.json');
    write(file, '{}');
    const change = fileChange(plan(m.ctx(), 'claudeCode'));
    fs.writeFileSync(file, '{"model": "opus"}');
    assert.throws(() => applyFileChange(change), /changed since the preview/);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '{"model": "opus"}');
  });
});
