// The one managed key the extension reads itself: `python.interpreter`, the Python that starts the
// sidecar, which no sidecar can tell before it runs. It comes from the machine's managed.json
// (the sidecar reads that file, the Windows registry and the macOS managed preferences for every
// other key: dx_lsp_telemetry/settings/managed_sources.py) and wins over `dxTelemetry.python.interpreter`.

import * as fs from 'fs';
import * as path from 'path';

export const MANAGED_FILE_ENV = 'DX_TELEMETRY_MANAGED_FILE';
export const MANAGED_INTERPRETER_KEY = 'python.interpreter';
const MAX_BYTES = 1 << 20;

/**
 * The managed.json files of this OS, the first winning; `DX_TELEMETRY_MANAGED_FILE` (for tests)
 * comes last, so it can never undo the machine's own file.
 */
export function managedFiles(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): string[] {
  let file = '/etc/dx-lsp-telemetry/managed.json';
  if (platform === 'win32') {
    file = path.win32.join(env.ProgramData || env.PROGRAMDATA || 'C:\\ProgramData', 'dx-lsp-telemetry', 'managed.json');
  } else if (platform === 'darwin') {
    file = '/Library/Application Support/dx-lsp-telemetry/managed.json';
  }
  const forTests = (env[MANAGED_FILE_ENV] ?? '').trim();
  return forTests ? [file, forTests] : [file];
}

/** A file's text, or undefined when there is no such file; throws what else went wrong. */
export type ReadFile = (file: string) => string | undefined;

export const readManagedFile: ReadFile = (file) => {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return undefined;
    }
    throw new Error(`cannot be read (${code ?? String(error)})`);
  }
  if (data.length > MAX_BYTES) {
    throw new Error('larger than 1 MiB');
  }
  return data.toString('utf8').replace(/^\uFEFF/, ''); // Notepad writes a byte order mark
};

export interface ManagedInterpreter {
  /** The interpreter's path as written (`~` and `${env:NAME}` are expanded by the caller). */
  path?: string;
  /** The file it came from. */
  from?: string;
  /** What was wrong, one line each, naming the file: for the log. */
  problems: string[];
}

/** The first file that sets `python.interpreter` (nested, dotted or under `dxTelemetry`). */
export function managedInterpreter(files: string[], readFile: ReadFile = readManagedFile): ManagedInterpreter {
  const problems: string[] = [];
  for (const file of files) {
    let document: unknown;
    try {
      const text = readFile(file);
      if (text === undefined) {
        continue;
      }
      document = JSON.parse(text);
    } catch (error) {
      const why = error instanceof SyntaxError ? `is not valid JSON (${error.message})` : errorText(error);
      problems.push(`${file}: ${why}: its managed interpreter is ignored`);
      continue;
    }
    const value = lookup(document, ['python', 'interpreter']);
    if (value === undefined) {
      continue;
    }
    if (typeof value !== 'string' || !value.trim() || value.length > 2000) {
      problems.push(`${file}: ${MANAGED_INTERPRETER_KEY}: expected a path to a Python, got ${JSON.stringify(value)?.slice(0, 80)}`);
      continue;
    }
    return { path: value.trim(), from: file, problems };
  }
  return { problems };
}

/** The value at `want` in an object whose keys may be dotted, nested or under `dxTelemetry`. */
function lookup(node: unknown, want: string[], top = true): unknown {
  if (!isObject(node)) {
    return undefined;
  }
  for (const [key, value] of Object.entries(node)) {
    let parts = key.split('.');
    if (top && parts[0] === 'dxTelemetry') {
      parts = parts.slice(1);
    }
    if (parts.length > want.length || !parts.every((p, i) => p === want[i])) {
      continue;
    }
    const found = parts.length === want.length ? value : lookup(value, want.slice(parts.length), parts.length === 0);
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
