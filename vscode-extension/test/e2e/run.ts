// The real VS Code end-to-end test: code-server (VS Code 1.139 from npm, on Node 24) with the
// built .vsix and a second tiny extension installed, driven by headless Debian chromium
// through playwright-core. A loopback HTTP server plays DX strictly. Everything runs in a
// fresh scratch folder (HOME, XDG_*, TMPDIR, user-data, extensions, data folder), waits on
// conditions with deadlines, and cleans up every process it started.
//
// Environment (set by `make ext-e2e`): CODE_SERVER, NODE24_BIN, DX_CLI, VSIX.
// Optional: CHROMIUM (default /usr/bin/chromium), E2E_KEEP=1 (keep the scratch folder),
// E2E_MEASURE=1 (also measure the extension host's memory without the extension).

import { ChildProcess, execFile, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Browser, Page, chromium } from 'playwright-core';

const TOKEN = 'e2e-token-5f0c1d2e3a4b';
const EMAIL = 'dev@example.com';
const EXTENSION_ID = 'dx-telemetry.dx-lsp-telemetry';
const SEED_TOOL = 'e2e-seed';
const TODAY_TOKENS = 4000 + 642;
const STARTUP_EVENT_TOKENS = 100 + 11;
const PALETTE_EVENT_TOKENS = 1000 + 234;

// -- small utilities ---------------------------------------------------------------------------

let failures = 0;
let passes = 0;
const results: string[] = [];

function check(name: string, ok: boolean, detail = ''): void {
  if (ok) {
    passes += 1;
    results.push(`  ok   ${name}`);
  } else {
    failures += 1;
    results.push(`  FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
  console.log(results[results.length - 1]);
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

// -- /proc: the sidecar and the extension host -------------------------------------------------

interface Proc {
  pid: number;
  ppid: number;
  argv: string[];
  env: Record<string, string>;
  rssKb: number;
}

function readProc(pid: number): Proc | undefined {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
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
    return { pid, ppid, argv, env: envVars, rssKb };
  } catch {
    return undefined; // gone, or a kernel thread
  }
}

/** Processes whose environment carries this run's scratch marker (never another run's or test's). */
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
const isExtensionHost = (p: Proc) => p.argv.some((a) => a.includes('--type=extensionHost'));

// -- a strict fake DX (the same rules as tests/fake_dx.py) ---------------------------------------

interface Received {
  path: string;
  status: number;
  body: unknown;
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

function startFakeDx(): Promise<{ url: string; received: Received[]; stored: Array<Record<string, unknown>>; close(): Promise<void> }> {
  const received: Received[] = [];
  const stored: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: unknown) => {
        received.push({ path: req.url ?? '', status, body: parsed });
        const data = Buffer.from(JSON.stringify(body));
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
        res.end(data);
      };
      let parsed: unknown;
      if (req.method !== 'POST' || req.url !== '/api/aiToolMetrics.push') {
        return answer(req.method !== 'POST' ? 405 : 404, { ok: false, error: 'not_found' });
      }
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
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
      resolve({ url: `http://127.0.0.1:${port}`, received, stored, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

// -- the workbench -------------------------------------------------------------------------------

async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  await input.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 30_000 });
}

async function statusBarText(page: Page): Promise<string | undefined> {
  const item = page.locator('.statusbar-item[id*="dxTelemetry"]');
  if ((await item.count()) === 0) {
    return undefined;
  }
  return (await item.first().innerText()).replace(/\s+/g, ' ').trim();
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

// -- the test ------------------------------------------------------------------------------------

interface Scratch {
  root: string;
  home: string;
  userData: string;
  extensions: string;
  workspace: string;
  dxHome: string;
  bareBin: string;
  outFile: string;
  env: NodeJS.ProcessEnv;
}

function makeScratch(nodeBin: string): Scratch {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dx-e2e-'));
  const dirs = ['home', 'config', 'data', 'cache', 'tmp', 'user-data/User', 'extensions', 'workspace', 'dx-home'];
  for (const d of dirs) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  const e: NodeJS.ProcessEnv = {
    PATH: `${nodeBin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
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
    bareBin: path.join(root, 'bare-python', 'bin'),
    outFile: path.join(root, 'reporter.jsonl'),
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
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'git.enabled': false,
    ...extra,
  };
  fs.writeFileSync(path.join(s.userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

async function startCodeServer(s: Scratch, codeServer: string, extraEnv: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; port: number; log: string[] }> {
  const port = await freePort();
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
  return Promise.race([exited, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
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

async function openWorkbench(s: Scratch, port: number, chromiumPath: string): Promise<{ browser: Browser; page: Page; openedAt: number }> {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    env: s.env as Record<string, string>,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const openedAt = Date.now();
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(s.workspace)}`, { timeout: 60_000 });
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
  return { browser, page, openedAt };
}

async function packageReporter(s: Scratch, extensionRoot: string): Promise<string> {
  const src = path.join(extensionRoot, 'test', 'e2e', 'reporter');
  const dir = path.join(s.root, 'reporter-src');
  fs.cpSync(src, dir, { recursive: true });
  const out = path.join(s.root, 'dx-e2e-reporter.vsix');
  const vsce = path.join(extensionRoot, 'node_modules', '.bin', 'vsce');
  const r = await run(vsce, ['package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '-o', out], { cwd: dir, env: { ...process.env, ...s.env, PATH: process.env.PATH } });
  if (r.code !== 0) {
    throw new Error(`packaging the reporter extension failed: ${r.stderr}${r.stdout}`);
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

async function main(): Promise<void> {
  const started = Date.now();
  const codeServer = env('CODE_SERVER');
  const nodeBin = env('NODE24_BIN');
  const dxCli = env('DX_CLI');
  const vsix = env('VSIX');
  const chromiumPath = env('CHROMIUM', '/usr/bin/chromium');
  const extensionRoot = path.resolve(__dirname, '..', '..', '..');
  const s = makeScratch(nodeBin);
  console.log(`e2e scratch: ${s.root}`);
  const fakeDx = await startFakeDx();
  let server: { proc: ChildProcess; port: number; log: string[] } | undefined;
  let browser: Browser | undefined;
  let keep = process.env.E2E_KEEP === '1';
  try {
    // A Python with no packages at all: the sidecar must run from the bundled libs alone.
    const bare = await run('python3', ['-m', 'venv', '--without-pip', path.dirname(s.bareBin)], { env: { ...process.env, ...s.env, PATH: process.env.PATH } });
    if (bare.code !== 0) {
      throw new Error(`python3 -m venv failed: ${bare.stderr}`);
    }
    const barePython = path.join(s.bareBin, 'python3');
    const noPygls = await run(barePython, ['-c', 'import pygls'], { env: { ...s.env, PATH: process.env.PATH } });
    check('the bare interpreter has no packages (import pygls fails there)', noPygls.code !== 0 && /ModuleNotFoundError/.test(noPygls.stderr), noPygls.stderr);

    // Seed the data folder through the CLI: a completed day, and today.
    const now = new Date();
    const minutesToday = now.getUTCHours() * 60 + now.getUTCMinutes();
    const seedDay = new Date(now.getTime() - (minutesToday < 15 ? 2 : 1) * 86_400_000);
    const seedDate = isoDate(seedDay);
    const cliEnv = { ...process.env, DX_TELEMETRY_HOME: s.dxHome, HOME: s.home, DX_TELEMETRY_TOOL: '' };
    for (const [id, args] of [
      ['seed-1', ['--input-tokens', '1200', '--output-tokens', '300', '--cache-write-tokens', '40', '--cache-read-tokens', '60', '--cost-usd', '0.42']],
      ['seed-2', ['--input-tokens', '800', '--output-tokens', '100', '--spend-cents', '7.25']],
    ] as Array<[string, string[]]>) {
      const r = await run(dxCli, ['record', '--tool', SEED_TOOL, '--timestamp', `${seedDate}T12:00:00Z`, '--event-id', id, '--model', 'e2e-model', ...args], { env: cliEnv });
      if (r.code !== 0) {
        throw new Error(`seeding failed: ${r.stderr}`);
      }
    }
    const today = await run(dxCli, ['record', '--tool', SEED_TOOL, '--event-id', 'seed-today', '--input-tokens', '4000', '--output-tokens', '642'], { env: cliEnv });
    if (today.code !== 0) {
      throw new Error(`seeding today failed: ${today.stderr}`);
    }

    // Install the built .vsix and the reporter extension into the hermetic extensions dir.
    await installExtension(s, codeServer, vsix);
    await installExtension(s, codeServer, await packageReporter(s, extensionRoot));
    writeUserSettings(s, {
      'dxTelemetry.email': EMAIL,
      'dxTelemetry.tool': 'e2e-tool',
      'dxTelemetry.instanceUrl': fakeDx.url,
      'dxTelemetry.flush.delaySeconds': 0,
      'dxE2e.outFile': s.outFile,
    });
    writeMachineSettings(s, { 'dxTelemetry.python.interpreter': barePython });

    server = await startCodeServer(s, codeServer, { DX_DATA_CLOUD_TOKEN: TOKEN });
    const wb = await openWorkbench(s, server.port, chromiumPath);
    browser = wb.browser;
    const page = wb.page;

    // 1. The extension activates and its sidecar runs on the bare interpreter.
    const sidecar = await waitFor('the sidecar process', 90_000, () => ourProcesses(s.root).find(isSidecar));
    const sidecarSeenMs = Date.now() - wb.openedAt;
    check('the extension activated and started the bundled sidecar', true);
    check('the sidecar runs on the bare interpreter', sidecar.argv[0] === barePython, sidecar.argv.join(' '));
    check('launched as `python -m dx_lsp_telemetry`, with no extra argv', JSON.stringify(sidecar.argv.slice(1)) === JSON.stringify(['-m', 'dx_lsp_telemetry']), sidecar.argv.join(' '));
    const libs = path.join(s.extensions, `${EXTENSION_ID}-0.1.0`, 'bundled', 'libs');
    check('PYTHONPATH starts with the bundled libs', (sidecar.env.PYTHONPATH ?? '').split(':')[0] === libs, sidecar.env.PYTHONPATH);
    check('PYTHONUTF8=1', sidecar.env.PYTHONUTF8 === '1');
    check('the token is in the child environment only, not in argv', sidecar.env.DX_DATA_CLOUD_TOKEN === TOKEN && !sidecar.argv.join(' ').includes(TOKEN));
    check("the editor's environment reaches the sidecar (DX_TELEMETRY_HOME)", sidecar.env.DX_TELEMETRY_HOME === s.dxHome);

    // 2. The status bar shows today's tokens (seed + the reporter's start-up event, which was
    //    sent while the sidecar may still have been starting).
    const expectedFirst = `DX ${(TODAY_TOKENS + STARTUP_EVENT_TOKENS).toLocaleString('en-US')}`;
    const shown = await waitFor(`the status bar to read "${expectedFirst}"`, 90_000, async () => {
      const text = await statusBarText(page);
      return text && text.includes(expectedFirst) ? text : undefined;
    });
    const statusShownMs = Date.now() - wb.openedAt;
    const hostAtStatus = readProc(sidecar.ppid);
    check(`the status bar shows today's tokens (${shown})`, true);

    // 3. Yesterday's record arrives at DX exactly once.
    const key = (r: Record<string, unknown>) => `${String(r.email)}|${String(r.date)}|${String(r.tool)}`;
    const seedKey = `${EMAIL}|${seedDate}|${SEED_TOOL}`;
    const record = await waitFor('the seeded day at the fake DX', 90_000, () => fakeDx.stored.find((r) => key(r) === seedKey));
    check('the completed day was pushed with its exact totals', record.input_tokens === 2000 && record.output_tokens === 400 && record.cache_write_tokens === 40 && record.cache_read_tokens === 60 && record.spend_cents === 49 && record.is_active === true, JSON.stringify(record));

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
    const seedPosts = fakeDx.received.filter((r) => r.body && key(r.body as Record<string, unknown>) === seedKey);
    check('the seeded day reached DX exactly once (after Flush Now too)', seedPosts.length === 1 && fakeDx.stored.filter((r) => key(r) === seedKey).length === 1, JSON.stringify(fakeDx.received));
    check('DX received nothing it refused', fakeDx.received.every((r) => r.status === 200), JSON.stringify(fakeDx.received));

    // 7. A crashed sidecar is restarted (with backoff), silently: no "server crashed" pop-up.
    process.kill(sidecar.pid, 'SIGKILL');
    const second = await waitFor('a new sidecar after kill -9', 60_000, () => ourProcesses(s.root).find((p) => isSidecar(p) && p.pid !== sidecar.pid));
    check('the killed sidecar was replaced by a new one', second.pid !== sidecar.pid && second.argv[0] === barePython);
    await waitFor('the status bar to come back after the restart', 60_000, async () => ((await statusBarText(page)) ?? '').includes(expectedAfter));
    const toasts = await page.locator('.notifications-toasts').allInnerTexts();
    check('no crash notification was shown', !toasts.some((t) => /crash|server|connection/i.test(t)), JSON.stringify(toasts));

    // 8. A settings change reaches the running sidecar without a restart.
    fs.mkdirSync(path.join(s.workspace, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(s.workspace, '.vscode', 'settings.json'), JSON.stringify({ 'dxTelemetry.enabled': false }));
    await waitFor('the sidecar to apply dxTelemetry.enabled = false', 60_000, () => {
      const saved = path.join(s.dxHome, 'settings.json');
      return fs.existsSync(saved) && (JSON.parse(fs.readFileSync(saved, 'utf8')) as { enabled?: boolean }).enabled === false;
    });
    await runCommand(page, 'DX E2E: Report Usage');
    const second2 = await waitFor('the reporter to finish again', 60_000, () => {
      const lines = fs.readFileSync(s.outFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { label: string; result?: { recorded?: boolean } });
      return lines.filter((l) => l.label === 'done').length === 2 ? lines : undefined;
    });
    const lastApi = second2.filter((l) => l.label === 'palette-api').pop();
    check('with dxTelemetry.enabled off (changed live), recordUsage answers recorded: false', lastApi?.result?.recorded === false, JSON.stringify(lastApi));
    const sidecarsNow = ourProcesses(s.root).filter(isSidecar);
    check('the settings change did not restart the sidecar', sidecarsNow.length === 1 && sidecarsNow[0].pid === second.pid, `was ${second.pid}, now ${sidecarsNow.map((p) => p.pid).join(',')}`);

    // Measurements for the report.
    const host = ourProcesses(s.root).find((p) => p.pid === second.ppid);
    const sidecarNow = readProc(second.pid);
    const measuredAtMs = Date.now() - wb.openedAt;
    console.log(`measure: sidecar process seen ${sidecarSeenMs} ms after the page was opened; status bar showed tokens after ${statusShownMs} ms`);
    if (host) {
      console.log(
        `measure: ${measuredAtMs} ms after opening: extension host pid ${host.pid} RSS ${(host.rssKb / 1024).toFixed(1)} MiB ` +
          `(with this extension and the reporter); sidecar RSS ${((sidecarNow?.rssKb ?? 0) / 1024).toFixed(1)} MiB`,
      );
    }
    if (process.env.E2E_SCREENSHOTS) {
      fs.mkdirSync(process.env.E2E_SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS, 'workbench.png') });
      await page.locator('.statusbar-item[id*="dxTelemetry"]').first().hover();
      await page.locator('.monaco-hover, .workbench-hover').first().waitFor({ state: 'visible', timeout: 10_000 }).catch(() => undefined);
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS, 'status-hover.png') });
    }
    const runningLine = extensionLog(s.userData).split('\n').find((l) => l.includes('sidecar running'));
    if (runningLine) {
      console.log(`measure: extension log: ${runningLine.trim()}`);
    }

    // 7. Stopping code-server leaves no sidecar behind.
    await browser.close();
    browser = undefined;
    const stopped = await stopCodeServer(server.proc, 30_000);
    check('code-server stopped on SIGTERM', stopped);
    const leftovers = await waitFor('every process of this run to exit', 30_000, () => {
      const left = ourProcesses(s.root);
      return left.length === 0 ? [] : false;
    }).catch(() => ourProcesses(s.root));
    check('no sidecar (or any other process of this run) is left behind', leftovers.length === 0, leftovers.map((p) => `${p.pid} ${p.argv.join(' ')}`).join('; '));
    const log = extensionLog(s.userData);
    check('the token never appears in the extension log', log.length > 0 && !log.includes(TOKEN));
    server = undefined;

    if (process.env.E2E_MEASURE === '1' && host) {
      await measureBaseline(s, codeServer, chromiumPath, [
        [statusShownMs, hostAtStatus?.rssKb ?? 0],
        [measuredAtMs, host.rssKb],
      ]);
    }
  } catch (error) {
    failures += 1;
    keep = true;
    console.log(`  FAIL ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    if (server) {
      console.log(`--- code-server log (last 40 lines)\n${server.log.slice(-40).join('\n')}`);
    }
    console.log(extensionLog(s.userData).slice(-6000));
  } finally {
    await browser?.close().catch(() => undefined);
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
    await fakeDx.close();
    if (keep || failures) {
      console.log(`scratch kept: ${s.root}`);
    } else {
      fs.rmSync(s.root, { recursive: true, force: true });
    }
  }
  console.log(`\ne2e (real VS Code ${process.env.CODE_SERVER ? 'via code-server' : ''}): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passes} passed, ${failures} failed`);
  process.exitCode = failures ? 1 : 0;
}

/**
 * Measurement only (E2E_MEASURE=1), not a test: the extension host's RSS in the same setup
 * with this extension uninstalled (the reporter stays), read at the same age of the window.
 */
async function measureBaseline(s: Scratch, codeServer: string, chromiumPath: string, points: Array<[number, number]>): Promise<void> {
  const r = await run(codeServer, ['--user-data-dir', s.userData, '--extensions-dir', s.extensions, '--config', path.join(s.root, 'config', 'code-server.yaml'), '--uninstall-extension', EXTENSION_ID], { env: s.env });
  if (r.code !== 0) {
    throw new Error(`uninstalling ${EXTENSION_ID} failed: ${r.stdout}${r.stderr}`);
  }
  fs.rmSync(path.join(s.workspace, '.vscode'), { recursive: true, force: true });
  const server = await startCodeServer(s, codeServer, {});
  const wb = await openWorkbench(s, server.port, chromiumPath);
  try {
    const host = await waitFor('the bare extension host', 60_000, () => ourProcesses(s.root).find(isExtensionHost));
    for (const [atMs, withKb] of points) {
      await waitFor(`the window to be ${atMs} ms old`, atMs + 10_000, () => Date.now() - wb.openedAt >= atMs, 100);
      const without = readProc(host.pid)?.rssKb ?? 0;
      console.log(
        `measure: extension host RSS ${atMs} ms after opening: ${(withKb / 1024).toFixed(1)} MiB with this extension, ` +
          `${(without / 1024).toFixed(1)} MiB without it (reporter only): +${((withKb - without) / 1024).toFixed(1)} MiB`,
      );
    }
  } finally {
    await wb.browser.close();
    await stopCodeServer(server.proc, 10_000);
    killGroup(server.proc);
  }
}

void main();
