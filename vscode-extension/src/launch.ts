// How the sidecar process is started: `<python> -m dx_lsp_telemetry` over plain stdio (no
// `transport`, so no extra argv), with the editor's environment plus PYTHONPATH (the bundled
// libs first), PYTHONUTF8=1 and the token. The token travels only in this environment.

import * as path from 'path';

export const TOKEN_ENV = 'DX_DATA_CLOUD_TOKEN';
export const SIDECAR_MODULE = 'dx_lsp_telemetry';

export interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The bundled libs folder: as cwd it is sys.path[0] for `-m`, so a workspace's files never shadow the sidecar. */
  cwd: string;
  /** For the log: which interpreter, found how. */
  description: string;
}

export interface LaunchProblem {
  /** One line: what is wrong (also the error of requests that cannot be sent). */
  problem: string;
  /** What to do about it, one line each: the status bar tooltip and the log show them. */
  advice?: string[];
}

export function isProblem(value: Launch | LaunchProblem): value is LaunchProblem {
  return (value as LaunchProblem).problem !== undefined;
}

export function bundledLibs(extensionPath: string): string {
  return path.join(extensionPath, 'bundled', 'libs');
}

/** The child's environment: never mutates `base`. */
export function sidecarEnv(
  base: NodeJS.ProcessEnv,
  libsDir: string,
  token: string | undefined,
  delimiter: string = path.delimiter,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  const existing = env.PYTHONPATH;
  env.PYTHONPATH = existing ? `${libsDir}${delimiter}${existing}` : libsDir;
  env.PYTHONUTF8 = '1';
  delete env[TOKEN_ENV];
  if (token) {
    env[TOKEN_ENV] = token;
  }
  return env;
}

export function sidecarLaunch(
  python: { command: string; args: string[]; description: string },
  extensionPath: string,
  base: NodeJS.ProcessEnv,
  token: string | undefined,
  verb: string[] = [],
): Launch {
  const libs = bundledLibs(extensionPath);
  return {
    command: python.command,
    args: [...python.args, '-m', SIDECAR_MODULE, ...verb],
    env: sidecarEnv(base, libs, token),
    cwd: libs,
    description: python.description,
  };
}
