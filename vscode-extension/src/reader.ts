// DX Telemetry Remote Reader: this bundle under the id `dx-telemetry.dx-lsp-telemetry-remote`,
// `extensionKind: ["workspace"]`. In a remote window whose DX Telemetry runs on the UI side it
// starts the sidecar as a reader (`serve --reader`: this host's AI tools' logs into a buffer
// ledger of its own, never a push, never the token) and forwards what it reads to DX Telemetry
// on the developer's own machine. Anywhere else it does nothing (placement.ts).

import * as vscode from 'vscode';
import { SidecarController, realClock } from './client';
import { findEditorPython } from './editorPython';
import { Delivery, Forwarder, ForwardBatch } from './forwarder';
import { createLanguageConnection, traceLevelOf } from './languageClient';
import { sidecarLaunch } from './launch';
import { channelLogger } from './log';
import { PlacementFacts, RemoteReport, place } from './placement';
import { RECORD_FORWARDED, REMOTE_READER } from './remoteBridge';
import { classifyChange, contributedKeys, sectionSnapshot } from './settings';
import { DxStatus, FORWARD_DONE, FORWARD_TAKE, UsageEvent } from './types';

export interface ReaderHandle {
  stop(): Promise<void>;
}

export function activateReader(context: vscode.ExtensionContext, facts: PlacementFacts): ReaderHandle | undefined {
  const channel = vscode.window.createOutputChannel('DX Telemetry Remote Reader', { log: true });
  context.subscriptions.push(channel);
  const log = channelLogger(channel);
  const placement = place(facts);
  log.info(`DX Telemetry Remote Reader ${String(context.extension.packageJSON.version)}: ${placement.note ?? placement.mode}`);
  if (placement.mode !== 'reader') {
    return undefined;
  }
  const inspect = (key: string) => vscode.workspace.getConfiguration().inspect(key);
  const settingKeys = contributedKeys(context.extension.packageJSON);
  const remoteName = facts.remoteName ?? 'this remote host';
  let lastReport = '';
  const report = (r: RemoteReport): void => {
    const text = JSON.stringify(r);
    if (text !== lastReport) {
      lastReport = text;
      // DX Telemetry on the UI side shows it; if it is not there, the forwarding says so
      void Promise.resolve(vscode.commands.executeCommand(REMOTE_READER, r)).catch(() => undefined);
    }
  };

  const controller = new SidecarController({
    resolveLaunch: async () => {
      const python = await findEditorPython(inspect, log);
      // no token: a reader never pushes
      return 'problem' in python ? python : sidecarLaunch(python, context.extensionPath, process.env, undefined, ['serve', '--reader']);
    },
    createConnection: (launch, events) =>
      createLanguageConnection(launch, events, {
        channel,
        log,
        settings: () => sectionSnapshot(inspect, settingKeys),
        onDidChangeConfiguration: vscode.workspace.onDidChangeConfiguration,
        traceLevel: () => traceLevelOf(channel),
      }),
    log,
    onStatus: (status: DxStatus) => {
      const forward = status.forward;
      if (!forward) {
        return;
      }
      report({
        remoteName,
        state: forward.state,
        pending: forward.pending,
        delivered: forward.delivered,
        ...(forward.lastAt ? { lastAt: forward.lastAt } : {}),
        ...(forward.problem ? { problem: forward.problem } : {}),
      });
      if (forward.pending > 0) {
        forwarder.kick();
      }
    },
    onPhase: (phase) => {
      if (phase.phase === 'unavailable') {
        report({ remoteName, state: 'unavailable', pending: 0, delivered: 0, problem: `its sidecar is not running: ${phase.detail ?? ''}` });
      }
    },
  });

  const forwarder = new Forwarder({
    take: (limit) => controller.request<ForwardBatch>(FORWARD_TAKE, { limit }),
    done: (batch, delivered, problem) => controller.request(FORWARD_DONE, { batch, delivered, problem }),
    deliver: async (events: UsageEvent[]) => {
      const outcomes = await vscode.commands.executeCommand<Delivery[]>(RECORD_FORWARDED, events);
      if (!Array.isArray(outcomes) || outcomes.length !== events.length) {
        throw new Error('DX Telemetry answered the forwarded events with something else than one outcome each (an older version?)');
      }
      return outcomes;
    },
    settled: () => void controller.refreshStatus().catch(() => undefined),
    log,
    clock: realClock,
  });

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (classifyChange(event) === 'restart') {
        void controller.restart('dxTelemetry.python.interpreter changed');
      }
    }),
  );
  void controller.start().then(() => forwarder.kick());
  return {
    stop: async () => {
      forwarder.stop();
      await controller.stop();
    },
  };
}
