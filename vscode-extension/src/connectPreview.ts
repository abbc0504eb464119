// The text the developer reads before accepting Connect (or Disconnect) AI Tools: per tool, the
// exact lines of its configuration that would change, as a unified diff; and a one-line summary.

import type { ToolPlan } from './aiTools';
import { unifiedDiff } from './lineDiff';
import type { Change, KeyChange } from './toolChange';

const STATE_TEXT: Record<ToolPlan['state'], string> = {
  ready: 'tick it in the list to make this change',
  connected: 'nothing to change',
  absent: 'not changed',
  managed: 'not changed',
  broken: 'not changed',
  blocked: 'not changed',
};

/** The whole preview: a heading per tool (as `#` lines), then its diff. */
export function previewText(title: string, plans: ToolPlan[]): string {
  const out = [`# DX Telemetry: ${title}`, '# Nothing is written until you tick a change in the list and press OK.', ''];
  for (const plan of plans) {
    out.push(`# ${plan.name}: ${plan.where}`);
    out.push(`#   ${plan.reason ? `${plan.reason}; ` : ''}${STATE_TEXT[plan.state]}`);
    for (const note of plan.notes) {
      out.push(`#   note: ${note}`);
    }
    if (plan.state === 'ready' && plan.change) {
      out.push(...diffOf(plan.change, plan.where));
    }
    out.push('');
  }
  return out.join('\n');
}

function diffOf(change: Change, where: string): string[] {
  if (change.kind === 'settings') {
    const lines = [`--- ${where}`, `+++ ${where}`, `@@ ${change.keys.length} setting(s) @@`];
    for (const k of change.keys) {
      if (k.had) {
        lines.push(`-  ${JSON.stringify(k.key)}: ${JSON.stringify(k.previous)}`);
      }
      if (k.value !== undefined) {
        lines.push(`+  ${JSON.stringify(k.key)}: ${JSON.stringify(k.value)}`);
      }
    }
    return lines;
  }
  return [
    `--- ${change.before === undefined ? '/dev/null (the file does not exist yet)' : where}`,
    `+++ ${change.after === undefined ? '/dev/null (the file is deleted: it did not exist before)' : where}`,
    ...unifiedDiff(change.before ?? '', change.after ?? ''),
  ];
}

/** `+KEY` added, `~KEY` changed, `-KEY` removed, e.g. `env: +CLAUDE_CODE_ENABLE_TELEMETRY, ~OTEL_EXPORTER_OTLP_ENDPOINT`. */
export function summary(change: Change): string {
  const mark = (k: KeyChange) => `${!k.had ? '+' : k.value === undefined ? '-' : '~'}${k.key}`;
  const keys = change.keys.map(mark).join(', ');
  return change.kind === 'file' ? `${change.group}: ${keys}` : keys;
}
