import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PlacementFacts, isRemoteReport, place, remoteLine } from '../../src/placement';

const facts = (overrides: Partial<PlacementFacts>): PlacementFacts => ({
  role: 'main',
  remoteName: undefined,
  runsOn: 'ui',
  web: false,
  mainHere: true,
  ...overrides,
});

describe('where DX Telemetry and its Remote Reader run, and what each does there', () => {
  it('a local window: DX Telemetry records and pushes, with nothing to say about it', () => {
    assert.deepStrictEqual(place(facts({})), { mode: 'full' });
    assert.deepStrictEqual(place(facts({ runsOn: 'workspace' })), { mode: 'full' }); // a local window's host is a workspace host too
  });

  it('a Remote-SSH window with DX Telemetry on the UI side: one ledger and one pusher on this machine', () => {
    const p = place(facts({ remoteName: 'ssh-remote', runsOn: 'ui' }));
    assert.strictEqual(p.mode, 'full');
    assert.match(p.note ?? '', /^Remote window \(ssh-remote\): this machine keeps the one ledger and pushes/);
    assert.match(p.note ?? '', /DX Telemetry Remote Reader/);
  });

  it('a browser window (code-server, Codespaces): it can only run on the server, and says so', () => {
    // code-server's remoteName is its host and port (getRemoteName of an authority without "+")
    const p = place(facts({ remoteName: '127.0.0.1:8765', runsOn: 'workspace', web: true }));
    assert.strictEqual(p.mode, 'full');
    assert.match(p.note ?? '', /runs on its server \(127\.0\.0\.1:8765\) and pushes from there/);
    assert.match(p.note ?? '', /dxTelemetry\.machineSuffix/);
  });

  it('a desktop remote window without DX Telemetry installed locally: it pushes from the remote host, and says how to fix that', () => {
    const p = place(facts({ remoteName: 'wsl', runsOn: 'workspace' }));
    assert.strictEqual(p.mode, 'full');
    assert.match(p.note ?? '', /runs on the remote host \(wsl\) and pushes from there: it is not installed on this machine/);
  });

  it('the Remote Reader reads and forwards only on a remote host whose DX Telemetry runs elsewhere', () => {
    const reader = (o: Partial<PlacementFacts>) => place(facts({ role: 'reader', runsOn: 'workspace', mainHere: false, ...o }));
    assert.strictEqual(reader({ remoteName: 'dev-container' }).mode, 'reader');
    assert.match(reader({ remoteName: 'dev-container' }).note ?? '', /forwarding them to DX Telemetry on your own machine/);
    assert.strictEqual(reader({}).mode, 'idle'); // a local window
    assert.strictEqual(reader({ remoteName: 'ssh-remote', mainHere: true }).mode, 'idle'); // DX Telemetry itself is here
    assert.strictEqual(reader({ remoteName: '127.0.0.1:8765', mainHere: true }).mode, 'idle'); // code-server with both installed
    assert.strictEqual(reader({ remoteName: 'ssh-remote', runsOn: 'ui' }).mode, 'idle'); // forced to the UI side
  });

  it("the manifest asks for the UI side first, and machineSuffix is machine-scoped (Settings Sync leaves it on its machine)", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
      extensionKind: string[];
      contributes: { configuration: { properties: Record<string, { scope?: string; pattern?: string }> } };
    };
    assert.deepStrictEqual(manifest.extensionKind, ['ui', 'workspace']);
    const suffix = manifest.contributes.configuration.properties['dxTelemetry.machineSuffix'];
    assert.strictEqual(suffix.scope, 'machine');
    const pattern = new RegExp(suffix.pattern ?? '');
    for (const good of ['', 'laptop', 'desk-2', 'a.b_c']) {
      assert.ok(pattern.test(good), good);
    }
    for (const bad of ['my laptop', '-x', 'x'.repeat(33), 'laptop@home']) {
      assert.ok(!pattern.test(bad), bad);
    }
  });
});

describe("a Remote Reader's report in DX Telemetry's tooltip", () => {
  it('says what was forwarded, what waits, and what went wrong', () => {
    assert.strictEqual(
      remoteLine({ remoteName: 'ssh-remote', state: 'forwarding', pending: 3, delivered: 40, lastAt: '2026-12-03T08:00:00Z' }),
      "Remote host ssh-remote: 40 event(s) forwarded to this machine's ledger, 3 waiting (last at 2026-12-03T08:00:00Z)",
    );
    assert.match(remoteLine({ remoteName: 'wsl', state: 'standby', pending: 0, delivered: 0 }), /its own DX Telemetry pushes/);
    assert.match(remoteLine({ remoteName: 'wsl', state: 'unavailable', pending: 0, delivered: 0, problem: 'no Python' }), /no Python$/);
  });

  it('takes only a report of the right shape (the arguments cross the boundary as JSON)', () => {
    assert.ok(isRemoteReport({ remoteName: 'x', state: 'forwarding', pending: 0, delivered: 0 }));
    for (const bad of [undefined, null, 'x', {}, { remoteName: 1, state: 's', pending: 0, delivered: 0 }, { remoteName: 'x', state: 's', pending: '1', delivered: 0 }]) {
      assert.ok(!isRemoteReport(bad), JSON.stringify(bad));
    }
  });
});
