// Loaded by mocha --require: `require('vscode')` gets the small mock in vscode-mock.ts, as
// vscode-common-python-lsp's tests do. No VS Code is downloaded or started.
import Module = require('module');

const mockPath = require.resolve('./vscode-mock');
const moduleWithResolve = Module as unknown as {
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
};
const original = moduleWithResolve._resolveFilename;
moduleWithResolve._resolveFilename = function (request: string, parent: unknown, isMain: boolean, options?: unknown): string {
  if (request === 'vscode') {
    return mockPath;
  }
  return original.call(this, request, parent, isMain, options);
};
