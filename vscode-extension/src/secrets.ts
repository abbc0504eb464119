// The DX API token: kept in SecretStorage only. When SecretStorage holds none, a
// DX_DATA_CLOUD_TOKEN inherited by the editor (managed machines) is used. The token reaches the
// sidecar only through its environment; it is never written to settings, logs, argv or LSP.

import type * as vscode from 'vscode';
import { TOKEN_ENV } from './launch';

export const TOKEN_SECRET_KEY = 'dxTelemetry.apiToken';

export type TokenSource = 'secretStorage' | 'environment' | 'none';

export interface EffectiveToken {
  token: string | undefined;
  source: TokenSource;
}

export class TokenStore {
  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly inherited: string | undefined = process.env[TOKEN_ENV],
  ) {}

  async effective(): Promise<EffectiveToken> {
    let stored: string | undefined;
    try {
      stored = await this.secrets.get(TOKEN_SECRET_KEY);
    } catch {
      stored = undefined; // no keychain: behave as if none is stored
    }
    if (stored) {
      return { token: stored, source: 'secretStorage' };
    }
    const inherited = this.inherited?.trim();
    return inherited ? { token: inherited, source: 'environment' } : { token: undefined, source: 'none' };
  }

  async set(token: string): Promise<void> {
    await this.secrets.store(TOKEN_SECRET_KEY, token.trim());
  }

  async clear(): Promise<void> {
    await this.secrets.delete(TOKEN_SECRET_KEY);
  }

  /** Fires when the stored token changes (in this window or another one). */
  onDidChange(listener: () => void): vscode.Disposable {
    return this.secrets.onDidChange((e) => {
      if (e.key === TOKEN_SECRET_KEY) {
        listener();
      }
    });
  }
}

/** The input box's check: a token is one word of printable characters. */
export function validateToken(value: string): string | undefined {
  const v = value.trim();
  if (!v) {
    return 'Paste the DX Data Cloud API token';
  }
  if (/\s/.test(v)) {
    return 'A token has no spaces or line breaks';
  }
  if (v.length > 4096) {
    return 'That is too long for a token';
  }
  return undefined;
}
