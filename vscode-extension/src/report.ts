// "DX Telemetry: Show Usage": one webview panel, rendered by reportView.ts from
// `report --days 14 --json` (run by the bundled CLI, same Python and data folder as the sidecar)
// and the sidecar's last status. Re-rendered when the status changes while it is open.

import { randomBytes } from 'crypto';
import * as vscode from 'vscode';
import type { Logger } from './log';
import { REPORT_COMMANDS, renderReport } from './reportView';
import type { DxReport, DxStatus } from './types';

export const REPORT_VIEW_TYPE = 'dxTelemetry.usage';

export interface ReportDeps {
  loadReport: () => Promise<DxReport>;
  refreshStatus: () => Promise<DxStatus | undefined>;
  lastStatus: () => DxStatus | undefined;
  log: Logger;
}

export class ReportPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private timer: NodeJS.Timeout | undefined;
  private rendering: Promise<void> | undefined;

  constructor(private readonly deps: ReportDeps) {}

  async show(): Promise<void> {
    if (this.panel) {
      this.panel.reveal(undefined, false);
    } else {
      this.panel = vscode.window.createWebviewPanel(REPORT_VIEW_TYPE, 'DX Telemetry: Usage', vscode.ViewColumn.Active, {
        enableScripts: false,
        enableCommandUris: REPORT_COMMANDS,
        localResourceRoots: [],
        retainContextWhenHidden: false,
      });
      this.panel.onDidDispose(() => {
        this.panel = undefined;
      });
      this.panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.visible) {
          this.scheduleRender(0);
        }
      });
    }
    await this.render(true);
  }

  /** The status changed: re-render soon if the panel is open and visible. */
  onStatus(): void {
    if (this.panel?.visible) {
      this.scheduleRender(1000);
    }
  }

  private scheduleRender(delayMs: number): void {
    if (this.timer) {
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.render(false);
    }, delayMs);
  }

  private async render(freshStatus: boolean): Promise<void> {
    if (this.rendering) {
      return this.rendering;
    }
    this.rendering = (async () => {
      let status = this.deps.lastStatus();
      let error: string | undefined;
      if (freshStatus) {
        status = (await this.deps.refreshStatus().catch(() => undefined)) ?? status;
      }
      let report: DxReport = { days: [] };
      try {
        report = await this.deps.loadReport();
      } catch (e) {
        error = `The report could not be read: ${e instanceof Error ? e.message : String(e)}`;
        this.deps.log.warn(error);
      }
      const today = status?.today.date ?? new Date().toISOString().slice(0, 10);
      if (this.panel) {
        this.panel.webview.html = renderReport({ report, status, today, nonce: randomBytes(16).toString('base64'), error });
      }
    })();
    try {
      await this.rendering;
    } finally {
      this.rendering = undefined;
    }
  }

  dispose(): void {
    if (this.timer) {
      clearTimeout(this.timer);
    }
    this.panel?.dispose();
  }
}
