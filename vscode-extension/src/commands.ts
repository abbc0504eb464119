// The palette commands, and `dxTelemetry.recordUsage` for other extensions. Commands the user
// runs may show a message; recordUsage never does: it returns the sidecar's result or throws.

import * as vscode from 'vscode';
import type { SidecarController } from './client';
import { CLI_NAME } from './cliLauncher';
import type { ReportPanel } from './report';
import { TokenStore, validateToken } from './secrets';
import type { TerminalCli } from './terminalCli';
import { DayEntry, DxStatus, FLUSH_NOW, FlushResult, MARK_PUSHED, RESEND_DAY, UsageEvent } from './types';

const EXECUTE_COMMAND = 'workspace/executeCommand';

export interface CommandDeps {
  controller: SidecarController;
  tokens: TokenStore;
  report: ReportPanel;
  channel: vscode.LogOutputChannel;
  terminalCli: Pick<TerminalCli, 'problemNow'>;
  lastStatus: () => DxStatus | undefined;
}

interface DayRef {
  date: string;
  tool: string;
}

export function describeFlush(result: FlushResult): string {
  const parts: string[] = [];
  if (result.pushed.length) {
    const where = result.pushed.some((p) => p.destination === 'dx') ? 'DX' : 'the outbox';
    parts.push(`${result.pushed.length} day(s) pushed to ${where}`);
  }
  if (result.failed.length) {
    parts.push(`${result.failed.length} failed, DX refused them (${result.failed.map((f) => `${f.date} ${f.tool}: ${f.error}`).join('; ')})`);
  }
  const pending = result.pending ?? [];
  if (pending.length) {
    parts.push(`${pending.length} pending, DX was not reached (${pending.map((p) => `${p.date} ${p.tool}: ${p.error}; retried at ${p.retryAt}`).join('; ')})`);
  }
  if (result.unconfirmed.length) {
    parts.push(`${result.unconfirmed.length} unconfirmed (${result.unconfirmed.map((u) => `${u.date} ${u.tool}`).join(', ')})`);
  }
  const done = parts.length ? `DX Telemetry: ${parts.join(', ')}.` : 'DX Telemetry: nothing to push; every completed day is done.';
  const expired = result.expired ?? [];
  if (!expired.length) {
    return done;
  }
  return `${done} ${expired.length} expired, never pushed (${expired.map((e) => `${e.date} ${e.tool}`).join(', ')}): older than the backfill window, not pushed by themselves; "Re-send a Day…" pushes one anyway.`;
}

/** The days the user may decide on: unconfirmed and failed ones; expired ones may be re-sent too. */
export function decidableDays(status: DxStatus | undefined, resend = false): DayEntry[] {
  return (status?.days ?? []).filter((d) => d.state === 'unconfirmed' || d.state === 'failed' || (resend && d.state === 'expired'));
}

export function registerCommands(context: vscode.ExtensionContext, deps: CommandDeps): void {
  const { controller } = deps;
  const reg = (id: string, fn: (...args: unknown[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  reg('dxTelemetry.recordUsage', (event: unknown) => controller.recordUsage(event as UsageEvent));

  reg('dxTelemetry.showUsage', () => userAction(() => deps.report.show()));

  reg('dxTelemetry.showLog', () => deps.channel.show(true));

  reg('dxTelemetry.openUsageInTerminal', () =>
    userAction(async () => {
      const problem = await deps.terminalCli.problemNow();
      if (problem) {
        throw new Error(`terminals have no ${CLI_NAME}: ${problem}`);
      }
      // a new terminal each time: one the user has typed in may be running something
      const terminal = vscode.window.createTerminal({ name: 'DX Telemetry' });
      terminal.show();
      terminal.sendText(`${CLI_NAME} report`);
    }),
  );

  reg('dxTelemetry.flushNow', () =>
    userAction(async () => {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'DX Telemetry: pushing completed days…' },
        () => controller.request<FlushResult>(EXECUTE_COMMAND, { command: FLUSH_NOW, arguments: [] }),
      );
      const text = describeFlush(result);
      if (result.failed.length || (result.pending ?? []).length || result.unconfirmed.length) {
        void vscode.window.showWarningMessage(text);
      } else {
        void vscode.window.showInformationMessage(text);
      }
      void controller.refreshStatus().catch(() => undefined);
      return result;
    }),
  );

  reg('dxTelemetry.resendDay', (arg?: unknown) =>
    userAction(async () => {
      const day = await chooseDay(arg, deps, 'Re-send which day to DX?', true);
      if (!day) {
        return undefined;
      }
      const known = deps.lastStatus()?.days.find((d) => d.date === day.date && d.tool === day.tool);
      if (known?.state === 'unconfirmed') {
        const ok = await vscode.window.showWarningMessage(
          `DX may already have ${day.date} (${day.tool}): its answer to the first push was lost. Check DX first; re-sending a day DX already has may count it twice.`,
          { modal: true },
          'Re-send',
        );
        if (ok !== 'Re-send') {
          return undefined;
        }
      }
      const result = await controller.request<FlushResult>(EXECUTE_COMMAND, { command: RESEND_DAY, arguments: [day.date, day.tool] });
      void vscode.window.showInformationMessage(describeFlush(result));
      void controller.refreshStatus().catch(() => undefined);
      return result;
    }),
  );

  reg('dxTelemetry.markPushed', (arg?: unknown) =>
    userAction(async () => {
      const day = await chooseDay(arg, deps, 'Which day does DX already have?');
      if (!day) {
        return undefined;
      }
      const result = await controller.request<unknown>(EXECUTE_COMMAND, { command: MARK_PUSHED, arguments: [day.date, day.tool] });
      void vscode.window.showInformationMessage(`DX Telemetry: ${day.date} (${day.tool}) is recorded as pushed; it will not be sent.`);
      void controller.refreshStatus().catch(() => undefined);
      return result;
    }),
  );

  reg('dxTelemetry.setApiToken', () =>
    userAction(async () => {
      const value = await vscode.window.showInputBox({
        title: 'DX Telemetry: API Token',
        prompt: 'Your DX Data Cloud API token. It is kept in VS Code\'s secret storage and given only to the DX Telemetry sidecar.',
        password: true,
        ignoreFocusOut: true,
        validateInput: validateToken,
      });
      if (value === undefined) {
        return;
      }
      await deps.tokens.set(value);
      void vscode.window.showInformationMessage('DX Telemetry: token saved. The sidecar restarts with it.');
    }),
  );

  reg('dxTelemetry.clearApiToken', () =>
    userAction(async () => {
      await deps.tokens.clear();
      const now = await deps.tokens.effective();
      void vscode.window.showInformationMessage(
        now.source === 'environment'
          ? 'DX Telemetry: stored token removed. DX_DATA_CLOUD_TOKEN from the environment is used now.'
          : 'DX Telemetry: token removed. Days are not pushed to DX until a token is set.',
      );
    }),
  );

  reg('dxTelemetry.openDataFolder', () =>
    userAction(async () => {
      const status = deps.lastStatus() ?? (await controller.refreshStatus());
      if (!status) {
        throw new Error('the sidecar is not running, so its data folder is not known');
      }
      const uri = vscode.Uri.file(status.dataDir);
      if (vscode.env.remoteName === undefined && vscode.env.uiKind === vscode.UIKind.Desktop) {
        await vscode.commands.executeCommand('revealFileInOS', uri);
      } else {
        await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
      }
    }),
  );
}

async function chooseDay(arg: unknown, deps: CommandDeps, title: string, resend = false): Promise<DayRef | undefined> {
  const given = asDayRef(arg);
  if (given) {
    return given;
  }
  const status = (await deps.controller.refreshStatus().catch(() => undefined)) ?? deps.lastStatus();
  const days = decidableDays(status, resend);
  const which = resend ? 'unconfirmed, failed or expired' : 'unconfirmed or failed';
  if (!days.length) {
    void vscode.window.showInformationMessage(`DX Telemetry: no day is ${which}.`);
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    days.map((d) => ({ label: `${d.date}  ${d.tool}`, description: d.state, detail: d.error, day: { date: d.date, tool: d.tool } })),
    { title, placeHolder: `An ${which} day` },
  );
  return picked?.day;
}

function asDayRef(arg: unknown): DayRef | undefined {
  const a = arg as Partial<DayRef> | undefined;
  return a && typeof a.date === 'string' && typeof a.tool === 'string' ? { date: a.date, tool: a.tool } : undefined;
}

/** A command the user ran: errors are shown (that is the user asking), and also returned as undefined. */
async function userAction<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    void vscode.window.showErrorMessage(`DX Telemetry: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}
