// The real VS Code end-to-end test: code-server (VS Code 1.139 from npm, on Node 24) with the
// built .vsix installed, driven by headless Debian chromium through playwright-core. A loopback
// HTTP server plays DX strictly. Three phases, each in its own fresh scratch folder (HOME, XDG_*,
// TMPDIR, user-data, extensions, data folder) and its own code-server:
//
//   1. the token inherited from the environment (managed machines), plus the reporter extension,
//      in a workspace whose .vscode/settings.json tries to change every DX Telemetry setting:
//      the sidecar applies the user's values only; activation, the bundled sidecar, the push,
//      the status bar, the report, recordUsage, a crash restart, a live settings change, a clean
//      shutdown;
//   2. the token set the way a user does it: no DX_DATA_CLOUD_TOKEN anywhere, user settings with
//      only email, tool and instanceUrl (and the DOM terminal renderer, to read the terminal),
//      python3 found on the PATH; the status bar warns and
//      nothing is pushed; "DX Telemetry: Set API Token" from the palette, typed into the password
//      box; the sidecar restarts with it and yesterday arrives once; "Open Usage in Terminal":
//      an integrated terminal runs `dx-lsp-telemetry report` (the extension's launcher on its
//      PATH) and shows that day, pushed, with no token in the shell; the token is in clear text in
//      no file, log or argv; it survives closing and reopening the editor (nothing is pushed
//      twice); "Clear API Token" brings the warning back, with no fallback to any environment;
//   3. "DX Telemetry: Connect AI Tools…" with a fake HOME holding a Claude Code settings.json: the
//      preview, the list, the accepted change in the file (comments kept) and the user settings;
//      then "Disconnect AI Tools…" gives back the file byte for byte; on a machine with a managed
//      configuration: its interpreter starts the sidecar, the tooltip shows what it manages;
//   4. no usable Python: the interpreter setting names a file that does not exist, the PATH's
//      python3 is a stub like macOS's before the Command Line Tools and its python a 3.8; the
//      status bar and the log say what to install and how to point the extension at a Python.
//   5. DX Telemetry Remote Reader without DX Telemetry in its extension host (as on a remote host
//      whose DX Telemetry runs on the UI side), a fixture answering its private commands as DX
//      Telemetry does: the reader sidecar (`serve --reader`, no token) reads a Claude Code
//      transcript in the fake HOME and each event arrives once, a line appended later too.
//      Phase 1 also installs the reader beside DX Telemetry: there it must stay idle.
//
// It waits on conditions with deadlines (no fixed sleeps; only the memory measurement spaces its
// samples) and cleans up every process it started.
//
// Environment (set by `make ext-e2e`): CODE_SERVER, NODE24_BIN, DX_CLI, VSIX, READER_VSIX.
// Optional: CHROMIUM (default /usr/bin/chromium), E2E_PYTHON (the Python the bare interpreter is
// made from, default python3; e.g. a 3.9 for the oldest supported), E2E_KEEP=1 (keep the scratch folder),
// E2E_ONLY=1, 2, 3, 4, 5 or 0 (one phase, or none), E2E_MEASURE=<rounds> (also measure the extension
// host's memory with and without the extension: <rounds> code-server runs of each, alternated;
// E2E_MEASURE_AGE_MS is the window age at which the samples are taken, default 20000).

import { ChildProcess, execFile, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { parse as parseJsonc } from 'jsonc-parser';
import { Page, chromium } from 'playwright-core';

const TOKEN_ENV = 'DX_DATA_CLOUD_TOKEN';
/** Phase 1: inherited from the editor's environment. */
const TOKEN = 'e2e-token-5f0c1d2e3a4b';
/** Phase 2: typed into the password box (a different value, so the fake DX tells them apart). */
const SECRET_TOKEN = 'e2e-secret-7c41d9a0b2e85f36';
const EMAIL = 'dev@example.com';
const EXTENSION_ID = 'dx-telemetry.dx-lsp-telemetry';
const SEED_TOOL = 'e2e-seed';
const TODAY_TOKENS = 4000 + 642;
const STARTUP_EVENT_TOKENS = 100 + 11;
const PALETTE_EVENT_TOKENS = 1000 + 234;
const NO_TOKEN_PROBLEM = `${TOKEN_ENV} is not set`;

// -- small utilities ---------------------------------------------------------------------------

let failures = 0;
let passes = 0;

function check(name: string, ok: boolean, detail = ''): void {
  if (ok) {
    passes += 1;
    console.log(`  ok   ${name}`);
  } else {
    failures += 1;
    console.log(`  FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
}

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (!value) {
    throw new Error(`${name} is not set (run the test through \`make ext-e2e\`)`);
  }
  return value;
}

/** Polls `probe` until it returns a value other than undefined/false, or throws after `ms`. */
async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined | false> | T | undefined | false, everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) {
        return value as T;
      }
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 180_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

// -- /proc: the sidecar and the extension host -------------------------------------------------

interface Proc {
  pid: number;
  ppid: number;
  argv: string[];
  /** /proc/<pid>/cmdline as it is, NUL separators and all. */
  cmdline: string;
  env: Record<string, string>;
  rssKb: number;
}

function readProc(pid: number): Proc | undefined {
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const argv = cmdline.split('\0').filter(Boolean);
    const envText = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
    const envVars: Record<string, string> = {};
    for (const entry of envText.split('\0')) {
      const i = entry.indexOf('=');
      if (i > 0) {
        envVars[entry.slice(0, i)] = entry.slice(i + 1);
      }
    }
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { pid, ppid, argv, cmdline, env: envVars, rssKb };
  } catch {
    return undefined; // gone, or a kernel thread
  }
}

/** Proportional set size (shared pages divided among their users), from smaps_rollup. */
function readPssKb(pid: number): number | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const pss = /^Pss:\s+(\d+)/m.exec(text)?.[1];
    return pss === undefined ? undefined : Number(pss);
  } catch {
    return undefined;
  }
}

/** Processes whose environment carries this phase's scratch marker (never another run's or test's). */
function ourProcesses(marker: string): Proc[] {
  const out: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) {
      continue;
    }
    const p = readProc(Number(name));
    if (p && p.env.DX_E2E_RUN === marker) {
      out.push(p);
    }
  }
  return out;
}

/** The LSP sidecar: `<python> -m dx_lsp_telemetry` with no verb (the report's `... report --json` is not one). */
const isSidecar = (p: Proc) => p.argv.length >= 3 && p.argv[p.argv.length - 2] === '-m' && p.argv[p.argv.length - 1] === 'dx_lsp_telemetry';
/** The Remote Reader's sidecar: `<python> -m dx_lsp_telemetry serve --reader`. */
const isReaderSidecar = (p: Proc) => p.argv.slice(-4).join(' ') === '-m dx_lsp_telemetry serve --reader';
const isExtensionHost = (p: Proc) => p.argv.some((a) => a.includes('--type=extensionHost'));

// -- where a secret could leak on disk -----------------------------------------------------------

/** Every regular file under `root` holding `secret` as UTF-8 or UTF-16LE (Chromium's localStorage) text. */
function filesContaining(root: string, secret: string): { scanned: number; hits: string[] } {
  const needles = [Buffer.from(secret, 'utf8'), Buffer.from(secret, 'utf16le')];
  const hits: string[] = [];
  let scanned = 0;
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // went away while we looked
    }
    for (const entry of entries) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(p);
      } else if (entry.isFile()) {
        try {
          const data = fs.readFileSync(p);
          scanned += 1;
          if (needles.some((n) => data.includes(n))) {
            hits.push(p);
          }
        } catch {
          // a socket, or gone
        }
      }
    }
  };
  walk(root);
  return { scanned, hits };
}

// -- a strict fake DX (the same rules as tests/fake_dx.py) ---------------------------------------

interface Received {
  path: string;
  status: number;
  /** The Authorization header as received (kept in memory only). */
  authorization: string | undefined;
  body: unknown;
}

interface FakeDx {
  url: string;
  received: Received[];
  stored: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

const INT_FIELDS = ['input_tokens', 'output_tokens', 'cache_write_tokens', 'cache_read_tokens', 'spend_cents'];

function validateRecord(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return 'body must be a JSON object';
  }
  const b = body as Record<string, unknown>;
  for (const name of ['email', 'date', 'tool']) {
    if (typeof b[name] !== 'string' || !b[name]) {
      return `${name} is required and must be a non-empty string`;
    }
  }
  if (typeof b.is_active !== 'boolean') {
    return 'is_active is required and must be a boolean';
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(b.date as string)) {
    return 'date must be YYYY-MM-DD';
  }
  for (const name of INT_FIELDS) {
    if (name in b && !(Number.isInteger(b[name]) && (b[name] as number) >= 0)) {
      return `${name} must be a non-negative integer`;
    }
  }
  if ('metrics' in b && (typeof b.metrics !== 'object' || b.metrics === null || Array.isArray(b.metrics))) {
    return 'metrics must be an object';
  }
  const known = new Set(['email', 'date', 'is_active', 'tool', 'metrics', 'model_breakdowns', ...INT_FIELDS]);
  const unknown = Object.keys(b).filter((k) => !known.has(k));
  return unknown.length ? `unknown fields: ${unknown.sort().join(', ')}` : undefined;
}

/** A fake DX that accepts exactly one token. */
function startFakeDx(token: string): Promise<FakeDx> {
  const received: Received[] = [];
  const stored: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: unknown) => {
        received.push({ path: req.url ?? '', status, authorization: req.headers.authorization, body: parsed });
        const data = Buffer.from(JSON.stringify(body));
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
        res.end(data);
      };
      let parsed: unknown;
      if (req.method !== 'POST' || req.url !== '/api/aiToolMetrics.push') {
        return answer(req.method !== 'POST' ? 405 : 404, { ok: false, error: 'not_found' });
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        return answer(401, { ok: false, error: 'not_authed' });
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        return answer(422, { ok: false, error: 'invalid_arguments', message: 'Content-Type must be JSON' });
      }
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(422, { ok: false, error: 'invalid_arguments', message: 'body is not JSON' });
      }
      const problem = validateRecord(parsed);
      if (problem) {
        return answer(422, { ok: false, error: 'invalid_arguments', message: problem });
      }
      stored.push(parsed as Record<string, unknown>);
      return answer(200, { ok: true, id: `dx-${stored.length}`, ...(parsed as object) });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      const close = () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections(); // the sidecar's keep-alive connection
        });
      resolve({ url: `http://127.0.0.1:${port}`, received, stored, close });
    });
  });
}

const recordKey = (r: Record<string, unknown>) => `${String(r.email)}|${String(r.date)}|${String(r.tool)}`;

/** The seeded day's totals, exactly as the CLI recorded them (0.42 USD + 7.25 cents = 49 cents). */
function hasSeedTotals(record: Record<string, unknown>): boolean {
  return (
    record.input_tokens === 2000 &&
    record.output_tokens === 400 &&
    record.cache_write_tokens === 40 &&
    record.cache_read_tokens === 60 &&
    record.spend_cents === 49 &&
    record.is_active === true
  );
}

// -- the workbench -------------------------------------------------------------------------------

/** F1, the command's title, Enter: as a user runs a command. Returns once the palette took it. */
async function startCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  await input.press('Enter');
}

/** A command that shows no input of its own: waits for the palette to close. */
async function runCommand(page: Page, title: string): Promise<void> {
  await startCommand(page, title);
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 30_000 });
}

const STATUS_ITEM = '.statusbar-item[id*="dxTelemetry"]';

async function statusBarText(page: Page): Promise<string | undefined> {
  const item = page.locator(STATUS_ITEM);
  if ((await item.count()) === 0) {
    return undefined;
  }
  return (await item.first().innerText()).replace(/\s+/g, ' ').trim();
}

interface StatusItem {
  text: string;
  /** The item's aria-label(s): what a screen reader says. */
  aria: string;
  /** The warning background (`warning-kind`) or the $(warning) icon. */
  warning: boolean;
}

async function statusItem(page: Page): Promise<StatusItem | undefined> {
  const items = page.locator(STATUS_ITEM);
  if ((await items.count()) === 0) {
    return undefined;
  }
  const item = items.first();
  const labels = [await item.getAttribute('aria-label')];
  for (const inner of await item.locator('[aria-label]').all()) {
    labels.push(await inner.getAttribute('aria-label'));
  }
  const classes = (await item.getAttribute('class')) ?? '';
  const icon = await item.locator('.codicon-warning').count();
  return {
    text: (await item.innerText()).replace(/\s+/g, ' ').trim(),
    aria: labels.filter(Boolean).join(' | '),
    warning: /\bwarning-kind\b/.test(classes) || icon > 0,
  };
}

/** The status bar item's tooltip, as the hover shows it to a user. */
async function statusTooltip(page: Page): Promise<string> {
  await page.mouse.move(700, 300);
  await page.locator(STATUS_ITEM).first().hover();
  const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: /\S/ }).first();
  await hover.waitFor({ state: 'visible', timeout: 10_000 });
  const text = (await hover.innerText()).trim();
  await page.mouse.move(700, 300);
  await page.keyboard.press('Escape');
  return text;
}

/** Waits for the item to warn about the missing token; returns its aria-label and its tooltip. */
async function waitForTokenWarning(page: Page, what: string): Promise<{ item: StatusItem; tooltip: string }> {
  const item = await waitFor(what, 90_000, async () => {
    const i = await statusItem(page);
    // the item may show a warning while it still says "starting": wait for the reason itself
    return i && i.warning && /DX/.test(i.text) && i.aria.includes(NO_TOKEN_PROBLEM) ? i : undefined;
  });
  const tooltip = await waitFor('the status bar tooltip', 30_000, async () => {
    const t = await statusTooltip(page);
    return t.includes(NO_TOKEN_PROBLEM) ? t : undefined;
  });
  return { item, tooltip };
}

async function webviewText(page: Page, needle: string): Promise<string | undefined> {
  for (const frame of page.frames()) {
    try {
      const text = String(await frame.evaluate('document.body ? document.body.innerText : ""'));
      if (text.includes(needle)) {
        return text;
      }
    } catch {
      // a frame that went away, or one not ready
    }
  }
  return undefined;
}

// -- scratch folders, code-server, chromium --------------------------------------------------------

interface Ctx {
  codeServer: string;
  nodeBin: string;
  dxCli: string;
  vsix: string;
  readerVsix: string;
  chromiumPath: string;
  extensionRoot: string;
  /** This run's scratch folder: one subfolder per phase, and the bare Python. */
  top: string;
  /** A Python with no packages at all (a venv without pip). */
  barePython: string;
}

interface Scratch {
  root: string;
  home: string;
  userData: string;
  extensions: string;
  workspace: string;
  dxHome: string;
  outFile: string;
  /** Chromium's profile, when the phase keeps one (to search it for secrets). */
  profile: string;
  env: NodeJS.ProcessEnv;
}

/** A fresh phase folder `<top>/<name>`; `pathPrefix` goes in front of the PATH. */
function makeScratch(top: string, name: string, nodeBin: string, pathPrefix: string[] = []): Scratch {
  const root = path.join(top, name);
  const dirs = ['home', 'config', 'data', 'cache', 'tmp', 'user-data/User', 'extensions', 'workspace', 'dx-home'];
  for (const d of dirs) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  const e: NodeJS.ProcessEnv = {
    PATH: [...pathPrefix, nodeBin, process.env.PATH ?? '/usr/bin:/bin'].join(':'),
    HOME: path.join(root, 'home'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
    XDG_DATA_HOME: path.join(root, 'data'),
    XDG_CACHE_HOME: path.join(root, 'cache'),
    XDG_RUNTIME_DIR: path.join(root, 'tmp'),
    TMPDIR: path.join(root, 'tmp'),
    LANG: 'C.UTF-8',
    DX_TELEMETRY_HOME: path.join(root, 'dx-home'),
    DX_E2E_RUN: root,
  };
  return {
    root,
    home: e.HOME!,
    userData: path.join(root, 'user-data'),
    extensions: path.join(root, 'extensions'),
    workspace: path.join(root, 'workspace'),
    dxHome: e.DX_TELEMETRY_HOME!,
    outFile: path.join(root, 'reporter.jsonl'),
    profile: path.join(root, 'browser'),
    env: e,
  };
}

/** Machine-scoped settings of a remote window (code-server is one) live in Machine/settings.json. */
function writeMachineSettings(s: Scratch, settings: Record<string, unknown>): void {
  fs.mkdirSync(path.join(s.userData, 'Machine'), { recursive: true });
  fs.writeFileSync(path.join(s.userData, 'Machine', 'settings.json'), JSON.stringify(settings, null, 2));
}

function writeUserSettings(s: Scratch, extra: Record<string, unknown>): void {
  const settings = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.enabled': false,
    'extensions.autoUpdate': 'off', // what VS Code migrates `false` to, at a moment of its choosing
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'git.enabled': false,
    ...extra,
  };
  fs.writeFileSync(path.join(s.userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

interface Server {
  proc: ChildProcess;
  port: number;
  log: string[];
}

/** Starts code-server; `port` again for the same origin (the browser keeps SecretStorage per origin). */
async function startCodeServer(s: Scratch, codeServer: string, extraEnv: NodeJS.ProcessEnv, port?: number): Promise<Server> {
  port ??= await freePort();
  const log: string[] = [];
  const proc = spawn(
    codeServer,
    [
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--user-data-dir',
      s.userData,
      '--extensions-dir',
      s.extensions,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--config',
      path.join(s.root, 'config', 'code-server.yaml'),
      s.workspace,
    ],
    { env: { ...s.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  for (const stream of [proc.stdout!, proc.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => log.push(...chunk.split('\n').filter(Boolean)));
  }
  await waitFor('code-server to listen', 60_000, () => log.some((l) => l.includes('HTTP server listening')) || (proc.exitCode !== null ? Promise.reject(new Error(`code-server exited: ${log.join('\n')}`)) : false));
  return { proc, port, log };
}

async function stopCodeServer(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return true;
  }
  const exited = new Promise<boolean>((resolve) => proc.once('exit', () => resolve(true)));
  proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([exited, timedOut]);
  } finally {
    clearTimeout(timer); // a pending timer would keep this process alive for up to `ms` after the test
  }
}

function killGroup(proc: ChildProcess | undefined): void {
  if (proc?.pid) {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

interface Workbench {
  page: Page;
  openedAt: number;
  close(): Promise<void>;
}

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

/** Opens the workbench; with `profile`, Chromium keeps its profile there (so it can be searched). */
async function openWorkbench(s: Scratch, port: number, chromiumPath: string, profile?: string): Promise<Workbench> {
  const options = { executablePath: chromiumPath, headless: true, env: s.env as Record<string, string>, args: CHROMIUM_ARGS };
  const viewport = { width: 1400, height: 900 };
  let page: Page;
  let close: () => Promise<void>;
  if (profile) {
    const context = await chromium.launchPersistentContext(profile, { ...options, viewport });
    page = context.pages()[0] ?? (await context.newPage());
    close = () => context.close();
  } else {
    const browser = await chromium.launch(options);
    page = await browser.newPage({ viewport });
    close = () => browser.close();
  }
  const openedAt = Date.now();
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(s.workspace)}`, { timeout: 60_000 });
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
  return { page, openedAt, close };
}

/** Closes the browser, stops code-server and kills whatever of this phase is still running. */
async function shutdown(s: Scratch, server: Server | undefined, wb: Workbench | undefined): Promise<void> {
  await wb?.close().catch(() => undefined);
  if (server) {
    await stopCodeServer(server.proc, 10_000);
    killGroup(server.proc);
  }
  for (const p of ourProcesses(s.root)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Stops code-server on SIGTERM and checks that nothing of this phase outlives it. */
async function checkCleanStop(s: Scratch, server: Server, when = ''): Promise<void> {
  const stopped = await stopCodeServer(server.proc, 30_000);
  check(`code-server stopped on SIGTERM${when}`, stopped);
  const leftovers = await waitFor('every process of this phase to exit', 30_000, () => {
    const left = ourProcesses(s.root);
    return left.length === 0 ? [] : false;
  }).catch(() => ourProcesses(s.root));
  check(`no sidecar (or any other process of this phase) is left behind${when}`, leftovers.length === 0, leftovers.map((p) => `${p.pid} ${p.argv.join(' ')}`).join('; '));
}

/** A test fixture extension under test/e2e/<name>, packaged into the phase folder. */
async function packageFixture(s: Scratch, extensionRoot: string, name: string): Promise<string> {
  const src = path.join(extensionRoot, 'test', 'e2e', name);
  const dir = path.join(s.root, `${name}-src`);
  fs.cpSync(src, dir, { recursive: true });
  const out = path.join(s.root, `dx-e2e-${name}.vsix`);
  const vsce = path.join(extensionRoot, 'node_modules', '.bin', 'vsce');
  const r = await run(vsce, ['package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '-o', out], { cwd: dir, env: { ...process.env, ...s.env, PATH: process.env.PATH } });
  if (r.code !== 0) {
    throw new Error(`packaging the ${name} fixture failed: ${r.stderr}${r.stdout}`);
  }
  return out;
}

async function installExtension(s: Scratch, codeServer: string, vsix: string): Promise<void> {
  const r = await run(codeServer, ['--user-data-dir', s.userData, '--extensions-dir', s.extensions, '--config', path.join(s.root, 'config', 'code-server.yaml'), '--install-extension', vsix], { env: s.env });
  if (r.code !== 0 || !/successfully installed/i.test(r.stdout + r.stderr)) {
    throw new Error(`installing ${vsix} failed (${r.code}): ${r.stdout}${r.stderr}`);
  }
}

function ledgerText(dxHome: string): string {
  const dir = path.join(dxHome, 'ledger');
  if (!fs.existsSync(dir)) {
    return '';
  }
  return fs
    .readdirSync(dir)
    .filter((f) => !f.startsWith('.'))
    .map((f) => {
      try {
        return fs.readFileSync(path.join(dir, f), 'utf8');
      } catch {
        return '';
      }
    })
    .join('\n');
}

function extensionLog(userData: string): string {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(p);
      } else if (entry.name.includes('DX Telemetry')) {
        found.push(`--- ${p}\n${fs.readFileSync(p, 'utf8')}`);
      }
    }
  };
  walk(path.join(userData, 'logs'));
  return found.join('\n');
}

function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/**
 * Seeds the data folder through the CLI: yesterday (two events, a completed day) and today.
 * Returns the seeded day (two days ago in the first 15 minutes after midnight UTC, when
 * yesterday may not count as completed yet).
 */
async function seedDataFolder(ctx: Ctx, s: Scratch): Promise<string> {
  const now = new Date();
  const minutesToday = now.getUTCHours() * 60 + now.getUTCMinutes();
  const seedDate = isoDate(new Date(now.getTime() - (minutesToday < 15 ? 2 : 1) * 86_400_000));
  const cliEnv: NodeJS.ProcessEnv = { ...process.env, DX_TELEMETRY_HOME: s.dxHome, HOME: s.home, DX_TELEMETRY_TOOL: '' };
  delete cliEnv[TOKEN_ENV];
  for (const [id, args] of [
    ['seed-1', ['--input-tokens', '1200', '--output-tokens', '300', '--cache-write-tokens', '40', '--cache-read-tokens', '60', '--cost-usd', '0.42']],
    ['seed-2', ['--input-tokens', '800', '--output-tokens', '100', '--spend-cents', '7.25']],
  ] as Array<[string, string[]]>) {
    const r = await run(ctx.dxCli, ['record', '--tool', SEED_TOOL, '--timestamp', `${seedDate}T12:00:00Z`, '--event-id', id, '--model', 'e2e-model', ...args], { env: cliEnv });
    if (r.code !== 0) {
      throw new Error(`seeding failed: ${r.stderr}`);
    }
  }
  const today = await run(ctx.dxCli, ['record', '--tool', SEED_TOOL, '--event-id', 'seed-today', '--input-tokens', '4000', '--output-tokens', '642'], { env: cliEnv });
  if (today.code !== 0) {
    throw new Error(`seeding today failed: ${today.stderr}`);
  }
  return seedDate;
}

/** On a failure: what the phase's code-server and extension said. */
function dumpLogs(s: Scratch, server: Server | undefined): void {
  if (server) {
    console.log(`--- code-server log (last 40 lines)\n${server.log.slice(-40).join('\n')}`);
  }
  console.log(extensionLog(s.userData).slice(-6000));
}

// -- phase 1: the token inherited from the environment ---------------------------------------------

/**
 * A cloned repository's .vscode/settings.json that tries to change every shared setting, each to
 * a value the user's settings do not have. The flat keys are application- or machine-scoped, so
 * VS Code itself drops them; the nested objects are keys VS Code does not know, which it keeps
 * and merges into getConfiguration('dxTelemetry'): only the extension's per-key reading of the
 * user level leaves those out.
 */
const HOSTILE_WORKSPACE: Record<string, unknown> = {
  'dxTelemetry.enabled': false,
  'dxTelemetry.email': 'someone-else@example.com',
  'dxTelemetry.tool': 'repo-tool',
  'dxTelemetry.instanceUrl': 'http://127.0.0.1:9',
  'dxTelemetry.dayBoundary': 'local',
  'dxTelemetry.flush.enabled': false,
  'dxTelemetry.flush.delaySeconds': 86400,
  'dxTelemetry.reportInactiveDays': false,
  'dxTelemetry.modelBreakdowns': true,
  'dxTelemetry.retentionDays': 1,
  'dxTelemetry.spend.estimate': false,
  'dxTelemetry.sources.claudeCode.enabled': true,
  'dxTelemetry.sources.claudeCode.tool': 'repo-claude',
  'dxTelemetry.sources.claudeCode.path': '/tmp/repo-claude',
  'dxTelemetry.otlp.enabled': true,
  'dxTelemetry.otlp.port': 4555,
  'dxTelemetry.otlp.tools': { 'claude-code': 'repo' },
  'dxTelemetry.python.interpreter': '/nonexistent/repo-python',
  'dxTelemetry.flush': { backfillDays: 30 },
  'dxTelemetry.sources': { codex: { enabled: true, tool: 'repo-codex' } },
};

/** What the sidecar must apply in phase 1 whatever that workspace says: the user's values and the defaults. */
function expectedPhase1Settings(instanceUrl: string): Array<[string, unknown]> {
  return [
    ['enabled', true],
    ['email', EMAIL],
    ['tool', 'e2e-tool'],
    ['instanceUrl', instanceUrl],
    ['dayBoundary', 'utc'],
    ['flush.enabled', true],
    ['flush.delaySeconds', 0],
    ['flush.backfillDays', 7],
    ['reportInactiveDays', true],
    ['modelBreakdowns', false],
    ['retentionDays', 90],
    ['spend.estimate', true],
    ['sources.claudeCode.enabled', false],
    ['sources.claudeCode.tool', 'claude-code'],
    ['sources.claudeCode.path', ''],
    ['sources.codex.enabled', false],
    ['sources.codex.tool', 'codex'],
    ['otlp.enabled', false],
    ['otlp.port', 4319],
    ['otlp.tools', {}],
  ];
}

interface ReporterLine {
  label: string;
  seen?: Record<string, { get?: unknown; user?: unknown; workspace?: unknown }>;
}

function reporterLines(file: string): ReporterLine[] {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ReporterLine);
  } catch {
    return [];
  }
}

/** The settings the sidecars last applied, as they saved them for the CLI (`<data folder>/settings.json`). */
/** The editor's section the sidecar saved (beside the destination it pushes to, for the CLI). */
function savedSettings(dxHome: string): Record<string, unknown> | undefined {
  try {
    const saved = JSON.parse(fs.readFileSync(path.join(dxHome, 'settings.json'), 'utf8')) as { dxTelemetry?: Record<string, unknown> };
    return saved.dxTelemetry;
  } catch {
    return undefined;
  }
}

const at = (tree: unknown, dotted: string): unknown => dotted.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], tree);

async function phaseEnvironmentToken(ctx: Ctx): Promise<void> {
  const s = makeScratch(ctx.top, 'env', ctx.nodeBin);
  const fakeDx = await startFakeDx(TOKEN);
  let server: Server | undefined;
  let wb: Workbench | undefined;
  try {
    const seedDate = await seedDataFolder(ctx, s);
    fs.rmSync(path.join(s.dxHome, 'settings.json'), { force: true }); // only a sidecar writes it from here on

    // Install the built .vsix, the Remote Reader (beside DX Telemetry: it must stay idle) and
    // the reporter extension into the hermetic extensions dir.
    await installExtension(s, ctx.codeServer, ctx.vsix);
    await installExtension(s, ctx.codeServer, ctx.readerVsix);
    await installExtension(s, ctx.codeServer, await packageFixture(s, ctx.extensionRoot, 'reporter'));
    const userSettings = {
      'dxTelemetry.email': EMAIL,
      'dxTelemetry.tool': 'e2e-tool',
      'dxTelemetry.instanceUrl': fakeDx.url,
      'dxTelemetry.flush.delaySeconds': 0,
      'dxE2e.outFile': s.outFile,
    };
    writeUserSettings(s, userSettings);
    writeMachineSettings(s, { 'dxTelemetry.python.interpreter': ctx.barePython });
    fs.mkdirSync(path.join(s.workspace, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(s.workspace, '.vscode', 'settings.json'), JSON.stringify(HOSTILE_WORKSPACE, null, 2));

    server = await startCodeServer(s, ctx.codeServer, { [TOKEN_ENV]: TOKEN });
    wb = await openWorkbench(s, server.port, ctx.chromiumPath);
    const page = wb.page;

    // 1. The extension activates and its sidecar runs on the bare interpreter.
    const sidecar = await waitFor('the sidecar process', 90_000, () => ourProcesses(s.root).find(isSidecar));
    const sidecarSeenMs = Date.now() - wb.openedAt;
    check('the extension activated and started the bundled sidecar', true);
    check('the sidecar runs on the bare interpreter', sidecar.argv[0] === ctx.barePython, sidecar.argv.join(' '));
    check('launched as `python -m dx_lsp_telemetry`, with no extra argv', JSON.stringify(sidecar.argv.slice(1)) === JSON.stringify(['-m', 'dx_lsp_telemetry']), sidecar.argv.join(' '));
    const libs = path.join(s.extensions, `${EXTENSION_ID}-0.1.0`, 'bundled', 'libs');
    check('PYTHONPATH starts with the bundled libs', (sidecar.env.PYTHONPATH ?? '').split(':')[0] === libs, sidecar.env.PYTHONPATH);
    check('PYTHONUTF8=1', sidecar.env.PYTHONUTF8 === '1');
    check('the token is in the child environment only, not in argv', sidecar.env[TOKEN_ENV] === TOKEN && !sidecar.argv.join(' ').includes(TOKEN));
    check("the editor's environment reaches the sidecar (DX_TELEMETRY_HOME)", sidecar.env.DX_TELEMETRY_HOME === s.dxHome);

    // 1b. The workspace's .vscode/settings.json changed none of the settings the sidecar applies.
    const applied = await waitFor("the sidecar's applied settings (<data folder>/settings.json)", 60_000, () => savedSettings(s.dxHome));
    const differ = expectedPhase1Settings(fakeDx.url).filter(([key, want]) => JSON.stringify(at(applied, key)) !== JSON.stringify(want));
    check(
      `the workspace's .vscode/settings.json changed none of the ${expectedPhase1Settings(fakeDx.url).length} settings checked: the sidecar applies the user's values`,
      differ.length === 0,
      differ.map(([key, want]) => `${key} is ${JSON.stringify(at(applied, key))}, the user's is ${JSON.stringify(want)}`).join('; '),
    );
    check('nor the interpreter: the sidecar runs on the Machine setting, not the workspace\'s /nonexistent/repo-python', sidecar.argv[0] === ctx.barePython);
    // VS Code >= 1.132 drops the nested spelling too (microsoft/vscode#330310); older ones and
    // forks on an older base hand it out as the workspace value, which the extension ignores
    const seen = await waitFor("the reporter's view of the configuration", 60_000, () => reporterLines(s.outFile).find((l) => l.label === 'config')?.seen);
    console.log(
      `  note: what VS Code hands any extension in this workspace: ` +
        Object.entries(seen).map(([k, v]) => `${k}: get() ${JSON.stringify(v.get)}, user ${JSON.stringify(v.user)}, workspace ${JSON.stringify(v.workspace)}`).join('; '),
    );
    const leaked = Object.entries(seen).filter(([, v]) => v.workspace !== undefined).map(([k]) => `dxTelemetry.${k}`);
    if (leaked.length) {
      const ignoredLine = await waitFor('the log line naming the ignored workspace values', 30_000, () =>
        extensionLog(s.userData).split('\n').find((l) => l.includes("this workspace's settings give")),
      ).catch(() => '');
      check(`this VS Code lets the nested spelling through (${leaked.join(', ')}): the log names it as ignored`, leaked.every((k) => ignoredLine.includes(k)), ignoredLine);
    } else {
      console.log('  note: this VS Code drops the nested spelling itself: no workspace value of a dxTelemetry key reaches any extension');
    }

    // 2. The status bar shows today's tokens (seed + the reporter's start-up event, which was
    //    sent while the sidecar may still have been starting).
    const expectedFirst = `DX ${(TODAY_TOKENS + STARTUP_EVENT_TOKENS).toLocaleString('en-US')}`;
    const shown = await waitFor(`the status bar to read "${expectedFirst}"`, 90_000, async () => {
      const text = await statusBarText(page);
      return text && text.includes(expectedFirst) ? text : undefined;
    });
    const statusShownMs = Date.now() - wb.openedAt;
    check(`the status bar shows today's tokens (${shown})`, true);

    // 3. Yesterday's record arrives at DX exactly once.
    const seedKey = `${EMAIL}|${seedDate}|${SEED_TOOL}`;
    const record = await waitFor('the seeded day at the fake DX', 90_000, () => fakeDx.stored.find((r) => recordKey(r) === seedKey));
    check('the completed day was pushed with its exact totals', hasSeedTotals(record), JSON.stringify(record));

    // 4. Show Usage from the command palette opens the report.
    await runCommand(page, 'DX Telemetry: Show Usage');
    await page.locator('.tab', { hasText: 'DX Telemetry: Usage' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    const reportText = await waitFor('the report webview content', 60_000, () => webviewText(page, 'Tokens per day'));
    check('Show Usage opened the report with the chart and the pushed day', reportText.includes('Spend per day') && reportText.includes(seedDate) && reportText.includes(SEED_TOOL) && /pushed/.test(reportText));

    // 5. Another extension's recordUsage lands in the ledger; a bad event comes back as an error.
    await runCommand(page, 'DX E2E: Report Usage');
    const outcome = await waitFor('the reporter extension to finish', 60_000, () => {
      const lines = fs.existsSync(s.outFile) ? fs.readFileSync(s.outFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { label: string; ok?: boolean; result?: { recorded?: boolean; event_id?: string }; error?: string; code?: number }) : [];
      return lines.some((l) => l.label === 'done') ? lines : undefined;
    });
    const byLabel = new Map(outcome.map((l) => [l.label, l]));
    check('recordUsage through the command at start-up was recorded', byLabel.get('startup-command')?.ok === true && byLabel.get('startup-command')?.result?.recorded === true, JSON.stringify(byLabel.get('startup-command')));
    check('recordUsage through the exported API was recorded', byLabel.get('palette-api')?.ok === true && byLabel.get('palette-api')?.result?.event_id === 'e2e-palette', JSON.stringify(byLabel.get('palette-api')));
    check("a bad event throws the sidecar's -32602 error naming the field", byLabel.get('palette-bad')?.ok === false && byLabel.get('palette-bad')?.code === -32602 && /input_tokens/.test(byLabel.get('palette-bad')?.error ?? ''), JSON.stringify(byLabel.get('palette-bad')));
    const ledger = ledgerText(s.dxHome);
    check('both events are in the ledger', ledger.includes('e2e-startup') && ledger.includes('e2e-palette'));
    const expectedAfter = `DX ${(TODAY_TOKENS + STARTUP_EVENT_TOKENS + PALETTE_EVENT_TOKENS).toLocaleString('en-US')}`;
    const updated = await waitFor(`the status bar to update to "${expectedAfter}"`, 30_000, async () => {
      const text = await statusBarText(page);
      return text && text.includes(expectedAfter) ? text : undefined;
    });
    check(`dxTelemetry/statusChanged keeps the status bar current (${updated})`, true);

    // 6. Flush Now from the palette: nothing more goes to DX (the day is pushed exactly once).
    await runCommand(page, 'DX Telemetry: Flush Now');
    await page.locator('.notifications-toasts', { hasText: /nothing to push/ }).first().waitFor({ state: 'visible', timeout: 30_000 });
    const seedPosts = fakeDx.received.filter((r) => r.body && recordKey(r.body as Record<string, unknown>) === seedKey);
    check('the seeded day reached DX exactly once (after Flush Now too)', seedPosts.length === 1 && fakeDx.stored.filter((r) => recordKey(r) === seedKey).length === 1, JSON.stringify(fakeDx.received));
    check('DX received nothing it refused', fakeDx.received.every((r) => r.status === 200), JSON.stringify(fakeDx.received.map((r) => ({ ...r, authorization: undefined }))));

    // 7. A crashed sidecar is restarted (with backoff), silently: no "server crashed" pop-up.
    process.kill(sidecar.pid, 'SIGKILL');
    const second = await waitFor('a new sidecar after kill -9', 60_000, () => ourProcesses(s.root).find((p) => isSidecar(p) && p.pid !== sidecar.pid));
    check('the killed sidecar was replaced by a new one', second.pid !== sidecar.pid && second.argv[0] === ctx.barePython);
    await waitFor('the status bar to come back after the restart', 60_000, async () => ((await statusBarText(page)) ?? '').includes(expectedAfter));
    const toasts = await page.locator('.notifications-toasts').allInnerTexts();
    check('no crash notification was shown', !toasts.some((t) => /crash|server|connection/i.test(t)), JSON.stringify(toasts));

    // 8. A user settings change reaches the running sidecar without a restart (the reporter
    //    writes it as the Settings editor does: code-server does not watch User/settings.json).
    await runCommand(page, 'DX E2E: Turn DX Telemetry Off in the User Settings');
    await waitFor('the sidecar to apply dxTelemetry.enabled = false', 60_000, () => savedSettings(s.dxHome)?.enabled === false);
    await runCommand(page, 'DX E2E: Report Usage');
    const second2 = await waitFor('the reporter to finish again', 60_000, () => {
      const lines = fs.readFileSync(s.outFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { label: string; result?: { recorded?: boolean } });
      return lines.filter((l) => l.label === 'done').length === 2 ? lines : undefined;
    });
    const lastApi = second2.filter((l) => l.label === 'palette-api').pop();
    check('with dxTelemetry.enabled off (changed live), recordUsage answers recorded: false', lastApi?.result?.recorded === false, JSON.stringify(lastApi));
    const sidecarsNow = ourProcesses(s.root).filter(isSidecar);
    check('the settings change did not restart the sidecar', sidecarsNow.length === 1 && sidecarsNow[0].pid === second.pid, `was ${second.pid}, now ${sidecarsNow.map((p) => p.pid).join(',')}`);

    // Timings for the report (memory: E2E_MEASURE, below).
    const host = ourProcesses(s.root).find((p) => p.pid === second.ppid);
    const sidecarNow = readProc(second.pid);
    console.log(`  measure: sidecar process seen ${sidecarSeenMs} ms after the page was opened; status bar showed tokens after ${statusShownMs} ms`);
    if (host) {
      console.log(
        `  measure: ${Date.now() - wb.openedAt} ms after opening: extension host RSS ${mib(host.rssKb)} (this extension and the reporter), ` +
          `sidecar RSS ${mib(sidecarNow?.rssKb ?? 0)} (one sample; E2E_MEASURE=<rounds> compares with and without the extension)`,
      );
    }
    if (process.env.E2E_SCREENSHOTS) {
      fs.mkdirSync(process.env.E2E_SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS, 'workbench.png') });
      await page.locator(STATUS_ITEM).first().hover();
      await page.locator('.monaco-hover, .workbench-hover').first().waitFor({ state: 'visible', timeout: 10_000 }).catch(() => undefined);
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS, 'status-hover.png') });
    }
    const runningLine = extensionLog(s.userData).split('\n').find((l) => l.includes('sidecar running'));
    if (runningLine) {
      console.log(`  measure: extension log: ${runningLine.trim()}`);
    }

    // 9. Where it runs: code-server's browser workbench has no Node extension host of its own,
    //    so DX Telemetry (extensionKind ["ui", "workspace"]) runs on the server and says so; the
    //    Remote Reader beside it stays idle: it starts no sidecar.
    const remoteName = `127.0.0.1:${server.port}`;
    const placed = await waitFor('the placement lines in the logs', 30_000, () => {
      const text = extensionLog(s.userData);
      return text.includes('Remote Reader') && text.includes('runs on its server') ? text : false;
    }).catch(() => extensionLog(s.userData));
    check(`DX Telemetry logs that it runs on the server of this browser window (${remoteName}) and pushes from there`, placed.includes(`runs on its server (${remoteName}) and pushes from there`));
    check('the Remote Reader, beside DX Telemetry in one extension host, stays idle', placed.includes(`DX Telemetry runs on ${remoteName} itself`));
    check('and starts no reader sidecar', !ourProcesses(s.root).some(isReaderSidecar));

    // 10. Stopping code-server leaves no sidecar behind.
    await wb.close();
    wb = undefined;
    await checkCleanStop(s, server);
    server = undefined;
    const log = extensionLog(s.userData);
    check('the token never appears in the extension log', log.length > 0 && !log.includes(TOKEN));
  } catch (error) {
    dumpLogs(s, server);
    throw error;
  } finally {
    await shutdown(s, server, wb);
    await fakeDx.close();
  }
}

// -- the command line in an integrated terminal ------------------------------------------------------

/** What the workbench's terminals show, row by row (xterm's DOM renderer: one element per row). */
async function terminalRows(page: Page): Promise<string[]> {
  const texts = await page.locator('.terminal-wrapper .xterm-rows').allInnerTexts();
  return texts.join('\n').replace(/\u00a0/g, ' ').split('\n');
}

async function checkTerminalReport(ctx: Ctx, s: Scratch, page: Page, seedDate: string): Promise<void> {
  const wrote = /terminals: dx-lsp-telemetry runs (.+) \(wrote .+ in (.+)\)$/m.exec(extensionLog(s.userData));
  check('the log says which Python the terminals\' dx-lsp-telemetry runs, and where its launcher is', wrote?.[1] === ctx.barePython, wrote?.[0]);
  const binDir = wrote?.[2] ?? '';
  const launcher = fs.readFileSync(path.join(binDir, 'dx-lsp-telemetry'), 'utf8');
  const libs = path.join(s.extensions, `${EXTENSION_ID}-0.1.0`, 'bundled', 'libs');
  check(
    `the launcher (${path.relative(s.root, binDir)}/dx-lsp-telemetry) runs that Python on the bundled libs, and holds no token`,
    binDir.startsWith(s.userData) && launcher.includes(`python='${ctx.barePython}'`) && launcher.includes(`libs='${libs}'`) && !launcher.includes(SECRET_TOKEN),
    launcher,
  );

  await runCommand(page, 'DX Telemetry: Open Usage in Terminal');
  const rows = await waitFor(`the terminal to show ${seedDate}`, 60_000, async () => {
    const r = await terminalRows(page);
    return r.some((l) => l.includes(seedDate) && l.includes(SEED_TOOL)) ? r : undefined;
  });
  const typed = rows.find((l) => l.includes('dx-lsp-telemetry report')) ?? '';
  const day = rows.find((l) => l.includes(seedDate) && l.includes(SEED_TOOL)) ?? '';
  check(`an integrated terminal ran \`dx-lsp-telemetry report\` ("${typed.trim()}")`, typed !== '', rows.join('\n'));
  check(`and shows the day the test recorded, pushed: "${day.replace(/\s+/g, ' ').trim()}"`, /\bpushed\b/.test(day) && day.includes('2,500'), rows.join('\n'));
  // and the name is the launcher's, not some other dx-lsp-telemetry on the PATH: asked as a user would
  await page.locator('.terminal-wrapper .xterm').first().click();
  await page.keyboard.type('command -v dx-lsp-telemetry\n', { delay: 5 });
  const resolved = await waitFor('the terminal to answer `command -v`', 30_000, async () => {
    const text = (await terminalRows(page)).join(''); // a long path may wrap over rows
    return text.includes(`${binDir}/dx-lsp-telemetry`) ? text : undefined;
  }).catch(() => '');
  check('in that terminal, `dx-lsp-telemetry` is the launcher', resolved !== '', (await terminalRows(page)).join('\n'));
  const tab = await page.locator('.terminal-tabs-entry, .single-terminal-tab', { hasText: 'DX Telemetry' }).count();
  check('the terminal is named "DX Telemetry"', tab > 0);

  // the shell got the folder through the collection, and nothing of the token
  const shells = ourProcesses(s.root).filter((p) => (p.env.PATH ?? '').split(':')[0] === binDir);
  check(
    `the terminal's shell has the launcher folder first on its PATH (${shells.map((p) => p.argv[0]).join(', ')}) and no ${TOKEN_ENV}`,
    shells.length > 0 && shells.every((p) => !(TOKEN_ENV in p.env)),
    shells.map((p) => `${p.pid} ${p.argv.join(' ')}`).join('; '),
  );
  const holders = ourProcesses(s.root).filter((p) => TOKEN_ENV in p.env && !isSidecar(p));
  check(`no process but the sidecar has ${TOKEN_ENV} (terminal, pty host, extension host included)`, holders.length === 0, holders.map((p) => `${p.pid} ${p.argv.slice(0, 2).join(' ')}`).join('; '));
}

// -- phase 2: the token set by the user, in SecretStorage -------------------------------------------

async function phaseSecretStorage(ctx: Ctx): Promise<void> {
  // A user's machine: python3 on the PATH of the login shell (~/.profile puts the bare one first;
  // the extension host gets the login shell's environment), no DX_DATA_CLOUD_TOKEN anywhere, no
  // interpreter setting, only the .vsix installed. DX_TELEMETRY_HOME points the data folder into
  // the scratch folder; DX_E2E_RUN marks this phase's processes.
  const s = makeScratch(ctx.top, 'sec', ctx.nodeBin);
  fs.writeFileSync(path.join(s.home, '.profile'), `PATH="${path.dirname(ctx.barePython)}:$PATH"\nexport PATH\n`);
  const fakeDx = await startFakeDx(SECRET_TOKEN);
  let server: Server | undefined;
  let wb: Workbench | undefined;
  try {
    const seedDate = await seedDataFolder(ctx, s);
    const seedKey = `${EMAIL}|${seedDate}|${SEED_TOOL}`;
    await installExtension(s, ctx.codeServer, ctx.vsix);
    const userSettings = {
      'dxTelemetry.email': EMAIL,
      'dxTelemetry.tool': 'e2e-tool',
      'dxTelemetry.instanceUrl': fakeDx.url,
      'dxTelemetry.flush.delaySeconds': 0, // test-only: push at once instead of within 10 minutes
      'terminal.integrated.gpuAcceleration': 'off', // test-only: terminal text in the DOM, where it can be read
    };
    const settingsFile = path.join(s.userData, 'User', 'settings.json');
    fs.writeFileSync(settingsFile, JSON.stringify(userSettings, null, 2));

    server = await startCodeServer(s, ctx.codeServer, {});
    wb = await openWorkbench(s, server.port, ctx.chromiumPath, s.profile);
    let page = wb.page;

    // 1. Without a token: the sidecar runs, the status bar warns, nothing is pushed.
    const first = await waitFor('the sidecar process', 90_000, () => ourProcesses(s.root).find(isSidecar));
    const procs = ourProcesses(s.root);
    const withToken = procs.filter((p) => TOKEN_ENV in p.env);
    check(
      `no process of this phase has ${TOKEN_ENV} (code-server, extension host, sidecar: ${procs.length} processes)`,
      withToken.length === 0 && procs.some(isExtensionHost),
      withToken.map((p) => `${p.pid} ${p.argv.slice(0, 2).join(' ')}`).join('; '),
    );
    // VS Code writes the log channel to disk a moment later: wait for the line
    const found = await waitFor('the log line on the interpreter found', 30_000, () => extensionLog(s.userData).split('\n').find((l) => l.includes('starting the sidecar:'))).catch(() => '');
    check(
      `the sidecar runs on the python3 of the login shell's PATH, no interpreter setting (${first.argv.join(' ')})`,
      found.includes(`at ${ctx.barePython} (on the PATH)`) && (first.env.PATH ?? '').split(':').includes(path.dirname(ctx.barePython)),
      `${found.trim()}; PATH=${first.env.PATH}`,
    );
    const warned = await waitForTokenWarning(page, 'the status bar to warn about the missing token');
    check(
      `the status bar warns: "${warned.item.text}" on the warning background, its aria-label naming the problem`,
      warned.item.warning && warned.item.aria.includes(NO_TOKEN_PROBLEM),
      warned.item.aria,
    );
    check(`its tooltip says what to do: "${warned.tooltip.split('\n')[0]}"`, warned.tooltip.includes("run 'DX Telemetry: Set API Token'"), warned.tooltip);
    await waitFor('the sidecar to log that it does not push', 60_000, () => extensionLog(s.userData).includes(`not pushing: ${NO_TOKEN_PROBLEM}`));
    check('nothing was sent to DX without a token', fakeDx.received.length === 0, JSON.stringify(fakeDx.received.map((r) => r.path)));
    check('the extension log says no token is set', extensionLog(s.userData).includes('API token: none set'));

    // 2. DX Telemetry: Set API Token, typed into the password box as a user does.
    await startCommand(page, 'DX Telemetry: Set API Token');
    const box = page.locator('.quick-input-widget input[type="password"]');
    await box.waitFor({ state: 'visible', timeout: 30_000 });
    const boxTitle = (await page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '')).trim();
    check(`Set API Token asks in a password box ("${boxTitle}")`, /API Token/.test(boxTitle));
    await box.focus();
    await page.keyboard.type(SECRET_TOKEN, { delay: 5 });
    await waitFor('the typed token in the box', 10_000, async () => (await box.inputValue()) === SECRET_TOKEN);
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 30_000 });
    await page.locator('.notifications-toasts', { hasText: /token saved/ }).first().waitFor({ state: 'visible', timeout: 30_000 });
    check('the token was accepted ("token saved")', true);

    // 3. The sidecar restarts with it, and yesterday reaches DX once, with that token.
    const second = await waitFor('a new sidecar with the stored token', 60_000, () => ourProcesses(s.root).find((p) => isSidecar(p) && p.pid !== first.pid && p.env[TOKEN_ENV] === SECRET_TOKEN));
    await waitFor('the first sidecar to exit', 30_000, () => !ourProcesses(s.root).some((p) => p.pid === first.pid));
    check('the sidecar restarted with the stored token in its environment (and the old one exited)', true);
    const record = await waitFor('the seeded day at the fake DX', 60_000, () => fakeDx.stored.find((r) => recordKey(r) === seedKey));
    check('yesterday was pushed with its exact totals', hasSeedTotals(record), JSON.stringify(record));
    check(
      'every request DX received carried "Authorization: Bearer <the typed token>" and was accepted',
      fakeDx.received.length >= 1 && fakeDx.received.every((r) => r.authorization === `Bearer ${SECRET_TOKEN}` && r.status === 200),
      JSON.stringify(fakeDx.received.map((r) => ({ path: r.path, status: r.status, authorized: r.authorization === `Bearer ${SECRET_TOKEN}` }))),
    );
    const calm = await waitFor('the status bar warning to go away', 60_000, async () => {
      const i = await statusItem(page);
      return i && !i.warning && i.text.includes(`DX ${TODAY_TOKENS.toLocaleString('en-US')}`) ? i : undefined;
    });
    check(`the status bar no longer warns (${calm.text})`, true);

    // 4. The token is nowhere but in the sidecar's environment.
    const log = extensionLog(s.userData);
    check('the extension log says the token comes from secret storage', log.includes('restarting the sidecar: the API token changed') && log.includes('API token: from secret storage'));
    check('the token is not in the extension log', log.length > 0 && !log.includes(SECRET_TOKEN));
    const argvLeaks = ourProcesses(s.root).filter((p) => p.cmdline.includes(SECRET_TOKEN));
    check(`the token is not in the sidecar's argv (/proc/${second.pid}/cmdline) nor any other process's`, !second.cmdline.includes(SECRET_TOKEN) && argvLeaks.length === 0, argvLeaks.map((p) => String(p.pid)).join(', '));
    const dataFiles = filesContaining(s.dxHome, SECRET_TOKEN);
    check(`the token is in no file under the data folder (${dataFiles.scanned} files)`, dataFiles.scanned > 0 && dataFiles.hits.length === 0, dataFiles.hits.join(', '));
    const settingsNow = fs.readFileSync(settingsFile, 'utf8');
    check(
      "the user-data-dir's settings.json holds only what the user wrote (no token)",
      !settingsNow.includes(SECRET_TOKEN) && JSON.stringify(JSON.parse(settingsNow)) === JSON.stringify(userSettings),
      settingsNow,
    );
    const userDataFiles = filesContaining(s.userData, SECRET_TOKEN);
    check(`the token is in no file under the user-data-dir (${userDataFiles.scanned} files: settings, logs, state)`, userDataFiles.hits.length === 0, userDataFiles.hits.join(', '));

    // 4b. The command line in an integrated terminal, as the acceptance asks: "DX Telemetry: Open
    //     Usage in Terminal" types `dx-lsp-telemetry report` into a new terminal; what the
    //     terminal shows is read from its rows (the DOM renderer), and must hold the pushed day.
    await checkTerminalReport(ctx, s, page, seedDate);

    // 5. The next day: the editor is closed and opened again (code-server and the browser, the
    //    same profile and origin). While it is closed the token is stored on disk (code-server
    //    keeps SecretStorage in the browser's localStorage, AES-encrypted with a key half from
    //    <user-data-dir>/serve-web-key-half), but in clear text nowhere. When it opens again the
    //    stored token is used, and the pushed day is not pushed again.
    await wb.close();
    wb = undefined;
    const port = server.port;
    await checkCleanStop(s, server, ' (closing the editor)');
    server = undefined;
    const atRest = filesContaining(s.root, SECRET_TOKEN);
    check(
      `with the editor closed and the token stored, no file of the phase holds it in clear text (${atRest.scanned} files: data folder, user-data-dir, extensions, HOME, TMPDIR, Chromium profile)`,
      atRest.hits.length === 0,
      atRest.hits.join(', '),
    );
    const vault = filesContaining(s.profile, 'secrets.provider');
    check(`where it is stored: the browser profile's localStorage holds code-server's secret store (${vault.hits.map((h) => path.relative(s.profile, h)).join(', ')})`, vault.hits.length > 0);
    server = await startCodeServer(s, ctx.codeServer, {}, port);
    wb = await openWorkbench(s, server.port, ctx.chromiumPath, s.profile);
    page = wb.page;
    const reopened = await waitFor('the sidecar of the reopened editor', 90_000, () => ourProcesses(s.root).find(isSidecar));
    check(`after reopening the editor, the sidecar starts with the stored token (pid ${reopened.pid})`, reopened.env[TOKEN_ENV] === SECRET_TOKEN);
    const calmAgain = await waitFor('the status bar without a warning', 60_000, async () => {
      const i = await statusItem(page);
      return i && !i.warning && /DX \d/.test(i.text) ? i : undefined;
    });
    check(`and the status bar shows no warning (${calmAgain.text})`, true);
    await runCommand(page, 'DX Telemetry: Flush Now');
    await page.locator('.notifications-toasts', { hasText: /nothing to push/ }).first().waitFor({ state: 'visible', timeout: 30_000 });
    check('Flush Now in the reopened editor finds nothing to push', fakeDx.received.length === 1, `${fakeDx.received.length} requests`);

    // 6. Clear API Token: no token again, and no fallback (none is inherited here).
    await runCommand(page, 'DX Telemetry: Clear API Token');
    await page.locator('.notifications-toasts', { hasText: /Days are not pushed to DX until a token is set/ }).first().waitFor({ state: 'visible', timeout: 30_000 });
    check('Clear API Token says days wait for a token (not "from the environment")', true);
    const third = await waitFor('a new sidecar after the token was cleared', 60_000, () => ourProcesses(s.root).find((p) => isSidecar(p) && p.pid !== reopened.pid));
    check(`the restarted sidecar has no ${TOKEN_ENV} at all`, !(TOKEN_ENV in third.env), third.env[TOKEN_ENV] === SECRET_TOKEN ? 'the cleared token' : 'some other value');
    const rewarned = await waitForTokenWarning(page, 'the status bar to warn again');
    check(`the status bar warns again (${rewarned.item.text}): "${rewarned.tooltip.split('\n')[0]}"`, rewarned.item.warning && rewarned.item.aria.includes(NO_TOKEN_PROBLEM), rewarned.item.aria);
    await waitFor('the log to say no token is set, twice', 30_000, () => occurrences(extensionLog(s.userData), 'API token: none set') >= 2);
    check('the log says "from secret storage" for the restart and for the reopened editor', occurrences(extensionLog(s.userData), 'API token: from secret storage') >= 2);
    const log2 = extensionLog(s.userData);
    check('no inherited-environment fallback was used', !log2.includes('inherited from the environment'));
    check('yesterday reached DX exactly once (across the restart too)', fakeDx.stored.filter((r) => recordKey(r) === seedKey).length === 1 && fakeDx.received.length === 1, `${fakeDx.received.length} requests`);

    // 7. A clean stop; then the whole phase folder, Chromium's profile included, holds no token.
    await wb.close();
    wb = undefined;
    await checkCleanStop(s, server, ' (at the end)');
    server = undefined;
    const everything = filesContaining(s.root, SECRET_TOKEN);
    check(
      `after Clear API Token and shutdown, still no file of the phase holds the token (${everything.scanned} files)`,
      everything.hits.length === 0,
      everything.hits.join(', '),
    );
  } catch (error) {
    dumpLogs(s, server);
    throw error;
  } finally {
    await shutdown(s, server, wb);
    await fakeDx.close();
  }
}

// -- phase 3: Connect AI Tools… and Disconnect AI Tools… on a Claude Code settings file ------------

/** A Claude Code user settings file as developers keep them: comments, a key of their own. */
const CLAUDE_SETTINGS = '{\n  // my Claude Code settings\n  "model": "opus",\n  "env": {\n    "ANTHROPIC_API_KEY": "sk-ant-e2e-not-a-key" // kept\n  }\n}\n';
const RECEIVER_ITEM = "DX Telemetry's OTLP receiver";

/** The text of the editor whose active tab is `tab` (Monaco shows spaces as no-break spaces). */
async function editorText(page: Page, tab: string): Promise<string | undefined> {
  const group = page.locator('.editor-group-container').filter({ has: page.locator('.tab.active', { hasText: tab }) });
  const lines = group.locator('.monaco-editor .view-lines');
  if ((await lines.count()) === 0) {
    return undefined;
  }
  return (await lines.first().innerText()).replace(/\u00a0/g, ' ');
}

/** Ticks a row of the multi-select quick pick titled `title` (a click toggles it); waits until it is ticked. */
async function tickQuickPickRow(page: Page, title: string, label: string): Promise<void> {
  // the list is reused from one quick pick to the next: wait for this one
  await page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 60_000 });
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  const ticked = async () => (await row.getAttribute('aria-checked')) === 'true';
  if (!(await ticked())) {
    await row.click();
  }
  await waitFor(`the quick pick row "${label}" to be ticked`, 10_000, ticked);
}

async function phaseConnectAiTools(ctx: Ctx): Promise<void> {
  const s = makeScratch(ctx.top, 'con', ctx.nodeBin);
  const settingsFile = path.join(s.home, '.claude', 'settings.json');
  fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
  fs.writeFileSync(settingsFile, CLAUDE_SETTINGS);
  const userSettingsFile = path.join(s.userData, 'User', 'settings.json');
  let server: Server | undefined;
  let wb: Workbench | undefined;
  try {
    await installExtension(s, ctx.codeServer, ctx.vsix);
    writeUserSettings(s, { 'dxTelemetry.email': EMAIL, 'dxTelemetry.tool': 'e2e-tool', 'dxTelemetry.flush.enabled': false });
    // A managed configuration (DX_TELEMETRY_MANAGED_FILE stands in for /etc/dx-lsp-telemetry/managed.json):
    // its interpreter wins over the user's machine setting, which names no Python at all.
    const managedFile = path.join(s.root, 'managed.json');
    fs.writeFileSync(managedFile, JSON.stringify({ python: { interpreter: ctx.barePython }, flush: { enabled: false } }));
    writeMachineSettings(s, { 'dxTelemetry.python.interpreter': '/nonexistent/python3' });
    server = await startCodeServer(s, ctx.codeServer, { DX_TELEMETRY_MANAGED_FILE: managedFile });
    wb = await openWorkbench(s, server.port, ctx.chromiumPath);
    const page = wb.page;
    const sidecar = await waitFor('the extension to start its sidecar', 90_000, () => ourProcesses(s.root).find(isSidecar));
    check("the managed python.interpreter starts the sidecar, over the user's dxTelemetry.python.interpreter", sidecar.argv[0] === ctx.barePython, sidecar.argv.join(' '));
    const managedTooltip = await waitFor('the tooltip to show the managed settings', 60_000, async () => {
      const t = await statusTooltip(page);
      return t.includes('Managed for this machine') ? t : undefined;
    });
    check(
      'the tooltip shows each managed value, its file, and that it overrides the user setting',
      managedTooltip.includes(`flush.enabled: false (from ${managedFile})`) &&
        managedTooltip.includes(`python.interpreter: ${JSON.stringify(ctx.barePython)} (from ${managedFile}; overrides your setting)`),
      managedTooltip,
    );
    // read after start-up: VS Code migrates some of the user settings itself when it starts
    const userSettingsBefore = JSON.parse(fs.readFileSync(userSettingsFile, 'utf8')) as Record<string, unknown>;

    // 1. Connect: the preview shows the exact lines, the list offers the receiver and Claude Code.
    await startCommand(page, 'DX Telemetry: Connect AI Tools…');
    await page.locator('.quick-input-widget .quick-input-title', { hasText: 'DX Telemetry: Connect AI Tools' }).waitFor({ state: 'visible', timeout: 60_000 });
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Claude Code' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    const rows = (await page.locator('.quick-input-list .monaco-list-row').allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
    check(
      `the list offers the receiver and Claude Code (its settings file in the fake HOME), none ticked (${rows.length} rows)`,
      rows.some((r) => r.includes(RECEIVER_ITEM)) && rows.some((r) => r.includes('Claude Code') && r.includes('~/.claude/settings.json')) && (await page.locator('.quick-input-list .monaco-list-row[aria-checked="true"]').count()) === 0,
      JSON.stringify(rows),
    );
    const preview = await waitFor('the preview of the change', 30_000, async () => {
      const text = await editorText(page, 'Connect AI Tools.diff');
      return text && text.includes('OTEL_EXPORTER_OTLP_ENDPOINT') ? text : undefined;
    });
    check(
      'the preview shows the exact lines added to ~/.claude/settings.json, with their context',
      preview.includes('--- ~/.claude/settings.json') &&
        preview.includes('"ANTHROPIC_API_KEY": "sk-ant-e2e-not-a-key" // kept') &&
        preview.includes('+    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",') &&
        preview.includes('+    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4319"') &&
        preview.includes('+  "dxTelemetry.otlp.enabled": true'),
      preview,
    );
    check('nothing is written before the developer accepts', fs.readFileSync(settingsFile, 'utf8') === CLAUDE_SETTINGS);
    await tickQuickPickRow(page, 'DX Telemetry: Connect AI Tools', 'Claude Code');
    await tickQuickPickRow(page, 'DX Telemetry: Connect AI Tools', RECEIVER_ITEM);
    if (process.env.E2E_SCREENSHOTS) {
      fs.mkdirSync(process.env.E2E_SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS, 'connect-ai-tools.png') });
    }
    await page.locator('.quick-input-widget input').first().press('Enter');

    // 2. Claude Code's env block, everything else kept; the receiver turned on in the user settings.
    const connected = await waitFor('~/.claude/settings.json to be connected', 30_000, () => {
      const text = fs.readFileSync(settingsFile, 'utf8');
      return text !== CLAUDE_SETTINGS ? text : undefined;
    });
    const env = (parseJsonc(connected) as { env: Record<string, string> }).env;
    check(
      'Claude Code gets CLAUDE_CODE_ENABLE_TELEMETRY=1, OTEL_LOGS_EXPORTER=otlp, http/json to 127.0.0.1:4319 in its env block',
      env.CLAUDE_CODE_ENABLE_TELEMETRY === '1' && env.OTEL_LOGS_EXPORTER === 'otlp' && env.OTEL_EXPORTER_OTLP_PROTOCOL === 'http/json' && env.OTEL_EXPORTER_OTLP_ENDPOINT === 'http://127.0.0.1:4319',
      connected,
    );
    check(
      'the comments and the key of its own are kept',
      connected.startsWith('{\n  // my Claude Code settings\n  "model": "opus",\n  "env": {\n    "ANTHROPIC_API_KEY": "sk-ant-e2e-not-a-key", // kept\n') && Object.keys(env).length === 5,
      connected,
    );
    const userSettings = await waitFor('dxTelemetry.otlp.enabled in the user settings', 30_000, () => {
      const v = JSON.parse(fs.readFileSync(userSettingsFile, 'utf8')) as Record<string, unknown>;
      return v['dxTelemetry.otlp.enabled'] === true ? v : undefined;
    });
    const rest = JSON.stringify({ ...userSettings, 'dxTelemetry.otlp.enabled': undefined });
    check('the receiver is turned on in the user settings, the rest of them kept', rest === JSON.stringify(userSettingsBefore), `${rest} vs ${JSON.stringify(userSettingsBefore)}`);
    await page.locator('.notifications-toasts', { hasText: /connected Claude Code/ }).first().waitFor({ state: 'visible', timeout: 30_000 });
    check('a notification says Claude Code is connected and how to undo it', (await page.locator('.notifications-toasts').allInnerTexts()).some((t) => t.includes('Disconnect AI Tools')));
    const previewTabs = await page.locator('.tab', { hasText: 'Connect AI Tools.diff' }).count();
    check('the preview closed with the list', previewTabs === 0, `${previewTabs} tab(s)`);

    // 3. Disconnect: the file is byte for byte what it was, and the receiver setting is gone again.
    await startCommand(page, 'DX Telemetry: Disconnect AI Tools…');
    await tickQuickPickRow(page, 'DX Telemetry: Disconnect AI Tools', 'Claude Code');
    await tickQuickPickRow(page, 'DX Telemetry: Disconnect AI Tools', RECEIVER_ITEM);
    await page.locator('.quick-input-widget input').first().press('Enter');
    const restored = await waitFor('~/.claude/settings.json to be restored', 30_000, () => fs.readFileSync(settingsFile, 'utf8') === CLAUDE_SETTINGS);
    check('Disconnect gives back ~/.claude/settings.json byte for byte', restored);
    await waitFor('dxTelemetry.otlp.enabled to leave the user settings', 30_000, () => !('dxTelemetry.otlp.enabled' in (JSON.parse(fs.readFileSync(userSettingsFile, 'utf8')) as object)));
    check('and takes the receiver setting out of the user settings again', true);
    await runCommand(page, 'DX Telemetry: Disconnect AI Tools…');
    await page.locator('.notifications-toasts', { hasText: /changed nothing here that is left to undo/ }).first().waitFor({ state: 'visible', timeout: 30_000 });
    check('a second Disconnect finds nothing left to undo', true);
    const log = extensionLog(s.userData);
    check('the log names what changed, never the file contents', log.includes('Connect AI Tools: Claude Code: changed ~/.claude/settings.json') && log.includes('Disconnect AI Tools: Claude Code: restored') && !log.includes('sk-ant-e2e-not-a-key'));

    await wb.close();
    wb = undefined;
    await checkCleanStop(s, server);
    server = undefined;
  } catch (error) {
    dumpLogs(s, server);
    throw error;
  } finally {
    await shutdown(s, server, wb);
  }
}

// -- phase 4: no usable Python on the machine -------------------------------------------------------

/**
 * Stubs that the extension finds first on the login shell's PATH: `python3` behaves like macOS's
 * /usr/bin/python3 before the Command Line Tools are installed, `python` answers the probe as a
 * Python 3.8 would. No `py`.
 */
function writePythonStubs(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const stubs: Record<string, string> = {
    python3: '#!/bin/sh\necho "xcode-select: note: No developer tools were found, requesting install." >&2\nexit 1\n',
    python: `#!/bin/sh\necho '{"v": [3, 8, 10], "exe": "${dir}/python3.8"}'\n`,
  };
  for (const [name, text] of Object.entries(stubs)) {
    fs.writeFileSync(path.join(dir, name), text, { mode: 0o755 });
  }
}

async function phaseNoPython(ctx: Ctx): Promise<void> {
  const s = makeScratch(ctx.top, 'nopy', ctx.nodeBin);
  const stubs = path.join(s.root, 'stub-bin');
  writePythonStubs(stubs);
  fs.writeFileSync(path.join(s.home, '.profile'), `PATH="${stubs}:$PATH"\nexport PATH\n`);
  const missing = path.join(s.root, 'no-such-python', 'bin', 'python3');
  let server: Server | undefined;
  let wb: Workbench | undefined;
  try {
    await installExtension(s, ctx.codeServer, ctx.vsix);
    writeUserSettings(s, { 'dxTelemetry.email': EMAIL, 'dxTelemetry.tool': 'e2e-tool' });
    writeMachineSettings(s, { 'dxTelemetry.python.interpreter': missing });
    server = await startCodeServer(s, ctx.codeServer, {});
    wb = await openWorkbench(s, server.port, ctx.chromiumPath);
    const page = wb.page;

    const install = 'sudo apt install python3';
    const item = await waitFor('the status bar to warn that there is no Python', 90_000, async () => {
      const i = await statusItem(page);
      return i && i.warning && /DX/.test(i.text) ? i : undefined;
    });
    const tooltip = await waitFor('the tooltip with what to install', 30_000, async () => {
      const text = await statusTooltip(page);
      return text.includes(install) ? text : undefined;
    }).catch(async () => statusTooltip(page).catch(() => ''));
    check(`the status bar warns (${item.text})`, item.warning);
    check(
      'its tooltip says no Python >= the floor was found, names the 3.8 it found, what to install here, the setting and the managed configuration',
      /No Python >= 3\.\d+ found \(the newest here is Python 3\.8\.10/.test(tooltip) &&
        tooltip.includes(install) &&
        tooltip.includes('dxTelemetry.python.interpreter') &&
        /administrator .*managed configuration/.test(tooltip),
      tooltip,
    );
    const log = await waitFor('the log to say what to install', 30_000, () => {
      const text = extensionLog(s.userData);
      return text.includes(install) ? text : undefined;
    }).catch(() => extensionLog(s.userData));
    check(
      'the log names the missing interpreter of the setting, the stub python3, what to install and how to set an interpreter',
      log.includes(missing) && log.includes('xcode-select: note') && log.includes(install) && log.includes('managed configuration'),
      log.slice(-3000),
    );
    check('no sidecar was started', !ourProcesses(s.root).some(isSidecar));

    // no Python, no command line in the terminals: Open Usage in Terminal says why, opens none
    await runCommand(page, 'DX Telemetry: Open Usage in Terminal');
    const refusal = await waitFor('the reason there is no dx-lsp-telemetry', 30_000, async () =>
      (await page.locator('.notifications-toasts').allInnerTexts()).find((t) => t.includes('terminals have no dx-lsp-telemetry')),
    );
    check(
      `Open Usage in Terminal says why there is no command line ("${refusal.split('\n')[0].slice(0, 90)}…"), and opens no terminal`,
      refusal.includes('no Python was found') && (await page.locator('.terminal-wrapper').count()) === 0,
      refusal,
    );

    await wb.close();
    wb = undefined;
    await checkCleanStop(s, server);
    server = undefined;
  } catch (error) {
    dumpLogs(s, server);
    throw error;
  } finally {
    await shutdown(s, server, wb);
  }
}

// -- phase 5: DX Telemetry Remote Reader -----------------------------------------------------------

interface UiSideRecord {
  kind: 'ready' | 'event' | 'report';
  duplicate?: boolean;
  event?: { event_id: string; tool: string; input_tokens: number; output_tokens: number };
  report?: { remoteName: string; state: string; pending: number; delivered: number };
  remoteName?: string;
}

function uiSideRecords(file: string): UiSideRecord[] {
  if (!fs.existsSync(file)) {
    return [];
  }
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as UiSideRecord);
}

function claudeLine(id: string, timestamp: string, input: number, output: number): string {
  const line = {
    parentUuid: null,
    isSidechain: false,
    sessionId: '0b7c6a5e-4d3c-4b2a-9f8e-7d6c5b4a3f2e',
    version: '2.0.14',
    type: 'assistant',
    timestamp,
    requestId: `req_${id}`,
    message: { id: `msg_${id}`, type: 'message', role: 'assistant', model: 'claude-sonnet-4-20250514', content: [{ type: 'text', text: 'a prompt answer' }], usage: { input_tokens: input, output_tokens: output } },
  };
  return `${JSON.stringify(line)}\n`;
}

async function phaseRemoteReader(ctx: Ctx): Promise<void> {
  // The remote host: a fake HOME with a Claude Code transcript, the Remote Reader installed and
  // DX Telemetry not (it runs on the developer's machine, in another extension host), the
  // fixture answering the reader's private commands in its place. A token in code-server's
  // environment that the reader must not pass on.
  const s = makeScratch(ctx.top, 'rdr', ctx.nodeBin);
  const uiFile = path.join(s.root, 'ui-side.jsonl');
  const transcript = path.join(s.home, '.claude', 'projects', '-srv-work-proj', 'session.jsonl');
  fs.mkdirSync(path.dirname(transcript), { recursive: true });
  const earlier = new Date(Date.now() - 3_600_000).toISOString();
  fs.writeFileSync(transcript, claudeLine('r1', earlier, 300, 20) + claudeLine('r2', earlier, 50, 5));
  let server: Server | undefined;
  let wb: Workbench | undefined;
  try {
    await installExtension(s, ctx.codeServer, ctx.readerVsix);
    await installExtension(s, ctx.codeServer, await packageFixture(s, ctx.extensionRoot, 'ui-side'));
    writeUserSettings(s, { 'dxTelemetry.sources.claudeCode.enabled': true, 'dxE2e.uiSideFile': uiFile });
    writeMachineSettings(s, { 'dxTelemetry.python.interpreter': ctx.barePython });
    server = await startCodeServer(s, ctx.codeServer, { [TOKEN_ENV]: TOKEN });
    wb = await openWorkbench(s, server.port, ctx.chromiumPath);

    const reader = await waitFor('the reader sidecar', 90_000, () => ourProcesses(s.root).find(isReaderSidecar));
    check('the Remote Reader started its sidecar as `python -m dx_lsp_telemetry serve --reader` on the bare interpreter', reader.argv[0] === ctx.barePython, reader.argv.join(' '));
    check('without the token (a reader never pushes), though the editor has one', !(TOKEN_ENV in reader.env) && !ourProcesses(s.root).some((p) => (isSidecar(p) || isReaderSidecar(p)) && p.env[TOKEN_ENV]));
    const events = () => uiSideRecords(uiFile).filter((r) => r.kind === 'event');
    const firstTwo = await waitFor('both transcript events on the UI side', 60_000, () => (events().length >= 2 ? events() : false));
    check(
      'each transcript event arrived once, as a recordUsage event with its tool, counts and an event id',
      firstTwo.length === 2 &&
        firstTwo.every((r) => r.duplicate === false && r.event?.tool === 'claude-code' && /^claude-code:[0-9a-f]{32}$/.test(r.event.event_id)) &&
        JSON.stringify(firstTwo.map((r) => [r.event?.input_tokens, r.event?.output_tokens])) === JSON.stringify([[300, 20], [50, 5]]),
      JSON.stringify(firstTwo),
    );
    check('no prompt text was forwarded', !fs.readFileSync(uiFile, 'utf8').includes('a prompt answer'));

    fs.appendFileSync(transcript, claudeLine('r3', new Date().toISOString(), 7, 1));
    const three = await waitFor('the appended line on the UI side', 90_000, () => (events().length >= 3 ? events() : false));
    const report = await waitFor('a report of 3 forwarded, none waiting', 30_000, () =>
      uiSideRecords(uiFile)
        .filter((r) => r.kind === 'report')
        .map((r) => r.report)
        .find((r) => r && r.delivered === 3 && r.pending === 0),
    ).catch(() => undefined);
    check('the line appended later arrived, and only it', three.length === 3 && three[2].event?.input_tokens === 7 && new Set(three.map((r) => r.event?.event_id)).size === 3, JSON.stringify(three));
    check(`the reader reported to the UI side: 3 forwarded, 0 waiting, from ${report?.remoteName ?? '?'}`, report?.state === 'forwarding' && report.remoteName === `127.0.0.1:${server.port}`, JSON.stringify(report));
    check("the reader's buffer is its own, beside the host's data folder", fs.readdirSync(path.join(s.dxHome, 'remote-reader', 'ledger')).some((f) => f.endsWith('.jsonl')) && !fs.existsSync(path.join(s.dxHome, 'ledger')));
    check('it never pushed (no journal anywhere)', !fs.existsSync(path.join(s.dxHome, 'remote-reader', 'journal.jsonl')) && !fs.existsSync(path.join(s.dxHome, 'journal.jsonl')));

    await wb.close();
    wb = undefined;
    await checkCleanStop(s, server);
    server = undefined;
    check('nothing arrived twice', events().length === 3 && events().every((r) => r.duplicate === false));
  } catch (error) {
    dumpLogs(s, server);
    throw error;
  } finally {
    await shutdown(s, server, wb);
  }
}

// -- measurement only (E2E_MEASURE): the extension host's memory with and without the extension ----

interface MemorySample {
  variant: 'with' | 'without';
  round: number;
  rssKb: number;
  pssKb: number;
  rssMin: number;
  rssMax: number;
  sidecarRssKb?: number;
}

/**
 * Not a test. `rounds` code-server runs with only this extension installed and as many with none,
 * alternated (with, without, without, with, ...) so drift hits both alike; every run is a fresh
 * scratch folder with the same settings, token and window. At the same window age, after the
 * extension settled (its status bar shows), nine samples of the extension host's RSS and PSS
 * 0.5 s apart; the run's value is their median, the variant's the median over its runs.
 */
async function measureMemory(ctx: Ctx, rounds: number): Promise<void> {
  const ageMs = Number(process.env.E2E_MEASURE_AGE_MS ?? 20_000);
  const samplesPerRun = 9;
  const fakeDx = await startFakeDx(TOKEN);
  const results: MemorySample[] = [];
  try {
    for (let round = 0; round < rounds; round += 1) {
      const order: Array<'with' | 'without'> = round % 2 === 0 ? ['with', 'without'] : ['without', 'with'];
      for (const variant of order) {
        const s = makeScratch(ctx.top, `m${round}${variant === 'with' ? 'w' : 'o'}`, ctx.nodeBin);
        if (variant === 'with') {
          await installExtension(s, ctx.codeServer, ctx.vsix);
        }
        writeUserSettings(s, { 'dxTelemetry.email': EMAIL, 'dxTelemetry.tool': 'e2e-tool', 'dxTelemetry.instanceUrl': fakeDx.url, 'dxTelemetry.flush.delaySeconds': 0 });
        writeMachineSettings(s, { 'dxTelemetry.python.interpreter': ctx.barePython });
        let server: Server | undefined;
        let wb: Workbench | undefined;
        try {
          server = await startCodeServer(s, ctx.codeServer, { [TOKEN_ENV]: TOKEN });
          wb = await openWorkbench(s, server.port, ctx.chromiumPath);
          const page = wb.page;
          const host = await waitFor('the extension host', 60_000, () => ourProcesses(s.root).find(isExtensionHost));
          if (variant === 'with') {
            await waitFor('the status bar', ageMs + 30_000, async () => /DX \d/.test((await statusBarText(page)) ?? ''));
          }
          const openedAt = wb.openedAt;
          const age = await waitFor(`the window to be ${ageMs} ms old`, ageMs + 30_000, () => (Date.now() - openedAt >= ageMs ? Date.now() - openedAt : false), 50);
          const rss: number[] = [];
          const pss: number[] = [];
          for (let i = 0; i < samplesPerRun; i += 1) {
            if (i) {
              await new Promise((resolve) => setTimeout(resolve, 500)); // the sampling interval
            }
            const p = readProc(host.pid);
            const q = readPssKb(host.pid);
            if (!p || q === undefined) {
              throw new Error('the extension host went away while it was measured');
            }
            rss.push(p.rssKb);
            pss.push(q);
          }
          const sidecar = ourProcesses(s.root).find(isSidecar);
          const sample: MemorySample = { variant, round, rssKb: median(rss), pssKb: median(pss), rssMin: Math.min(...rss), rssMax: Math.max(...rss), sidecarRssKb: sidecar?.rssKb };
          results.push(sample);
          console.log(
            `  measure: run ${results.length} (${variant} the extension), window ${age} ms old: extension host RSS median ${mib(sample.rssKb)} ` +
              `(${mib(sample.rssMin)}..${mib(sample.rssMax)} over ${samplesPerRun} samples), PSS median ${mib(sample.pssKb)}` +
              (sample.sidecarRssKb ? `; sidecar RSS ${mib(sample.sidecarRssKb)}` : ''),
          );
        } finally {
          await shutdown(s, server, wb);
          fs.rmSync(s.root, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await fakeDx.close();
  }
  const of = (variant: 'with' | 'without', field: 'rssKb' | 'pssKb') => results.filter((r) => r.variant === variant).map((r) => r[field]);
  for (const field of ['rssKb', 'pssKb'] as const) {
    const withKb = of('with', field);
    const withoutKb = of('without', field);
    const range = (v: number[]) => `${mib(Math.min(...v))}..${mib(Math.max(...v))}`;
    console.log(
      `  measure: extension host ${field === 'rssKb' ? 'RSS' : 'PSS'} at ${ageMs} ms, median of ${rounds} run(s) each: ` +
        `${mib(median(withKb))} with the extension (runs ${range(withKb)}), ${mib(median(withoutKb))} without (runs ${range(withoutKb)}): ` +
        `+${mib(median(withKb) - median(withoutKb))}`,
    );
  }
  const sidecars = results.filter((r) => r.sidecarRssKb).map((r) => r.sidecarRssKb!);
  if (sidecars.length) {
    console.log(`  measure: the sidecar process itself (separate from the extension host): RSS median ${mib(median(sidecars))}`);
  }
}

// -- main ------------------------------------------------------------------------------------------

async function phase(title: string, fn: () => Promise<void>): Promise<boolean> {
  const started = Date.now();
  console.log(`\n${title}`);
  let ok = true;
  try {
    await fn();
  } catch (error) {
    failures += 1;
    ok = false;
    console.log(`  FAIL ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  }
  console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return ok;
}

async function main(): Promise<void> {
  const started = Date.now();
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'dx-e2e-'));
  console.log(`e2e scratch: ${top}`);
  let keep = process.env.E2E_KEEP === '1';
  try {
    const nodeBin = env('NODE24_BIN');
    // A Python with no packages at all: the sidecar must run from the bundled libs alone.
    const bareRoot = path.join(top, 'bare-python');
    const basePython = process.env.E2E_PYTHON || 'python3';
    const bare = await run(basePython, ['-m', 'venv', '--without-pip', bareRoot], { env: { ...process.env, TMPDIR: top } });
    if (bare.code !== 0) {
      throw new Error(`${basePython} -m venv failed: ${bare.stderr}`);
    }
    const bareVersion = await run(path.join(bareRoot, 'bin', 'python3'), ['-c', 'import sys; print(sys.version.split()[0])']);
    console.log(`bare Python: ${bareVersion.stdout.trim()} (a venv of ${basePython}, without pip)`);
    const ctx: Ctx = {
      codeServer: env('CODE_SERVER'),
      nodeBin,
      dxCli: env('DX_CLI'),
      vsix: env('VSIX'),
      readerVsix: env('READER_VSIX'),
      chromiumPath: env('CHROMIUM', '/usr/bin/chromium'),
      extensionRoot: path.resolve(__dirname, '..', '..', '..'),
      top,
      barePython: path.join(bareRoot, 'bin', 'python3'),
    };
    const noPygls = await run(ctx.barePython, ['-c', 'import pygls'], { env: { PATH: process.env.PATH, HOME: top } });
    check('the bare interpreter has no packages (import pygls fails there)', noPygls.code !== 0 && /ModuleNotFoundError/.test(noPygls.stderr), noPygls.stderr);

    const only = process.env.E2E_ONLY; // development: run one phase
    if (!only || only === '1') {
      await phase('phase 1: the token inherited from the environment, the reporter extension', () => phaseEnvironmentToken(ctx));
    }
    if (!only || only === '2') {
      await phase('phase 2: the token set by the user (Set API Token, SecretStorage), then cleared', () => phaseSecretStorage(ctx));
    }
    if (!only || only === '3') {
      await phase('phase 3: Connect AI Tools and Disconnect AI Tools on a Claude Code settings.json in a fake HOME', () => phaseConnectAiTools(ctx));
    }
    if (!only || only === '4') {
      await phase('phase 4: no usable Python: the status bar and the log say what to install', () => phaseNoPython(ctx));
    }
    if (!only || only === '5') {
      await phase('phase 5: DX Telemetry Remote Reader forwards a Claude Code transcript, each event once', () => phaseRemoteReader(ctx));
    }
    const rounds = Number(process.env.E2E_MEASURE ?? 0);
    if (rounds > 0) {
      await phase(`memory (E2E_MEASURE=${rounds}; not a test)`, () => measureMemory(ctx, rounds));
    }
  } catch (error) {
    failures += 1;
    console.log(`  FAIL ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  } finally {
    if (failures) {
      keep = true;
    }
    if (keep) {
      console.log(`scratch kept: ${top}`);
    } else {
      fs.rmSync(top, { recursive: true, force: true });
    }
  }
  console.log(`\ne2e (real VS Code ${process.env.CODE_SERVER ? 'via code-server' : ''}): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passes} passed, ${failures} failed`);
  process.exitCode = failures ? 1 : 0;
}

void main();
