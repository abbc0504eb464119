// Which Python runs the sidecar: the machine-scoped `dxTelemetry.python.interpreter` setting,
// then the Python extension's active interpreter (only if that extension is installed: it is
// not a dependency), then `python3`, `python`, `py -3` on the PATH. Each is probed for >= MIN_PYTHON.

import { execFile } from 'child_process';
import type { Logger } from './log';

/** The oldest Python the bundled sidecar runs on: macOS's /usr/bin/python3 (3.9). Every pin of
 * requirements.txt supports it (`make ext-requirements` resolves on 3.9). */
export const MIN_PYTHON: readonly [number, number] = [3, 9];

export interface PythonCommand {
  command: string;
  args: string[];
  source: 'managed' | 'setting' | 'python-extension' | 'path';
}

export interface ProbeResult {
  version?: [number, number, number];
  executable?: string;
  error?: string;
}

export type Probe = (command: string, args: string[]) => Promise<ProbeResult>;

export interface FoundPython extends PythonCommand {
  found: true;
  version: [number, number, number];
  executable: string;
  description: string;
}

export interface NoPython {
  found: false;
  /** One line for the status bar tooltip and the log. */
  message: string;
  /** What was tried and why each failed, for the log. */
  tried: string[];
}

export interface DiscoveryInputs {
  /** `python.interpreter` of the machine's managed.json (managed.ts): before the setting. */
  managed?: string;
  setting: string;
  pythonExtension: () => Promise<string | undefined>;
  pathCandidates: PythonCommand[];
  probe: Probe;
  log: Logger;
}

export const PATH_CANDIDATES: PythonCommand[] = [
  { command: 'python3', args: [], source: 'path' },
  { command: 'python', args: [], source: 'path' },
  { command: 'py', args: ['-3'], source: 'path' },
];

const PROBE_CODE =
  'import json, sys; print(json.dumps({"v": list(sys.version_info[:3]), "exe": sys.executable}))';

/** Runs the interpreter once to read its version; never throws. */
export const probePython: Probe = (command, args) =>
  new Promise((resolve) => {
    execFile(
      command,
      [...args, '-I', '-c', PROBE_CODE],
      { timeout: 15_000, windowsHide: true, encoding: 'utf8' },
      (error, stdout) => {
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          resolve({ error: code === 'ENOENT' ? 'not found' : firstLine(error.message) });
          return;
        }
        resolve(parseProbeOutput(stdout));
      },
    );
  });

export function parseProbeOutput(stdout: string): ProbeResult {
  const line = stdout.trim().split(/\r?\n/).pop() ?? '';
  try {
    const data = JSON.parse(line) as { v?: unknown; exe?: unknown };
    const v = data.v;
    if (Array.isArray(v) && v.length === 3 && v.every((n) => Number.isInteger(n))) {
      return {
        version: [v[0] as number, v[1] as number, v[2] as number],
        executable: typeof data.exe === 'string' ? data.exe : undefined,
      };
    }
  } catch {
    // fall through
  }
  return { error: `unexpected output ${JSON.stringify(line.slice(0, 80))}` };
}

export function isSupported(version: readonly number[]): boolean {
  const [major, minor] = version;
  return major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
}

const SOURCE_TEXT: Record<PythonCommand['source'], string> = {
  managed: '(python.interpreter of the managed configuration)',
  setting: '(dxTelemetry.python.interpreter)',
  'python-extension': "(the Python extension's interpreter)",
  path: '(on the PATH)',
};

export function describe(c: PythonCommand): string {
  return `${[c.command, ...c.args].join(' ')} ${SOURCE_TEXT[c.source]}`;
}

/** The first usable interpreter in the fixed order, or why there is none. */
export async function findPython(inputs: DiscoveryInputs): Promise<FoundPython | NoPython> {
  const tried: string[] = [];
  const candidates: PythonCommand[] = [];
  if (inputs.managed) {
    candidates.push({ command: inputs.managed, args: [], source: 'managed' });
  }
  if (inputs.setting) {
    candidates.push({ command: inputs.setting, args: [], source: 'setting' });
  }
  let fromExtension: string | undefined;
  try {
    fromExtension = await inputs.pythonExtension();
  } catch (error) {
    tried.push(`the Python extension's interpreter: ${String(error)}`);
  }
  if (fromExtension) {
    candidates.push({ command: fromExtension, args: [], source: 'python-extension' });
  }
  candidates.push(...inputs.pathCandidates);

  for (const candidate of candidates) {
    const result = await inputs.probe(candidate.command, candidate.args);
    const label = describe(candidate);
    if (result.error || !result.version) {
      tried.push(`${label}: ${result.error ?? 'no version'}`);
      if (candidate.source === 'setting' || candidate.source === 'managed') {
        inputs.log.warn(`${label} cannot be used: ${result.error ?? 'no version'}; looking further`);
      }
      continue;
    }
    const version = result.version;
    if (!isSupported(version)) {
      tried.push(`${label}: Python ${version.join('.')} is older than ${MIN_PYTHON.join('.')}`);
      if (candidate.source === 'setting' || candidate.source === 'managed') {
        inputs.log.warn(`${label} is Python ${version.join('.')}; the sidecar needs >= ${MIN_PYTHON.join('.')}`);
      }
      continue;
    }
    return {
      ...candidate,
      found: true,
      version,
      executable: result.executable ?? candidate.command,
      description: `Python ${version.join('.')} at ${result.executable ?? candidate.command} ${SOURCE_TEXT[candidate.source]}`,
    };
  }
  return {
    found: false,
    message:
      `No Python >= ${MIN_PYTHON.join('.')} found. Install Python 3 (any plain install: the sidecar's packages are bundled) ` +
      'or set dxTelemetry.python.interpreter to its path, then reload the window.',
    tried,
  };
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath?: () => { path?: string } | undefined;
    resolveEnvironment?: (env: { path?: string }) => Promise<{ executable?: { uri?: { fsPath?: string } } } | undefined>;
  };
  settings?: {
    getExecutionDetails?: () => { execCommand?: string[] | undefined };
  };
}

/** The Python extension's active interpreter, if that extension is installed; never required. */
export async function interpreterFromPythonExtension(
  getExtension: (id: string) => { isActive: boolean; exports: unknown; activate(): Thenable<unknown> } | undefined,
  timeoutMs = 15_000,
): Promise<string | undefined> {
  const ext = getExtension('ms-python.python');
  if (!ext) {
    return undefined;
  }
  const api = (ext.isActive ? ext.exports : await withTimeout(Promise.resolve(ext.activate()), timeoutMs)) as
    | PythonExtensionApi
    | undefined;
  const envs = api?.environments;
  const active = envs?.getActiveEnvironmentPath?.();
  if (active?.path) {
    const resolved = await withTimeout(Promise.resolve(envs?.resolveEnvironment?.(active)), timeoutMs).catch(() => undefined);
    return resolved?.executable?.uri?.fsPath ?? active.path;
  }
  const exec = api?.settings?.getExecutionDetails?.().execCommand;
  return exec && exec.length === 1 ? exec[0] : undefined;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0].slice(0, 200);
}
