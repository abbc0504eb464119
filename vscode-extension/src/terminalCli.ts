// `dx-lsp-telemetry` on the PATH of integrated terminals: the launchers of cliLauncher.ts written to
// a folder under the extension's global storage, and that folder prepended to PATH through the
// extension's environment variable collection. Updated each time the sidecar's interpreter is
// found (each start and restart), so a changed interpreter is followed.
//
// The collection stays persistent (VS Code's default): terminals restored before the extension
// activates get the PATH at once, and VS Code drops the collection when the extension is
// uninstalled or disabled. The folder's path does not depend on the extension's version, and
// its launchers are rewritten at every activation, so an update leaves at most a window in
// which a launcher points at the old version's folder: it then says so instead of failing
// obscurely. Several windows share the folder; the last one started writes its interpreter,
// which any of them could use (any Python >= 3.9 runs the bundled package).
//
// In a remote window where this extension runs on the developer's machine (extensionKind "ui"),
// the terminals run on the remote host: a launcher here would be a path that does not exist
// there (and a Windows PATH separator would spoil a Linux PATH), so their PATH is left alone.

import * as fs from 'fs';
import * as path from 'path';
import { CLI_NAME, LauncherFile, LauncherSpec, launcherFiles } from './cliLauncher';
import type { Logger } from './log';
import type { LaunchProblem } from './launch';
import type { FoundPython } from './python';

/** The parts of vscode.EnvironmentVariableCollection used here. */
export interface PathCollection {
  persistent: boolean;
  description: string | { value: string } | undefined;
  prepend(variable: string, value: string): void;
  clear(): void;
}

export interface TerminalCliOptions {
  collection: PathCollection;
  /** `<globalStorage>/bin`: created when needed. */
  binDir: string;
  /** `<extension>/bundled/libs`. */
  libs: string;
  extensionVersion: string;
  log: Logger;
  /** Why this extension host's launcher cannot serve the window's terminals (terminalsAway). */
  away?: string;
  platform?: NodeJS.Platform;
  delimiter?: string;
}

export const COLLECTION_DESCRIPTION = `Puts \`${CLI_NAME}\`, DX Telemetry's command line, on the PATH (try \`${CLI_NAME} report\`).`;

/** Why the terminals have no `dx-lsp-telemetry`, or undefined when they have it. */
export type CliProblem = string | undefined;

export class TerminalCli {
  private readonly platform: NodeJS.Platform;
  private readonly delimiter: string;
  private problem: CliProblem = 'it is being set up (the extension is looking for a Python)';
  private readonly firstUpdate: Promise<void>;
  private settleFirst: () => void = () => undefined;

  constructor(private readonly options: TerminalCliOptions) {
    this.platform = options.platform ?? process.platform;
    this.delimiter = options.delimiter ?? path.delimiter;
    this.firstUpdate = new Promise((resolve) => (this.settleFirst = resolve));
  }

  /** Follows the interpreter the sidecar is about to start with; never throws. */
  update(python: FoundPython | LaunchProblem, env: NodeJS.ProcessEnv): void {
    try {
      if (this.options.away) {
        this.withdraw(this.options.away);
        return;
      }
      if ('problem' in python) {
        this.withdraw(`no Python was found (${python.problem})`);
        return;
      }
      const spec = this.spec(python, env);
      const changed = writeLauncherFiles(this.options.binDir, launcherFiles(spec, this.platform));
      const { collection } = this.options;
      collection.persistent = true;
      collection.description = COLLECTION_DESCRIPTION;
      collection.prepend('PATH', `${this.options.binDir}${this.delimiter}`);
      this.problem = undefined;
      if (changed.length) {
        this.options.log.info(`terminals: ${CLI_NAME} runs ${spec.python} (wrote ${changed.join(', ')} in ${this.options.binDir})`);
      }
    } catch (error) {
      this.withdraw(`its launcher could not be written: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.settleFirst();
    }
  }

  /** Undefined when new terminals have the command; else why not. Waits for the first update. */
  async problemNow(): Promise<CliProblem> {
    await this.firstUpdate;
    return this.problem;
  }

  private withdraw(problem: string): void {
    this.options.collection.clear();
    if (this.problem !== problem) {
      this.options.log.warn(`terminals: no ${CLI_NAME} on their PATH: ${problem}`);
    }
    this.problem = problem;
  }

  private spec(python: FoundPython, env: NodeJS.ProcessEnv): LauncherSpec {
    // the probe's sys.executable: the interpreter itself, whatever PATH or venv the terminal has
    const known = Boolean(python.executable);
    return {
      python: known ? python.executable : python.command,
      pythonArgs: known ? [] : python.args,
      libs: this.options.libs,
      binDir: this.options.binDir,
      dataHome: env.DX_TELEMETRY_HOME || undefined,
      delimiter: this.delimiter,
      join: this.platform === 'win32' ? path.win32.join : path.posix.join,
      extensionVersion: this.options.extensionVersion,
    };
  }
}

/** Undefined where terminals run beside this extension host; else why they do not. */
export function terminalsAway(remoteName: string | undefined, runsOn: 'ui' | 'workspace'): string | undefined {
  if (remoteName === undefined || runsOn === 'workspace') {
    return undefined;
  }
  return (
    `this window's terminals run on ${remoteName}, and DX Telemetry runs on this machine, where its ledger is. ` +
    "Run 'DX Telemetry: Show Usage', or install the command line on this machine (README, \"The command line\")"
  );
}

/**
 * Writes the files whose content differs, each through a temporary file and a rename: a shell
 * reads a script while it runs it, so one running in a terminal must never see it change under
 * it. Returns the names written.
 */
export function writeLauncherFiles(dir: string, files: LauncherFile[]): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const file of files) {
    const target = path.join(dir, file.name);
    if (readOrUndefined(target) === file.text && modeIs(target, file.mode)) {
      continue;
    }
    const temp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(temp, file.text, { mode: file.mode });
    fs.chmodSync(temp, file.mode); // the umask may have taken bits off
    fs.renameSync(temp, target);
    written.push(file.name);
  }
  return written;
}

/** Windows keeps no execute bits (a .cmd runs by its name): only the content counts there. */
function modeIs(file: string, mode: number): boolean {
  return process.platform === 'win32' || (fs.statSync(file).mode & 0o777) === mode;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
