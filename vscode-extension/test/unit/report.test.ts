import * as assert from 'assert';
import { REPORT_COMMANDS, csp, escapeHtml, lastDays, renderReport, series } from '../../src/reportView';
import type { DxReport, DxStatus, Totals } from '../../src/types';

const t = (tokens: number, cents: number): Totals => ({
  events: 2,
  input_tokens: tokens,
  output_tokens: 0,
  cache_write_tokens: 0,
  cache_read_tokens: 0,
  spend_cents: cents,
});

const report: DxReport = {
  days: [
    { date: '2026-11-25', tool: 'acme-ai', state: 'open', totals: t(4642, 12) },
    { date: '2026-11-24', tool: 'acme-ai', state: 'pushed', totals: t(1000, 3.5) },
    { date: '2026-11-24', tool: '<script>alert(1)</script>', state: 'unconfirmed', totals: t(50, 0) },
    { date: '2026-11-01', tool: 'acme-ai', state: 'pushed', totals: t(999, 1) },
  ],
};

const status: DxStatus = {
  version: '0.1.0',
  dataDir: '/data/dx',
  leader: true,
  config: { ok: false, destination: 'dx', problems: ['dxTelemetry.tool is not set'] },
  today: { date: '2026-11-25', tools: {} },
  days: [{ date: '2026-11-24', tool: '<script>alert(1)</script>', state: 'unconfirmed', totals: t(50, 0), error: 'read timeout' }],
};

describe('usage report', () => {
  it('covers the last 14 days ending today, per tool', () => {
    const days = lastDays('2026-11-25', 14);
    assert.strictEqual(days.length, 14);
    assert.strictEqual(days[0], '2026-11-12');
    assert.strictEqual(days[13], '2026-11-25');
    const s = series(report, '2026-11-25');
    assert.deepStrictEqual(s.tools, ['<script>alert(1)</script>', 'acme-ai']);
    assert.deepStrictEqual(s.tokens[13], [0, 4642]);
    assert.deepStrictEqual(s.tokens[12], [50, 1000]);
    assert.deepStrictEqual(s.cents[12], [0, 3.5]);
    assert.ok(!s.tokens.flat().includes(999), 'a day outside the 14 is not drawn');
  });

  it('renders a locked-down page: no script, nothing remote, escaped data, only our commands', () => {
    const html = renderReport({ report, status, today: '2026-11-25', nonce: 'abc123' });
    const policy = csp('abc123');
    assert.ok(html.includes(`content="${policy}"`));
    assert.match(policy, /default-src 'none'/);
    assert.match(policy, /script-src 'none'/);
    assert.ok(!/<script/i.test(html), 'no script element, and the hostile tool name is escaped');
    assert.ok(html.includes(escapeHtml('<script>alert(1)</script>')));
    assert.ok(!/(src|href)="(https?:)?\/\//i.test(html), 'nothing loaded from anywhere');
    assert.ok(!/style="/.test(html), 'no inline style attributes (CSP would block them)');
    assert.ok(html.includes('<style nonce="abc123">'));
    const commands = [...html.matchAll(/href="command:([\w.]+)/g)].map((m) => m[1]);
    assert.ok(commands.length > 0);
    for (const c of commands) {
      assert.ok(REPORT_COMMANDS.includes(c), c);
    }
    assert.ok(html.includes('command:dxTelemetry.resendDay?'), 'the unconfirmed day can be re-sent from the report');
    assert.match(html, /Tokens per day/);
    assert.match(html, /Spend per day/);
    assert.match(html, /4,642/);
    assert.match(html, /\$0\.12/);
    assert.match(html, /unconfirmed/);
    assert.match(html, /read timeout/);
    assert.match(html, /dxTelemetry\.tool is not set/);
    assert.strictEqual((html.match(/<svg class="chart"/g) ?? []).length, 2);
  });

  it('shows expired, failed and pending days as the status says, each with what to do', () => {
    const rows: DxReport = {
      days: [
        { date: '2026-11-24', tool: 'acme-ai', state: 'pending', totals: t(10, 1) },
        { date: '2026-11-23', tool: 'acme-ai', state: 'failed', totals: t(20, 2) },
        { date: '2026-11-15', tool: 'acme-ai', state: 'expired', totals: t(30, 3) },
      ],
    };
    const days: DxStatus['days'] = [
      { date: '2026-11-24', tool: 'acme-ai', state: 'pending', totals: t(10, 1), error: 'could not reach DX: Connection refused', retryAt: '2026-11-25T10:00:00Z' },
      { date: '2026-11-23', tool: 'acme-ai', state: 'failed', totals: t(20, 2), error: 'DX refused the record (HTTP 400)' },
      { date: '2026-11-15', tool: 'acme-ai', state: 'expired', totals: t(30, 3) },
    ];
    const html = renderReport({ report: rows, status: { ...status, days }, today: '2026-11-25', nonce: 'n' });
    const row = (date: string) => html.split('\n').find((line) => line.includes(`<tr class="state-`) && line.includes(`<td>${date}</td>`)) ?? '';
    assert.match(row('2026-11-24'), /class="state-pending"/);
    assert.match(row('2026-11-24'), /waiting to push<\/span> could not reach DX: Connection refused; retry at 2026-11-25T10:00:00Z; DX was not reached; retried by itself/);
    assert.doesNotMatch(row('2026-11-24'), /failed|command:/);
    assert.match(row('2026-11-23'), /failed \(DX refused it\)<\/span> DX refused the record \(HTTP 400\)/);
    assert.match(row('2026-11-23'), /command:dxTelemetry\.resendDay\?.*Re-send.*command:dxTelemetry\.markPushed\?/);
    assert.match(row('2026-11-15'), /class="state-expired"/);
    assert.match(row('2026-11-15'), /expired \(never pushed\)<\/span> older than the backfill window: not pushed by itself/);
    const pushAnyway = encodeURIComponent(JSON.stringify([{ date: '2026-11-15', tool: 'acme-ai' }]));
    assert.ok(row('2026-11-15').includes(`command:dxTelemetry.resendDay?${pushAnyway}">Push anyway</a>`));
    assert.doesNotMatch(row('2026-11-15'), /pending|waiting|markPushed/);
  });
});
