// Bundles src/extension.ts and its dependencies (vscode-languageclient, jsonc-parser, smol-toml)
// into <outdir>/extension.js (vscode is external), and writes <outdir>/meta.json, esbuild's
// account of every file in the bundle: scripts/third_party_notices.py reads it to name each
// package whose code the .vsix carries (the production bundle drops their licence comments).
// `--outdir=DIR` (default dist) lets a test bundle elsewhere.
import * as esbuild from 'esbuild';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const production = process.argv.includes('--production');
const outdir = process.argv.find((a) => a.startsWith('--outdir='))?.slice('--outdir='.length) ?? 'dist';

const result = await esbuild.build({
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: join(outdir, 'extension.js'),
  external: ['vscode'],
  format: 'cjs',
  platform: 'node',
  // ES module builds first: jsonc-parser's UMD build requires its parts at run time, unbundled
  mainFields: ['module', 'main'],
  target: 'node18',
  minify: production,
  sourcemap: !production,
  sourcesContent: false,
  legalComments: production ? 'none' : 'inline',
  metafile: true,
  logLevel: 'warning',
});
await writeFile(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
