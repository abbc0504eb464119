// Wiring: one log channel, the token store, the status bar, the sidecar controller, the report,
// the commands; returns the API other extensions use: `{ recordUsage(event) }`.

import { execFile } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { Trace } from 'vscode-languageclient/node';
import { SidecarController } from './client';
import { registerCommands } from './commands';
import { registerConnectCommands } from './connect';
import { createLanguageConnection } from './languageClient';
import { Launch, LaunchProblem, bundledLibs, sidecarLaunch } from './launch';
import { Logger, Redactor, channelLogger, redactingChannel } from './log';
import { managedFiles, managedInterpreter } from './managed';
import { PATH_CANDIDATES, findPython, interpreterFromPythonExtension, probePython } from './python';
import { ReportPanel } from './report';
import { REPORT_DAYS } from './reportView';
import { TokenStore } from './secrets';
import { classifyChange, expandPath, interpreterSetting, sectionSnapshot } from './settings';
import { StatusBar, tokenRejected } from './status';
import { TerminalCli } from './terminalCli';
import { DxReport, DxStatus, DxTelemetryApi } from './types';

let controller: SidecarController | undefined;

export function activate(context: vscode.ExtensionContext): DxTelemetryApi {
  const activatedAt = Date.now();
  const redactor = new Redactor();
  const rawChannel = vscode.window.createOutputChannel('DX Telemetry', { log: true });
  context.subscriptions.push(rawChannel);
  const channel = redactingChannel(rawChannel, redactor);
  const log = channelLogger(channel);
  const read = (section: string) => vscode.workspace.getConfiguration(section);
  const tokens = new TokenStore(context.secrets);
  const statusBar = new StatusBar();
  context.subscriptions.push(statusBar);
  let lastLaunch: Launch | undefined;
  let tokenRejectionShown = false;
  const terminalCli = new TerminalCli({
    collection: context.environmentVariableCollection,
    binDir: path.join(context.globalStorageUri.fsPath, 'bin'),
    libs: bundledLibs(context.extensionPath),
    extensionVersion: String(context.extension.packageJSON.version),
    log,
  });

  const resolveLaunch = async (): Promise<Launch | LaunchProblem> => {
    const python = await findPython({
      managed: managedPython(log),
      setting: interpreterSetting(read),
      pythonExtension: () => interpreterFromPythonExtension((id) => vscode.extensions.getExtension(id)),
      pathCandidates: PATH_CANDIDATES,
      probe: probePython,
      log,
    });
    terminalCli.update(python, process.env); // before the token: the terminals never get it
    if (!python.found) {
      for (const line of python.tried) {
        log.info(`  tried ${line}`);
      }
      return { problem: python.message };
    }
    const token = await tokens.effective();
    redactor.setSecret(token.token);
    log.info(
      `API token: ${token.source === 'secretStorage' ? 'from secret storage' : token.source === 'environment' ? 'DX_DATA_CLOUD_TOKEN inherited from the environment' : 'none set'}`,
    );
    lastLaunch = sidecarLaunch(python, context.extensionPath, process.env, token.token);
    return lastLaunch;
  };

  const traceLevel = (): Trace => {
    switch (rawChannel.logLevel) {
      case vscode.LogLevel.Trace:
        return Trace.Verbose;
      case vscode.LogLevel.Debug:
        return Trace.Messages;
      default:
        return Trace.Off;
    }
  };

  const report = new ReportPanel({
    loadReport: () => runReport(lastLaunch),
    refreshStatus: () => (controller ? controller.refreshStatus() : Promise.resolve(undefined)),
    lastStatus: () => statusBar.lastStatus,
    log,
  });
  context.subscriptions.push(report);

  const onStatus = (status: DxStatus): void => {
    statusBar.setStatus(status);
    report.onStatus();
    if (!tokenRejectionShown && tokenRejected(status)) {
      tokenRejectionShown = true; // once per token: reset when the token changes
      void vscode.window
        .showWarningMessage('DX Telemetry: DX refused the API token. Completed days wait until a valid token is set.', 'Set API Token')
        .then((choice) => (choice ? vscode.commands.executeCommand('dxTelemetry.setApiToken') : undefined));
    }
  };

  const sidecar = new SidecarController({
    resolveLaunch,
    createConnection: (launch, events) =>
      createLanguageConnection(launch, events, {
        channel,
        log,
        initializationOptions: () => sectionSnapshot(read),
        traceLevel,
      }),
    log,
    onStatus,
    onPhase: (phase) => statusBar.setPhase(phase),
  });
  controller = sidecar;

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (classifyChange(event) === 'restart') {
        void sidecar.restart('dxTelemetry.python.interpreter changed');
      }
      // everything else reaches the running sidecar as workspace/didChangeConfiguration
    }),
    tokens.onDidChange(() => {
      tokenRejectionShown = false;
      void sidecar.restart('the API token changed');
    }),
  );

  registerCommands(context, { controller: sidecar, tokens, report, channel, terminalCli, lastStatus: () => statusBar.lastStatus });
  registerConnectCommands(context, log);

  log.info(`DX Telemetry ${String(context.extension.packageJSON.version)} activated on VS Code ${vscode.version}`);
  void sidecar.start().then(() => log.debug(`start() returned ${Date.now() - activatedAt} ms after activation`));

  return { recordUsage: (event) => sidecar.recordUsage(event) };
}

export async function deactivate(): Promise<void> {
  const c = controller;
  controller = undefined;
  if (c) {
    await c.stop();
  }
}

/** The managed configuration's interpreter (read at each start), its problems logged. */
function managedPython(log: Logger): string | undefined {
  const managed = managedInterpreter(managedFiles(process.platform, process.env));
  for (const problem of managed.problems) {
    log.warn(`managed configuration: ${problem}`);
  }
  if (!managed.path) {
    return undefined;
  }
  log.info(`managed configuration: the sidecar's Python is ${managed.path} (python.interpreter in ${managed.from ?? '?'})`);
  return expandPath(managed.path, process.env, os.homedir());
}

/** `python -m dx_lsp_telemetry report --days 14 --json`, with the sidecar's interpreter and environment. */
function runReport(launch: Launch | undefined): Promise<DxReport> {
  if (!launch) {
    return Promise.reject(new Error('the sidecar has not started (no Python found yet)'));
  }
  return new Promise((resolve, reject) => {
    execFile(
      launch.command,
      [...launch.args, 'report', '--days', String(REPORT_DAYS), '--json'],
      { env: launch.env, cwd: launch.cwd, timeout: 30_000, maxBuffer: 16 * 1024 * 1024, windowsHide: true, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(stderr.trim().split(/\r?\n/).pop() || error.message));
          return;
        }
        try {
          resolve(JSON.parse(stdout) as DxReport);
        } catch {
          reject(new Error('the report was not JSON'));
        }
      },
    );
  });
}
