// The `dxTelemetry` settings: the snapshot sent to the sidecar, the extension's own keys, and
// which changes need a restart (only the interpreter: the rest reaches the running sidecar
// through workspace/didChangeConfiguration).

import * as os from 'os';
import * as path from 'path';
import type * as vscode from 'vscode';

export const SECTION = 'dxTelemetry';
export const INTERPRETER_KEY = 'python.interpreter';

/** Reads one configuration section (vscode.workspace.getConfiguration in the extension). */
export type ConfigurationReader = (section: string) => vscode.WorkspaceConfiguration;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The section as plain JSON, nested for dotted keys (`flush.delaySeconds` -> `{flush: {delaySeconds}}`),
 * exactly what `getConfiguration('dxTelemetry')` holds, without its methods. This is the
 * sidecar's initializationOptions; it is computed synchronously on every (re)start.
 */
export function sectionSnapshot(read: ConfigurationReader): { [key: string]: Json } {
  const config = read(SECTION);
  const plain = JSON.parse(JSON.stringify(config)) as unknown;
  return isObject(plain) ? (plain as { [key: string]: Json }) : {};
}

/** The `dxTelemetry.python.interpreter` setting, with `~`, `${userHome}` and `${env:NAME}` expanded. */
export function interpreterSetting(
  read: ConfigurationReader,
  env: NodeJS.ProcessEnv = process.env,
  home: string = os.homedir(),
): string {
  const raw = read(SECTION).get<unknown>(INTERPRETER_KEY);
  if (typeof raw !== 'string') {
    return '';
  }
  return expandPath(raw.trim(), env, home);
}

export function expandPath(value: string, env: NodeJS.ProcessEnv, home: string): string {
  let out = value.replace(/\$\{userHome\}/g, home).replace(/\$\{env:([^}]+)\}/g, (_m, name: string) => env[name] ?? '');
  if (out === '~') {
    out = home;
  } else if (out.startsWith('~/') || out.startsWith('~\\')) {
    out = path.join(home, out.slice(2));
  }
  return out;
}

export type ChangeKind = 'none' | 'live' | 'restart';

/** What a configuration change means for the running sidecar. */
export function classifyChange(event: vscode.ConfigurationChangeEvent): ChangeKind {
  if (event.affectsConfiguration(`${SECTION}.${INTERPRETER_KEY}`)) {
    return 'restart';
  }
  return event.affectsConfiguration(SECTION) ? 'live' : 'none';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
