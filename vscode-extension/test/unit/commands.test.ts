import * as assert from 'assert';
import type * as vscode from 'vscode';
import type { SidecarController } from '../../src/client';
import { decidableDays, describeFlush, registerCommands } from '../../src/commands';
import type { ReportPanel } from '../../src/report';
import type { TokenStore } from '../../src/secrets';
import type { DxStatus } from '../../src/types';
import { commands, recorded } from './vscode-mock';

describe('commands', () => {
  it('dxTelemetry.recordUsage returns the sidecar result or throws its error, without any message', async () => {
    recorded.reset();
    const calls: unknown[] = [];
    const controller = {
      recordUsage: async (event: Record<string, unknown>) => {
        calls.push(event);
        if (event.input_tokens === -1) {
          throw Object.assign(new Error('input_tokens: expected an integer >= 0, got -1'), { code: -32602 });
        }
        return { recorded: true, event_id: 'e1', date: '2026-11-25', tool: 'acme', duplicate: false };
      },
    } as unknown as SidecarController;
    const context = { subscriptions: [] as vscode.Disposable[] } as unknown as vscode.ExtensionContext;
    registerCommands(context, {
      controller,
      tokens: {} as TokenStore,
      report: {} as ReportPanel,
      channel: {} as vscode.LogOutputChannel,
      terminalCli: { problemNow: () => Promise.resolve(undefined) },
      lastStatus: () => undefined,
    });
    assert.deepStrictEqual(
      [...recorded.commands.keys()].sort(),
      [
        'dxTelemetry.clearApiToken',
        'dxTelemetry.flushNow',
        'dxTelemetry.markPushed',
        'dxTelemetry.openDataFolder',
        'dxTelemetry.openUsageInTerminal',
        'dxTelemetry.recordUsage',
        'dxTelemetry.resendDay',
        'dxTelemetry.setApiToken',
        'dxTelemetry.showLog',
        'dxTelemetry.showUsage',
      ],
    );
    const ok = await commands.executeCommand('dxTelemetry.recordUsage', { tool: 'acme', input_tokens: 5 });
    assert.deepStrictEqual(ok, { recorded: true, event_id: 'e1', date: '2026-11-25', tool: 'acme', duplicate: false });
    await assert.rejects(commands.executeCommand('dxTelemetry.recordUsage', { input_tokens: -1 }), /input_tokens/);
    assert.deepStrictEqual(recorded.messages, [], 'a programmatic call never shows a message');
    assert.strictEqual(calls.length, 2);
  });

  it('Open Usage in Terminal types `dx-lsp-telemetry report` into a new terminal, or says why it cannot', async () => {
    const context = () => ({ subscriptions: [] as vscode.Disposable[] }) as unknown as vscode.ExtensionContext;
    const deps = (problem: string | undefined) => ({
      controller: {} as SidecarController,
      tokens: {} as TokenStore,
      report: {} as ReportPanel,
      channel: {} as vscode.LogOutputChannel,
      terminalCli: { problemNow: () => Promise.resolve(problem) },
      lastStatus: () => undefined,
    });
    recorded.reset();
    registerCommands(context(), deps(undefined));
    await commands.executeCommand('dxTelemetry.openUsageInTerminal');
    assert.strictEqual(recorded.terminals.length, 1);
    assert.deepStrictEqual(recorded.terminals[0].sent, ['dx-lsp-telemetry report']);
    assert.ok(recorded.terminals[0].shown);
    assert.deepStrictEqual(recorded.messages, []);

    recorded.reset();
    registerCommands(context(), deps('no Python was found (install one)'));
    await commands.executeCommand('dxTelemetry.openUsageInTerminal');
    assert.strictEqual(recorded.terminals.length, 0, 'no terminal where the command would not be found');
    assert.deepStrictEqual(recorded.messages, [{ kind: 'error', text: 'DX Telemetry: terminals have no dx-lsp-telemetry: no Python was found (install one)' }]);
  });

  it('summarises a flush and offers only the days that need a decision', () => {
    assert.match(describeFlush({ pushed: [], failed: [], unconfirmed: [] }), /nothing to push/);
    assert.strictEqual(
      describeFlush({ pushed: [{ date: '2026-11-24', tool: 'a', destination: 'dx' }], failed: [], unconfirmed: [{ date: '2026-11-23', tool: 'a' }] }),
      'DX Telemetry: 1 day(s) pushed to DX, 1 unconfirmed (2026-11-23 a).',
    );
    const t = { events: 0, input_tokens: 0, output_tokens: 0, cache_write_tokens: 0, cache_read_tokens: 0, spend_cents: 0 };
    const status = {
      days: [
        { date: '2026-11-25', tool: 'a', state: 'open', totals: t },
        { date: '2026-11-24', tool: 'a', state: 'unconfirmed', totals: t },
        { date: '2026-11-23', tool: 'a', state: 'failed', totals: t },
        { date: '2026-11-22', tool: 'a', state: 'pushed', totals: t },
      ],
    } as unknown as DxStatus;
    assert.deepStrictEqual(
      decidableDays(status).map((d) => d.state),
      ['unconfirmed', 'failed'],
    );
    const withExpired = { days: [...status.days, { date: '2026-11-10', tool: 'a', state: 'expired', totals: t }] } as unknown as DxStatus;
    assert.deepStrictEqual(decidableDays(withExpired).map((d) => d.state), ['unconfirmed', 'failed'], 'an expired day cannot be marked pushed');
    assert.deepStrictEqual(decidableDays(withExpired, true).map((d) => d.state), ['unconfirmed', 'failed', 'expired'], 'but it can be re-sent');
  });

  it('words a flush the way status does: refused is failed, not reached is pending, expired is named', () => {
    const flushed = describeFlush({
      pushed: [],
      failed: [{ date: '2026-11-23', tool: 'a', error: 'DX refused the record (HTTP 400)' }],
      pending: [{ date: '2026-11-24', tool: 'a', error: 'could not reach DX: Connection refused', retryAt: '2026-11-25T10:00:00Z' }],
      unconfirmed: [],
      expired: [{ date: '2026-11-10', tool: 'a' }],
    });
    assert.strictEqual(
      flushed,
      'DX Telemetry: 1 failed, DX refused them (2026-11-23 a: DX refused the record (HTTP 400)), ' +
        '1 pending, DX was not reached (2026-11-24 a: could not reach DX: Connection refused; retried at 2026-11-25T10:00:00Z). ' +
        '1 expired, never pushed (2026-11-10 a): older than the backfill window, not pushed by themselves; "Re-send a Day…" pushes one anyway.',
    );
    assert.match(describeFlush({ pushed: [], failed: [], pending: [], unconfirmed: [], expired: [{ date: '2026-11-10', tool: 'a' }] }), /^DX Telemetry: nothing to push; every completed day is done\. 1 expired/);
  });
});
