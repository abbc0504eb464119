// The real connection: vscode-languageclient 9 over the sidecar's stdio. We spawn the process
// ourselves (so we know its pid, route its stderr, and kill it if it lingers) and hand the
// client its streams. The client never shows a notification, never restarts by itself (the
// controller does, with backoff), and does not register VS Code commands for the sidecar's
// executeCommand commands (their ids are this extension's own palette commands).
//
// Settings reach the sidecar only as `settings()` computes them (user level only, settings.ts):
// no `synchronize.configurationSection`, whose pushes and pull answers would carry
// `getConfiguration('dxTelemetry')` with whatever a workspace merged into it. The message trace
// follows the channel's log level alone: the client resets it from `dxTelemetry.trace.server`
// (a key anyone's settings may hold) at every configuration change, so it is set again after.

import { ChildProcess, spawn } from 'child_process';
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  DynamicFeature,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  StaticFeature,
  Trace,
} from 'vscode-languageclient/node';
import type { ConnectionEvents, SidecarConnection } from './client';
import type { Launch } from './launch';
import { keepStderrLine, Logger } from './log';
import { SECTION } from './settings';

const EXECUTE_COMMAND = 'workspace/executeCommand';

class DxLanguageClient extends LanguageClient {
  override registerFeature(feature: StaticFeature | DynamicFeature<unknown>): void {
    const method = (feature as { registrationType?: { method?: string } }).registrationType?.method;
    if (method === EXECUTE_COMMAND) {
      return; // we send workspace/executeCommand ourselves; see the file comment
    }
    super.registerFeature(feature);
  }

  override error(message: string, data?: unknown, _showNotification?: boolean | 'force'): void {
    super.error(message, data, false); // the log only: never VS Code's "server crashed" pop-up
  }
}

export interface ConnectionOptions {
  channel: vscode.LogOutputChannel;
  log: Logger;
  /** The `dxTelemetry` section as the sidecar may see it, computed afresh at each use. */
  settings: () => unknown;
  onDidChangeConfiguration: vscode.Event<vscode.ConfigurationChangeEvent>;
  /** Maps the channel's log level to an LSP trace level (message bodies only at Trace). */
  traceLevel: () => Trace;
}

export function createLanguageConnection(
  launch: Launch,
  events: ConnectionEvents,
  options: ConnectionOptions,
): SidecarConnection {
  let child: ChildProcess | undefined;
  let forwarding = false;
  let stopping = false;
  let closed = false;

  const serverOptions = (): Promise<{ reader: NodeJS.ReadableStream; writer: NodeJS.WritableStream }> =>
    new Promise((resolve, reject) => {
      const proc = spawn(launch.command, launch.args, {
        cwd: launch.cwd,
        env: launch.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      child = proc;
      proc.once('error', (error) => reject(error));
      proc.once('spawn', () => resolve({ reader: proc.stdout!, writer: proc.stdin! }));
      let partial = '';
      proc.stderr!.setEncoding('utf8');
      proc.stderr!.on('data', (chunk: string) => {
        const lines = (partial + chunk).split(/\r?\n/);
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (keepStderrLine(line, forwarding)) {
            options.channel.appendLine(`[sidecar] ${line}`);
          }
        }
      });
      proc.once('exit', (code, signal) => {
        if (partial && keepStderrLine(partial, forwarding)) {
          options.channel.appendLine(`[sidecar] ${partial}`);
        }
        options.log.info(`sidecar (pid ${proc.pid ?? '?'}) exited with ${signal ?? `code ${code}`}`);
      });
    });

  const clientOptions: LanguageClientOptions = {
    // no documentSelector: no document is ever sent to the sidecar
    outputChannel: options.channel,
    traceOutputChannel: options.channel,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: () => options.settings(),
    middleware: {
      workspace: {
        // the sidecar pulls only its own section; nothing else of the editor's settings is its business
        configuration: (params) => params.items.map((item) => (item.section === SECTION ? options.settings() : null)),
      },
    },
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue, handled: true }),
      closed: () => {
        closed = true;
        if (!stopping) {
          events.closed();
        }
        return { action: CloseAction.DoNotRestart, handled: true, message: 'the connection to the sidecar closed' };
      },
    },
    initializationFailedHandler: (error) => {
      options.log.error(`the sidecar refused to initialize: ${String(error)}`);
      return false;
    },
    connectionOptions: { maxRestartCount: 0 },
  };

  const client = new DxLanguageClient('dxTelemetry', 'DX Telemetry', serverOptions, clientOptions);
  let listener: vscode.Disposable | undefined;
  const sendSettings = (): void => {
    if (client.isRunning()) {
      client
        .sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: options.settings() } })
        .catch((error: unknown) => options.log.debug(`sending the settings: ${String(error)}`));
    }
  };

  return {
    get pid() {
      return child?.pid;
    },
    async start() {
      await client.start();
      forwarding = true;
      if (stopping) {
        return;
      }
      // after the client's own configuration listener (registered by start), so this one runs last
      listener = options.onDidChangeConfiguration((event) => {
        void client.setTrace(options.traceLevel()).catch(() => undefined);
        if (event.affectsConfiguration(SECTION)) {
          sendSettings();
        }
      });
      sendSettings(); // a change made while it started is not in its initializationOptions
      await client.setTrace(options.traceLevel()).catch(() => undefined);
    },
    async stop() {
      stopping = true;
      listener?.dispose();
      const proc = child;
      try {
        if (closed) {
          // the connection is gone: nothing to shut down politely; the client cleans itself up
        } else if (client.isRunning()) {
          await client.stop(2000);
        } else {
          await client.dispose(500).catch(() => undefined);
        }
      } catch (error) {
        options.log.debug(`stopping the language client: ${String(error)}`);
      }
      if (proc) {
        await ensureExited(proc, 2000);
      }
    },
    sendRequest(method, params) {
      return client.sendRequest(method, params);
    },
    onNotification(method, handler) {
      client.onNotification(method, handler);
    },
  };
}

/** Waits up to `ms` for the process to exit after shutdown/exit, then kills it. */
function ensureExited(proc: ChildProcess, ms: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve();
    }, ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** LSP message traces follow the channel's log level: bodies only at Trace (they may hold events). */
export function traceLevelOf(channel: vscode.LogOutputChannel): Trace {
  switch (channel.logLevel) {
    case vscode.LogLevel.Trace:
      return Trace.Verbose;
    case vscode.LogLevel.Debug:
      return Trace.Messages;
    default:
      return Trace.Off;
  }
}
