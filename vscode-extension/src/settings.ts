// The `dxTelemetry` settings as the sidecar gets them, and which changes need a restart (only the
// interpreter: the rest reaches the running sidecar as workspace/didChangeConfiguration).
//
// Every key is read from the user level only (user, remote and application settings, else the
// default, which is where VS Code reports a policy), never from a workspace. package.json scopes
// every key `application` or `machine`, so VS Code drops a workspace's
// `"dxTelemetry.flush.delaySeconds": 1`; but before 1.132 (microsoft/vscode#330310), and in forks
// built on an older VS Code, it kept `"dxTelemetry.flush": {"delaySeconds": 1}` (a key it does not
// know) and merged it over the user's value in `getConfiguration('dxTelemetry')`. `inspect()`
// keeps the levels apart, so reading `globalValue` and `defaultValue` per contributed key leaves
// every workspace value out, whatever the editor's version.

import * as os from 'os';
import * as path from 'path';
import type * as vscode from 'vscode';
import type { Json, JsonObject } from './jsonConfig';

export const SECTION = 'dxTelemetry';
export const INTERPRETER_KEY = 'python.interpreter';

/** The levels of one key that `WorkspaceConfiguration.inspect` reports and this reads. */
export interface KeyLevels {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** `vscode.workspace.getConfiguration().inspect(key)` for a fully qualified key. */
export type Inspect = (key: string) => KeyLevels | undefined;

/** The user's value of a fully qualified key, else its default; a workspace's value never. */
export function userValue(inspect: Inspect, key: string): unknown {
  const levels = inspect(key);
  return levels?.globalValue !== undefined ? levels.globalValue : levels?.defaultValue;
}

/** The `dxTelemetry.*` keys the extension contributes (its package.json, as VS Code loaded it). */
export function contributedKeys(packageJSON: unknown): string[] {
  const properties = (packageJSON as { contributes?: { configuration?: { properties?: unknown } } } | undefined)?.contributes?.configuration
    ?.properties;
  return isObject(properties) ? Object.keys(properties).filter((k) => k.startsWith(`${SECTION}.`)) : [];
}

/**
 * The section as plain JSON, nested for dotted keys (`flush.delaySeconds` -> `{flush: {delaySeconds}}`):
 * the sidecar's initializationOptions, every workspace/didChangeConfiguration and the answer to
 * its workspace/configuration pull. Top-level keys of the user's own section that no contributed
 * key starts with pass too, so the sidecar still names a typo (`dxTelemetry.enabeld`).
 */
export function sectionSnapshot(inspect: Inspect, keys: readonly string[]): JsonObject {
  const out: JsonObject = {};
  const tops = new Set<string>();
  for (const key of keys) {
    const parts = key.slice(SECTION.length + 1).split('.');
    tops.add(parts[0]);
    const value = toJson(userValue(inspect, key));
    if (value !== undefined) {
      setPath(out, parts, value);
    }
  }
  const own = toJson(inspect(SECTION)?.globalValue);
  if (own !== undefined && isObject(own)) {
    for (const [top, value] of Object.entries(own)) {
      if (!tops.has(top.split('.')[0])) {
        out[top] = value;
      }
    }
  }
  return out;
}

/**
 * Contributed keys a workspace or folder still gives a value (the nested-object spelling that
 * VS Code's scope filter lets through): ignored, and named once in the log so nobody wonders.
 */
export function workspaceOverrides(inspect: Inspect, keys: readonly string[]): string[] {
  return keys.filter((key) => {
    const levels = inspect(key);
    return levels?.workspaceValue !== undefined || levels?.workspaceFolderValue !== undefined;
  });
}

/** The `dxTelemetry.python.interpreter` setting, with `~`, `${userHome}` and `${env:NAME}` expanded. */
export function interpreterSetting(inspect: Inspect, env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  const raw = userValue(inspect, `${SECTION}.${INTERPRETER_KEY}`);
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

/** A value as JSON would carry it (VS Code hands out frozen proxies; undefined stays undefined). */
function toJson(value: unknown): Json | undefined {
  const text = value === undefined ? undefined : JSON.stringify(value);
  return text === undefined ? undefined : (JSON.parse(text) as Json);
}

function setPath(root: JsonObject, parts: string[], value: Json): void {
  let node = root;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    node = isObject(next) ? (next as JsonObject) : (node[part] = {});
  }
  node[parts[parts.length - 1]] = value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
