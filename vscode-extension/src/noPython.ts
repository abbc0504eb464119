// What to tell someone on whose machine no usable Python was found: what to install on their
// operating system, and how a setting or their administrator points the extension at one. The
// floor is passed in (python.ts owns it), so the advice never names a Python that is too old.

export type Version = readonly number[];

/** True when `version` (major, minor, ...) is at or above `floor` (major, minor). */
export function atLeast(version: Version, floor: Version): boolean {
  const [major, minor] = version;
  return major > floor[0] || (major === floor[0] && minor >= floor[1]);
}

/** macOS's Command Line Tools ship /usr/bin/python3 at this version (macOS 12 to 15). */
const MACOS_SYSTEM_PYTHON: Version = [3, 9];

/** One line: what to install on `platform` to get a Python >= `floor`. */
export function installAdvice(platform: NodeJS.Platform, floor: Version): string {
  const f = floor.join('.');
  switch (platform) {
    case 'win32':
      return (
        `Install Python ${f} or newer from https://www.python.org/downloads/windows/ : its installer also installs the ` +
        '"py" launcher, which DX Telemetry finds with no setting (the "python" that opens the Microsoft Store is not a Python).'
      );
    case 'darwin':
      return atLeast(MACOS_SYSTEM_PYTHON, floor)
        ? `Run "xcode-select --install": Apple's Command Line Tools include /usr/bin/python3 (Python ${MACOS_SYSTEM_PYTHON.join('.')}). ` +
            'Or install Python from https://www.python.org/downloads/macos/ .'
        : `Install Python ${f} or newer from https://www.python.org/downloads/macos/ (the Command Line Tools' /usr/bin/python3 is older).`;
    case 'linux':
      return `Install python3 (${f} or newer) with the system's package manager: "sudo apt install python3" on Debian and Ubuntu, "sudo dnf install python3" on Fedora and RHEL.`;
    default:
      return `Install Python ${f} or newer from https://www.python.org/downloads/ .`;
  }
}

export interface NoPythonText {
  /** One line: what is wrong (the status, the error other extensions' calls get). */
  message: string;
  /** One line each: what to do (the status bar tooltip and the log). */
  advice: string[];
}

/**
 * Why the sidecar cannot start and what to do. `tooOld` is the newest interpreter found that is
 * below the floor, if any ("3.8.10 at /usr/bin/python3"): then it is an upgrade, not an install.
 */
export function noPythonText(platform: NodeJS.Platform, floor: Version, tooOld?: string): NoPythonText {
  const f = floor.join('.');
  return {
    message: `No Python >= ${f} found${tooOld ? ` (the newest here is Python ${tooOld})` : ''}: DX Telemetry's sidecar cannot start.`,
    advice: [
      installAdvice(platform, floor),
      `Or set dxTelemetry.python.interpreter (user settings, or the Remote settings of a remote window) to the path of a Python >= ${f}; ` +
        'an administrator can set that interpreter for every user of the machine in DX Telemetry\'s managed configuration. ' +
        'The sidecar\'s packages are bundled: any plain Python works. Then reload the window.',
    ],
  };
}
