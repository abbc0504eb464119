import * as assert from 'assert';
import {
  BackoffPolicy,
  ConnectionEvents,
  PhaseInfo,
  SidecarConnection,
  SidecarController,
  backoffDelay,
  isConnectionLoss,
} from '../../src/client';
import type { Launch, LaunchProblem } from '../../src/launch';
import { RequestQueue } from '../../src/queue';
import { DxStatus, RECORD_USAGE, STATUS, STATUS_CHANGED } from '../../src/types';
import { FakeClock, recordingLogger, settle } from './helpers';

type Handler = (method: string, params: unknown) => Promise<unknown>;

class FakeConnection implements SidecarConnection {
  static count = 0;
  readonly pid = 4000 + FakeConnection.count++;
  started = false;
  stopped = false;
  sent: Array<{ method: string; params: unknown }> = [];
  notify: Map<string, (params: unknown) => void> = new Map();
  private releaseStart: (() => void) | undefined;
  private failStart: ((e: Error) => void) | undefined;
  private startPromise: Promise<void>;

  constructor(
    readonly launch: Launch,
    readonly events: ConnectionEvents,
    public handler: Handler,
  ) {
    this.startPromise = new Promise<void>((resolve, reject) => {
      this.releaseStart = resolve;
      this.failStart = reject;
    });
  }
  async start(): Promise<void> {
    await this.startPromise;
    this.started = true;
  }
  finishStart(): void {
    this.releaseStart?.();
  }
  rejectStart(message: string): void {
    this.failStart?.(new Error(message));
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  sendRequest(method: string, params: unknown): Promise<unknown> {
    this.sent.push({ method, params });
    return this.handler(method, params);
  }
  onNotification(method: string, handler: (params: unknown) => void): void {
    this.notify.set(method, handler);
  }
}

const LAUNCH: Launch = { command: 'python3', args: ['-m', 'dx_lsp_telemetry'], env: {}, cwd: '/libs', description: 'test python' };
const POLICY: BackoffPolicy = { baseMs: 1000, capMs: 8000, stableMs: 60_000 };

function status(tokens: number): DxStatus {
  return {
    version: '0.1.0',
    dataDir: '/data',
    leader: true,
    config: { ok: true, destination: 'dx', problems: [] },
    today: {
      date: '2026-11-25',
      tools: { acme: { events: 1, input_tokens: tokens, output_tokens: 0, cache_write_tokens: 0, cache_read_tokens: 0, spend_cents: 0 } },
    },
    days: [],
  };
}

function harness(opts: { launch?: () => Promise<Launch | LaunchProblem>; handler?: Handler; queue?: RequestQueue } = {}) {
  const clock = new FakeClock();
  const connections: FakeConnection[] = [];
  const phases: PhaseInfo[] = [];
  const statuses: DxStatus[] = [];
  const log = recordingLogger();
  const handler: Handler =
    opts.handler ??
    (async (method, params) => {
      if (method === STATUS) {
        return status(7);
      }
      if (method === RECORD_USAGE) {
        const e = params as { event_id: string };
        return { recorded: true, event_id: e.event_id, date: '2026-11-25', tool: 'acme', duplicate: false };
      }
      throw Object.assign(new Error(`unknown ${method}`), { code: -32601 });
    });
  const controller = new SidecarController({
    resolveLaunch: opts.launch ?? (async () => LAUNCH),
    createConnection: (launch, events) => {
      const c = new FakeConnection(launch, events, handler);
      connections.push(c);
      return c;
    },
    log,
    onStatus: (s) => statuses.push(s),
    onPhase: (p) => phases.push(p),
    clock,
    backoff: POLICY,
    random: () => 1, // the upper end of the jitter: delays are exactly base * 2^n
    queue: opts.queue,
  });
  return { controller, clock, connections, phases, statuses, log };
}

describe('sidecar controller', () => {
  it('queues requests made while starting and sends them in order once running', async () => {
    const h = harness();
    const started = h.controller.start();
    await settle();
    assert.strictEqual(h.controller.phase.phase, 'starting');
    const a = h.controller.recordUsage({ tool: 'a', input_tokens: 1 });
    const b = h.controller.recordUsage({ tool: 'b', input_tokens: 2, event_id: 'mine' });
    assert.strictEqual(h.controller.queued, 2);
    assert.strictEqual(h.connections[0].sent.length, 0);
    h.connections[0].finishStart();
    await started;
    const [ra, rb] = await Promise.all([a, b]);
    assert.strictEqual(h.controller.phase.phase, 'running');
    const sent = h.connections[0].sent.filter((s) => s.method === RECORD_USAGE).map((s) => s.params as Record<string, unknown>);
    assert.deepStrictEqual(sent.map((p) => p.tool), ['a', 'b']);
    assert.match(String(sent[0].event_id), /^[0-9a-f-]{36}$/, 'an id is added so a re-send cannot count twice');
    assert.strictEqual(sent[1].event_id, 'mine', 'a given id is kept');
    assert.strictEqual(ra.event_id, sent[0].event_id);
    assert.strictEqual(rb.event_id, 'mine');
  });

  it('asks for the status once running and passes statusChanged notifications on', async () => {
    const h = harness();
    const started = h.controller.start();
    await settle();
    h.connections[0].finishStart();
    await started;
    await settle();
    assert.deepStrictEqual(h.statuses.map((s) => s.today.tools.acme.input_tokens), [7]);
    h.connections[0].notify.get(STATUS_CHANGED)!(status(42));
    assert.deepStrictEqual(h.statuses.map((s) => s.today.tools.acme.input_tokens), [7, 42]);
  });

  it('restarts a crashed sidecar with exponential backoff, capped, without losing queued events', async () => {
    const h = harness();
    const started = h.controller.start();
    await settle();
    h.connections[0].finishStart();
    await started;
    h.connections[0].events.closed(); // crash
    await settle();
    assert.strictEqual(h.controller.phase.phase, 'backoff');
    assert.ok(h.connections[0].stopped, 'the dead connection is cleaned up');
    assert.strictEqual(h.controller.phase.retryInMs, 1000);
    assert.deepStrictEqual(h.clock.pendingDelays(), [1000]);
    const queued = h.controller.recordUsage({ tool: 'during-backoff' });
    await h.clock.advance(999);
    assert.strictEqual(h.connections.length, 1, 'no restart before the delay');
    await h.clock.advance(1);
    assert.strictEqual(h.connections.length, 2);
    // the second one fails to start, then the third, ...: delays double up to the cap
    const delays: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const c = h.connections[h.connections.length - 1];
      c.rejectStart('exit code 1');
      await settle();
      assert.strictEqual(h.controller.phase.phase, 'backoff');
      const delay = h.controller.phase.retryInMs!;
      delays.push(delay);
      const count: number = h.connections.length;
      await h.clock.advance(delay - 1);
      assert.strictEqual(h.connections.length, count, 'not before the delay');
      await h.clock.advance(1);
      assert.strictEqual(h.connections.length, count + 1, 'right after it');
    }
    assert.deepStrictEqual(delays, [2000, 4000, 8000, 8000, 8000]);
    const last = h.connections[h.connections.length - 1];
    last.finishStart();
    await settle();
    assert.strictEqual(h.controller.phase.phase, 'running');
    const result = await queued;
    assert.strictEqual(result.recorded, true);
    assert.ok(last.sent.some((s) => (s.params as { tool?: string }).tool === 'during-backoff'));
  });

  it('starts the backoff again after a long healthy run', async () => {
    const h = harness();
    const started = h.controller.start();
    await settle();
    h.connections[0].finishStart();
    await started;
    h.connections[0].events.closed();
    await settle();
    await h.clock.advance(1000);
    h.connections[1].finishStart();
    await settle();
    await h.clock.advance(POLICY.stableMs);
    h.connections[1].events.closed();
    await settle();
    assert.strictEqual(h.controller.phase.retryInMs, 1000);
  });

  it('re-sends an event whose connection died before the answer, with the same event_id', async () => {
    let calls = 0;
    const h = harness({
      handler: async (method, params) => {
        if (method === STATUS) {
          return status(0);
        }
        calls += 1;
        if (calls === 1) {
          throw Object.assign(new Error('Pending response rejected since connection got disposed'), { code: -32097 });
        }
        return { recorded: true, event_id: (params as { event_id: string }).event_id, date: 'd', tool: 't', duplicate: true };
      },
    });
    const started = h.controller.start();
    await settle();
    h.connections[0].finishStart();
    await started;
    const pending = h.controller.recordUsage({ tool: 't' });
    await settle();
    h.connections[0].events.closed();
    await settle();
    await h.clock.advance(1000);
    h.connections[1].finishStart();
    const result = await pending;
    const first = h.connections[0].sent.find((s) => s.method === RECORD_USAGE)!.params as { event_id: string };
    const second = h.connections[1].sent.find((s) => s.method === RECORD_USAGE)!.params as { event_id: string };
    assert.strictEqual(first.event_id, second.event_id);
    assert.strictEqual(result.event_id, first.event_id);
  });

  it("rejects with the sidecar's own error for a bad event, without retrying", async () => {
    const h = harness({
      handler: async (method) => {
        if (method === STATUS) {
          return status(0);
        }
        throw Object.assign(new Error('input_tokens: expected an integer >= 0, got -5'), { code: -32602 });
      },
    });
    const started = h.controller.start();
    await settle();
    h.connections[0].finishStart();
    await started;
    await assert.rejects(h.controller.recordUsage({ input_tokens: -5 }), (e: Error & { code?: number }) => {
      assert.strictEqual(e.code, -32602);
      assert.match(e.message, /input_tokens/);
      return true;
    });
    assert.strictEqual(h.connections[0].sent.filter((s) => s.method === RECORD_USAGE).length, 1);
    await assert.rejects(h.controller.recordUsage(null as unknown as Record<string, unknown>), /one event object/);
  });

  it('with no Python: says why, rejects queued and new requests at once, and tries again on restart', async () => {
    let available = false;
    const h = harness({ launch: async () => (available ? LAUNCH : { problem: 'No Python >= 3.9 found.' }) });
    const early = h.controller.request(STATUS, {});
    await h.controller.start();
    assert.strictEqual(h.controller.phase.phase, 'unavailable');
    assert.match(h.controller.phase.detail ?? '', /No Python/);
    await assert.rejects(early, /No Python/);
    await assert.rejects(h.controller.recordUsage({}), /not running: No Python/);
    assert.strictEqual(h.connections.length, 0);
    assert.ok(h.log.lines.some((l) => l.startsWith('error') && l.includes('No Python')));
    available = true;
    const restarted = h.controller.restart('dxTelemetry.python.interpreter changed');
    await settle();
    h.connections[0].finishStart();
    await restarted;
    assert.strictEqual(h.controller.phase.phase, 'running');
  });

  it('with no Python: the advice goes to the log and the status, the requests fail with the one-line reason', async () => {
    const advice = ['Install python3 with "sudo apt install python3".', 'Or set dxTelemetry.python.interpreter.'];
    const h = harness({ launch: async () => ({ problem: 'No Python >= 3.9 found.', advice }) });
    await h.controller.start();
    assert.strictEqual(h.controller.phase.detail, 'No Python >= 3.9 found.');
    assert.deepStrictEqual(h.controller.phase.advice, advice);
    const logged = h.log.lines.filter((l) => l.startsWith('error')).join('\n');
    assert.ok(advice.every((line) => logged.includes(line)), logged);
    await assert.rejects(h.controller.recordUsage({}), (e: Error) => e.message === "DX Telemetry's sidecar is not running: No Python >= 3.9 found.");
  });

  it('restart() stops the old sidecar and queues what comes meanwhile', async () => {
    const h = harness();
    const started = h.controller.start();
    await settle();
    h.connections[0].finishStart();
    await started;
    const restarted = h.controller.restart('the API token changed');
    const during = h.controller.recordUsage({ tool: 'x' });
    await settle();
    assert.ok(h.connections[0].stopped);
    assert.strictEqual(h.connections.length, 2);
    h.connections[0].events.closed(); // the old one's close is not a crash
    await settle();
    assert.notStrictEqual(h.controller.phase.phase, 'backoff');
    assert.strictEqual(h.connections.length, 2);
    h.connections[1].finishStart();
    await restarted;
    assert.strictEqual((await during).recorded, true);
    assert.strictEqual(h.connections[0].sent.filter((s) => s.method === RECORD_USAGE).length, 0);
  });

  it('stop() ends the sidecar for good: queued requests are rejected, a late crash restarts nothing', async () => {
    const h = harness();
    const started = h.controller.start();
    await settle();
    const queued = h.controller.recordUsage({});
    await h.controller.stop();
    await assert.rejects(queued, /shutting down/);
    assert.ok(h.connections[0].stopped);
    h.connections[0].finishStart();
    await started;
    h.connections[0].events.closed();
    await h.clock.advance(60_000);
    assert.strictEqual(h.connections.length, 1);
    assert.strictEqual(h.controller.phase.phase, 'stopped');
    await assert.rejects(h.controller.recordUsage({}), /shutting down/);
  });

  it('gives up on a queued request that waited too long, and a full queue refuses more', async () => {
    const h = harness({ queue: new RequestQueue(2, 10_000) });
    void h.controller.start();
    await settle();
    const a = h.controller.recordUsage({ tool: 'a' });
    const b = h.controller.recordUsage({ tool: 'b' });
    await assert.rejects(h.controller.recordUsage({ tool: 'c' }), /2 requests are already waiting/);
    const checks = [assert.rejects(a, /did not come up in time/), assert.rejects(b, /did not come up in time/)];
    await h.clock.advance(9_999);
    assert.strictEqual(h.controller.queued, 2, 'still waiting just before the limit');
    await h.clock.advance(5_001);
    await Promise.all(checks);
    assert.strictEqual(h.controller.queued, 0);
  });
});

describe('backoff and error classification', () => {
  it('doubles from the base, caps, and jitters within [0.5, 1]', () => {
    assert.strictEqual(backoffDelay(1, POLICY, () => 1), 1000);
    assert.strictEqual(backoffDelay(3, POLICY, () => 1), 4000);
    assert.strictEqual(backoffDelay(30, POLICY, () => 1), 8000);
    assert.strictEqual(backoffDelay(1, POLICY, () => 0), 500);
  });

  it('tells a lost connection from an answer', () => {
    assert.ok(isConnectionLoss({ code: -32097, message: 'x' }));
    assert.ok(isConnectionLoss({ code: -32096, message: 'x' }));
    assert.ok(isConnectionLoss(new Error('Connection is disposed.')));
    assert.ok(!isConnectionLoss({ code: -32602, message: 'tool: bad' }));
    assert.ok(!isConnectionLoss(undefined));
  });
});
