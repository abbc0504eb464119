// Where this extension runs, and so what it does. One developer machine keeps one ledger and
// one pusher: DX Telemetry is `extensionKind: ["ui", "workspace"]`, so in a remote window
// (SSH, WSL, a dev container, a tunnel) it runs on the developer's own machine when it is
// installed there. The AI tools run in the remote terminal log on the remote host, which the
// UI side cannot read; DX Telemetry Remote Reader (`["workspace"]`, the same bundle under
// another id) runs there, reads them with a sidecar that never pushes, and forwards the events
// to the UI side through private commands (commands are the one thing VS Code routes between
// extension hosts). Plain logic, no vscode import: tested without VS Code.

export const MAIN_ID = 'dx-telemetry.dx-lsp-telemetry';
export const READER_ID = 'dx-telemetry.dx-lsp-telemetry-remote';

/** Which extension this is: DX Telemetry itself, or the Remote Reader. */
export type Role = 'main' | 'reader';

export interface PlacementFacts {
  role: Role;
  /** `vscode.env.remoteName`: undefined in a local window (code-server: its host and port). */
  remoteName: string | undefined;
  /** Where this extension runs: `context.extension.extensionKind`. */
  runsOn: 'ui' | 'workspace';
  /** The workbench is a browser (code-server, Codespaces in a browser): no Node host on the UI side. */
  web: boolean;
  /** For the reader: DX Telemetry itself runs in this same extension host. */
  mainHere: boolean;
}

/**
 * `full`: records and pushes (DX Telemetry); `reader`: reads this host's AI tools' logs and
 * forwards them, never pushes (the Remote Reader); `idle`: nothing to do here.
 */
export type Mode = 'full' | 'reader' | 'idle';

export interface Placement {
  mode: Mode;
  /** The condition, for the status tooltip and the log; undefined in a plain local window. */
  note?: string;
}

export function place(facts: PlacementFacts): Placement {
  return facts.role === 'main' ? placeMain(facts) : placeReader(facts);
}

function placeMain(f: PlacementFacts): Placement {
  const remote = f.remoteName;
  if (remote === undefined) {
    return { mode: 'full' };
  }
  if (f.runsOn === 'ui') {
    return {
      mode: 'full',
      note:
        `Remote window (${remote}): this machine keeps the one ledger and pushes. AI tools running on ` +
        'the remote host are counted through DX Telemetry Remote Reader installed there.',
    };
  }
  if (f.web) {
    return {
      mode: 'full',
      note:
        `This browser window's DX Telemetry runs on its server (${remote}) and pushes from there. ` +
        'If you also use DX Telemetry on another machine, set dxTelemetry.machineSuffix in this ' +
        "server's settings to keep their records apart.",
    };
  }
  return {
    mode: 'full',
    note:
      `DX Telemetry runs on the remote host (${remote}) and pushes from there: it is not installed on ` +
      'this machine. Install it here to keep one ledger per machine (the remote host then needs ' +
      'DX Telemetry Remote Reader only).',
  };
}

function placeReader(f: PlacementFacts): Placement {
  if (f.remoteName === undefined) {
    return { mode: 'idle', note: "a local window: DX Telemetry itself reads this machine's AI tools' logs" };
  }
  if (f.mainHere) {
    return { mode: 'idle', note: `DX Telemetry runs on ${f.remoteName} itself and reads its AI tools' logs` };
  }
  if (f.runsOn === 'ui') {
    return { mode: 'idle', note: 'the Remote Reader runs on your own machine here, where DX Telemetry reads the logs' };
  }
  return {
    mode: 'reader',
    note: `reading the AI tools' logs on ${f.remoteName} and forwarding them to DX Telemetry on your own machine`,
  };
}

/** What the Remote Reader tells DX Telemetry on the UI side (`_dxTelemetry.remoteReader`). */
export interface RemoteReport {
  remoteName: string;
  /** The reader sidecar's `forward.state`, or `starting` / `unavailable` (no sidecar). */
  state: string;
  pending: number;
  delivered: number;
  lastAt?: string;
  problem?: string;
}

export function isRemoteReport(value: unknown): value is RemoteReport {
  const r = value as Partial<RemoteReport> | undefined;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.remoteName === 'string' &&
    typeof r.state === 'string' &&
    typeof r.pending === 'number' &&
    typeof r.delivered === 'number'
  );
}

/** The tooltip line for a Remote Reader's report. */
export function remoteLine(r: RemoteReport): string {
  let text: string;
  if (r.state === 'standby') {
    text = `Remote host ${r.remoteName}: its own DX Telemetry pushes its AI tools' usage; nothing is forwarded`;
  } else if (r.state === 'follower') {
    text = `Remote host ${r.remoteName}: another window's Remote Reader forwards its usage`;
  } else {
    text = `Remote host ${r.remoteName}: ${r.delivered} event(s) forwarded to this machine's ledger, ${r.pending} waiting`;
    if (r.lastAt) {
      text += ` (last at ${r.lastAt})`;
    }
  }
  return r.problem ? `${text}. ${r.problem}` : text;
}
