// Reports usage the way another extension would: the command at start-up (the DX extension may
// still be starting its sidecar: the call is queued), then, from the palette, the exported API
// and a bad event that must come back as the sidecar's error. Results go to dxE2e.outFile.
const vscode = require('vscode');
const fs = require('fs');

function out(record) {
  const file = vscode.workspace.getConfiguration('dxE2e').get('outFile');
  if (file) {
    fs.appendFileSync(file, JSON.stringify(record) + '\n');
  }
}

async function call(label, fn) {
  try {
    out({ label, ok: true, result: await fn() });
  } catch (e) {
    out({ label, ok: false, error: String((e && e.message) || e), code: e && e.code });
  }
}

/** What VS Code itself hands an extension for some dxTelemetry keys (the e2e prints it). */
function configSeen() {
  const dx = vscode.workspace.getConfiguration('dxTelemetry');
  const seen = {};
  for (const key of ['enabled', 'flush.delaySeconds', 'flush.backfillDays', 'sources.codex.enabled']) {
    const i = dx.inspect(key);
    seen[key] = { get: dx.get(key), user: i && i.globalValue, workspace: i && i.workspaceValue };
  }
  return seen;
}

exports.activate = (context) => {
  out({ label: 'config', seen: configSeen() });
  void call('startup-command', () =>
    vscode.commands.executeCommand('dxTelemetry.recordUsage', {
      event_id: 'e2e-startup',
      tool: 'e2e-reporter',
      input_tokens: 100,
      output_tokens: 11,
    }),
  );
  context.subscriptions.push(
    // what the Settings editor does when the user unticks dxTelemetry.enabled
    vscode.commands.registerCommand('dxE2e.recordingOff', () =>
      vscode.workspace.getConfiguration('dxTelemetry').update('enabled', false, vscode.ConfigurationTarget.Global),
    ),
    vscode.commands.registerCommand('dxE2e.report', async () => {
      await call('palette-api', async () => {
        const ext = vscode.extensions.getExtension('dx-telemetry.dx-lsp-telemetry');
        const api = ext.isActive ? ext.exports : await ext.activate();
        return api.recordUsage({
          event_id: 'e2e-palette',
          tool: 'e2e-reporter',
          model: 'e2e-model',
          input_tokens: 1000,
          cache_read_tokens: 234,
          cost_usd: 0.01,
        });
      });
      await call('palette-bad', () =>
        vscode.commands.executeCommand('dxTelemetry.recordUsage', { tool: 'e2e-reporter', input_tokens: -5 }),
      );
      out({ label: 'done' });
    }),
  );
};

exports.deactivate = () => undefined;
