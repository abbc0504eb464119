// One LogOutputChannel ("DX Telemetry") for the extension, the language client and the
// sidecar's stderr; every string written to it passes through a Redactor that masks the token.

import type * as vscode from 'vscode';

export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const REDACTED = '[DX token]';

/** Masks every known secret (the API token) in text on its way to a log. */
export class Redactor {
  private readonly secrets = new Set<string>();

  setSecret(secret: string | undefined): void {
    this.secrets.clear();
    if (secret && secret.length >= 4) {
      this.secrets.add(secret);
    }
  }

  clean(text: string): string {
    let out = text;
    for (const secret of this.secrets) {
      out = out.split(secret).join(REDACTED);
    }
    return out;
  }
}

const WRITERS = new Set(['append', 'appendLine', 'replace', 'trace', 'debug', 'info', 'warn', 'error']);

/** The same channel, with the Redactor applied to every string written to it. */
export function redactingChannel(
  channel: vscode.LogOutputChannel,
  redactor: Redactor,
): vscode.LogOutputChannel {
  return new Proxy(channel, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') {
        return value;
      }
      const fn = value as (...args: unknown[]) => unknown;
      if (typeof prop === 'string' && WRITERS.has(prop)) {
        return (...args: unknown[]) =>
          fn.apply(
            target,
            args.map((a) => (typeof a === 'string' ? redactor.clean(a) : a instanceof Error ? redactor.clean(a.message) : a)),
          );
      }
      return fn.bind(target);
    },
  });
}

export function channelLogger(channel: vscode.LogOutputChannel): Logger {
  return {
    trace: (m) => channel.trace(m),
    debug: (m) => channel.debug(m),
    info: (m) => channel.info(m),
    warn: (m) => channel.warn(m),
    error: (m) => channel.error(m),
  };
}

const SIDECAR_LOG_LINE =
  /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) dx_lsp_telemetry[.:\w]*:/;

/**
 * Whether a line of the sidecar's stderr belongs in the log. Once the sidecar is initialized it
 * forwards its own package's records through window/logMessage, so their stderr copies are
 * dropped; everything else (tracebacks, warnings of other libraries, start-up failures) is kept.
 */
export function keepStderrLine(line: string, forwarding: boolean): boolean {
  if (line.trim() === '') {
    return false;
  }
  return !(forwarding && SIDECAR_LOG_LINE.test(line));
}
