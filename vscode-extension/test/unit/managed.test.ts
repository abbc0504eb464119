import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MANAGED_FILE_ENV, managedFiles, managedInterpreter, readManagedFile } from '../../src/managed';
import { PATH_CANDIDATES, ProbeResult, findPython } from '../../src/python';
import { managedLines, statusView } from '../../src/status';
import { DxStatus } from '../../src/types';
import { recordingLogger } from './helpers';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dx-managed-'));
}

function write(dir: string, name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('managed configuration: where the extension looks', () => {
  it('reads the managed.json of each OS, the tests file last', () => {
    assert.deepStrictEqual(managedFiles('linux', {}), ['/etc/dx-lsp-telemetry/managed.json']);
    assert.deepStrictEqual(managedFiles('darwin', {}), ['/Library/Application Support/dx-lsp-telemetry/managed.json']);
    assert.deepStrictEqual(managedFiles('win32', { ProgramData: 'D:\\PD' }), ['D:\\PD\\dx-lsp-telemetry\\managed.json']);
    assert.deepStrictEqual(managedFiles('win32', {}), ['C:\\ProgramData\\dx-lsp-telemetry\\managed.json']);
    assert.deepStrictEqual(managedFiles('linux', { [MANAGED_FILE_ENV]: ' /tmp/m.json ' }), ['/etc/dx-lsp-telemetry/managed.json', '/tmp/m.json']);
  });
});

describe('managed configuration: the interpreter that starts the sidecar', () => {
  it('takes python.interpreter nested, dotted or under dxTelemetry, from real files', () => {
    const dir = tempDir();
    const forms: unknown[] = [
      { python: { interpreter: '/opt/py/bin/python3' } },
      { 'python.interpreter': '/opt/py/bin/python3' },
      { dxTelemetry: { python: { interpreter: '/opt/py/bin/python3' } } },
      { 'dxTelemetry.python.interpreter': '/opt/py/bin/python3', enabled: false },
      { 'dxTelemetry.python': { interpreter: ' /opt/py/bin/python3 ' } },
    ];
    forms.forEach((form, i) => {
      const file = write(dir, `m${i}.json`, form);
      assert.deepStrictEqual(managedInterpreter([file]), { path: '/opt/py/bin/python3', from: file, problems: [] }, JSON.stringify(form));
    });
  });

  it('skips missing files silently and takes the first file that sets it', () => {
    const dir = tempDir();
    const first = write(dir, 'first.json', { enabled: false });
    const second = write(dir, 'second.json', { python: { interpreter: 'C:\\Python313\\python.exe' } });
    const third = write(dir, 'third.json', { python: { interpreter: '/never' } });
    const got = managedInterpreter([path.join(dir, 'missing.json'), path.join(dir, 'missing', 'x.json'), first, second, third]);
    assert.deepStrictEqual(got, { path: 'C:\\Python313\\python.exe', from: second, problems: [] });
    assert.deepStrictEqual(managedInterpreter([first]), { problems: [] });
  });

  it('names a broken file or a bad value, and goes on to the next file', () => {
    const dir = tempDir();
    const broken = write(dir, 'broken.json', '{"python": ');
    const wrong = write(dir, 'wrong.json', { python: { interpreter: 42 } });
    const folder = path.join(dir, 'folder.json');
    fs.mkdirSync(folder);
    const good = write(dir, 'good.json', '\uFEFF{"python.interpreter": "/usr/bin/python3"}');
    const got = managedInterpreter([broken, wrong, folder, good]);
    assert.strictEqual(got.path, '/usr/bin/python3');
    assert.strictEqual(got.problems.length, 3, got.problems.join('\n'));
    assert.match(got.problems[0], new RegExp(`^${escape(broken)}: is not valid JSON \\(.+\\): its managed interpreter is ignored$`));
    assert.strictEqual(got.problems[1], `${wrong}: python.interpreter: expected a path to a Python, got 42`);
    assert.match(got.problems[2], new RegExp(`^${escape(folder)}: cannot be read \\(EISDIR\\)`));
  });

  it('refuses a file over 1 MiB', () => {
    const dir = tempDir();
    const big = write(dir, 'big.json', `{"python.interpreter": "/x"}${' '.repeat(1 << 20)}`);
    assert.throws(() => readManagedFile(big), /larger than 1 MiB/);
    assert.strictEqual(readManagedFile(path.join(dir, 'none.json')), undefined);
  });

  it('comes before the dxTelemetry.python.interpreter setting, which is the fallback when it cannot run', async () => {
    const table: Record<string, ProbeResult> = {
      '/managed/python3': { version: [3, 12, 0], executable: '/managed/python3' },
      '/user/python3': { version: [3, 11, 0], executable: '/user/python3' },
    };
    const probed: string[] = [];
    const probe = async (command: string) => {
      probed.push(command);
      return table[command] ?? { error: 'not found' };
    };
    const inputs = { setting: '/user/python3', pythonExtension: async () => undefined, pathCandidates: PATH_CANDIDATES, probe };
    const found = await findPython({ ...inputs, managed: '/managed/python3', log: recordingLogger() });
    assert.ok(found.found);
    assert.strictEqual(found.source, 'managed');
    assert.match(found.description, /managed configuration/);
    assert.deepStrictEqual(probed, ['/managed/python3']);

    const log = recordingLogger();
    const fallback = await findPython({ ...inputs, managed: '/gone/python3', log });
    assert.ok(fallback.found);
    assert.strictEqual(fallback.source, 'setting');
    assert.ok(
      log.lines.some((l) => l.startsWith('warn') && l.includes('/gone/python3') && l.includes('managed configuration')),
      log.lines.join('\n'),
    );
  });
});

describe('managed configuration: the tooltip', () => {
  const status = (managed?: DxStatus['config']['managed']): DxStatus => ({
    version: '0.1.0',
    dataDir: '/data',
    leader: true,
    config: { ok: true, destination: 'off', problems: [], ...(managed ? { managed } : {}) },
    today: { date: '2026-11-25', tools: {} },
    days: [],
  });

  it('shows each managed value, where it came from, and which of the user settings it overrides', () => {
    const file = '/etc/dx-lsp-telemetry/managed.json';
    const managed = {
      lookedIn: [file],
      found: [file],
      values: { enabled: { value: false, from: file }, 'flush.delaySeconds': { value: 1800, from: file } },
      overrides: ['enabled'],
    };
    assert.deepStrictEqual(managedLines(status(managed)), [
      'Managed for this machine (your settings cannot change these):',
      `  enabled: false (from ${file}; overrides your setting)`,
      `  flush.delaySeconds: 1800 (from ${file})`,
    ]);
    const view = statusView({ phase: 'running' }, status(managed));
    assert.ok(view.tooltip.includes(`  enabled: false (from ${file}; overrides your setting)`), view.tooltip);
    assert.match(view.tooltip, /Completed days go to nowhere \(disabled\)/);
  });

  it('says nothing of it on a machine without one, or with a file that sets nothing', () => {
    assert.deepStrictEqual(managedLines(status()), []);
    assert.deepStrictEqual(managedLines(status({ lookedIn: ['/x'], found: ['/x'], values: {}, overrides: [] })), []);
    assert.doesNotMatch(statusView({ phase: 'running' }, status()).tooltip, /Managed/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
