// A unified diff of two small texts (config files of a few hundred lines), for the preview of
// what Connect AI Tools would write: the developer sees the exact lines before accepting.

const MAX_CELLS = 4_000_000;

/** `@@` hunks with `context` unchanged lines around each change; no `---`/`+++` header. */
export function unifiedDiff(before: string, after: string, context = 2): string[] {
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = diffOps(a, b);
  const out: string[] = [];
  let i = 0;
  while (i < ops.length) {
    if (ops[i].op === ' ') {
      i += 1;
      continue;
    }
    // a hunk: from `context` lines before this change to `context` lines after the last change
    // that is at most 2 * context unchanged lines away from the next one
    const begin = Math.max(0, i - context);
    let end = i;
    for (let j = i; j < ops.length; j += 1) {
      if (ops[j].op !== ' ') {
        end = j;
      } else if (j - end > 2 * context) {
        break;
      }
    }
    const stop = Math.min(ops.length, end + 1 + context);
    const slice = ops.slice(begin, stop);
    const aStart = ops.slice(0, begin).filter((o) => o.op !== '+').length;
    const bStart = ops.slice(0, begin).filter((o) => o.op !== '-').length;
    const aLen = slice.filter((o) => o.op !== '+').length;
    const bLen = slice.filter((o) => o.op !== '-').length;
    out.push(`@@ -${aLen ? aStart + 1 : aStart},${aLen} +${bLen ? bStart + 1 : bStart},${bLen} @@`);
    for (const o of slice) {
      out.push(`${o.op}${o.line}`);
    }
    i = stop;
  }
  return out;
}

function splitLines(text: string): string[] {
  if (!text) {
    return [];
  }
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === '') {
    lines.pop();
  }
  return lines;
}

interface Op {
  op: ' ' | '-' | '+';
  line: string;
}

/** A longest-common-subsequence diff of the lines between the common start and end. */
function diffOps(a: string[], b: string[]): Op[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) {
    pre += 1;
  }
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) {
    suf += 1;
  }
  const x = a.slice(pre, a.length - suf);
  const y = b.slice(pre, b.length - suf);
  const middle: Op[] = [];
  if ((x.length + 1) * (y.length + 1) > MAX_CELLS) {
    middle.push(...x.map((line) => ({ op: '-' as const, line })), ...y.map((line) => ({ op: '+' as const, line })));
  } else {
    // lcs[i][j]: the LCS length of x[i..] and y[j..]
    const w = y.length + 1;
    const lcs = new Uint32Array((x.length + 1) * w);
    for (let i = x.length - 1; i >= 0; i -= 1) {
      for (let j = y.length - 1; j >= 0; j -= 1) {
        lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) {
        middle.push({ op: ' ', line: x[i] });
        i += 1;
        j += 1;
      } else if (i < x.length && (j >= y.length || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
        middle.push({ op: '-', line: x[i] });
        i += 1;
      } else {
        middle.push({ op: '+', line: y[j] });
        j += 1;
      }
    }
  }
  return [
    ...a.slice(0, pre).map((line) => ({ op: ' ' as const, line })),
    ...middle,
    ...a.slice(a.length - suf).map((line) => ({ op: ' ' as const, line })),
  ];
}
