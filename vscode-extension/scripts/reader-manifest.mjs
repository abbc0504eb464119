// Prints the manifest of DX Telemetry Remote Reader, made from DX Telemetry's own: the same
// bundle, version and engine, another id, the workspace side only, and no contributions (the
// settings are DX Telemetry's; the reader reads them).
//   node scripts/reader-manifest.mjs package.json > build/remote-reader/package.json
import { readFileSync } from 'fs';

const main = JSON.parse(readFileSync(process.argv[2] ?? 'package.json', 'utf8'));
const keep = ['version', 'publisher', 'license', 'icon', 'engines', 'categories', 'main'];
const reader = {
  name: `${main.name}-remote`,
  displayName: `${main.displayName} Remote Reader`,
  description:
    "For remote windows (SSH, WSL, dev containers, tunnels): reads the AI tools' usage logs on the remote host " +
    'and forwards them to DX Telemetry on your own machine, which records and pushes them. It never pushes itself.',
  ...Object.fromEntries(keep.map((key) => [key, main[key]])),
  keywords: [...(main.keywords ?? []), 'remote'],
  activationEvents: ['onStartupFinished'],
  extensionKind: ['workspace'],
  capabilities: { untrustedWorkspaces: main.capabilities?.untrustedWorkspaces, virtualWorkspaces: false },
};
process.stdout.write(`${JSON.stringify(reader, null, 2)}\n`);
