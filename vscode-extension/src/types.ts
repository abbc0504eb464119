// The sidecar's wire types (the root README, "The LSP interface"). Plain data: no vscode import.

export const RECORD_USAGE = 'dxTelemetry/recordUsage';
export const STATUS = 'dxTelemetry/status';
export const STATUS_CHANGED = 'dxTelemetry/statusChanged';
/** A remote host's reader sidecar (`serve --reader`): the next batch, and how much of it arrived. */
export const FORWARD_TAKE = 'dxTelemetry/forwardTake';
export const FORWARD_DONE = 'dxTelemetry/forwardDone';
export const FLUSH_NOW = 'dxTelemetry.flushNow';
export const RESEND_DAY = 'dxTelemetry.resendDay';
export const MARK_PUSHED = 'dxTelemetry.markPushed';

export interface Totals {
  events: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_tokens: number;
  cache_read_tokens: number;
  spend_cents: number;
}

/**
 * The README's states table: `failed` is DX refusing the record; a day DX could not be reached
 * for (or that it asked to wait) is `pending` with `retryAt`; `expired` is older than the
 * backfill window and never pushed: it is not pushed by itself.
 */
export type DayState = 'open' | 'pending' | 'pushed' | 'outbox' | 'failed' | 'unconfirmed' | 'expired';

export interface DayEntry {
  date: string;
  tool: string;
  state: DayState;
  totals: Totals;
  late?: Totals;
  error?: string;
  pushedAt?: string;
  retryAt?: string;
}

/** `config.managed`: present only on a machine with a managed configuration. */
export interface ManagedStatus {
  /** Every source looked at, in order of precedence, and those that exist. */
  lookedIn: string[];
  found: string[];
  /** Dotted key (`flush.delaySeconds`) -> its value and the source it came from. */
  values: Record<string, { value: unknown; from: string }>;
  /** Keys whose editor value differed and is overridden. */
  overrides: string[];
}

export interface DxStatus {
  version: string;
  dataDir: string;
  leader: boolean;
  config: {
    ok: boolean;
    /** `forward`: a remote host's reader, which hands its events to the UI side and never pushes. */
    destination: 'dx' | 'outbox' | 'off' | 'forward';
    problems: string[];
    /** `dxTelemetry.machineSuffix`, when set: this machine pushes `<tool>@<suffix>`. */
    machineSuffix?: string;
    managed?: ManagedStatus;
  };
  today: { date: string; tools: Record<string, Totals> };
  days: DayEntry[];
  /** A reader's forwarding (only in a reader's status). */
  forward?: { state: 'forwarding' | 'follower' | 'standby'; pending: number; delivered: number; lastAt?: string; problem?: string };
}

/** `report --json`: the last N days, newest first. */
export interface DxReport {
  days: Array<{ date: string; tool: string; state: DayState; totals: Totals }>;
}

/** One usage event, as `dxTelemetry/recordUsage` takes it (the sidecar validates it). */
export type UsageEvent = Record<string, unknown>;

export interface RecordResult {
  recorded: boolean;
  event_id: string;
  date: string;
  tool: string;
  duplicate: boolean;
}

export interface FlushResult {
  pushed: Array<{ date: string; tool: string; destination: string }>;
  failed: Array<{ date: string; tool: string; error: string }>;
  /** DX was not reached, or asked to wait: tried again by itself at `retryAt`. */
  pending?: Array<{ date: string; tool: string; error: string; retryAt: string }>;
  unconfirmed: Array<{ date: string; tool: string }>;
  /** Flush Now's days older than the window, never pushed: not tried. */
  expired?: Array<{ date: string; tool: string }>;
}

/** The API other extensions get from `vscode.extensions.getExtension(...).exports`. */
export interface DxTelemetryApi {
  recordUsage(event: UsageEvent): Promise<RecordResult>;
}

export function totalTokens(t: Totals): number {
  return t.input_tokens + t.output_tokens + t.cache_write_tokens + t.cache_read_tokens;
}
