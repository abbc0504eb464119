import * as assert from 'assert';
import {
  MIN_PYTHON,
  PATH_CANDIDATES,
  ProbeResult,
  findPython,
  interpreterFromPythonExtension,
  isSupported,
  parseProbeOutput,
  probePython,
} from '../../src/python';
import { recordingLogger } from './helpers';

/** A fake machine: command -> what probing it gives. */
function machine(table: Record<string, ProbeResult>) {
  const probed: string[] = [];
  const probe = async (command: string, args: string[]) => {
    const key = [command, ...args].join(' ');
    probed.push(key);
    return table[key] ?? { error: 'not found' };
  };
  return { probe, probed };
}

const ok = (v: [number, number, number], exe: string): ProbeResult => ({ version: v, executable: exe });

describe('python discovery', () => {
  it('uses the dxTelemetry.python.interpreter setting first', async () => {
    const m = machine({ '/opt/py/bin/python': ok([3, 12, 1], '/opt/py/bin/python'), python3: ok([3, 11, 7], '/usr/bin/python3') });
    const found = await findPython({
      setting: '/opt/py/bin/python',
      pythonExtension: async () => '/ext/python',
      pathCandidates: PATH_CANDIDATES,
      probe: m.probe,
      log: recordingLogger(),
    });
    assert.ok(found.found);
    assert.strictEqual(found.command, '/opt/py/bin/python');
    assert.strictEqual(found.source, 'setting');
    assert.deepStrictEqual(m.probed, ['/opt/py/bin/python']);
  });

  it('then the Python extension, then python3, python, py -3 on the PATH, in that order', async () => {
    const m = machine({ 'py -3': ok([3, 13, 0], 'C:\\Python313\\python.exe') });
    const log = recordingLogger();
    const found = await findPython({ setting: '', pythonExtension: async () => '/ext/python', pathCandidates: PATH_CANDIDATES, probe: m.probe, log });
    assert.deepStrictEqual(m.probed, ['/ext/python', 'python3', 'python', 'py -3']);
    assert.ok(found.found);
    assert.strictEqual(found.command, 'py');
    assert.deepStrictEqual(found.args, ['-3']);
    assert.strictEqual(found.executable, 'C:\\Python313\\python.exe');
  });

  it('prefers the Python extension over PATH when the setting is empty', async () => {
    const m = machine({ '/venv/bin/python': ok([3, 10, 0], '/venv/bin/python'), python3: ok([3, 12, 0], '/usr/bin/python3') });
    const found = await findPython({ setting: '', pythonExtension: async () => '/venv/bin/python', pathCandidates: PATH_CANDIDATES, probe: m.probe, log: recordingLogger() });
    assert.ok(found.found);
    assert.strictEqual(found.source, 'python-extension');
  });

  it('skips interpreters older than 3.9 and an unusable setting, saying so in the log', async () => {
    const m = machine({ '/old/python': ok([3, 8, 18], '/old/python'), python3: ok([3, 8, 10], '/usr/bin/python3'), python: ok([3, 9, 6], '/usr/bin/python') });
    const log = recordingLogger();
    const found = await findPython({ setting: '/old/python', pythonExtension: async () => undefined, pathCandidates: PATH_CANDIDATES, probe: m.probe, log });
    assert.ok(found.found);
    assert.strictEqual(found.command, 'python');
    assert.deepStrictEqual(found.version, [3, 9, 6]); // macOS's /usr/bin/python3
    assert.ok(log.lines.some((l) => l.startsWith('warn') && l.includes('/old/python') && l.includes('3.8.18')), log.lines.join('\n'));
  });

  it('explains clearly when there is no usable Python at all', async () => {
    const m = machine({ python3: ok([3, 6, 15], '/usr/bin/python3') });
    const found = await findPython({
      setting: '',
      pythonExtension: async () => {
        throw new Error('extension API broke');
      },
      pathCandidates: PATH_CANDIDATES,
      probe: m.probe,
      log: recordingLogger(),
    });
    assert.strictEqual(found.found, false);
    if (!found.found) {
      assert.match(found.message, /No Python >= 3\.9 found/);
      assert.match(found.advice.join('\n'), /dxTelemetry\.python\.interpreter/);
      assert.ok(found.tried.some((t) => t.includes('3.6.15')));
      assert.ok(found.tried.some((t) => t.includes('extension API broke')));
      assert.ok(found.tried.some((t) => t.startsWith('py -3') && t.includes('not found')));
    }
  });

  it('compares versions correctly', () => {
    assert.deepStrictEqual(MIN_PYTHON, [3, 9]);
    assert.ok(isSupported([3, 9, 0]));
    assert.ok(isSupported([3, 10, 0]));
    assert.ok(isSupported([3, 14, 2]));
    assert.ok(isSupported([4, 0, 0]));
    assert.ok(!isSupported([3, 8, 99]));
    assert.ok(!isSupported([2, 7, 18]));
  });

  it('parses the probe output, ignoring noise before the last line', () => {
    assert.deepStrictEqual(parseProbeOutput('warning: x\n{"v": [3, 11, 7], "exe": "/usr/bin/python3"}\n'), {
      version: [3, 11, 7],
      executable: '/usr/bin/python3',
    });
    assert.ok(parseProbeOutput('Python was not found; run without arguments to install from the Microsoft Store').error);
  });

  it('probes a real interpreter on this machine, and reports a missing one', async function () {
    this.timeout(20_000);
    const real = await probePython('python3', []);
    assert.ok(real.version, JSON.stringify(real));
    assert.ok(isSupported(real.version!), `python3 here is ${real.version!.join('.')}`);
    const missing = await probePython('/nonexistent/python3', []);
    assert.strictEqual(missing.error, 'not found');
  });
});

describe("the Python extension's interpreter (optional)", () => {
  it('is not needed: no extension, no interpreter from it', async () => {
    assert.strictEqual(await interpreterFromPythonExtension(() => undefined), undefined);
  });

  it('activates the extension and resolves its active environment', async () => {
    let activated = false;
    const api = {
      environments: {
        getActiveEnvironmentPath: () => ({ path: '/home/u/.venv' }),
        resolveEnvironment: async (e: { path?: string }) => ({ executable: { uri: { fsPath: `${e.path}/bin/python` } } }),
      },
    };
    const ext = {
      isActive: false,
      exports: undefined as unknown,
      activate: () => {
        activated = true;
        return Promise.resolve(api);
      },
    };
    const got = await interpreterFromPythonExtension((id) => (id === 'ms-python.python' ? ext : undefined));
    assert.ok(activated);
    assert.strictEqual(got, '/home/u/.venv/bin/python');
  });

  it('falls back to the legacy execution details API', async () => {
    const ext = { isActive: true, exports: { settings: { getExecutionDetails: () => ({ execCommand: ['/usr/bin/python3.12'] }) } }, activate: () => Promise.resolve(undefined) };
    assert.strictEqual(await interpreterFromPythonExtension(() => ext), '/usr/bin/python3.12');
  });
});
