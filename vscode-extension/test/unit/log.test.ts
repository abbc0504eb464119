import * as assert from 'assert';
import type * as vscode from 'vscode';
import { REDACTED, Redactor, keepStderrLine, redactingChannel } from '../../src/log';
import { tokenRejected } from '../../src/status';

describe('log redaction', () => {
  it('masks the token wherever it appears, in every write method', () => {
    const redactor = new Redactor();
    redactor.setSecret('tok-SECRET-1234');
    const written: string[] = [];
    const channel = {
      name: 'DX Telemetry',
      info: (m: string) => written.push(m),
      appendLine: (m: string) => written.push(m),
      error: (m: string | Error) => written.push(String(m)),
      show: () => written.push('shown'),
    } as unknown as vscode.LogOutputChannel;
    const safe = redactingChannel(channel, redactor);
    safe.info('Authorization: Bearer tok-SECRET-1234 (tok-SECRET-1234)');
    safe.appendLine('[sidecar] env DX_DATA_CLOUD_TOKEN=tok-SECRET-1234');
    safe.error(new Error('boom tok-SECRET-1234'));
    safe.show();
    assert.strictEqual(safe.name, 'DX Telemetry');
    assert.deepStrictEqual(written, [
      `Authorization: Bearer ${REDACTED} (${REDACTED})`,
      `[sidecar] env DX_DATA_CLOUD_TOKEN=${REDACTED}`,
      `boom ${REDACTED}`,
      'shown',
    ]);
    redactor.setSecret(undefined);
    assert.strictEqual(redactor.clean('tok-SECRET-1234'), 'tok-SECRET-1234', 'a replaced token is forgotten');
  });

  it("drops the stderr copies of the sidecar's own log lines once they arrive as logMessage", () => {
    const own = '2026-11-25 10:00:00,123 INFO dx_lsp_telemetry.server: dx-lsp-telemetry 0.1.0 ready';
    assert.ok(keepStderrLine(own, false), 'before initialize, stderr is the only copy');
    assert.ok(!keepStderrLine(own, true));
    assert.ok(keepStderrLine('Traceback (most recent call last):', true));
    assert.ok(keepStderrLine('2026-11-25 10:00:00,123 WARNING pygls.protocol: something', true));
    assert.ok(!keepStderrLine('   ', false));
  });

  it('recognises a rejected token in the status', () => {
    const base = { version: '0', dataDir: '/d', leader: true, today: { date: '2026-11-25', tools: {} } };
    assert.ok(
      tokenRejected({
        ...base,
        config: { ok: false, destination: 'dx', problems: ['pushes paused: DX refused the token (HTTP 401: not_authed).'] },
        days: [],
      }),
    );
    assert.ok(!tokenRejected({ ...base, config: { ok: true, destination: 'dx', problems: [] }, days: [] }));
  });
});
