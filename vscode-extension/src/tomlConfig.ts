// Editing Codex's config.toml: only `exporter` in its `[otel]` table, by a minimal text edit that
// keeps every other byte of the file. smol-toml (a parser: its serializer would drop comments
// and layout) validates the file and checks, after each edit, that nothing else changed. A small
// lexer here finds where the statements are; a layout it does not handle is left to the developer.

import { parse } from 'smol-toml';
import type { Json } from './jsonConfig';
import { TextEdit, applySequential, eolOf } from './textEdit';

type TomlTable = Record<string, unknown>;

/** The parsed file, or what is wrong with it. */
export function parseTomlConfig(text: string, what: string): { ok: true; value: TomlTable } | { ok: false; error: string } {
  try {
    return { ok: true, value: parse(text) as TomlTable };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { ok: false, error: `${what} is not valid TOML (${message})` };
  }
}

/** The edits setting `[otel] exporter` to `value` (undefined: removing it), or why it is left to the developer. */
export function otelExporterEdits(text: string, value: Json | undefined): { edits: TextEdit[] } | { manual: string } {
  const parsed = parseTomlConfig(text, 'config.toml');
  if (!parsed.ok) {
    return { manual: parsed.error };
  }
  const eol = eolOf(text);
  let rendered: string | undefined;
  try {
    rendered = value === undefined ? undefined : inlineValue(value);
  } catch (error) {
    return { manual: `the value cannot be written as TOML (${String(error)})` };
  }
  let statements: Statement[];
  try {
    statements = lex(text);
  } catch (error) {
    return { manual: `config.toml has a layout this edit does not handle (${String(error)})` };
  }
  const otel = parsed.value.otel;
  let edits: TextEdit[];
  let tableRemoved = false;
  if (otel === undefined) {
    if (rendered === undefined) {
      return { edits: [] };
    }
    const sep = text === '' ? '' : (text.endsWith('\n') ? '' : eol) + eol;
    edits = [{ offset: text.length, length: 0, content: `${sep}[otel]${eol}exporter = ${rendered}${eol}` }];
  } else {
    const headers = statements.filter((s): s is Header => s.kind === 'header' && s.path[0] === 'otel');
    const rootKeys = statements.filter((s) => s.kind === 'key' && s.table === undefined && s.path[0] === 'otel');
    const table = headers.find((h) => h.path.length === 1 && !h.array);
    if (!table || rootKeys.length || headers.some((h) => h.path[1] === 'exporter')) {
      return { manual: 'the [otel] settings in config.toml are not written as one plain [otel] table' };
    }
    const keys = statements.filter((s): s is Key => s.kind === 'key' && s.table === table && s.path[0] === 'exporter');
    if (keys.length > 1 || keys.some((k) => k.path.length > 1 || k.multiline)) {
      return { manual: '`exporter` in the [otel] table of config.toml spans several lines or keys' };
    }
    const key = keys[0];
    if (!key) {
      if (rendered === undefined) {
        return { edits: [] };
      }
      edits = [{ offset: table.end, length: 0, content: `${eol}exporter = ${rendered}` }];
    } else if (rendered !== undefined) {
      edits = [{ offset: key.valueStart, length: key.valueEnd - key.valueStart, content: rendered }];
    } else {
      edits = [{ offset: key.start, length: lineAfter(text, key.end) - key.start, content: '' }];
      const others = statements.some((s) => s.kind === 'key' && s.table === table && s !== key);
      if (!others && !/\S/.test(text.slice(table.end, key.start))) {
        // we added the table: it goes with its only key, and the blank line we put before it
        const begin = text.slice(0, table.start).endsWith(eol + eol) ? table.start - eol.length : table.start;
        edits = [{ offset: begin, length: lineAfter(text, key.end) - begin, content: '' }];
        tableRemoved = true;
      }
    }
  }
  const after = applySequential(text, edits).text;
  const check = parseTomlConfig(after, 'the edited config.toml');
  const expected = { ...parsed.value, otel: { ...((otel as TomlTable | undefined) ?? {}), exporter: value } };
  if (value === undefined) {
    delete (expected.otel as TomlTable).exporter;
  }
  if (tableRemoved) {
    delete (expected as TomlTable).otel;
  }
  if (!check.ok || canonical(check.value) !== canonical(expected)) {
    return { manual: 'an edit of config.toml could not be made without changing other settings' };
  }
  return { edits };
}

/** `otel.exporter` as JSON (TOML tables and values map one to one for what an exporter holds). */
export function otelExporterOf(table: TomlTable): Json | undefined {
  const otel = table.otel as TomlTable | undefined;
  const exporter = otel?.exporter;
  return exporter === undefined ? undefined : (JSON.parse(canonical(exporter)) as Json);
}

/** A TOML inline value for JSON data: strings as basic strings, tables as `{ k = v }`. */
export function inlineValue(value: Json): string {
  if (typeof value === 'string') {
    return JSON.stringify(value); // JSON's escapes are all valid in a TOML basic string
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  if (value === null) {
    throw new Error('TOML has no null');
  }
  if (Array.isArray(value)) {
    return `[${value.map(inlineValue).join(', ')}]`;
  }
  const entries = Object.entries(value).map(([k, v]) => `${/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k)} = ${inlineValue(v)}`);
  return entries.length ? `{ ${entries.join(', ')} }` : '{}';
}

function canonical(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      return v.map(sortKeys);
    }
    if (v instanceof Date) {
      return v.toISOString();
    }
    if (typeof v === 'bigint') {
      return `${v}n`;
    }
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().filter((k) => (v as TomlTable)[k] !== undefined).map((k) => [k, sortKeys((v as TomlTable)[k])]));
    }
    return v;
  };
  return JSON.stringify(sortKeys(value));
}

function lineAfter(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl < 0 ? text.length : nl + 1;
}

// -- a lexer for where statements are (the file is known to be valid TOML) --------------------

interface Header {
  kind: 'header';
  path: string[];
  array: boolean;
  start: number;
  /** The end of the header's line (before its line ending). */
  end: number;
}

interface Key {
  kind: 'key';
  path: string[];
  /** The table header the key stands under (undefined: the root table). */
  table: Header | undefined;
  start: number;
  valueStart: number;
  valueEnd: number;
  /** The end of the statement's last line (before its line ending). */
  end: number;
  multiline: boolean;
}

type Statement = Header | Key;

function lex(text: string): Statement[] {
  const out: Statement[] = [];
  let table: Header | undefined;
  let i = 0;
  const lineEndFrom = (j: number) => {
    const nl = text.indexOf('\n', j);
    const end = nl < 0 ? text.length : nl;
    return end > 0 && text[end - 1] === '\r' ? end - 1 : end;
  };
  while (i < text.length) {
    const start = i;
    i = skipSpaces(text, i);
    let end: number;
    if (i >= text.length || text[i] === '\n' || text[i] === '\r' || text[i] === '#') {
      end = lineEndFrom(i);
    } else if (text[i] === '[') {
      const array = text[i + 1] === '[';
      const read = readKey(text, i + (array ? 2 : 1));
      table = { kind: 'header', path: read.path, array, start, end: lineEndFrom(read.next) };
      out.push(table);
      end = table.end;
    } else {
      const read = readKey(text, i);
      if (text[read.next] !== '=') {
        throw new Error(`'=' expected at offset ${read.next}`);
      }
      const valueStart = skipSpaces(text, read.next + 1);
      const valueEnd = valueEndAt(text, valueStart);
      end = lineEndFrom(valueEnd);
      out.push({ kind: 'key', path: read.path, table, start, valueStart, valueEnd, end, multiline: text.slice(valueStart, valueEnd).includes('\n') });
    }
    const nl = text.indexOf('\n', end);
    i = nl < 0 ? text.length : nl + 1;
  }
  return out;
}

function skipSpaces(text: string, i: number): number {
  while (text[i] === ' ' || text[i] === '\t') {
    i += 1;
  }
  return i;
}

/** A dotted key starting at `i`, its parts unquoted; `next` is the first character after it. */
function readKey(text: string, i: number): { path: string[]; next: number } {
  const path: string[] = [];
  for (;;) {
    i = skipSpaces(text, i);
    if (text[i] === '"' || text[i] === "'") {
      const end = valueEndAt(text, i);
      const raw = text.slice(i, end);
      path.push(text[i] === '"' ? (JSON.parse(raw) as string) : raw.slice(1, -1));
      i = end;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(text.slice(i, i + 256));
      if (!m) {
        throw new Error(`a key expected at offset ${i}`);
      }
      path.push(m[0]);
      i += m[0].length;
    }
    i = skipSpaces(text, i);
    if (text[i] !== '.') {
      return { path, next: i };
    }
    i += 1;
  }
}

/** Where the value (string, array, inline table or other scalar) starting at `i` ends. */
function valueEndAt(text: string, i: number): number {
  const c = text[i];
  if (text.startsWith('"""', i) || text.startsWith("'''", i)) {
    for (let j = i + 3; j < text.length; j += 1) {
      if (c === '"' && text[j] === '\\') {
        j += 1;
      } else if (text.startsWith(c.repeat(3), j)) {
        let k = j;
        while (text[k] === c && k - j < 5) {
          k += 1; // up to two quotes of the content may stand right before the closing three
        }
        return k;
      }
    }
    throw new Error('an unterminated multi-line string');
  }
  if (c === '"' || c === "'") {
    for (let j = i + 1; j < text.length && text[j] !== '\n'; j += 1) {
      if (c === '"' && text[j] === '\\') {
        j += 1;
      } else if (text[j] === c) {
        return j + 1;
      }
    }
    throw new Error('an unterminated string');
  }
  if (c === '[' || c === '{') {
    const close = c === '[' ? ']' : '}';
    let j = i + 1;
    for (;;) {
      while (j < text.length && /[ \t\r\n,]/.test(text[j])) {
        j += 1;
      }
      if (text[j] === '#') {
        const nl = text.indexOf('\n', j);
        j = nl < 0 ? text.length : nl;
        continue;
      }
      if (j >= text.length) {
        throw new Error('an unterminated array or inline table');
      }
      if (text[j] === close) {
        return j + 1;
      }
      if (c === '{') {
        const key = readKey(text, j);
        j = skipSpaces(text, key.next + 1); // past its '='
      }
      j = valueEndAt(text, j);
    }
  }
  let j = i;
  while (j < text.length && !/[ \t\r\n,\]}#]/.test(text[j])) {
    j += 1;
  }
  return j;
}
