// The Remote Reader's loop: take a batch of the remote host's events from its sidecar, record
// them with DX Telemetry on the UI side, tell the sidecar how many arrived (only then does its
// cursor move). A batch delivered twice (a window closed between the two steps) is harmless:
// each event keeps its event_id, and the UI side's ledger counts an id once. No vscode import:
// the three steps come in as functions, so this is tested without VS Code.

import type { Clock } from './client';
import type { Logger } from './log';
import type { UsageEvent } from './types';

export const BATCH_LIMIT = 500;
/** With nothing to forward, look again this often even without a statusChanged nudge. */
export const IDLE_MS = 30_000;
const RETRY_BASE_MS = 5_000;
const RETRY_CAP_MS = 5 * 60_000;

export interface ForwardBatch {
  /** 0: no batch (this window's reader is not the one that forwards, or it stands by). */
  batch: number;
  events: UsageEvent[];
  more: boolean;
  leader: boolean;
}

/** One event's fate on the UI side. `refused`: its sidecar named a bad field (for good). */
export type Delivery = { ok: true; duplicate: boolean } | { refused: string } | { failed: string };

export interface ForwarderDeps {
  take(limit: number): Promise<ForwardBatch>;
  done(batch: number, delivered: number, problem: string | null): Promise<{ moved: boolean; pending: number }>;
  /** Records `events` on the UI side: one outcome each, in order. Throws if the UI side is not there. */
  deliver(events: UsageEvent[]): Promise<Delivery[]>;
  /** After each batch settled (for DX Telemetry's status on the UI side). */
  settled?: () => void;
  log: Logger;
  clock: Clock;
}

/** How many of `outcomes` count as delivered: the prefix before the first failure (refused ones count). */
export function deliveredPrefix(outcomes: Delivery[]): { delivered: number; refused: string[]; failed?: string } {
  const refused: string[] = [];
  for (let i = 0; i < outcomes.length; i += 1) {
    const o = outcomes[i];
    if ('failed' in o) {
      return { delivered: i, refused, failed: o.failed };
    }
    if ('refused' in o) {
      refused.push(o.refused);
    }
  }
  return { delivered: outcomes.length, refused };
}

export function unreachable(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return `DX Telemetry on your own machine did not take the events (is it installed and enabled there?): ${text}`;
}

export class Forwarder {
  private stopped = false;
  private running = false;
  private wake: (() => void) | undefined;
  private kicked = false;
  private failures = 0;

  constructor(private readonly deps: ForwarderDeps) {}

  /** Events may be waiting (the sidecar's status says so): take them now. */
  kick(): void {
    if (this.failures === 0) {
      // while backing off (the UI side was not there) only the timer tries again
      this.kicked = true;
      this.wake?.();
    }
    if (!this.running && !this.stopped) {
      void this.run();
    }
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.stopped) {
        this.kicked = false;
        const wait = await this.once();
        if (wait > 0 && !this.kicked) {
          await this.sleep(wait);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** One batch; how long to wait before the next (0: at once). */
  private async once(): Promise<number> {
    const { deps } = this;
    let batch: ForwardBatch;
    try {
      batch = await deps.take(BATCH_LIMIT);
    } catch (error) {
      deps.log.debug(`forwardTake: ${error instanceof Error ? error.message : String(error)}`);
      return this.retryDelay(); // the sidecar restarts; its controller says why
    }
    if (!batch.batch) {
      return IDLE_MS;
    }
    let delivered = 0;
    let problem: string | null = null;
    if (batch.events.length) {
      let outcomes: Delivery[] = [];
      try {
        outcomes = await deps.deliver(batch.events);
      } catch (error) {
        problem = unreachable(error);
      }
      const result = deliveredPrefix(outcomes);
      delivered = problem === null ? result.delivered : 0;
      problem = problem ?? (result.failed !== undefined ? unreachable(result.failed) : null);
      if (result.refused.length) {
        deps.log.warn(`${result.refused.length} forwarded event(s) refused by DX Telemetry on your machine, e.g.: ${result.refused[0]}`);
      }
    }
    try {
      await deps.done(batch.batch, delivered, problem);
    } catch (error) {
      deps.log.debug(`forwardDone: ${error instanceof Error ? error.message : String(error)}`);
      return this.retryDelay();
    }
    deps.settled?.();
    if (problem !== null) {
      deps.log.warn(problem);
      return this.retryDelay();
    }
    this.failures = 0;
    if (delivered) {
      deps.log.info(`forwarded ${delivered} event(s) to DX Telemetry on your own machine`);
    }
    return batch.more ? 0 : IDLE_MS;
  }

  private retryDelay(): number {
    this.failures += 1;
    return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (this.failures - 1));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.deps.clock.setTimeout(() => done(), ms);
      const done = () => {
        this.deps.clock.clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
    });
  }
}
