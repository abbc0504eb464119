// The sidecar's Python as the editor finds it (the managed configuration's interpreter, the
// machine-scoped setting, the Python extension's interpreter in a trusted workspace, the PATH),
// for DX Telemetry and its Remote Reader alike.

import * as os from 'os';
import * as vscode from 'vscode';
import type { LaunchProblem } from './launch';
import type { Logger } from './log';
import { managedFiles, managedInterpreter } from './managed';
import { FoundPython, PATH_CANDIDATES, findPython, interpreterFromPythonExtension, probePython } from './python';
import { Inspect, expandPath, interpreterSetting } from './settings';

export async function findEditorPython(inspect: Inspect, log: Logger): Promise<FoundPython | LaunchProblem> {
  const python = await findPython({
    managed: managedPython(log),
    setting: interpreterSetting(inspect),
    // the Python extension's pick can be a workspace's own interpreter (its .venv, or a
    // workspace python.defaultInterpreterPath): never run that in a workspace not trusted
    pythonExtension: () =>
      vscode.workspace.isTrusted ? interpreterFromPythonExtension((id) => vscode.extensions.getExtension(id)) : Promise.resolve(undefined),
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
  return { problem: python.message, advice: python.advice };
}

/** The managed configuration's interpreter (read at each start), its problems logged. */
function managedPython(log: Logger): string | undefined {
  const managed = managedInterpreter(managedFiles(process.platform, process.env));
  for (const problem of managed.problems) {
    log.warn(`managed configuration: ${problem}`);
  }
  if (!managed.path) {
    return undefined;
  }
  log.info(`managed configuration: the sidecar's Python is ${managed.path} (python.interpreter in ${managed.from ?? '?'})`);
  return expandPath(managed.path, process.env, os.homedir());
}
