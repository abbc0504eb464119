// Byte-exact, reversible text edits: what Connect AI Tools writes into another tool's config
// file, and how Disconnect puts back exactly what was there.

import { createHash } from 'crypto';

/** Replace `length` characters at `offset` with `content` (offsets into the text the edit applies to). */
export interface TextEdit {
  offset: number;
  length: number;
  content: string;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Applies edits one after another (each edit's offset refers to the text left by the previous
 * ones) and returns the result with the edits that undo it, in the order to apply them. Each undo
 * edit holds only the characters that were really replaced (the common start and end of the old
 * and new text are trimmed), so it never carries the neighbouring text of the file.
 */
export function applySequential(text: string, edits: readonly TextEdit[]): { text: string; undo: TextEdit[] } {
  const undo: TextEdit[] = [];
  let out = text;
  for (const edit of edits) {
    if (edit.offset < 0 || edit.length < 0 || edit.offset + edit.length > out.length) {
      throw new Error(`an edit at ${edit.offset}+${edit.length} is outside the text (${out.length} characters)`);
    }
    const minimal = trim(out, edit);
    const removed = out.slice(minimal.offset, minimal.offset + minimal.length);
    out = out.slice(0, minimal.offset) + minimal.content + out.slice(minimal.offset + minimal.length);
    if (minimal.length || minimal.content.length) {
      undo.unshift({ offset: minimal.offset, length: minimal.content.length, content: removed });
    }
  }
  return { text: out, undo };
}

function trim(text: string, edit: TextEdit): TextEdit {
  const old = text.slice(edit.offset, edit.offset + edit.length);
  const neu = edit.content;
  let start = 0;
  while (start < old.length && start < neu.length && old[start] === neu[start]) {
    start += 1;
  }
  let end = 0;
  while (end < old.length - start && end < neu.length - start && old[old.length - 1 - end] === neu[neu.length - 1 - end]) {
    end += 1;
  }
  return { offset: edit.offset + start, length: old.length - start - end, content: neu.slice(start, neu.length - end) };
}

/** The line ending a file uses (its first one), `\n` for a file without any. */
export function eolOf(text: string): string {
  const i = text.indexOf('\n');
  return i > 0 && text[i - 1] === '\r' ? '\r\n' : '\n';
}

/** 1-based line and column of an offset, for error messages. */
export function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - (before.lastIndexOf('\n') + 1) + 1;
  return `line ${line}, column ${col}`;
}
