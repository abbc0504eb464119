// Wiring: one log channel, the token store, the status bar, the sidecar controller, the report,
// the commands; returns the API other extensions use: `{ recordUsage(event) }`. The same bundle
// is DX Telemetry Remote Reader under another id (reader.ts); placement.ts says what each does.

import { execFile } from 'child_process';
import * as path from 'path';
import * as vscode from 'vscode';
import { SidecarController } from './client';
import { registerCommands } from './commands';
import { registerConnectCommands } from './connect';
import { findEditorPython } from './editorPython';
import { createLanguageConnection, traceLevelOf } from './languageClient';
import { Launch, LaunchProblem, bundledLibs, sidecarLaunch } from './launch';
import { Redactor, channelLogger, redactingChannel } from './log';
import { MAIN_ID, PlacementFacts, READER_ID, place, remoteLine } from './placement';
import { ReaderHandle, activateReader } from './reader';
import { registerRemoteBridge } from './remoteBridge';
import { ReportPanel } from './report';
import { REPORT_DAYS } from './reportView';
import { TokenStore } from './secrets';
import { classifyChange, contributedKeys, sectionSnapshot, workspaceOverrides } from './settings';
import { StatusBar, tokenRejected } from './status';
import { TerminalCli, terminalsAway } from './terminalCli';
import { DxReport, DxStatus, DxTelemetryApi } from './types';

let controller: SidecarController | undefined;
let reader: ReaderHandle | undefined;

/** Where this extension runs, as VS Code placed it. */
function placementFacts(context: vscode.ExtensionContext, role: PlacementFacts['role']): PlacementFacts {
  return {
    role,
    remoteName: vscode.env.remoteName,
    runsOn: context.extension.extensionKind === vscode.ExtensionKind.UI ? 'ui' : 'workspace',
    web: vscode.env.uiKind === vscode.UIKind.Web,
    // the stable API sees only this extension host's extensions (not the UI side's)
    mainHere: vscode.extensions.getExtension(MAIN_ID) !== undefined,
  };
}

export function activate(context: vscode.ExtensionContext): DxTelemetryApi | undefined {
  if (context.extension.id.toLowerCase() === READER_ID) {
    reader = activateReader(context, placementFacts(context, 'reader'));
    return undefined;
  }
  const activatedAt = Date.now();
  const redactor = new Redactor();
  const rawChannel = vscode.window.createOutputChannel('DX Telemetry', { log: true });
  context.subscriptions.push(rawChannel);
  const channel = redactingChannel(rawChannel, redactor);
  const log = channelLogger(channel);
  const inspect = (key: string) => vscode.workspace.getConfiguration().inspect(key);
  const settingKeys = contributedKeys(context.extension.packageJSON);
  let ignoredShown = '';
  const noteIgnored = (): void => {
    const ignored = workspaceOverrides(inspect, settingKeys);
    if (ignored.length && ignored.join() !== ignoredShown) {
      log.warn(`this workspace's settings give ${ignored.join(', ')} a value; ignored: DX Telemetry reads only user and remote settings`);
    }
    ignoredShown = ignored.join();
  };
  const tokens = new TokenStore(context.secrets);
  const statusBar = new StatusBar();
  context.subscriptions.push(statusBar);
  let lastLaunch: Launch | undefined;
  let launchProblem: string | undefined;
  let tokenRejectionShown = false;
  const facts = placementFacts(context, 'main');
  const terminalCli = new TerminalCli({
    collection: context.environmentVariableCollection,
    binDir: path.join(context.globalStorageUri.fsPath, 'bin'),
    libs: bundledLibs(context.extensionPath),
    extensionVersion: String(context.extension.packageJSON.version),
    away: terminalsAway(facts.remoteName, facts.runsOn),
    log,
  });

  const resolveLaunch = async (): Promise<Launch | LaunchProblem> => {
    const python = await findEditorPython(inspect, log);
    terminalCli.update(python, process.env); // before the token: the terminals never get it
    if ('problem' in python) {
      launchProblem = python.problem;
      return python;
    }
    const token = await tokens.effective();
    redactor.setSecret(token.token);
    log.info(
      `API token: ${token.source === 'secretStorage' ? 'from secret storage' : token.source === 'environment' ? 'DX_DATA_CLOUD_TOKEN inherited from the environment' : 'none set'}`,
    );
    launchProblem = undefined;
    lastLaunch = sidecarLaunch(python, context.extensionPath, process.env, token.token);
    return lastLaunch;
  };

  const report = new ReportPanel({
    loadReport: () => runReport(lastLaunch, launchProblem),
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
        settings: () => sectionSnapshot(inspect, settingKeys),
        onDidChangeConfiguration: vscode.workspace.onDidChangeConfiguration,
        traceLevel: () => traceLevelOf(rawChannel),
      }),
    log,
    onStatus,
    onPhase: (phase) => statusBar.setPhase(phase),
  });
  controller = sidecar;

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      const kind = classifyChange(event);
      if (kind !== 'none') {
        noteIgnored();
      }
      if (kind === 'restart') {
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
  registerRemoteBridge(context, sidecar, (remote) => statusBar.setNote('remote', remoteLine(remote)));

  const placement = place(facts);
  statusBar.setNote('placement', placement.note);
  log.info(`DX Telemetry ${String(context.extension.packageJSON.version)} activated on VS Code ${vscode.version}`);
  noteIgnored();
  if (placement.note) {
    log.info(placement.note);
  }
  void sidecar.start().then(() => log.debug(`start() returned ${Date.now() - activatedAt} ms after activation`));

  return { recordUsage: (event) => sidecar.recordUsage(event) };
}

export async function deactivate(): Promise<void> {
  const c = controller;
  const r = reader;
  controller = reader = undefined;
  await Promise.all([c?.stop(), r?.stop()]);
}

/** `python -m dx_lsp_telemetry report --days 14 --json`, with the sidecar's interpreter and environment. */
function runReport(launch: Launch | undefined, problem: string | undefined): Promise<DxReport> {
  if (!launch) {
    return Promise.reject(new Error(problem ?? 'the sidecar has not started yet'));
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
