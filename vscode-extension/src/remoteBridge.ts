// DX Telemetry's side of the Remote Reader: two private commands (an underscore: not in the
// palette), which VS Code routes here from the remote extension host, arguments as JSON.
//   _dxTelemetry.recordForwarded(events): records each through the sidecar, one outcome each;
//   _dxTelemetry.remoteReader(report):    how forwarding goes on that host, for the status bar.

import * as vscode from 'vscode';
import type { SidecarController } from './client';
import type { Delivery } from './forwarder';
import { RemoteReport, isRemoteReport } from './placement';
import { UsageEvent } from './types';

export const RECORD_FORWARDED = '_dxTelemetry.recordForwarded';
export const REMOTE_READER = '_dxTelemetry.remoteReader';
const INVALID_PARAMS = -32602;

/** Each event recorded; a refusal (a bad field, a day outside the window) is final, anything else is not. */
export function recordForwarded(controller: Pick<SidecarController, 'recordUsage'>, events: unknown): Promise<Delivery[]> {
  if (!Array.isArray(events)) {
    return Promise.reject(new Error('recordForwarded takes a list of events'));
  }
  return Promise.all(
    events.map((event: unknown) =>
      controller.recordUsage(event as UsageEvent).then(
        (result): Delivery => ({ ok: true, duplicate: result.duplicate }),
        (error: unknown): Delivery => {
          const e = error as { code?: unknown; message?: unknown };
          const message = typeof e?.message === 'string' ? e.message : String(error);
          return e?.code === INVALID_PARAMS ? { refused: message } : { failed: message };
        },
      ),
    ),
  );
}

export function registerRemoteBridge(
  context: vscode.ExtensionContext,
  controller: SidecarController,
  onReport: (report: RemoteReport) => void,
): void {
  context.subscriptions.push(
    vscode.commands.registerCommand(RECORD_FORWARDED, (events: unknown) => recordForwarded(controller, events)),
    vscode.commands.registerCommand(REMOTE_READER, (report: unknown) => {
      if (isRemoteReport(report)) {
        onReport(report);
      }
    }),
  );
}
