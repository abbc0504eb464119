// The usage report's HTML: a chart of the last 14 days per tool (tokens and spend), a table
// with each day's push state, and links that run this extension's commands. Static markup and
// inline SVG only: no script at all, and a CSP that allows nothing but our nonce'd stylesheet.

import { DayState, DxReport, DxStatus, Totals, totalTokens } from './types';
import { formatCents, formatTokens } from './status';

export const REPORT_DAYS = 14;
export const REPORT_COMMANDS = [
  'dxTelemetry.flushNow',
  'dxTelemetry.showUsage',
  'dxTelemetry.openDataFolder',
  'dxTelemetry.showLog',
  'dxTelemetry.resendDay',
  'dxTelemetry.markPushed',
];

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const STATE_TEXT: Record<DayState, string> = {
  open: 'today (open)',
  pending: 'waiting to push',
  pushed: 'pushed',
  outbox: 'in the outbox',
  failed: 'failed (DX refused it)',
  unconfirmed: 'unconfirmed',
  expired: 'expired (never pushed)',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

export function csp(nonce: string): string {
  return `default-src 'none'; style-src 'nonce-${nonce}'; img-src data:; font-src 'none'; script-src 'none'; form-action 'none'; frame-src 'none'`;
}

/** The last `count` dates ending at `today` (YYYY-MM-DD), oldest first. */
export function lastDays(today: string, count: number): string[] {
  const end = Date.parse(`${today}T00:00:00Z`);
  const out: string[] = [];
  for (let i = count - 1; i >= 0; i -= 1) {
    out.push(new Date(end - i * 86_400_000).toISOString().slice(0, 10));
  }
  return out;
}

function commandLink(command: string, label: string, args?: unknown[]): string {
  const query = args ? `?${encodeURIComponent(JSON.stringify(args))}` : '';
  return `<a href="command:${command}${query}">${escapeHtml(label)}</a>`;
}

interface Series {
  dates: string[];
  tools: string[];
  /** value[dateIndex][toolIndex] */
  tokens: number[][];
  cents: number[][];
}

export function series(report: DxReport, today: string): Series {
  const dates = lastDays(today, REPORT_DAYS);
  const tools = [...new Set(report.days.map((d) => d.tool))].sort();
  const tokens = dates.map(() => tools.map(() => 0));
  const cents = dates.map(() => tools.map(() => 0));
  for (const day of report.days) {
    const i = dates.indexOf(day.date);
    const j = tools.indexOf(day.tool);
    if (i >= 0 && j >= 0) {
      tokens[i][j] += totalTokens(day.totals);
      cents[i][j] += day.totals.spend_cents;
    }
  }
  return { dates, tools, tokens, cents };
}

function barChart(title: string, s: Series, values: number[][], format: (n: number) => string): string {
  const width = 700;
  const height = 200;
  const top = 20;
  const bottom = 24;
  const plot = height - top - bottom;
  const slot = width / s.dates.length;
  const totals = values.map((row) => row.reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const parts: string[] = [];
  s.dates.forEach((date, i) => {
    let y = top + plot;
    const x = i * slot + slot * 0.15;
    const w = slot * 0.7;
    values[i].forEach((v, j) => {
      if (v <= 0) {
        return;
      }
      const h = Math.max(1, (v / max) * plot);
      y -= h;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[j % PALETTE.length]}"><title>${escapeHtml(`${date} ${s.tools[j]}: ${format(v)}`)}</title></rect>`,
      );
    });
    if (totals[i] > 0) {
      parts.push(`<text class="value" x="${(x + w / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle">${escapeHtml(format(totals[i]))}</text>`);
    }
    parts.push(`<text class="axis" x="${(x + w / 2).toFixed(1)}" y="${height - 6}" text-anchor="middle">${date.slice(5)}</text>`);
  });
  parts.push(`<line class="base" x1="0" x2="${width}" y1="${top + plot}" y2="${top + plot}"/>`);
  return `<h2>${escapeHtml(title)}</h2><svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">${parts.join('')}</svg>`;
}

function legend(tools: string[]): string {
  if (!tools.length) {
    return '<p class="muted">No usage recorded in the last 14 days.</p>';
  }
  return `<p class="legend">${tools
    .map((t, j) => `<span class="key"><svg width="10" height="10"><rect width="10" height="10" fill="${PALETTE[j % PALETTE.length]}"/></svg> ${escapeHtml(t)}</span>`)
    .join(' ')}</p>`;
}

function totalsCells(t: Totals): string {
  return [totalTokens(t), t.input_tokens, t.output_tokens, t.cache_write_tokens, t.cache_read_tokens]
    .map((n) => `<td class="num">${n.toLocaleString('en-US')}</td>`)
    .join('');
}

export function renderReport(input: { report: DxReport; status: DxStatus | undefined; today: string; nonce: string; error?: string }): string {
  const { report, status, today, nonce } = input;
  const s = series(report, today);
  const details = new Map((status?.days ?? []).map((d) => [`${d.date}\u0000${d.tool}`, d]));
  const rows = report.days
    .filter((d) => d.totals.events > 0 || d.state !== 'open')
    .map((d) => {
      const extra = details.get(`${d.date}\u0000${d.tool}`);
      const state = extra?.state ?? d.state;
      const notes: string[] = [];
      if (extra?.error) {
        notes.push(escapeHtml(extra.error));
      }
      if (extra?.retryAt) {
        notes.push(`retry at ${escapeHtml(extra.retryAt)}`);
      }
      if (state === 'pending' && extra?.retryAt) {
        notes.push('DX was not reached; retried by itself');
      }
      if (state === 'expired') {
        notes.push('older than the backfill window: not pushed by itself');
      }
      if (extra?.late) {
        notes.push(`${totalTokens(extra.late).toLocaleString('en-US')} tokens arrived after the push (kept locally, not pushed)`);
      }
      const actions: string[] = [];
      if (state === 'unconfirmed' || state === 'failed') {
        actions.push(commandLink('dxTelemetry.resendDay', 'Re-send', [{ date: d.date, tool: d.tool }]));
      }
      if (state === 'expired') {
        actions.push(commandLink('dxTelemetry.resendDay', 'Push anyway', [{ date: d.date, tool: d.tool }]));
      }
      if (state === 'unconfirmed' || state === 'failed') {
        actions.push(commandLink('dxTelemetry.markPushed', 'Mark as pushed', [{ date: d.date, tool: d.tool }]));
      }
      return (
        `<tr class="state-${state}"><td>${escapeHtml(d.date)}</td><td>${escapeHtml(d.tool)}</td>${totalsCells(d.totals)}` +
        `<td class="num">${formatCents(d.totals.spend_cents)}</td><td class="num">${d.totals.events}</td>` +
        `<td><span class="badge">${escapeHtml(STATE_TEXT[state] ?? state)}</span> ${notes.join('; ')} ${actions.join(' ')}</td></tr>`
      );
    });
  const problems = status?.config.problems ?? [];
  const header = [
    commandLink('dxTelemetry.showUsage', 'Refresh'),
    commandLink('dxTelemetry.flushNow', 'Flush now'),
    commandLink('dxTelemetry.openDataFolder', 'Open data folder'),
    commandLink('dxTelemetry.showLog', 'Show log'),
  ].join(' · ');
  const destination = status
    ? status.config.destination === 'dx'
      ? 'Completed days are pushed to DX.'
      : status.config.destination === 'outbox'
        ? 'No instanceUrl: completed days are written to the local outbox.'
        : 'Disabled: nothing is recorded or pushed.'
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp(nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DX Telemetry: Usage</title>
<style nonce="${nonce}">
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 16px 24px; }
a { color: var(--vscode-textLink-foreground); }
.chart { width: 100%; max-width: 900px; height: auto; }
.chart text { fill: var(--vscode-foreground); font-size: 11px; }
.chart .axis { opacity: 0.7; }
.chart .base { stroke: var(--vscode-foreground); opacity: 0.3; }
.legend .key { margin-right: 12px; white-space: nowrap; }
table { border-collapse: collapse; margin-top: 8px; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--vscode-panel-border, #8884); text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, td.num { white-space: nowrap; }
.badge { padding: 0 6px; border-radius: 8px; background: var(--vscode-badge-background); color: var(--vscode-badge-foreground); }
.state-failed .badge, .state-unconfirmed .badge { background: var(--vscode-inputValidation-warningBackground, #b58900); }
.state-expired .badge { opacity: 0.7; }
.problems { border-left: 3px solid var(--vscode-inputValidation-warningBorder, #b58900); padding-left: 8px; }
.muted { opacity: 0.7; }
</style></head>
<body>
<h1>DX Telemetry: usage of the last ${REPORT_DAYS} days</h1>
<p>${header}</p>
${input.error ? `<p class="problems">${escapeHtml(input.error)}</p>` : ''}
${problems.length ? `<div class="problems"><p><strong>Needs attention</strong></p><ul>${problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></div>` : ''}
<p class="muted">${escapeHtml(destination)}${status ? ` Data folder: ${escapeHtml(status.dataDir)}. Sidecar ${escapeHtml(status.version)}.` : ''}</p>
${legend(s.tools)}
${barChart('Tokens per day', s, s.tokens, formatTokens)}
${barChart('Spend per day', s, s.cents, formatCents)}
<h2>Days</h2>
<table>
<thead><tr><th>Date</th><th>Tool</th><th class="num">Tokens</th><th class="num">Input</th><th class="num">Output</th><th class="num">Cache write</th><th class="num">Cache read</th><th class="num">Spend</th><th class="num">Events</th><th>Push state</th></tr></thead>
<tbody>${rows.join('\n') || '<tr><td colspan="10" class="muted">No days with usage yet.</td></tr>'}</tbody>
</table>
</body></html>`;
}
