// The sidecar's Python as the editor finds it (the machine-scoped setting, the Python
// extension's interpreter, the PATH), for DX Telemetry and its Remote Reader alike.

import * as vscode from 'vscode';
import type { LaunchProblem } from './launch';
import type { Logger } from './log';
import { FoundPython, PATH_CANDIDATES, findPython, interpreterFromPythonExtension, probePython } from './python';
import { ConfigurationReader, interpreterSetting } from './settings';

export async function findEditorPython(read: ConfigurationReader, log: Logger): Promise<FoundPython | LaunchProblem> {
  const python = await findPython({
    setting: interpreterSetting(read),
    pythonExtension: () => interpreterFromPythonExtension((id) => vscode.extensions.getExtension(id)),
    pathCandidates: PATH_CANDIDATES,
    probe: probePython,
    log,
  });
  if (python.found) {
    return python;
  }
  for (const line of python.tried) {
    log.info(`  tried ${line}`);
  }
  return { problem: python.message };
}
