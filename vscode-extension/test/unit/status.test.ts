import * as assert from 'assert';
import { StatusBar, attentionReasons, formatTokens, statusView, todayTokens } from '../../src/status';
import { DxStatus, Totals } from '../../src/types';
import { recorded } from './vscode-mock';

const totals = (input: number, output = 0, cacheWrite = 0, cacheRead = 0, cents = 0): Totals => ({
  events: 1,
  input_tokens: input,
  output_tokens: output,
  cache_write_tokens: cacheWrite,
  cache_read_tokens: cacheRead,
  spend_cents: cents,
});

function status(overrides: Partial<DxStatus> = {}): DxStatus {
  return {
    version: '0.1.0',
    dataDir: '/data',
    leader: true,
    config: { ok: true, destination: 'dx', problems: [] },
    today: { date: '2026-11-25', tools: { 'acme-ai': totals(1000, 500, 100, 42, 12.5), 'claude-code': totals(3000) } },
    days: [],
    ...overrides,
  };
}

describe('status bar text', () => {
  it('formats token counts as 4,642 or 46.4k', () => {
    const cases: Array<[number, string]> = [
      [0, '0'],
      [999, '999'],
      [4642, '4,642'],
      [9999, '9,999'],
      [10_000, '10k'],
      [46_420, '46.4k'],
      [464_200, '464k'],
      [999_960, '1M'],
      [4_642_000, '4.6M'],
      [12_345_678_901, '12.3B'],
    ];
    for (const [n, text] of cases) {
      assert.strictEqual(formatTokens(n), text, String(n));
    }
  });

  it("sums today's input, output, cache write and cache read tokens over every tool", () => {
    assert.strictEqual(todayTokens(status()), 1000 + 500 + 100 + 42 + 3000);
    assert.strictEqual(todayTokens(status({ today: { date: '2026-11-25', tools: {} } })), 0);
  });

  it('shows DX and the total, no warning, when all is well', () => {
    const view = statusView({ phase: 'running' }, status());
    assert.strictEqual(view.text, 'DX 4,642');
    assert.strictEqual(view.warning, false);
    assert.match(view.tooltip, /acme-ai: 1,642 tokens in 1 event\(s\), \$0\.13/);
    assert.match(view.tooltip, /Completed days go to DX/);
  });

  it('warns, with the reason in the tooltip, when the configuration is incomplete', () => {
    const view = statusView({ phase: 'running' }, status({ config: { ok: false, destination: 'outbox', problems: ['dxTelemetry.email is not set: days cannot be pushed'] } }));
    assert.strictEqual(view.text, '$(warning) DX 4,642');
    assert.ok(view.warning);
    assert.match(view.tooltip, /email is not set/);
  });

  it('warns for a failed or unconfirmed push, but not for a pending retry', () => {
    const day = (state: 'failed' | 'unconfirmed' | 'pending', extra: object = {}) => ({ date: '2026-11-24', tool: 'acme-ai', state, totals: totals(1), ...extra });
    const failed = statusView({ phase: 'running' }, status({ days: [day('failed', { error: 'DX refused the record (HTTP 422)' })] }));
    assert.ok(failed.warning);
    assert.match(failed.tooltip, /Push failed for 2026-11-24 \(acme-ai\): DX refused the record/);
    const unconfirmed = statusView({ phase: 'running' }, status({ days: [day('unconfirmed', { error: 'read timeout' })] }));
    assert.ok(unconfirmed.warning);
    assert.match(unconfirmed.tooltip, /did not confirm 2026-11-24/);
    const retrying = statusView({ phase: 'running' }, status({ days: [day('pending', { error: 'connection refused', retryAt: '2026-11-25T10:00:00Z' })] }));
    assert.ok(!retrying.warning);
    assert.strictEqual(retrying.text, 'DX 4,642');
    assert.match(retrying.tooltip, /retried at 2026-11-25T10:00:00Z/);
    assert.deepStrictEqual(attentionReasons(status({ days: [day('pending')] })), []);
  });

  it('says pending, never failed, for a day DX did not reach; failed only for what DX refused', () => {
    const day = (state: 'failed' | 'pending', error: string, extra: object = {}) => ({ date: '2026-11-24', tool: 'acme-ai', state, totals: totals(1), error, ...extra });
    const refused = statusView({ phase: 'running' }, status({ days: [day('pending', 'could not reach DX: Connection refused', { retryAt: '2026-11-25T10:00:00Z' })] }));
    assert.doesNotMatch(refused.tooltip, /failed/i);
    assert.match(refused.tooltip, /2026-11-24 \(acme-ai\) is pending: DX was not reached; it will be retried at 2026-11-25T10:00:00Z: could not reach DX/);
    const rejected = statusView({ phase: 'running' }, status({ days: [day('failed', 'DX refused the record (HTTP 400: invalid_arguments)')] }));
    assert.ok(rejected.warning);
    assert.match(rejected.tooltip, /⚠ Push failed for 2026-11-24 \(acme-ai\): DX refused the record \(HTTP 400/);
    assert.doesNotMatch(rejected.tooltip, /pending|retried/);
  });

  it('notes expired days with what to do, without a warning and never as pending', () => {
    const expired = (date: string) => ({ date, tool: 'acme-ai', state: 'expired' as const, totals: totals(1) });
    const view = statusView({ phase: 'running' }, status({ days: [expired('2026-11-15'), expired('2026-11-14')] }));
    assert.ok(!view.warning, 'an expired day may be what the user wants: no warning');
    assert.strictEqual(view.text, 'DX 4,642');
    assert.match(view.tooltip, /Expired, never pushed \(older than the backfill window, dxTelemetry\.flush\.backfillDays\): 2026-11-15 \(acme-ai\), 2026-11-14 \(acme-ai\)\./);
    assert.match(view.tooltip, /not pushed by themselves: "DX Telemetry: Re-send a Day…" pushes one anyway, or leave them/);
    assert.doesNotMatch(view.tooltip, /pending|retried/);
    assert.deepStrictEqual(attentionReasons(status({ days: [expired('2026-11-15')] })), []);
    assert.doesNotMatch(statusView({ phase: 'running' }, status()).tooltip, /Expired/);
  });

  it('says clearly when there is no Python, and spins while starting', () => {
    const none = statusView({ phase: 'unavailable', detail: 'No Python >= 3.9 found.' }, undefined);
    assert.strictEqual(none.text, '$(warning) DX');
    assert.ok(none.warning);
    assert.match(none.tooltip, /No Python >= 3\.9 found/);
    assert.strictEqual(statusView({ phase: 'starting' }, undefined).text, '$(sync~spin) DX');
    const crashed = statusView({ phase: 'backoff', detail: 'the sidecar exited; restarting in 2 s' }, status());
    assert.ok(crashed.warning);
    assert.match(crashed.tooltip, /restarting in 2 s/);
  });

  it("names the machine suffix and where this runs, with no warning: conditions, not problems", () => {
    const view = statusView(
      { phase: 'running' },
      status({ config: { ok: true, destination: 'dx', problems: [], machineSuffix: 'laptop' } }),
      ['Remote window (ssh-remote): this machine keeps the one ledger and pushes.'],
    );
    assert.ok(!view.warning);
    assert.strictEqual(view.text, 'DX 4,642');
    assert.match(view.tooltip, /Records of this machine are pushed as <tool>@laptop \(dxTelemetry\.machineSuffix\)\./);
    assert.match(view.tooltip, /^Remote window \(ssh-remote\): this machine keeps the one ledger/m);
    assert.doesNotMatch(statusView({ phase: 'running' }, status()).tooltip, /machineSuffix|Remote window/);
  });

  it('keeps one tooltip line per note, replaced or removed by its key', () => {
    recorded.reset();
    const bar = new StatusBar();
    const [item] = recorded.statusBarItems;
    bar.setPhase({ phase: 'running' });
    bar.setStatus(status());
    bar.setNote('remote', 'Remote host wsl: 1 event(s) forwarded');
    bar.setNote('remote', 'Remote host wsl: 2 event(s) forwarded');
    assert.match(String(item.tooltip), /2 event\(s\) forwarded/);
    assert.doesNotMatch(String(item.tooltip), /1 event\(s\) forwarded/);
    bar.setNote('remote', undefined);
    assert.doesNotMatch(String(item.tooltip), /Remote host/);
    bar.dispose();
  });

  it('applies the view to one status bar item whose id names dxTelemetry', () => {
    recorded.reset();
    const bar = new StatusBar();
    const [item] = recorded.statusBarItems;
    assert.strictEqual(recorded.statusBarItems.length, 1);
    assert.match(item.id, /dxTelemetry/);
    assert.ok(item.visible);
    assert.strictEqual(item.command, 'dxTelemetry.showUsage');
    bar.setPhase({ phase: 'running' });
    bar.setStatus(status());
    assert.strictEqual(item.text, 'DX 4,642');
    assert.strictEqual(item.backgroundColor, undefined);
    bar.setStatus(status({ config: { ok: false, destination: 'dx', problems: ['DX_DATA_CLOUD_TOKEN is not set'] } }));
    assert.strictEqual(item.text, '$(warning) DX 4,642');
    assert.strictEqual((item.backgroundColor as { id: string } | undefined)?.id, 'statusBarItem.warningBackground');
    bar.dispose();
    assert.ok(item.disposed);
  });
});
