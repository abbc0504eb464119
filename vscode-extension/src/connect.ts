// DX Telemetry: Connect AI Tools… and Disconnect AI Tools…: point the AI tools found on this
// machine at the sidecar's OTLP receiver, with the developer's consent (a preview of the exact
// change per tool, then a list to tick), and undo exactly that. What was there before is kept in
// the extension's globalState: only the old values of the keys we set, never the rest of a file.

import * as os from 'os';
import * as vscode from 'vscode';
import { RECEIVER_SETTING, ToolContext, ToolId, ToolPlan, planTools, systemPaths } from './aiTools';
import { previewText, summary } from './connectPreview';
import type { Json } from './jsonConfig';
import type { Logger } from './log';
import { SECTION, expandPath, userValue } from './settings';
import {
  ChangeRecord,
  FileRecord,
  SettingsRecord,
  SettingsStore,
  applyFileChange,
  applySettingsChange,
  planFileUndo,
  planSettingsUndo,
} from './toolChange';

export const CONNECTIONS_KEY = 'dxTelemetry.connections';
export const DEFAULT_OTLP_PORT = 4319;
const PREVIEW_SCHEME = 'dx-telemetry-preview';

/** One applied change, as kept in globalState. */
export interface StoredConnection {
  tool: ToolId;
  name: string;
  where: string;
  /** The remote (SSH, WSL, ...) and host it was made on: globalState is shared between them. */
  remote: string;
  host: string;
  at: string;
  record: ChangeRecord;
}

interface PlanItem extends vscode.QuickPickItem {
  plan: ToolPlan;
}

export function registerConnectCommands(context: vscode.ExtensionContext, log: Logger): void {
  const previews = new Previews();
  context.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, previews),
    vscode.commands.registerCommand('dxTelemetry.connectAiTools', () => shown(() => connect(context, previews, log))),
    vscode.commands.registerCommand('dxTelemetry.disconnectAiTools', () => shown(() => disconnect(context, previews, log))),
  );
}

async function connect(context: vscode.ExtensionContext, previews: Previews, log: Logger): Promise<void> {
  const ctx = toolContext();
  const plans = planTools(ctx);
  const tools = plans.filter((p) => p.tool !== 'receiver');
  const ready = plans.filter((p) => p.state === 'ready');
  if (!tools.some((p) => p.state === 'ready' || p.state === 'connected')) {
    void vscode.window.showInformationMessage(`DX Telemetry: no AI tool to connect. ${states(tools)}`);
    return;
  }
  if (!ready.length) {
    void vscode.window.showInformationMessage(`DX Telemetry: nothing to change. ${states(plans)}`);
    return;
  }
  const picked = await choose(previews, 'Connect AI Tools', plans, ready, `Tick the changes to make (the exact lines are in the preview). ${states(plans.filter((p) => p.state !== 'ready'))}`);
  if (!picked.length) {
    return;
  }
  const stored = loadConnections(context);
  const done: string[] = [];
  const failed: string[] = [];
  for (const plan of picked) {
    try {
      const change = plan.change!;
      const record = change.kind === 'file' ? applyFileChange(change) : await applySettingsChange(ctx.settings, change);
      stored.push({ tool: plan.tool, name: plan.name, where: plan.where, remote: vscode.env.remoteName ?? '', host: os.hostname(), at: new Date().toISOString(), record });
      await context.globalState.update(CONNECTIONS_KEY, stored); // after each: a later failure keeps this undoable
      log.info(`Connect AI Tools: ${plan.name}: changed ${plan.where}`);
      done.push(plan.name);
    } catch (error) {
      failed.push(`${plan.name}: ${message(error)}`);
      log.warn(`Connect AI Tools: ${plan.name}: ${message(error)}`);
    }
  }
  const receiverOff = ctx.settings.effective(RECEIVER_SETTING) !== true;
  const connected = done.filter((name) => !picked.some((p) => p.tool === 'receiver' && p.name === name));
  const text = [
    connected.length ? `connected ${connected.join(', ')}: from their next session on they send their usage to 127.0.0.1:${ctx.port}.` : '',
    connected.length < done.length ? `The receiver (${RECEIVER_SETTING}) is on.` : '',
    failed.length ? `Not changed: ${failed.join('; ')}.` : '',
    receiverOff ? `The receiver is off (${RECEIVER_SETTING}): nothing is received until it is on.` : '',
    done.length ? 'To undo: DX Telemetry: Disconnect AI Tools…' : '',
  ].filter(Boolean);
  if (failed.length || receiverOff) {
    void vscode.window.showWarningMessage(`DX Telemetry: ${text.join(' ')}`);
  } else {
    void vscode.window.showInformationMessage(`DX Telemetry: ${text.join(' ')}`);
  }
}

async function disconnect(context: vscode.ExtensionContext, previews: Previews, log: Logger): Promise<void> {
  const settings = userSettings();
  const all = loadConnections(context);
  const here = all.filter(onThisMachine);
  if (!here.length) {
    void vscode.window.showInformationMessage('DX Telemetry: Connect AI Tools has changed nothing here that is left to undo.');
    return;
  }
  const plans: ToolPlan[] = [];
  for (const tool of [...new Set(here.map((c) => c.tool))]) {
    const mine = here.filter((c) => c.tool === tool);
    const records = mine.map((c) => c.record);
    const planned = records[0].kind === 'file' ? planFileUndo(records as FileRecord[]) : planSettingsUndo(records as SettingsRecord[], settings);
    const notes = planned.leftAlone?.length ? [`left as they are now (changed since): ${planned.leftAlone.join(', ')}`] : [];
    const base = { tool, name: mine[0].name, where: mine[0].where, notes };
    plans.push(planned.ok ? { ...base, state: 'ready', change: planned.change } : { ...base, state: planned.state, reason: planned.reason });
  }
  const ready = plans.filter((p) => p.state === 'ready');
  // records with nothing left to undo are dropped; broken files keep theirs for a later try
  const settled = new Set(plans.filter((p) => p.state === 'connected').map((p) => p.tool));
  const keep = (done: Set<ToolId>) => all.filter((c) => !onThisMachine(c) || !(done.has(c.tool) || settled.has(c.tool)));
  if (!ready.length) {
    await context.globalState.update(CONNECTIONS_KEY, keep(new Set()));
    void vscode.window.showInformationMessage(`DX Telemetry: nothing left to undo. ${states(plans)}`);
    return;
  }
  const picked = await choose(previews, 'Disconnect AI Tools', plans, ready, 'Tick what to put back as it was (the exact lines are in the preview)');
  if (!picked.length) {
    return;
  }
  const done = new Set<ToolId>();
  const failed: string[] = [];
  for (const plan of picked) {
    try {
      const change = plan.change!;
      if (change.kind === 'file') {
        applyFileChange(change);
      } else {
        await applySettingsChange(settings, change);
      }
      done.add(plan.tool);
      log.info(`Disconnect AI Tools: ${plan.name}: restored ${plan.where}`);
    } catch (error) {
      failed.push(`${plan.name}: ${message(error)}`);
      log.warn(`Disconnect AI Tools: ${plan.name}: ${message(error)}`);
    }
  }
  await context.globalState.update(CONNECTIONS_KEY, keep(done));
  const names = picked.filter((p) => done.has(p.tool)).map((p) => p.name);
  const text = [names.length ? `put back ${names.join(', ')} as before.` : '', failed.length ? `Not changed: ${failed.join('; ')}.` : ''].filter(Boolean).join(' ');
  if (failed.length) {
    void vscode.window.showWarningMessage(`DX Telemetry: ${text}`);
  } else {
    void vscode.window.showInformationMessage(`DX Telemetry: ${text}`);
  }
}

/** Shows the preview beside, asks which changes to make, closes the preview; returns the ticked plans. */
async function choose(previews: Previews, title: string, plans: ToolPlan[], ready: ToolPlan[], placeHolder: string): Promise<ToolPlan[]> {
  const uri = previews.open(title, previewText(title, plans));
  try {
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true, preserveFocus: true });
    const items: PlanItem[] = ready.map((plan) => ({
      label: plan.name,
      description: plan.where,
      detail: [summary(plan.change!), ...plan.notes].join(' · '),
      plan,
    }));
    const picked = await vscode.window.showQuickPick(items, { canPickMany: true, ignoreFocusOut: true, title: `DX Telemetry: ${title}`, placeHolder });
    return (picked ?? []).map((i) => i.plan);
  } finally {
    await previews.close(uri);
  }
}

function states(plans: ToolPlan[]): string {
  return plans.map((p) => `${p.name}: ${p.reason ?? p.state}.`).join(' ');
}

function loadConnections(context: vscode.ExtensionContext): StoredConnection[] {
  const value = context.globalState.get<unknown>(CONNECTIONS_KEY);
  return Array.isArray(value) ? (value as StoredConnection[]) : [];
}

/** A local window's records are this machine's (its host name may change with the network); a remote's must match its host. */
function onThisMachine(c: StoredConnection): boolean {
  const remote = vscode.env.remoteName ?? '';
  return c.remote === remote && (remote === '' || c.host === os.hostname());
}

const inspectSetting = (key: string) => vscode.workspace.getConfiguration().inspect(key);

function toolContext(): ToolContext {
  // user and remote settings only, like the sidecar's: no workspace picks the port or the file written
  const port = userValue(inspectSetting, `${SECTION}.otlp.port`);
  return {
    home: os.homedir(),
    env: process.env,
    platform: process.platform,
    port: typeof port === 'number' && Number.isInteger(port) && port >= 1024 && port <= 65535 ? port : DEFAULT_OTLP_PORT,
    sourcePath: (source) => {
      const value = userValue(inspectSetting, `${SECTION}.sources.${source}.path`);
      return typeof value === 'string' && value.trim() ? expandPath(value.trim(), process.env, os.homedir()) : '';
    },
    hasExtension: (id) => vscode.extensions.getExtension(id) !== undefined,
    settings: userSettings(),
    system: systemPaths(process.platform, process.env),
  };
}

function userSettings(): SettingsStore {
  return {
    inspect: inspectSetting,
    effective: (key) => vscode.workspace.getConfiguration().get(key),
    updateGlobal: (key, value: Json | undefined) => vscode.workspace.getConfiguration().update(key, value, vscode.ConfigurationTarget.Global),
  };
}

/** Read-only preview documents (a content provider: no "save changes?" when they close). */
class Previews implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private serial = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }

  open(title: string, text: string): vscode.Uri {
    this.serial += 1;
    const uri = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: `/${title}.diff`, query: String(this.serial) });
    this.texts.set(uri.toString(), text);
    return uri;
  }

  async close(uri: vscode.Uri): Promise<void> {
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === uri.toString());
    await vscode.window.tabGroups.close(tabs).then(undefined, () => false);
    this.texts.delete(uri.toString());
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A command the user ran: its error is shown to them. */
async function shown(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    void vscode.window.showErrorMessage(`DX Telemetry: ${message(error)}`);
  }
}
