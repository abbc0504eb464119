// A change to an AI tool's own configuration: planned (exactly what would be written), applied
// (with a record of what was there), and undone from that record. Two kinds: keys of a config
// file (JSON with comments, or Codex's TOML), and VS Code user settings.

import * as fs from 'fs';
import * as path from 'path';
import { Json, JsonObject, jsonEdits, parseJsonConfig } from './jsonConfig';
import { otelExporterEdits, otelExporterOf, parseTomlConfig } from './tomlConfig';
import { TextEdit, applySequential, sha256 } from './textEdit';

/** One key: what it held before (`had`, `previous`) and what the change makes it (`value`; undefined: removed). */
export interface KeyChange {
  key: string;
  had: boolean;
  previous?: Json;
  value?: Json;
}

export type FileFormat = 'json' | 'toml';

/** Keys of one object of a config file: `env` or `telemetry` in JSON, the `[otel]` table in TOML. */
export interface FileTarget {
  file: string;
  format: FileFormat;
  group: string;
}

export interface FileChange extends FileTarget {
  kind: 'file';
  /** The file as read (undefined: it does not exist) and as it would be (undefined: deleted). */
  before: string | undefined;
  after: string | undefined;
  keys: KeyChange[];
  /** The edits from `before` (or '') to `after`, one after another. */
  edits: TextEdit[];
  createdGroup: boolean;
}

export interface SettingsChange {
  kind: 'settings';
  keys: KeyChange[];
}

export type Change = FileChange | SettingsChange;

/** What Disconnect needs: kept in the extension's globalState. Holds only the keys' old values. */
export interface FileRecord extends FileTarget {
  kind: 'file';
  createdFile: boolean;
  createdGroup: boolean;
  originalHash: string;
  writtenHash: string;
  /** Applied to the written file, these give back the original bytes. */
  undo: TextEdit[];
  keys: KeyChange[];
}

export interface SettingsRecord {
  kind: 'settings';
  keys: KeyChange[];
}

export type ChangeRecord = FileRecord | SettingsRecord;

/** The user-scope configuration, as much of it as a change needs (vscode.workspace.getConfiguration() in the extension). */
export interface SettingsStore {
  inspect(key: string): { defaultValue?: unknown; globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown } | undefined;
  effective(key: string): unknown;
  /** Writes the user (global) value; undefined removes it. */
  updateGlobal(key: string, value: Json | undefined): Thenable<void>;
}

export type Planned<T> = { ok: true; change: T } | { ok: false; state: 'connected' | 'broken' | 'blocked'; reason: string };

// -- files ---------------------------------------------------------------------------------------

export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw error;
  }
}

/** The group's current keys (undefined: the group is absent), or what is wrong with the file. */
export function readGroup(target: FileTarget, text: string | undefined): { ok: true; group: JsonObject | undefined } | { ok: false; error: string } {
  const name = path.basename(target.file);
  if (target.format === 'toml') {
    const parsed = parseTomlConfig(text ?? '', name);
    if (!parsed.ok) {
      return parsed;
    }
    const otel = parsed.value.otel;
    if (otel !== undefined && (typeof otel !== 'object' || otel === null || Array.isArray(otel))) {
      return { ok: false, error: `otel in ${name} is not a table` };
    }
    const exporter = otelExporterOf(parsed.value);
    return { ok: true, group: otel === undefined ? undefined : exporter === undefined ? {} : { exporter } };
  }
  const parsed = parseJsonConfig(text ?? '', name);
  if (!parsed.ok) {
    return parsed;
  }
  const group = parsed.value[target.group];
  if (group === undefined) {
    return { ok: true, group: undefined };
  }
  if (typeof group !== 'object' || group === null || Array.isArray(group)) {
    return { ok: false, error: `"${target.group}" in ${name} is not an object` };
  }
  return { ok: true, group };
}

/** The change that gives the group's keys these values (others untouched), or why there is none. */
export function planFileKeys(target: FileTarget, desired: Record<string, Json | undefined>, text = readText(target.file)): Planned<FileChange> {
  const current = readGroup(target, text);
  if (!current.ok) {
    return { ok: false, state: 'broken', reason: `${current.error}; it is left as it is` };
  }
  const keys: KeyChange[] = [];
  for (const [key, value] of Object.entries(desired)) {
    const had = current.group !== undefined && key in current.group;
    const previous = had ? current.group![key] : undefined;
    if (had ? !sameJson(previous, value) : value !== undefined) {
      keys.push({ key, had, ...(had ? { previous } : {}), ...(value !== undefined ? { value } : {}) });
    }
  }
  if (!keys.length) {
    return { ok: false, state: 'connected', reason: 'already set' };
  }
  return fileChange(target, text, keys, current.group === undefined, false);
}

function fileChange(target: FileTarget, text: string | undefined, keys: KeyChange[], createsGroup: boolean, dropGroup: boolean): Planned<FileChange> {
  const base = text ?? '';
  let edits: TextEdit[];
  try {
    if (target.format === 'toml') {
      const exporter = keys.find((k) => k.key === 'exporter');
      const planned = otelExporterEdits(base, exporter?.value);
      if ('manual' in planned) {
        return { ok: false, state: 'blocked', reason: planned.manual };
      }
      edits = planned.edits;
    } else {
      edits = jsonEdits(base, target.group, keys.map((k) => [k.key, k.value]), dropGroup);
    }
  } catch (error) {
    return { ok: false, state: 'blocked', reason: `${path.basename(target.file)} cannot be edited safely (${error instanceof Error ? error.message : String(error)})` };
  }
  const after = applySequential(base, edits).text;
  return { ok: true, change: { kind: 'file', ...target, before: text, after, keys, edits, createdGroup: createsGroup } };
}

/**
 * Writes the change if the file still holds what the plan was made from, and returns its record.
 * The file is replaced atomically (a temporary file renamed over it, in its real folder, so a
 * symlinked settings file stays a symlink), keeping its permissions.
 */
export function applyFileChange(change: FileChange): FileRecord {
  const now = readText(change.file);
  if (now !== change.before) {
    throw new Error(`${change.file} changed since the preview; run the command again`);
  }
  if (change.after === undefined) {
    fs.rmSync(change.file, { force: true });
  } else {
    writeAtomically(change.file, change.after);
  }
  const applied = applySequential(change.before ?? '', change.edits);
  return {
    kind: 'file',
    file: change.file,
    format: change.format,
    group: change.group,
    createdFile: change.before === undefined,
    createdGroup: change.createdGroup,
    originalHash: sha256(change.before ?? ''),
    writtenHash: sha256(change.after ?? ''),
    undo: applied.undo,
    keys: change.keys,
  };
}

function writeAtomically(file: string, text: string): void {
  let real = file;
  let mode: number | undefined;
  try {
    real = fs.realpathSync(file);
    mode = fs.statSync(real).mode & 0o7777;
  } catch {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  }
  const tmp = path.join(path.dirname(real), `.${path.basename(real)}.dx-telemetry-${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text, { encoding: 'utf8', mode: mode ?? 0o600 });
    if (mode !== undefined) {
      fs.chmodSync(tmp, mode);
    }
    fs.renameSync(tmp, real);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

/**
 * The change that undoes records (oldest first, as they were applied) of one file. While the file
 * is byte for byte what we wrote, the recorded edits give back its original bytes (and a file we
 * created is deleted). If it changed since, each key we set that still holds our value gets its
 * old value back (or goes), and keys changed since are left as they are now (`leftAlone`).
 */
export function planFileUndo(records: FileRecord[], text = readText(records[records.length - 1].file)): Planned<FileChange> & { leftAlone?: string[] } {
  const first = records[0];
  let exact: string | undefined = text;
  for (const record of [...records].reverse()) {
    exact = exact !== undefined && sha256(exact) === record.writtenHash ? applySequential(exact, record.undo).text : undefined;
  }
  if (exact !== undefined && sha256(exact) === first.originalHash) {
    const keys = mergedUndoKeys(records);
    const edits = [{ offset: 0, length: (text ?? '').length, content: exact }];
    return { ok: true, change: { kind: 'file', ...targetOf(first), before: text, after: first.createdFile ? undefined : exact, keys, edits, createdGroup: false } };
  }
  const current = readGroup(first, text);
  if (!current.ok) {
    return { ok: false, state: 'broken', reason: `${current.error}; it is left as it is` };
  }
  const keys: KeyChange[] = [];
  const leftAlone: string[] = [];
  for (const k of mergedUndoKeys(records)) {
    const now = current.group?.[k.key];
    // k describes going back: `previous` is what we wrote, `value` what was there first
    if (!sameJson(now, k.previous)) {
      leftAlone.push(k.key);
    } else {
      keys.push(k);
    }
  }
  if (!keys.length) {
    return { ok: false, state: 'connected', reason: `nothing left to undo: ${leftAlone.join(', ')} changed since`, leftAlone };
  }
  const planned = fileChange(first, text, keys, false, first.createdGroup);
  return planned.ok ? { ...planned, leftAlone } : planned;
}

/** For each key the records touched: from our last value back to the value before the first record. */
function mergedUndoKeys(records: Array<{ keys: KeyChange[] }>): KeyChange[] {
  const byKey = new Map<string, KeyChange>();
  for (const record of records) {
    for (const k of record.keys) {
      const first = byKey.get(k.key);
      const original = first ? { had: first.had, previous: first.previous } : { had: k.had, previous: k.previous };
      byKey.set(k.key, { key: k.key, had: original.had, previous: original.previous, value: k.value });
    }
  }
  // turned around: the change goes from what we wrote (`previous`) to the original (`value`)
  return [...byKey.values()].map((k) => ({
    key: k.key,
    had: k.value !== undefined,
    ...(k.value !== undefined ? { previous: k.value } : {}),
    ...(k.had ? { value: k.previous } : {}),
  }));
}

function targetOf(t: FileTarget): FileTarget {
  return { file: t.file, format: t.format, group: t.group };
}

// -- VS Code user settings -------------------------------------------------------------------------

/** The user-setting change giving these settings these values, or why there is none. */
export function planSettings(store: SettingsStore, desired: Record<string, Json>): Planned<SettingsChange> {
  const keys: KeyChange[] = [];
  for (const [key, value] of Object.entries(desired)) {
    const global = store.inspect(key)?.globalValue as Json | undefined;
    if (!sameJson(global, value)) {
      keys.push({ key, had: global !== undefined, ...(global !== undefined ? { previous: global } : {}), value });
    }
  }
  return keys.length ? { ok: true, change: { kind: 'settings', keys } } : { ok: false, state: 'connected', reason: 'already set' };
}

/**
 * Writes the user values. A policy that forces a value equal to the layers below it only shows
 * once we have written: if a key's value then is not what the layers say, the writes are taken
 * back and the change is refused as managed.
 */
export async function applySettingsChange(store: SettingsStore, change: SettingsChange): Promise<SettingsRecord> {
  for (const k of change.keys) {
    await store.updateGlobal(k.key, k.value);
  }
  const forced = change.keys.find((k) => policyValue(store, k.key) !== undefined);
  if (forced) {
    for (const k of change.keys) {
      await store.updateGlobal(k.key, k.had ? k.previous : undefined);
    }
    throw new Error(`managed by your organisation (a policy sets ${forced.key}); nothing changed`);
  }
  return { kind: 'settings', keys: change.keys };
}

/** The value a policy forces on a setting (the effective value differs from what its layers give), if any. */
export function policyValue(store: SettingsStore, key: string): { value: unknown } | undefined {
  const i = store.inspect(key);
  if (!i) {
    return undefined;
  }
  const layered = i.workspaceFolderValue ?? i.workspaceValue ?? i.globalValue ?? i.defaultValue;
  const effective = store.effective(key);
  return effective !== undefined && !sameJson(effective, layered) ? { value: effective } : undefined;
}

/** Puts back the user values from before the records, where they still hold what we wrote. */
export function planSettingsUndo(records: SettingsRecord[], store: SettingsStore): Planned<SettingsChange> & { leftAlone?: string[] } {
  const keys: KeyChange[] = [];
  const leftAlone: string[] = [];
  for (const k of mergedUndoKeys(records)) {
    if (sameJson(store.inspect(k.key)?.globalValue, k.previous)) {
      keys.push(k);
    } else {
      leftAlone.push(k.key);
    }
  }
  return keys.length
    ? { ok: true, change: { kind: 'settings', keys }, leftAlone }
    : { ok: false, state: 'connected', reason: `nothing left to undo: ${leftAlone.join(', ')} changed since`, leftAlone };
}

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(canonical);
  }
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  }
  return v;
}
