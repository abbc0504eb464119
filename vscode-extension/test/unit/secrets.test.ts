import * as assert from 'assert';
import type * as vscode from 'vscode';
import { TOKEN_SECRET_KEY, TokenStore, validateToken } from '../../src/secrets';
import { EventEmitter } from './vscode-mock';

class FakeSecrets {
  values = new Map<string, string>();
  changes = new EventEmitter<{ key: string }>();
  onDidChange = this.changes.event;
  async get(key: string) {
    return this.values.get(key);
  }
  async store(key: string, value: string) {
    this.values.set(key, value);
    this.changes.fire({ key });
  }
  async delete(key: string) {
    this.values.delete(key);
    this.changes.fire({ key });
  }
}

describe('API token', () => {
  it('prefers secret storage, then an inherited DX_DATA_CLOUD_TOKEN, else none', async () => {
    const secrets = new FakeSecrets();
    const store = new TokenStore(secrets as unknown as vscode.SecretStorage, ' from-env ');
    assert.deepStrictEqual(await store.effective(), { token: 'from-env', source: 'environment' });
    await store.set('  stored-token\n');
    assert.deepStrictEqual(await store.effective(), { token: 'stored-token', source: 'secretStorage' });
    await store.clear();
    assert.deepStrictEqual(await store.effective(), { token: 'from-env', source: 'environment' });
    const bare = new TokenStore(secrets as unknown as vscode.SecretStorage, undefined);
    assert.deepStrictEqual(await bare.effective(), { token: undefined, source: 'none' });
  });

  it('reports changes of its own key only', async () => {
    const secrets = new FakeSecrets();
    const store = new TokenStore(secrets as unknown as vscode.SecretStorage, undefined);
    let changes = 0;
    store.onDidChange(() => (changes += 1));
    await secrets.store('someone.else', 'x');
    assert.strictEqual(changes, 0);
    await store.set('t');
    assert.strictEqual(changes, 1);
    assert.strictEqual(secrets.values.get(TOKEN_SECRET_KEY), 't');
  });

  it('validates what is typed in the password box', () => {
    assert.ok(validateToken(''));
    assert.ok(validateToken('two words'));
    assert.strictEqual(validateToken(' abc.DEF-123 '), undefined);
  });
});
