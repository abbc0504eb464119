// Requests that arrive while the sidecar is (re)starting wait here, in order, and are sent
// once it runs. Nothing is dropped silently: an item leaves the queue sent, or rejected with a
// reason (queue full, waited too long, the extension is shutting down, no Python).

export interface Pending<T = unknown> {
  method: string;
  params: unknown;
  /** Times already sent and lost with the connection. */
  attempts: number;
  enqueuedAt: number;
  resolve(value: T): void;
  reject(error: Error): void;
}

export class RequestQueue {
  private items: Pending[] = [];

  constructor(
    private readonly maxItems = 1000,
    private readonly maxWaitMs = 120_000,
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** A promise for the request's result; rejected at once when the queue is full. */
  enqueue<T>(method: string, params: unknown, now: number, attempts = 0): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.push({ method, params, attempts, enqueuedAt: now, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  /** Puts back an item that was sent but lost with its connection (keeps its place in time). */
  push(item: Pending): void {
    if (this.items.length >= this.maxItems) {
      item.reject(new Error(`DX Telemetry: ${this.maxItems} requests are already waiting for the sidecar; not queued`));
      return;
    }
    this.items.push(item);
  }

  /** Removes and returns everything, oldest first. */
  takeAll(): Pending[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  /** Rejects the items that have waited longer than allowed; returns how many. */
  expire(now: number, reason: string): number {
    const keep: Pending[] = [];
    let expired = 0;
    for (const item of this.items) {
      if (now - item.enqueuedAt >= this.maxWaitMs) {
        item.reject(new Error(reason));
        expired += 1;
      } else {
        keep.push(item);
      }
    }
    this.items = keep;
    return expired;
  }

  rejectAll(error: Error): void {
    for (const item of this.takeAll()) {
      item.reject(error);
    }
  }
}
