// Plays DX Telemetry on the UI side for the Remote Reader: the private commands it executes,
// answered as DX Telemetry answers them (one outcome per event; an event id seen before is a
// duplicate), everything written to dxE2e.uiSideFile. code-server has one Node extension host,
// so here the command does not cross hosts; VS Code routes it the same way when it does.
const vscode = require('vscode');
const fs = require('fs');

const seen = new Set();

function out(record) {
  const file = vscode.workspace.getConfiguration('dxE2e').get('uiSideFile');
  if (file) {
    fs.appendFileSync(file, JSON.stringify(record) + '\n');
  }
}

exports.activate = (context) => {
  context.subscriptions.push(
    vscode.commands.registerCommand('_dxTelemetry.recordForwarded', (events) => {
      const outcomes = events.map((event) => {
        const duplicate = seen.has(event.event_id);
        seen.add(event.event_id);
        out({ kind: 'event', duplicate, event });
        return { ok: true, duplicate };
      });
      return outcomes;
    }),
    vscode.commands.registerCommand('_dxTelemetry.remoteReader', (report) => out({ kind: 'report', report })),
  );
  out({ kind: 'ready', remoteName: vscode.env.remoteName });
};

exports.deactivate = () => undefined;
