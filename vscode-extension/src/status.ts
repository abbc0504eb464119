// The status bar item: `DX <today's tokens>`, a warning icon with the reason in the tooltip when
// something needs the user, kept current by dxTelemetry/statusChanged. The text and tooltip are
// computed by pure functions (tested without VS Code); StatusBar only applies them.

import * as vscode from 'vscode';
import type { PhaseInfo } from './client';
import { DxStatus, totalTokens } from './types';

export const STATUS_ITEM_ID = 'dxTelemetry.status';

/** 4,642 below ten thousand; 46.4k, 464k; 4.6M; 4.6B. */
export function formatTokens(n: number): string {
  const abs = Math.abs(n);
  if (abs < 10_000) {
    return Math.round(n).toLocaleString('en-US');
  }
  const units: Array<[number, string]> = [
    [1e3, 'k'],
    [1e6, 'M'],
    [1e9, 'B'],
  ];
  let i = abs >= 1e9 ? 2 : abs >= 1e6 ? 1 : 0;
  for (; i < units.length; i += 1) {
    const [size, suffix] = units[i];
    const v = n / size;
    let text = v.toFixed(Math.abs(v) < 100 ? 1 : 0);
    if (text.endsWith('.0')) {
      text = text.slice(0, -2);
    }
    if (Math.abs(parseFloat(text)) < 1000 || i === units.length - 1) {
      return `${text}${suffix}`; // 999,960 would read 1000k: the next unit says 1M
    }
  }
  return String(n);
}

export function formatCents(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}

export function todayTokens(status: DxStatus): number {
  return Object.values(status.today.tools).reduce((sum, t) => sum + totalTokens(t), 0);
}

export function todaySpendCents(status: DxStatus): number {
  return Object.values(status.today.tools).reduce((sum, t) => sum + t.spend_cents, 0);
}

/** What needs the user, one line each; empty when all is well. */
export function attentionReasons(status: DxStatus): string[] {
  const reasons = [...status.config.problems];
  for (const day of status.days) {
    if (day.state === 'failed') {
      reasons.push(`Push failed for ${day.date} (${day.tool}): ${day.error ?? 'DX refused it'}`);
    } else if (day.state === 'unconfirmed') {
      reasons.push(
        `DX did not confirm ${day.date} (${day.tool})${day.error ? `: ${day.error}` : ''}. ` +
          'Check DX, then run "DX Telemetry: Re-send" or "Mark … as Pushed".',
      );
    }
  }
  return reasons;
}

/** Transient trouble that fixes itself (shown, no warning icon). */
export function retryNotes(status: DxStatus): string[] {
  return status.days
    .filter((d) => d.state === 'pending' && d.retryAt)
    .map((d) => `${d.date} (${d.tool}) is pending: DX was not reached; it will be retried at ${d.retryAt}${d.error ? `: ${d.error}` : ''}`);
}

/**
 * Days that left the backfill window unpushed: nothing will push them by themselves, and that
 * may be what the user wants (old history read from a tool's logs), so a note, not a warning.
 */
export function expiredNotes(status: DxStatus): string[] {
  const expired = status.days.filter((d) => d.state === 'expired');
  if (!expired.length) {
    return [];
  }
  return [
    `Expired, never pushed (older than the backfill window, dxTelemetry.flush.backfillDays): ${expired.map((d) => `${d.date} (${d.tool})`).join(', ')}.`,
    'They are not pushed by themselves: "DX Telemetry: Re-send a Day…" pushes one anyway, or leave them.',
  ];
}

/** DX answered 401/403: the one case that earns a notification nobody asked for (once per token). */
export function tokenRejected(status: DxStatus): boolean {
  const pattern = /refused the token/i;
  return status.config.problems.some((p) => pattern.test(p)) || status.days.some((d) => d.state === 'failed' && pattern.test(d.error ?? ''));
}

/** The settings the machine's administrator set, one line each, for the tooltip. */
export function managedLines(status: DxStatus): string[] {
  const managed = status.config.managed;
  const entries = Object.entries(managed?.values ?? {});
  if (!managed || !entries.length) {
    return [];
  }
  const overridden = new Set(managed.overrides);
  return [
    'Managed for this machine (your settings cannot change these):',
    ...entries.map(
      ([key, { value, from }]) =>
        `  ${key}: ${JSON.stringify(value)} (from ${from}${overridden.has(key) ? '; overrides your setting' : ''})`,
    ),
  ];
}

export interface StatusView {
  text: string;
  tooltip: string;
  warning: boolean;
}

/** The lines that say where records come from and go (tooltip, below the day). */
export function whereNotes(status: DxStatus, notes: readonly string[]): string[] {
  const lines = [...notes];
  const suffix = status.config.machineSuffix;
  if (suffix) {
    lines.push(`Records of this machine are pushed as <tool>@${suffix} (dxTelemetry.machineSuffix).`);
  }
  return lines;
}

export function statusView(phase: PhaseInfo, status: DxStatus | undefined, notes: readonly string[] = []): StatusView {
  if (phase.phase === 'unavailable') {
    const why = [phase.detail ?? '', ...(phase.advice ?? [])].join('\n');
    return { text: '$(warning) DX', tooltip: `DX Telemetry is not running.\n\n${why}`.trim(), warning: true };
  }
  if (!status) {
    if (phase.phase === 'backoff') {
      return { text: '$(warning) DX', tooltip: `DX Telemetry: ${phase.detail ?? 'restarting'}`, warning: true };
    }
    return { text: '$(sync~spin) DX', tooltip: 'DX Telemetry is starting…', warning: false };
  }
  const tokens = todayTokens(status);
  const reasons = attentionReasons(status);
  if (phase.phase === 'backoff') {
    reasons.unshift(`The sidecar stopped: ${phase.detail ?? 'restarting'}`);
  }
  const lines: string[] = [];
  if (reasons.length) {
    lines.push(...reasons.map((r) => `⚠ ${r}`), '');
  }
  const tools = Object.entries(status.today.tools);
  lines.push(`Today (${status.today.date}): ${tokens.toLocaleString('en-US')} tokens, ${formatCents(todaySpendCents(status))}`);
  for (const [tool, t] of tools) {
    lines.push(`  ${tool}: ${totalTokens(t).toLocaleString('en-US')} tokens in ${t.events} event(s), ${formatCents(t.spend_cents)}`);
  }
  for (const group of [retryNotes(status), expiredNotes(status), whereNotes(status, notes)]) {
    if (group.length) {
      lines.push('', ...group);
    }
  }
  const managed = managedLines(status);
  if (managed.length) {
    lines.push('', ...managed);
  }
  const destination =
    status.config.destination === 'dx' ? 'DX' : status.config.destination === 'outbox' ? 'the local outbox (no instanceUrl set)' : 'nowhere (disabled)';
  lines.push('', `Completed days go to ${destination}. Click for the usage report.`);
  const text = `${reasons.length ? '$(warning) ' : ''}DX ${formatTokens(tokens)}`;
  return { text, tooltip: lines.join('\n'), warning: reasons.length > 0 };
}

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private phase: PhaseInfo = { phase: 'starting' };
  private status: DxStatus | undefined;
  /** Conditions worth a line in the tooltip (where this runs, a remote host's reader), by key. */
  private readonly notes = new Map<string, string>();

  constructor() {
    this.item = vscode.window.createStatusBarItem(STATUS_ITEM_ID, vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'DX Telemetry';
    this.item.command = 'dxTelemetry.showUsage';
    this.render();
    this.item.show();
  }

  get lastStatus(): DxStatus | undefined {
    return this.status;
  }

  setPhase(phase: PhaseInfo): void {
    this.phase = phase;
    if (phase.phase === 'unavailable') {
      this.status = undefined;
    }
    this.render();
  }

  setStatus(status: DxStatus): void {
    this.status = status;
    this.render();
  }

  setNote(key: string, text: string | undefined): void {
    if (text === undefined) {
      this.notes.delete(key);
    } else {
      this.notes.set(key, text);
    }
    this.render();
  }

  private render(): void {
    const view = statusView(this.phase, this.status, [...this.notes.values()]);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
