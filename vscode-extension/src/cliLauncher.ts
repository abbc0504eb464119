// The text of the `dx-lsp-telemetry` launchers that integrated terminals find on their PATH (see
// terminalCli.ts): a POSIX sh script, a Windows .cmd and the small Python file both run. They run
// the extension's bundled sidecar package as its command line, with the interpreter the extension
// found and the environment the sidecar gets (the bundled libs first on PYTHONPATH, PYTHONUTF8=1),
// minus the token: a terminal user exports DX_DATA_CLOUD_TOKEN where a push needs it.
//
// Not `python -m`: that puts the shell's working folder first on sys.path, so a workspace holding
// a `dx_lsp_telemetry/` or `httpx/` folder would run its own code in place of the bundled one (the
// sidecar avoids it with the bundled folder as cwd, which a CLI cannot use: its relative paths are
// the user's). A script's folder is sys.path[0] instead, and the launchers' folder holds nothing
// importable.

export const CLI_NAME = 'dx-lsp-telemetry';
/** Hyphens: not a module name, so sys.path[0] (its folder) offers nothing to `import`. */
export const RUNNER_NAME = 'dx-lsp-telemetry-run.py';
const MODULE = 'dx_lsp_telemetry';
/** The CLI's own code for bad configuration (`dx-lsp-telemetry --help`): a launcher that cannot run is one. */
const CANNOT_RUN = 2;

export interface LauncherSpec {
  /** The interpreter: an absolute path where one is known (the probe's sys.executable). */
  python: string;
  /** Arguments before the script (only for a command such as `py -3` whose executable is unknown). */
  pythonArgs: string[];
  /** `<extension>/bundled/libs`. */
  libs: string;
  /** The folder the launchers are written to (on the terminals' PATH). */
  binDir: string;
  /** The sidecar's DX_TELEMETRY_HOME, if the editor has one: the terminal's own wins. */
  dataHome?: string;
  /** PYTHONPATH's separator on the platform the Python runs on. */
  delimiter: string;
  /** Joins binDir and a file name, for the platform the launchers run on. */
  join: (dir: string, name: string) => string;
  /** For the launchers' header: which extension wrote them. */
  extensionVersion: string;
}

export interface LauncherFile {
  name: string;
  text: string;
  /** 0o755 for what a shell executes. */
  mode: number;
}

/** One sh word holding exactly `value` (single quotes; a quote inside becomes '\''). */
export function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The text inside a double-quoted word of a .cmd file: `%` doubled (a batch file would expand
 * it). A double quote or a line break cannot be written there; Windows paths have neither, so
 * a value with one is refused rather than written wrong.
 */
export function cmdQuoted(value: string): string {
  if (/["\r\n]/.test(value)) {
    throw new Error(`${JSON.stringify(value)} cannot be written in a .cmd file (it holds a double quote or a line break)`);
  }
  return value.replace(/%/g, '%%');
}

function header(prefix: string, spec: LauncherSpec): string[] {
  return [
    `${prefix} ${CLI_NAME}: the command line of the DX Telemetry extension ${spec.extensionVersion}, for its`,
    `${prefix} integrated terminals. The extension writes this file each time it starts (edits are lost).`,
    `${prefix} No token is kept here: set DX_DATA_CLOUD_TOKEN in the shell when a push needs one.`,
  ];
}

const GONE =
  'the DX Telemetry extension that wrote this launcher is not installed there any more (updated or uninstalled). ' +
  'Run it again once the extension has started; outside VS Code, install the command line from its wheel (README, "The command line").';
const NO_PYTHON = 'the Python this launcher runs is gone. Reload the VS Code window: the DX Telemetry extension then looks for a Python again.';

export function shLauncher(spec: LauncherSpec): string {
  const lines = [
    '#!/bin/sh',
    ...header('#', spec),
    `libs=${shQuote(spec.libs)}`,
    `python=${shQuote(spec.python)}`,
    `if [ ! -d "$libs/${MODULE}" ]; then`,
    `  printf '%s: %s: %s\\n' ${CLI_NAME} "$libs" ${shQuote(GONE)} >&2`,
    `  exit ${CANNOT_RUN}`,
    'fi',
  ];
  if (isAbsolutePath(spec.python)) {
    lines.push(
      'if [ ! -x "$python" ]; then',
      `  printf '%s: %s: %s\\n' ${CLI_NAME} "$python" ${shQuote(NO_PYTHON)} >&2`,
      `  exit ${CANNOT_RUN}`,
      'fi',
    );
  }
  lines.push(
    `PYTHONPATH="$libs\${PYTHONPATH:+${spec.delimiter}$PYTHONPATH}"`,
    'PYTHONUTF8=1',
    'export PYTHONPATH PYTHONUTF8',
  );
  if (spec.dataHome) {
    lines.push(`if [ -z "\${DX_TELEMETRY_HOME:-}" ]; then DX_TELEMETRY_HOME=${shQuote(spec.dataHome)}; export DX_TELEMETRY_HOME; fi`);
  }
  const args = spec.pythonArgs.map(shQuote).join(' ');
  lines.push(`exec "$python" ${args ? `${args} ` : ''}${shQuote(spec.join(spec.binDir, RUNNER_NAME))} "$@"`);
  return `${lines.join('\n')}\n`;
}

export function cmdLauncher(spec: LauncherSpec): string {
  const lines = [
    '@echo off',
    ...header('rem', spec),
    // `!` in a path is literal only without delayed expansion, which a registry setting may turn on
    'setlocal DisableDelayedExpansion',
    `set "DXT_LIBS=${cmdQuoted(spec.libs)}"`,
    `set "DXT_PYTHON=${cmdQuoted(spec.python)}"`,
    `if not exist "%DXT_LIBS%\\${MODULE}\\" goto gone`,
  ];
  if (isAbsolutePath(spec.python)) {
    lines.push('if not exist "%DXT_PYTHON%" goto nopython');
  }
  // two plain lines, not an if/else block: a `)` in the PYTHONPATH (Program Files (x86)) would end it
  lines.push(
    `if defined PYTHONPATH set "PYTHONPATH=%DXT_LIBS%${spec.delimiter}%PYTHONPATH%"`,
    'if not defined PYTHONPATH set "PYTHONPATH=%DXT_LIBS%"',
    'set "PYTHONUTF8=1"',
  );
  if (spec.dataHome) {
    lines.push(`if not defined DX_TELEMETRY_HOME set "DX_TELEMETRY_HOME=${cmdQuoted(spec.dataHome)}"`);
  }
  const args = spec.pythonArgs.map((a) => `"${cmdQuoted(a)}"`).join(' ');
  lines.push(
    `"%DXT_PYTHON%" ${args ? `${args} ` : ''}"${cmdQuoted(spec.join(spec.binDir, RUNNER_NAME))}" %*`,
    'exit /b %ERRORLEVEL%',
    ':gone',
    `>&2 echo ${CLI_NAME}: "%DXT_LIBS%": ${cmdEcho(GONE)}`,
    `exit /b ${CANNOT_RUN}`,
    ':nopython',
    `>&2 echo ${CLI_NAME}: "%DXT_PYTHON%": ${cmdEcho(NO_PYTHON)}`,
    `exit /b ${CANNOT_RUN}`,
  );
  return `${lines.join('\r\n')}\r\n`;
}

/** What both launchers run: the package's `__main__`, as `-m` would, with no working folder on sys.path. */
export function runnerScript(spec: LauncherSpec): string {
  return [
    ...header('#', spec),
    'import runpy',
    '',
    `runpy.run_module(${JSON.stringify(MODULE)}, run_name="__main__", alter_sys=True)`,
    '',
  ].join('\n');
}

/** The files of the launcher folder: the .cmd only where cmd.exe runs it. */
export function launcherFiles(spec: LauncherSpec, platform: NodeJS.Platform): LauncherFile[] {
  const files: LauncherFile[] = [
    { name: CLI_NAME, text: shLauncher(spec), mode: 0o755 },
    { name: RUNNER_NAME, text: runnerScript(spec), mode: 0o644 },
  ];
  if (platform === 'win32') {
    files.push({ name: `${CLI_NAME}.cmd`, text: cmdLauncher(spec), mode: 0o755 });
  }
  return files;
}

/** An echo line: the quotes of the message out (they would show), and the characters cmd acts on escaped. */
function cmdEcho(text: string): string {
  return text.replace(/"/g, '').replace(/[\^&|<>()]/g, (c) => `^${c}`);
}

function isAbsolutePath(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}
