import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { atLeast, installAdvice, noPythonText } from '../../src/noPython';
import { MIN_PYTHON, PATH_CANDIDATES, ProbeResult, findPython, probePython } from '../../src/python';
import { statusView } from '../../src/status';
import { recordingLogger } from './helpers';

const FLOOR = MIN_PYTHON.join('.');

describe('no usable Python: what to install', () => {
  it('names the install for each operating system', () => {
    const win = installAdvice('win32', [3, 9]);
    assert.match(win, /https:\/\/www\.python\.org\/downloads\/windows\//);
    assert.match(win, /"py" launcher/);
    assert.match(win, /Microsoft Store/);
    const mac = installAdvice('darwin', [3, 9]);
    assert.match(mac, /xcode-select --install/);
    assert.match(mac, /\/usr\/bin\/python3 \(Python 3\.9\)/);
    assert.match(installAdvice('linux', [3, 9]), /sudo apt install python3/);
    assert.match(installAdvice('linux', [3, 9]), /dnf install python3/);
    assert.match(installAdvice('freebsd', [3, 9]), /python\.org\/downloads\//);
  });

  it('never recommends a Python below the floor: above 3.9, not the Command Line Tools', () => {
    const mac = installAdvice('darwin', [3, 10]);
    assert.doesNotMatch(mac, /xcode-select/);
    assert.match(mac, /Python 3\.10 or newer/);
    assert.match(installAdvice('linux', [3, 11]), /3\.11 or newer/);
    assert.match(installAdvice('win32', [3, 12]), /Python 3\.12 or newer/);
  });

  it('tells the user about the setting and the administrator about the managed configuration', () => {
    const text = noPythonText('linux', [3, 9]);
    assert.strictEqual(text.message, "No Python >= 3.9 found: DX Telemetry's sidecar cannot start.");
    assert.strictEqual(text.advice.length, 2);
    assert.match(text.advice[1], /dxTelemetry\.python\.interpreter/);
    assert.match(text.advice[1], /administrator .* managed configuration/);
    assert.match(text.advice[1], /reload the window/);
    assert.match(noPythonText('linux', [3, 9], '3.8.10 at /usr/bin/python3').message, /the newest here is Python 3\.8\.10 at \/usr\/bin\/python3/);
  });

  it('compares versions against a floor', () => {
    assert.ok(atLeast([3, 9, 0], [3, 9]));
    assert.ok(atLeast([4, 0], [3, 9]));
    assert.ok(!atLeast([3, 8, 20], [3, 9]));
    assert.ok(!atLeast([2, 7, 18], [3, 9]));
  });

  it('discovery gives the text for this floor, naming the newest too-old Python; the status bar shows all of it', async () => {
    const table: Record<string, ProbeResult> = {
      '/missing/python3': { error: 'not found' },
      python3: { version: [3, 6, 15], executable: '/usr/bin/python3' },
      python: { version: [3, 8, 10], executable: '/usr/local/bin/python' },
    };
    const log = recordingLogger();
    const none = await findPython({
      setting: '/missing/python3',
      pythonExtension: async () => undefined,
      pathCandidates: PATH_CANDIDATES,
      probe: async (command, args) => table[[command, ...args].join(' ')] ?? { error: 'not found' },
      log,
      platform: 'darwin',
    });
    assert.strictEqual(none.found, false);
    if (none.found) {
      return;
    }
    assert.strictEqual(none.message, `No Python >= ${FLOOR} found (the newest here is Python 3.8.10 at /usr/local/bin/python): DX Telemetry's sidecar cannot start.`);
    assert.deepStrictEqual(none.advice, noPythonText('darwin', MIN_PYTHON).advice);
    assert.ok(log.lines.some((l) => l.startsWith('warn') && l.includes('/missing/python3')), 'the unusable setting is named');
    const view = statusView({ phase: 'unavailable', detail: none.message, advice: none.advice }, undefined);
    assert.ok(view.warning);
    assert.ok(view.tooltip.includes(none.advice[0]) && view.tooltip.includes('dxTelemetry.python.interpreter'), view.tooltip);
  });

  it("names what a failing interpreter said, as macOS's python3 stub without the Command Line Tools does", async function () {
    if (process.platform === 'win32') {
      this.skip(); // a shell script stands in for the stub
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dx-stub-'));
    const stub = path.join(dir, 'python3');
    fs.writeFileSync(stub, '#!/bin/sh\necho "xcode-select: note: No developer tools were found, requesting install." >&2\nexit 1\n', { mode: 0o755 });
    try {
      const probed = await probePython(stub, []);
      assert.strictEqual(probed.error, 'exited with 1: xcode-select: note: No developer tools were found, requesting install.');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
