// The sidecar's lifecycle: start, crash restarts with capped exponential backoff, deliberate
// restarts (token or interpreter changed), stop. Requests made while it is not running are
// queued and sent, in order, as soon as it runs. The language client itself is behind
// `ConnectionFactory` (languageClient.ts), so this logic is tested without VS Code.

import { randomUUID } from 'crypto';
import type { Logger } from './log';
import { Launch, LaunchProblem, isProblem } from './launch';
import { Pending, RequestQueue } from './queue';
import { RECORD_USAGE, STATUS, STATUS_CHANGED, DxStatus, RecordResult, UsageEvent } from './types';

export interface SidecarConnection {
  readonly pid: number | undefined;
  start(): Promise<void>;
  /** Shutdown + exit, then kill if the process is still there. Never rejects. */
  stop(): Promise<void>;
  sendRequest(method: string, params: unknown): Promise<unknown>;
  onNotification(method: string, handler: (params: unknown) => void): void;
}

export interface ConnectionEvents {
  /** The connection closed without being asked to (the process died or closed stdout). */
  closed(): void;
}

export type ConnectionFactory = (launch: Launch, events: ConnectionEvents) => SidecarConnection;

export type Phase = 'starting' | 'running' | 'backoff' | 'unavailable' | 'stopped';

export interface PhaseInfo {
  phase: Phase;
  /** Why it is not running (backoff, unavailable), one line. */
  detail?: string;
  /** Unavailable: what to do about it, one line each. */
  advice?: string[];
  pid?: number;
  /** In backoff: the delay before the next start. */
  retryInMs?: number;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  /** A run at least this long counts as healthy: the next crash starts the backoff again. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000, stableMs: 3 * 60_000 };

/** The delay before restart number `failures` (1-based): base * 2^(n-1), capped, times [0.5, 1]. */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number): number {
  const raw = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(raw * (0.5 + 0.5 * random()));
}

/** An error the sidecar answered with (JSON-RPC code and message), for recordUsage's callers. */
export class SidecarError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = 'DxTelemetryError';
  }
}

const PENDING_RESPONSE_REJECTED = -32097;
const CONNECTION_INACTIVE = -32096;
const MAX_ATTEMPTS = 3;

/** True when a request failed because the connection went away, not because the sidecar said no. */
export function isConnectionLoss(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; name?: unknown } | undefined;
  if (!e) {
    return false;
  }
  if (e.code === PENDING_RESPONSE_REJECTED || e.code === CONNECTION_INACTIVE) {
    return true;
  }
  const message = typeof e.message === 'string' ? e.message : '';
  return e.name === 'ConnectionError' || /connection (is |got )?(disposed|closed)|client is not running/i.test(message);
}

export interface ControllerDeps {
  resolveLaunch: () => Promise<Launch | LaunchProblem>;
  createConnection: ConnectionFactory;
  log: Logger;
  onStatus: (status: DxStatus) => void;
  onPhase: (info: PhaseInfo) => void;
  clock?: Clock;
  backoff?: BackoffPolicy;
  random?: () => number;
  queue?: RequestQueue;
}

export class SidecarController {
  private readonly clock: Clock;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private readonly queue: RequestQueue;
  private connection: SidecarConnection | undefined;
  private generation = 0;
  private phaseInfo: PhaseInfo = { phase: 'stopped' };
  private failures = 0;
  private runningSince = 0;
  private restartTimer: unknown;
  private expiryTimer: unknown;
  private disposed = false;
  /** When start() was first called, for "running after N ms". */
  private firstStart = 0;
  private everRan = false;

  constructor(private readonly deps: ControllerDeps) {
    this.clock = deps.clock ?? realClock;
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF;
    this.random = deps.random ?? Math.random;
    this.queue = deps.queue ?? new RequestQueue();
  }

  get phase(): PhaseInfo {
    return this.phaseInfo;
  }

  get queued(): number {
    return this.queue.size;
  }

  /** Starts the sidecar (once; later calls while it runs do nothing). */
  async start(): Promise<void> {
    if (this.disposed || this.phaseInfo.phase === 'running' || this.phaseInfo.phase === 'starting') {
      return;
    }
    if (!this.firstStart) {
      this.firstStart = this.clock.now();
    }
    await this.launch();
  }

  /** Stops the running sidecar and starts a new one (a new token or interpreter). */
  async restart(reason: string): Promise<void> {
    if (this.disposed) {
      return;
    }
    this.deps.log.info(`restarting the sidecar: ${reason}`);
    this.failures = 0;
    this.cancelRestartTimer();
    const old = this.connection;
    this.connection = undefined;
    this.generation += 1;
    this.setPhase({ phase: 'starting' });
    if (old) {
      await old.stop();
    }
    await this.launch();
  }

  /** For deactivate: stop the sidecar; nothing restarts it afterwards. */
  async stop(): Promise<void> {
    this.disposed = true;
    this.generation += 1;
    this.cancelRestartTimer();
    if (this.expiryTimer !== undefined) {
      this.clock.clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
    }
    this.queue.rejectAll(new SidecarError('DX Telemetry is shutting down; the request was not sent'));
    const old = this.connection;
    this.connection = undefined;
    this.setPhase({ phase: 'stopped' });
    if (old) {
      await old.stop();
    }
  }

  /** A request to the sidecar; waits in the queue while it (re)starts. */
  request<T>(method: string, params: unknown): Promise<T> {
    if (this.disposed) {
      return Promise.reject(new SidecarError('DX Telemetry is shutting down; the request was not sent'));
    }
    if (this.phaseInfo.phase === 'unavailable') {
      return Promise.reject(new SidecarError(`DX Telemetry's sidecar is not running: ${this.phaseInfo.detail ?? 'unavailable'}`));
    }
    const promise = this.queue.enqueue<T>(method, params, this.clock.now());
    if (this.phaseInfo.phase === 'running') {
      this.drain();
    }
    this.armExpiry();
    return promise;
  }

  /**
   * Records one usage event. An event without `event_id` gets one here, so that re-sending it
   * after a lost connection can never count it twice (the sidecar dedupes by event_id).
   */
  recordUsage(event: UsageEvent): Promise<RecordResult> {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return Promise.reject(new SidecarError('recordUsage takes one event object', -32602));
    }
    const withId = 'event_id' in event ? { ...event } : { ...event, event_id: randomUUID() };
    return this.request<RecordResult>(RECORD_USAGE, withId);
  }

  async refreshStatus(): Promise<DxStatus | undefined> {
    if (this.phaseInfo.phase !== 'running') {
      return undefined;
    }
    const status = await this.request<DxStatus>(STATUS, {});
    this.deps.onStatus(status);
    return status;
  }

  // -- internals ----------------------------------------------------------------------------

  private async launch(): Promise<void> {
    const gen = ++this.generation;
    this.setPhase({ phase: 'starting' });
    let launch: Launch | LaunchProblem;
    try {
      launch = await this.deps.resolveLaunch();
    } catch (error) {
      launch = { problem: `cannot prepare the sidecar: ${String(error)}` };
    }
    if (gen !== this.generation || this.disposed) {
      return;
    }
    if (isProblem(launch)) {
      this.deps.log.error([launch.problem, ...(launch.advice ?? [])].join('\n'));
      this.setPhase({ phase: 'unavailable', detail: launch.problem, advice: launch.advice });
      this.queue.rejectAll(new SidecarError(`DX Telemetry's sidecar is not running: ${launch.problem}`));
      return;
    }
    this.deps.log.info(`starting the sidecar: ${launch.description}`);
    const connection = this.deps.createConnection(launch, { closed: () => this.fail(gen, 'the sidecar exited') });
    this.connection = connection;
    connection.onNotification(STATUS_CHANGED, (params) => {
      if (gen === this.generation) {
        this.deps.onStatus(params as DxStatus);
      }
    });
    const startedAt = this.clock.now();
    try {
      await connection.start();
    } catch (error) {
      this.fail(gen, `the sidecar did not start: ${errorText(error)}`);
      return;
    }
    if (gen !== this.generation || this.disposed) {
      return; // superseded while starting; whoever superseded it stops it
    }
    this.runningSince = this.clock.now();
    const first = !this.everRan;
    this.everRan = true;
    this.deps.log.info(
      `sidecar running (pid ${connection.pid ?? '?'}) ${this.runningSince - startedAt} ms after launch` +
        (first ? `, ${this.runningSince - this.firstStart} ms after activation` : ''),
    );
    this.setPhase({ phase: 'running', pid: connection.pid });
    this.drain();
    this.refreshStatus().catch((error: unknown) => this.deps.log.warn(`status: ${errorText(error)}`));
  }

  /** The connection `gen` failed: clean it up and schedule a restart with backoff. */
  private fail(gen: number, reason: string): void {
    if (gen !== this.generation || this.disposed) {
      return;
    }
    this.generation += 1; // whatever else this connection reports now is stale
    const old = this.connection;
    this.connection = undefined;
    if (old) {
      void old.stop();
    }
    const ranFor = this.runningSince ? this.clock.now() - this.runningSince : 0;
    if (ranFor >= this.backoff.stableMs) {
      this.failures = 0;
    }
    this.runningSince = 0;
    this.failures += 1;
    const delay = backoffDelay(this.failures, this.backoff, this.random);
    const detail = `${reason}; restarting in ${Math.ceil(delay / 1000)} s (attempt ${this.failures})`;
    this.deps.log.warn(detail);
    this.setPhase({ phase: 'backoff', detail, retryInMs: delay });
    this.cancelRestartTimer();
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.disposed) {
        void this.launch();
      }
    }, delay);
  }

  private drain(): void {
    const connection = this.connection;
    if (!connection || this.phaseInfo.phase !== 'running') {
      return;
    }
    for (const item of this.queue.takeAll()) {
      this.send(connection, item);
    }
  }

  private send(connection: SidecarConnection, item: Pending): void {
    connection.sendRequest(item.method, item.params).then(
      (result) => item.resolve(result),
      (error: unknown) => {
        if (isConnectionLoss(error) && item.attempts + 1 < MAX_ATTEMPTS && !this.disposed) {
          // Sent again on the next connection (never on this dying one); the event_id makes
          // that safe even if the sidecar had written it before the connection went away.
          this.deps.log.debug(`${item.method}: connection lost; queued for the restarted sidecar`);
          this.queue.push({ ...item, attempts: item.attempts + 1 });
          this.armExpiry();
          if (this.connection !== connection) {
            this.drain();
          }
          return;
        }
        item.reject(toSidecarError(error));
      },
    );
  }

  private armExpiry(): void {
    if (this.expiryTimer !== undefined || this.queue.size === 0) {
      return;
    }
    this.expiryTimer = this.clock.setTimeout(() => {
      this.expiryTimer = undefined;
      const n = this.queue.expire(
        this.clock.now(),
        `DX Telemetry's sidecar did not come up in time (${this.phaseInfo.detail ?? this.phaseInfo.phase}); the request was not sent`,
      );
      if (n) {
        this.deps.log.warn(`${n} queued request(s) gave up waiting for the sidecar`);
      }
      this.armExpiry();
    }, 5_000);
  }

  private cancelRestartTimer(): void {
    if (this.restartTimer !== undefined) {
      this.clock.clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
  }

  private setPhase(info: PhaseInfo): void {
    this.phaseInfo = info;
    this.deps.onPhase(info);
  }
}

export function toSidecarError(error: unknown): SidecarError {
  if (error instanceof SidecarError) {
    return error;
  }
  const e = error as { message?: unknown; code?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return new SidecarError(message, typeof e?.code === 'number' ? e.code : undefined);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
