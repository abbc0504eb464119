// Editing another tool's JSON-with-comments settings file (Claude Code's and Gemini CLI's
// settings.json) so that everything we do not change stays byte for byte: comments, key order,
// indentation, line endings. jsonc-parser parses and locates; the insertions are written here in
// the file's own style, because jsonc-parser's `modify` formatter reflows neighbouring lines
// (tabs become spaces, a one-line object is spread over lines).

import { Node, ParseError, createScanner, findNodeAtLocation, getNodeValue, parseTree, printParseErrorCode, SyntaxKind } from 'jsonc-parser';
import { TextEdit, applySequential, eolOf, lineCol } from './textEdit';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const PARSE_OPTIONS = { allowTrailingComma: true, disallowComments: false, allowEmptyContent: true };

/** The file's top-level object, or what is wrong with it (`what` names the file in the message). */
export function parseJsonConfig(text: string, what: string): { ok: true; value: JsonObject } | { ok: false; error: string } {
  if (!text.trim()) {
    return { ok: true, value: {} };
  }
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, PARSE_OPTIONS);
  if (errors.length) {
    const e = errors[0];
    return { ok: false, error: `${what} is not valid JSON (${lineCol(text, e.offset)}: ${printParseErrorCode(e.error)})` };
  }
  if (!root || root.type !== 'object') {
    return { ok: false, error: `${what} does not hold a JSON object` };
  }
  // plain objects (jsonc-parser builds them without a prototype)
  return { ok: true, value: JSON.parse(JSON.stringify(getNodeValue(root))) as JsonObject };
}

/**
 * The edits (applied one after another) that set `parent.<key>` for each entry, creating the
 * `parent` object when absent; an entry whose value is undefined removes that key (and the
 * parent, when `dropEmptyParent` and it ends up empty). The text must parse (parseJsonConfig),
 * and `parent`, if present, must be an object. The result is checked by parsing it again.
 */
export function jsonEdits(text: string, parent: string, entries: ReadonlyArray<[string, Json | undefined]>, dropEmptyParent = false): TextEdit[] {
  const edits: TextEdit[] = [];
  let current = text;
  const push = (next: TextEdit[]) => {
    for (const e of next) {
      edits.push(e);
      current = applySequential(current, [e]).text;
    }
  };
  if (!current.trim()) {
    push([{ offset: 0, length: current.length, content: `{}${eolOf(current)}` }]);
  }
  if (!findNodeAtLocation(tree(current), [parent])) {
    if (entries.every(([, v]) => v === undefined)) {
      return edits;
    }
    push(insertProperty(current, tree(current), parent, '{}'));
  }
  for (const [key, value] of entries) {
    const object = findNodeAtLocation(tree(current), [parent]);
    if (!object || object.type !== 'object') {
      throw new Error(`"${parent}" is not an object`);
    }
    const existing = findNodeAtLocation(object, [key]);
    if (value === undefined) {
      if (existing?.parent) {
        push([removeProperty(current, object, existing.parent)]);
      }
    } else if (existing) {
      push([{ offset: existing.offset, length: existing.length, content: JSON.stringify(value) }]);
    } else {
      push(insertProperty(current, object, key, JSON.stringify(value)));
    }
  }
  const root = tree(current);
  const object = findNodeAtLocation(root, [parent]);
  if (dropEmptyParent && object && !object.children?.length && object.parent) {
    push([removeProperty(current, root, object.parent)]);
  }
  verify(text, current, parent, entries, dropEmptyParent);
  return edits;
}

function tree(text: string): Node {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, PARSE_OPTIONS);
  if (!root || errors.length || root.type !== 'object') {
    throw new Error('the settings file is not a JSON object');
  }
  return root;
}

/** Inserts `"key": valueText` as the object's last property, in the style of its neighbours. */
function insertProperty(text: string, object: Node, key: string, valueText: string): TextEdit[] {
  const prop = `${JSON.stringify(key)}: ${valueText}`;
  const eol = eolOf(text);
  const props = object.children ?? [];
  if (!props.length) {
    const open = object.offset;
    const close = object.offset + object.length - 1;
    const inner = text.slice(open + 1, close);
    const outer = leadingWhitespace(text, open);
    const child = outer + indentUnit(text);
    if (inner.includes('\n')) {
      return [{ offset: open + 1, length: 0, content: `${eol}${child}${prop}` }];
    }
    if (!text.includes('\n')) {
      return [{ offset: open + 1, length: inner.length, content: prop }];
    }
    return [{ offset: open + 1, length: inner.length, content: `${eol}${child}${prop}${eol}${outer}` }];
  }
  const last = props[props.length - 1];
  const lastEnd = last.offset + last.length;
  const trailingComma = commaAfter(text, lastEnd) !== undefined;
  if (lineOf(text, last.offset) === lineOf(text, object.offset)) {
    return [{ offset: lastEnd, length: 0, content: `, ${prop}` }];
  }
  const indent = leadingWhitespace(text, last.offset);
  const end = lineEnd(text, lastEnd);
  if (/^\s*,?\s*(\/\/.*|\/\*.*\*\/\s*)?$/.test(text.slice(lastEnd, end))) {
    // after the line's trailing comment, so the comment stays with the property it was about
    const line: TextEdit = { offset: end, length: 0, content: `${eol}${indent}${prop}${trailingComma ? ',' : ''}` };
    return trailingComma ? [line] : [line, { offset: lastEnd, length: 0, content: ',' }];
  }
  return [{ offset: lastEnd, length: 0, content: `,${eol}${indent}${prop}` }];
}

/** Removes a property with its comma; its whole line when it stands alone there. */
function removeProperty(text: string, object: Node, property: Node): TextEdit {
  const props = object.children ?? [];
  const index = props.indexOf(property);
  const start = property.offset;
  const end = property.offset + property.length;
  const lineBegin = text.lastIndexOf('\n', start - 1) + 1;
  const afterEnd = lineEnd(text, end);
  const aloneBefore = /^\s*$/.test(text.slice(lineBegin, start));
  const rest = text.slice(end, afterEnd);
  if (aloneBefore && /^\s*,?\s*$/.test(rest)) {
    const nextLine = afterEnd < text.length ? afterEnd + (text[afterEnd] === '\r' ? 2 : 1) : afterEnd;
    if (index === props.length - 1 && index > 0 && !rest.includes(',')) {
      // the previous property's comma goes too: from right after its value to the end of our line
      const comma = commaAfter(text, props[index - 1].offset + props[index - 1].length);
      if (comma !== undefined && comma < start) {
        return { offset: comma, length: nextLine - comma, content: text.slice(comma + 1, lineBegin) };
      }
    }
    return { offset: lineBegin, length: nextLine - lineBegin, content: '' };
  }
  if (index < props.length - 1) {
    return { offset: start, length: props[index + 1].offset - start, content: '' };
  }
  if (index > 0) {
    const prevEnd = props[index - 1].offset + props[index - 1].length;
    return { offset: prevEnd, length: end - prevEnd, content: '' };
  }
  return { offset: start, length: end - start, content: '' };
}

function verify(before: string, after: string, parent: string, entries: ReadonlyArray<[string, Json | undefined]>, dropEmptyParent: boolean): void {
  const was = parseJsonConfig(before, 'the file');
  const now = parseJsonConfig(after, 'the edited file');
  if (!was.ok || !now.ok) {
    throw new Error(`the edit would not leave valid JSON${now.ok ? '' : `: ${now.error}`}`);
  }
  const expected: JsonObject = JSON.parse(JSON.stringify(was.value)) as JsonObject;
  const group = (expected[parent] ?? {}) as JsonObject;
  for (const [key, value] of entries) {
    if (value === undefined) {
      delete group[key];
    } else {
      group[key] = value;
    }
  }
  if (dropEmptyParent && !Object.keys(group).length) {
    delete expected[parent];
  } else if (parent in expected || Object.keys(group).length) {
    expected[parent] = group;
  }
  if (JSON.stringify(sorted(expected)) !== JSON.stringify(sorted(now.value))) {
    throw new Error('the edit would change more than the keys it is for');
  }
}

function sorted(value: Json): Json {
  if (Array.isArray(value)) {
    return value.map(sorted);
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}

/** Where the comma right after `offset` is (comments and whitespace skipped), if there is one. */
function commaAfter(text: string, offset: number): number | undefined {
  const scanner = createScanner(text.slice(offset), true);
  return scanner.scan() === SyntaxKind.CommaToken ? offset + scanner.getTokenOffset() : undefined;
}

function lineOf(text: string, offset: number): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    n += 1;
  }
  return n;
}

/** The offset of the end of the line holding `offset` (before its `\r\n` or `\n`). */
function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  if (nl < 0) {
    return text.length;
  }
  return nl > 0 && text[nl - 1] === '\r' ? nl - 1 : nl;
}

function leadingWhitespace(text: string, offset: number): string {
  const begin = text.lastIndexOf('\n', offset - 1) + 1;
  return /^[ \t]*/.exec(text.slice(begin))?.[0] ?? '';
}

/** The file's indentation step: a tab, or the smallest run of leading spaces (2 when none). */
function indentUnit(text: string): string {
  let spaces = 0;
  for (const line of text.split('\n').slice(0, 200)) {
    const lead = /^[ \t]*/.exec(line)?.[0] ?? '';
    if (lead.startsWith('\t')) {
      return '\t';
    }
    if (lead.length && line.trim() && (!spaces || lead.length < spaces)) {
      spaces = lead.length;
    }
  }
  return ' '.repeat(spaces || 2);
}
