import * as assert from 'assert';
import { BATCH_LIMIT, Delivery, ForwardBatch, Forwarder, IDLE_MS, deliveredPrefix } from '../../src/forwarder';
import { recordForwarded } from '../../src/remoteBridge';
import type { UsageEvent } from '../../src/types';
import { FakeClock, recordingLogger, settle } from './helpers';

/** The reader sidecar's side, in memory: a ledger of events and a cursor that moves only on done. */
class FakeReader {
  cursor = 0;
  batchId = 0;
  handedOut: { id: number; from: number; count: number } | undefined;
  takes = 0;
  dones: Array<{ batch: number; delivered: number; problem: string | null }> = [];
  leader = true;
  constructor(public events: UsageEvent[]) {}
  take = async (limit: number): Promise<ForwardBatch> => {
    this.takes += 1;
    if (!this.leader) {
      return { batch: 0, events: [], more: false, leader: false };
    }
    const events = this.events.slice(this.cursor, this.cursor + limit);
    this.handedOut = { id: ++this.batchId, from: this.cursor, count: events.length };
    return { batch: this.batchId, events, more: this.cursor + events.length < this.events.length, leader: true };
  };
  done = async (batch: number, delivered: number, problem: string | null) => {
    this.dones.push({ batch, delivered, problem });
    const moved = this.handedOut?.id === batch;
    if (moved && this.handedOut) {
      this.cursor = this.handedOut.from + Math.min(delivered, this.handedOut.count);
    }
    return { moved, pending: this.events.length - this.cursor };
  };
}

const events = (n: number): UsageEvent[] => Array.from({ length: n }, (_, i) => ({ event_id: `e${i}`, input_tokens: i }));

describe('the Remote Reader forwarding loop', () => {
  it('counts as delivered the outcomes before the first failure, refusals included', () => {
    const ok: Delivery = { ok: true, duplicate: false };
    assert.deepStrictEqual(deliveredPrefix([ok, ok]), { delivered: 2, refused: [] });
    assert.deepStrictEqual(deliveredPrefix([ok, { refused: 'timestamp: too old' }, { failed: 'gone' }, ok]), {
      delivered: 2,
      refused: ['timestamp: too old'],
      failed: 'gone',
    });
    assert.deepStrictEqual(deliveredPrefix([]), { delivered: 0, refused: [] });
  });

  it('forwards a backlog in batches, each settled before the next, then waits for a nudge', async () => {
    const clock = new FakeClock();
    const reader = new FakeReader(events(BATCH_LIMIT * 2 + 7));
    const received: UsageEvent[] = [];
    const forwarder = new Forwarder({
      take: reader.take,
      done: reader.done,
      deliver: async (batch) => {
        received.push(...batch);
        return batch.map(() => ({ ok: true, duplicate: false }));
      },
      log: recordingLogger(),
      clock,
    });
    forwarder.kick();
    await settle();
    assert.deepStrictEqual(
      reader.dones.map((d) => d.delivered),
      [BATCH_LIMIT, BATCH_LIMIT, 7],
    );
    assert.strictEqual(received.length, reader.events.length);
    assert.deepStrictEqual(received.map((e) => e.event_id), reader.events.map((e) => e.event_id)); // in order, once
    assert.deepStrictEqual(clock.pendingDelays(), [IDLE_MS]);

    reader.events.push(...events(2).map((e) => ({ ...e, event_id: `new-${String(e.event_id)}` })));
    forwarder.kick(); // statusChanged said events are waiting
    await settle();
    assert.strictEqual(received.length, BATCH_LIMIT * 2 + 9);
    assert.strictEqual(reader.cursor, reader.events.length);
    forwarder.stop();
  });

  it('backs off while the UI side is not there, ignoring nudges, and keeps the cursor where it was', async () => {
    const clock = new FakeClock();
    const reader = new FakeReader(events(3));
    let uiInstalled = false;
    const log = recordingLogger();
    const forwarder = new Forwarder({
      take: reader.take,
      done: reader.done,
      deliver: async (batch) => {
        if (!uiInstalled) {
          throw new Error("command '_dxTelemetry.recordForwarded' not found");
        }
        return batch.map(() => ({ ok: true, duplicate: true }));
      },
      log,
      clock,
    });
    forwarder.kick();
    await settle();
    assert.deepStrictEqual(reader.dones, [
      {
        batch: 1,
        delivered: 0,
        problem: "DX Telemetry on your own machine did not take the events (is it installed and enabled there?): command '_dxTelemetry.recordForwarded' not found",
      },
    ]);
    assert.strictEqual(reader.cursor, 0);
    assert.deepStrictEqual(clock.pendingDelays(), [5_000]);
    forwarder.kick();
    forwarder.kick();
    await settle();
    assert.strictEqual(reader.takes, 1, 'a nudge during the backoff takes nothing');
    await clock.advance(5_000);
    assert.deepStrictEqual(clock.pendingDelays(), [10_000], 'the second failure waits twice as long');
    uiInstalled = true;
    await clock.advance(10_000);
    assert.strictEqual(reader.cursor, 3);
    assert.strictEqual(reader.dones[reader.dones.length - 1].problem, null, 'delivered again: the problem is cleared');
    assert.deepStrictEqual(clock.pendingDelays(), [IDLE_MS]);
    assert.ok(log.lines.some((l) => l.startsWith('warn DX Telemetry on your own machine did not take')));
    forwarder.stop();
  });

  it('moves the cursor past what arrived only, and logs what the UI side refused for good', async () => {
    const clock = new FakeClock();
    const reader = new FakeReader(events(4));
    const log = recordingLogger();
    const outcomes: Delivery[] = [{ ok: true, duplicate: false }, { refused: 'timestamp: older than the backfill window' }, { failed: 'the sidecar is restarting' }, { ok: true, duplicate: false }];
    const forwarder = new Forwarder({ take: reader.take, done: reader.done, deliver: async () => outcomes, log, clock });
    forwarder.kick();
    await settle();
    assert.strictEqual(reader.dones[0].delivered, 2);
    assert.match(reader.dones[0].problem ?? '', /the sidecar is restarting$/);
    assert.strictEqual(reader.cursor, 2);
    assert.ok(log.lines.some((l) => /1 forwarded event\(s\) refused .*older than the backfill window/.test(l)), log.lines.join('\n'));
    forwarder.stop();
  });

  it("a window whose reader does not lead forwards nothing and settles nothing", async () => {
    const clock = new FakeClock();
    const reader = new FakeReader(events(2));
    reader.leader = false;
    const forwarder = new Forwarder({ take: reader.take, done: reader.done, deliver: async () => [], log: recordingLogger(), clock });
    forwarder.kick();
    await settle();
    assert.deepStrictEqual(reader.dones, []);
    assert.deepStrictEqual(clock.pendingDelays(), [IDLE_MS]);
    forwarder.stop();
    await clock.advance(IDLE_MS);
    assert.strictEqual(reader.takes, 1, 'stopped: no more takes');
  });
});

describe("DX Telemetry's side: _dxTelemetry.recordForwarded", () => {
  it('answers one outcome per event: recorded, refused for good (-32602), or failed for now', async () => {
    const controller = {
      recordUsage: async (event: UsageEvent) => {
        if (event.event_id === 'bad') {
          throw Object.assign(new Error('timestamp: older than the window'), { code: -32602 });
        }
        if (event.event_id === 'down') {
          throw Object.assign(new Error("DX Telemetry's sidecar is not running"), { code: undefined });
        }
        return { recorded: true, event_id: String(event.event_id), date: '2026-12-01', tool: 't', duplicate: event.event_id === 'again' };
      },
    };
    const outcomes = await recordForwarded(controller, [{ event_id: 'a' }, { event_id: 'again' }, { event_id: 'bad' }, { event_id: 'down' }]);
    assert.deepStrictEqual(outcomes, [
      { ok: true, duplicate: false },
      { ok: true, duplicate: true },
      { refused: 'timestamp: older than the window' },
      { failed: "DX Telemetry's sidecar is not running" },
    ]);
    await assert.rejects(recordForwarded(controller, { event_id: 'a' }), /takes a list of events/);
  });
});
