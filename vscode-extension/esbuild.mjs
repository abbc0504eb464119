// Bundles src/extension.ts and its dependencies (vscode-languageclient, jsonc-parser, smol-toml)
// into dist/extension.js (vscode is external).
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');

await esbuild.build({
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: 'dist/extension.js',
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
  logLevel: 'warning',
});
