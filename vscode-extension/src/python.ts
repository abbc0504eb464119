// Which Python runs the sidecar: the machine-scoped `dxTelemetry.python.interpreter` setting,
// then the Python extension's active interpreter (only if that extension is installed: it is
// not a dependency), then `python3`, `python`, `py -3` on the PATH. Each is probed for >= MIN_PYTHON.

import { execFile } from 'child_process';
import type { Logger } from './log';
import { atLeast, noPythonText } from './noPython';

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
  /** One line: what is wrong. */
  message: string;
  /** What to install or set, one line each (the status bar tooltip and the log). */
  advice: string[];
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
  /** Whose install advice to give (process.platform). */
  platform?: NodeJS.Platform;
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
      (error, stdout, stderr) => {
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // what it said beats "Command failed": macOS's stub asks for the Command Line Tools there
          const said = firstLine(stderr.trim());
          resolve({ error: code === 'ENOENT' ? 'not found' : said ? `exited with ${String(code)}: ${said}` : firstLine(error.message) });
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
  return atLeast(version, MIN_PYTHON);
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
  let tooOld: { version: [number, number, number]; at: string } | undefined;
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
      if (!tooOld || compare(version, tooOld.version) > 0) {
        tooOld = { version, at: result.executable ?? candidate.command };
      }
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
  const text = noPythonText(inputs.platform ?? process.platform, MIN_PYTHON, tooOld && `${tooOld.version.join('.')} at ${tooOld.at}`);
  return { found: false, ...text, tried };
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) {
      return (a[i] ?? 0) - (b[i] ?? 0);
    }
  }
  return 0;
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
