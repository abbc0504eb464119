// The AI tools Connect AI Tools can point at the sidecar's OTLP receiver: where each keeps its
// configuration, what it takes to send its usage events to 127.0.0.1:<port> over http/json, and
// where an organisation's managed settings would lock it. Only tool-scoped knobs are used, never
// generic OTEL_* variables in terminals (they would capture the developer's own programs too).

import * as fs from 'fs';
import * as path from 'path';
import { Json, JsonObject, parseJsonConfig } from './jsonConfig';
import { userValue } from './settings';
import { parseTomlConfig } from './tomlConfig';
import { Change, FileTarget, Planned, SettingsStore, planFileKeys, planSettings, policyValue, readGroup, readText, sameJson } from './toolChange';

export type ToolId = 'receiver' | 'claudeCode' | 'geminiCli' | 'codex' | 'copilotChat';

/** ready: a change to show; connected: nothing to do; absent: not on this machine; managed: locked by the organisation; broken: its file is malformed; blocked: left to the developer. */
export type ToolState = 'ready' | 'connected' | 'absent' | 'managed' | 'broken' | 'blocked';

export interface ToolPlan {
  tool: ToolId;
  name: string;
  /** Where the change goes: a file (`~/...`) or "User settings". */
  where: string;
  state: ToolState;
  reason?: string;
  change?: Change;
  /** What the developer should know about the change (what it replaces, when it applies). */
  notes: string[];
}

export interface SystemPaths {
  /** Claude Code's managed-settings.json files and managed-settings.d folders. */
  claudeManaged: string[];
  /** Gemini CLI's system settings files (they override the user's). */
  geminiSystem: string[];
  /** Codex's managed configuration files. */
  codexManaged: string[];
}

export interface ToolContext {
  home: string;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** The receiver's port (dxTelemetry.otlp.port). */
  port: number;
  /** dxTelemetry.sources.<source>.path, expanded ('' when unset). */
  sourcePath(source: string): string;
  hasExtension(id: string): boolean;
  settings: SettingsStore;
  system: SystemPaths;
}

export const RECEIVER_SETTING = 'dxTelemetry.otlp.enabled';
const COPILOT = 'github.copilot.chat.otel.';

export function systemPaths(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): SystemPaths {
  const programData = env.ProgramData ?? 'C:\\ProgramData';
  const claude = platform === 'darwin' ? '/Library/Application Support/ClaudeCode' : platform === 'win32' ? `${programData}\\ClaudeCode` : '/etc/claude-code';
  const sep = platform === 'win32' ? '\\' : '/';
  const gemini = env.GEMINI_CLI_SYSTEM_SETTINGS_PATH
    ? env.GEMINI_CLI_SYSTEM_SETTINGS_PATH
    : platform === 'darwin'
      ? '/Library/Application Support/GeminiCli/settings.json'
      : platform === 'win32'
        ? `${programData}\\gemini-cli\\settings.json`
        : '/etc/gemini-cli/settings.json';
  return {
    claudeManaged: [`${claude}${sep}managed-settings.json`, `${claude}${sep}managed-settings.d`],
    geminiSystem: [gemini],
    codexManaged: platform === 'win32' ? [] : ['/etc/codex/managed_config.toml'],
  };
}

export function planTools(ctx: ToolContext): ToolPlan[] {
  return [planReceiver(ctx), planClaudeCode(ctx), planGeminiCli(ctx), planCodex(ctx), planCopilotChat(ctx)];
}

const endpoint = (ctx: ToolContext) => `http://127.0.0.1:${ctx.port}`;

function planReceiver(ctx: ToolContext): ToolPlan {
  const base = { tool: 'receiver' as const, name: `DX Telemetry's OTLP receiver (127.0.0.1:${ctx.port})`, where: 'User settings', notes: [] as string[] };
  // what the sidecar uses: the user's value (a workspace's is ignored, settings.ts)
  if (userValue((key) => ctx.settings.inspect(key), RECEIVER_SETTING) === true) {
    return { ...base, state: 'connected', reason: 'on' };
  }
  return fromPlanned(base, planSettings(ctx.settings, { [RECEIVER_SETTING]: true }));
}

function planClaudeCode(ctx: ToolContext): ToolPlan {
  const dir = ctx.sourcePath('claudeCode') || ctx.env.CLAUDE_CONFIG_DIR?.trim() || path.join(ctx.home, '.claude');
  const target: FileTarget = { file: path.join(dir, 'settings.json'), format: 'json', group: 'env' };
  const base = { tool: 'claudeCode' as const, name: 'Claude Code', where: shown(target.file, ctx.home), notes: [] as string[] };
  if (!exists(dir) && !onPath('claude', ctx) && !ctx.hasExtension('anthropic.claude-code')) {
    return { ...base, state: 'absent', reason: 'not found on this machine' };
  }
  const managed = claudeManaged(ctx.system.claudeManaged);
  if (managed) {
    return { ...base, state: 'managed', reason: managed };
  }
  const desired = {
    CLAUDE_CODE_ENABLE_TELEMETRY: '1',
    OTEL_LOGS_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint(ctx),
  };
  return planFileTool(base, target, desired, (env) => {
    const logs = env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT;
    if (typeof logs === 'string' && logs) {
      return { blocked: `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT (${logs}) is set there and wins over the endpoint this would set` };
    }
    if (env.OTEL_EXPORTER_OTLP_HEADERS !== undefined && env.OTEL_EXPORTER_OTLP_ENDPOINT !== desired.OTEL_EXPORTER_OTLP_ENDPOINT) {
      return { blocked: `it already sends telemetry to ${String(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'an endpoint')} with OTEL_EXPORTER_OTLP_HEADERS; not redirected` };
    }
    const notes = ['applies to Claude Code sessions started after the change (the CLI, the IDE extension, the desktop app)'];
    if (typeof env.OTEL_EXPORTER_OTLP_ENDPOINT === 'string' && env.OTEL_EXPORTER_OTLP_ENDPOINT !== desired.OTEL_EXPORTER_OTLP_ENDPOINT) {
      notes.unshift(`replaces the endpoint ${env.OTEL_EXPORTER_OTLP_ENDPOINT}: what else Claude Code exports (metrics) goes to 127.0.0.1 too`);
    }
    return { notes };
  });
}

function planGeminiCli(ctx: ToolContext): ToolPlan {
  const dir = ctx.sourcePath('geminiCli') || path.join(ctx.home, '.gemini');
  const target: FileTarget = { file: path.join(dir, 'settings.json'), format: 'json', group: 'telemetry' };
  const base = { tool: 'geminiCli' as const, name: 'Gemini CLI', where: shown(target.file, ctx.home), notes: [] as string[] };
  if (!exists(dir) && !onPath('gemini', ctx)) {
    return { ...base, state: 'absent', reason: 'not found on this machine' };
  }
  for (const file of ctx.system.geminiSystem) {
    const locked = jsonFileSets(file, (value) => (value.telemetry !== undefined ? 'telemetry' : undefined));
    if (locked) {
      return { ...base, state: 'managed', reason: locked };
    }
  }
  // logPrompts defaults to true: prompts would travel to the receiver, which drops them anyway
  const desired = { enabled: true, target: 'local', otlpEndpoint: endpoint(ctx), otlpProtocol: 'http', logPrompts: false };
  return planFileTool(base, target, desired, (telemetry) => {
    if (telemetry.outfile !== undefined) {
      return { blocked: 'telemetry.outfile is set there: Gemini CLI then writes its telemetry to that file instead of sending it' };
    }
    const notes = Object.keys(ctx.env)
      .filter((k) => k.startsWith('GEMINI_TELEMETRY_'))
      .map((k) => `${k} is set in this editor's environment and wins over settings.json where Gemini CLI inherits it`);
    if (typeof telemetry.otlpEndpoint === 'string' && telemetry.otlpEndpoint !== desired.otlpEndpoint) {
      notes.unshift(`replaces the endpoint ${telemetry.otlpEndpoint}`);
    }
    return { notes: [...notes, 'applies to Gemini CLI sessions started after the change'] };
  });
}

function planCodex(ctx: ToolContext): ToolPlan {
  const dir = ctx.sourcePath('codex') || ctx.env.CODEX_HOME?.trim() || path.join(ctx.home, '.codex');
  const target: FileTarget = { file: path.join(dir, 'config.toml'), format: 'toml', group: 'otel' };
  const base = { tool: 'codex' as const, name: 'Codex', where: shown(target.file, ctx.home), notes: [] as string[] };
  if (!exists(dir) && !onPath('codex', ctx) && !ctx.hasExtension('openai.chatgpt')) {
    return { ...base, state: 'absent', reason: 'not found on this machine' };
  }
  const managedFiles = ctx.platform === 'win32' ? [path.join(dir, 'managed_config.toml')] : ctx.system.codexManaged;
  for (const file of managedFiles) {
    const locked = tomlFileSetsOtel(file);
    if (locked) {
      return { ...base, state: 'managed', reason: locked };
    }
  }
  // the endpoint is used as it is: the full URL of the logs signal
  const desired = { exporter: { 'otlp-http': { endpoint: `${endpoint(ctx)}/v1/logs`, protocol: 'json' } } };
  return planFileTool(base, target, desired, (otel) => {
    const exporter = otel.exporter as JsonObject | undefined;
    const current = exporter && typeof exporter === 'object' ? ((exporter['otlp-http'] ?? exporter['otlp-grpc']) as JsonObject | undefined) : undefined;
    if (current && typeof current === 'object' && current.headers !== undefined) {
      return { blocked: `it already sends its logs to ${String(current.endpoint)} with headers; not redirected` };
    }
    const notes = ['applies to Codex sessions started after the change (the CLI and the IDE extension)'];
    if (exporter !== undefined && !sameJson(exporter, desired.exporter)) {
      notes.unshift(`replaces exporter = ${JSON.stringify(exporter)}`);
    }
    return { notes };
  });
}

function planCopilotChat(ctx: ToolContext): ToolPlan {
  const base = { tool: 'copilotChat' as const, name: 'GitHub Copilot Chat', where: 'User settings', notes: [] as string[] };
  if (!ctx.hasExtension('GitHub.copilot-chat') && ctx.settings.inspect(`${COPILOT}enabled`)?.defaultValue === undefined) {
    return { ...base, state: 'absent', reason: 'not installed in this editor' };
  }
  const desired: Record<string, Json> = {
    [`${COPILOT}enabled`]: true,
    [`${COPILOT}exporterType`]: 'otlp-http',
    [`${COPILOT}otlpEndpoint`]: endpoint(ctx),
    [`${COPILOT}protocol`]: 'http/json',
  };
  for (const key of [...Object.keys(desired), `${COPILOT}headers`]) {
    if (policyValue(ctx.settings, key)) {
      return { ...base, state: 'managed', reason: `managed by your organisation (a policy sets ${key})` };
    }
    const i = ctx.settings.inspect(key);
    if (i && (i.workspaceValue !== undefined || i.workspaceFolderValue !== undefined)) {
      base.notes.push(`this workspace sets ${key}, which wins over the user setting here`);
    }
  }
  const headers = ctx.settings.effective(`${COPILOT}headers`);
  const current = ctx.settings.effective(`${COPILOT}otlpEndpoint`);
  if (headers && typeof headers === 'object' && Object.keys(headers).length && current !== desired[`${COPILOT}otlpEndpoint`]) {
    return { ...base, state: 'blocked', reason: `it already sends telemetry to ${String(current)} with headers; not redirected` };
  }
  for (const name of ['COPILOT_OTEL_ENABLED', 'COPILOT_OTEL_ENDPOINT', 'COPILOT_OTEL_PROTOCOL', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    if (ctx.env[name]) {
      base.notes.push(`${name} is set in this editor's environment and wins over the setting`);
    }
  }
  base.notes.push('applies once Copilot Chat restarts (reload the window)');
  return fromPlanned(base, planSettings(ctx.settings, desired));
}

// -- helpers ---------------------------------------------------------------------------------------

type Base = Pick<ToolPlan, 'tool' | 'name' | 'where' | 'notes'>;

/** Reads the file's group; `check` may block the change or add notes; then the change itself. */
function planFileTool(base: Base, target: FileTarget, desired: Record<string, Json>, check: (group: JsonObject) => { blocked?: string; notes?: string[] }): ToolPlan {
  let text: string | undefined;
  try {
    text = readText(target.file);
  } catch (error) {
    return { ...base, state: 'broken', reason: `${target.file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
  }
  const group = readGroup(target, text);
  if (group.ok) {
    const verdict = check(group.group ?? {});
    if (verdict.blocked) {
      return { ...base, state: 'blocked', reason: verdict.blocked };
    }
    base.notes.push(...(verdict.notes ?? []));
  }
  return fromPlanned(base, planFileKeys(target, desired, text));
}

function fromPlanned(base: Base, planned: Planned<Change>): ToolPlan {
  return planned.ok ? { ...base, state: 'ready', change: planned.change } : { ...base, state: planned.state, reason: planned.reason };
}

const CLAUDE_LOCKED = /^(CLAUDE_CODE_ENABLE_TELEMETRY|OTEL_LOGS_EXPORTER|OTEL_EXPORTER_OTLP_(LOGS_)?(ENDPOINT|PROTOCOL|HEADERS))$/;

/** Why Claude Code's managed settings lock its telemetry (they win over the user's, and remove a user endpoint). */
function claudeManaged(paths: string[]): string | undefined {
  const files: string[] = [];
  for (const p of paths) {
    if (p.endsWith('.d')) {
      try {
        files.push(...fs.readdirSync(p).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(p, f)));
      } catch {
        // no drop-in folder
      }
    } else {
      files.push(p);
    }
  }
  for (const file of files) {
    const locked = jsonFileSets(file, (value) => {
      const env = value.env;
      const keys = env && typeof env === 'object' && !Array.isArray(env) ? Object.keys(env).filter((k) => CLAUDE_LOCKED.test(k)) : [];
      return keys.length ? keys.join(', ') : undefined;
    });
    if (locked) {
      return locked;
    }
  }
  return undefined;
}

/** "managed by your organisation (...)" when a system file sets what `sets` finds, or cannot be read. */
function jsonFileSets(file: string, sets: (value: JsonObject) => string | undefined): string | undefined {
  let text: string | undefined;
  try {
    text = readText(file);
  } catch (error) {
    return `managed by your organisation (${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  if (text === undefined) {
    return undefined;
  }
  const parsed = parseJsonConfig(text, file);
  if (!parsed.ok) {
    return `managed by your organisation (${parsed.error})`;
  }
  const what = sets(parsed.value);
  return what ? `managed by your organisation (${file} sets ${what})` : undefined;
}

function tomlFileSetsOtel(file: string): string | undefined {
  let text: string | undefined;
  try {
    text = readText(file);
  } catch (error) {
    return `managed by your organisation (${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  if (text === undefined) {
    return undefined;
  }
  const parsed = parseTomlConfig(text, file);
  if (!parsed.ok) {
    return `managed by your organisation (${parsed.error})`;
  }
  return parsed.value.otel !== undefined ? `managed by your organisation (${file} sets [otel])` : undefined;
}

function exists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether a program is on the extension host's PATH. */
function onPath(name: string, ctx: ToolContext): boolean {
  const names = ctx.platform === 'win32' ? [`${name}.exe`, `${name}.cmd`, name] : [name];
  const dirs = (ctx.env.PATH ?? ctx.env.Path ?? '').split(ctx.platform === 'win32' ? ';' : ':').filter(Boolean);
  return dirs.some((d) => names.some((n) => {
    try {
      return fs.statSync(path.join(d, n)).isFile();
    } catch {
      return false;
    }
  }));
}

/** A path as the developer knows it: `~/.claude/settings.json`. */
export function shown(file: string, home: string): string {
  return file === home || file.startsWith(home + path.sep) ? `~${file.slice(home.length)}` : file;
}
