import * as assert from 'assert';
import { jsonEdits, parseJsonConfig } from '../../src/jsonConfig';
import { unifiedDiff } from '../../src/lineDiff';
import { applySequential } from '../../src/textEdit';
import { inlineValue, otelExporterEdits, otelExporterOf, parseTomlConfig } from '../../src/tomlConfig';

const CLAUDE_ENV: Array<[string, string]> = [
  ['CLAUDE_CODE_ENABLE_TELEMETRY', '1'],
  ['OTEL_LOGS_EXPORTER', 'otlp'],
  ['OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json'],
  ['OTEL_EXPORTER_OTLP_ENDPOINT', 'http://127.0.0.1:4319'],
];

/** settings.json files as people keep them: comments, tabs, CRLF, one line, trailing commas, none at all. */
const JSON_FILES: Record<string, string> = {
  empty: '',
  blank: '  \n',
  'empty object': '{}',
  compact: '{"model":"opus","permissions":{"allow":["Bash(ls)"]}}',
  tabs: '{\n\t"model": "opus",\n\t"env": {\n\t\t"FOO": "bar"\n\t}\n}\n',
  crlf: '{\r\n    "model": "opus",\r\n    "env": {}\r\n}\r\n',
  comments:
    '{\n  // my Claude settings\n  "model": "opus", // the big one\n  "env": {\n    "ANTHROPIC_API_KEY": "sk-ant-secret", // keep me\n    /* proxy */ "HTTPS_PROXY": "http://proxy:3128"\n  },\n  "hooks": {}\n}\n',
  'trailing commas': '{\n  "env": {\n    "A": "1",\n  },\n  "z": [1, 2,],\n}',
  'no final newline': '{\n  "env": {\n    "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318"\n  }\n}',
  'ours partly there': '{\n  "env": {\n    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",\n    "OTEL_LOGS_EXPORTER": "console"\n  }\n}\n',
  'empty env on two lines': '{\n  "env": {\n  },\n  "x": "ünïcødé ✓"\n}\n',
  'env on one line': '{\n  "env": { "A": "1" },\n  "b": true\n}\n',
};

describe('JSON settings edits (Claude Code, Gemini CLI)', () => {
  for (const [name, original] of Object.entries(JSON_FILES)) {
    it(`${name}: sets exactly our keys, keeps the rest, and the undo gives back the original bytes`, () => {
      const before = parseJsonConfig(original, 'settings.json');
      assert.ok(before.ok, name);
      const applied = applySequential(original, jsonEdits(original, 'env', CLAUDE_ENV));
      const after = parseJsonConfig(applied.text, 'settings.json');
      assert.ok(after.ok, `${name}: ${applied.text}`);
      const expected = JSON.parse(JSON.stringify(before.value)) as Record<string, Record<string, unknown>>;
      expected.env = { ...(expected.env ?? {}), ...Object.fromEntries(CLAUDE_ENV) };
      assert.deepStrictEqual(after.value, expected);
      assert.strictEqual(applySequential(applied.text, applied.undo).text, original, `${name}: undo is byte-exact`);
      // the undo holds only what was replaced, never the neighbouring text (e.g. an API key)
      assert.ok(!JSON.stringify(applied.undo).includes('sk-ant-secret'), `${name}: undo carries no neighbouring text`);
    });
  }

  it('keeps every comment and the line endings, indentation and key order of the file', () => {
    const original = JSON_FILES.comments;
    const text = applySequential(original, jsonEdits(original, 'env', CLAUDE_ENV)).text;
    for (const kept of ['// my Claude settings', '// the big one', '"ANTHROPIC_API_KEY": "sk-ant-secret", // keep me', '/* proxy */ "HTTPS_PROXY": "http://proxy:3128"', '"hooks": {}']) {
      assert.ok(text.includes(kept), kept);
    }
    assert.ok(text.includes('\n    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",\n'), text);
    assert.ok(text.startsWith('{\n  // my Claude settings\n  "model": "opus", // the big one\n  "env": {\n'), text);
    const tabs = applySequential(JSON_FILES.tabs, jsonEdits(JSON_FILES.tabs, 'env', CLAUDE_ENV)).text;
    assert.ok(tabs.includes('\n\t\t"OTEL_LOGS_EXPORTER": "otlp",\n') && !/\n +"/.test(tabs), tabs);
    const crlf = applySequential(JSON_FILES.crlf, jsonEdits(JSON_FILES.crlf, 'env', CLAUDE_ENV)).text;
    assert.ok(!/[^\r]\n/.test(crlf), `only CRLF line endings: ${JSON.stringify(crlf)}`);
    const compact = applySequential(JSON_FILES.compact, jsonEdits(JSON_FILES.compact, 'env', CLAUDE_ENV)).text;
    assert.ok(compact.startsWith('{"model":"opus","permissions":{"allow":["Bash(ls)"]}, "env": {') && !compact.includes('\n'), compact);
  });

  it('creates the group in a new file, and removes keys (and a group it created) again', () => {
    const created = applySequential('', jsonEdits('', 'telemetry', [['enabled', true], ['target', 'local']])).text;
    assert.strictEqual(created, '{\n  "telemetry": {\n    "enabled": true,\n    "target": "local"\n  }\n}\n');
    const removed = applySequential(created, jsonEdits(created, 'telemetry', [['enabled', undefined], ['target', undefined]], true)).text;
    assert.deepStrictEqual(parseJsonConfig(removed, 'x'), { ok: true, value: {} });
    const withOther = '{\n  "env": {\n    "A": "1", // mine\n    "OTEL_LOGS_EXPORTER": "otlp"\n  }\n}\n';
    assert.strictEqual(applySequential(withOther, jsonEdits(withOther, 'env', [['OTEL_LOGS_EXPORTER', undefined]], true)).text, '{\n  "env": {\n    "A": "1" // mine\n  }\n}\n');
  });

  it('reports a malformed file with where it is wrong, and a group that is not an object', () => {
    const bad = parseJsonConfig('{\n  "env": {\n    "A": "1"\n  \n', 'settings.json');
    assert.strictEqual(bad.ok, false);
    assert.match((bad as { error: string }).error, /^settings\.json is not valid JSON \(line \d+, column \d+: \w+\)$/);
    assert.deepStrictEqual(parseJsonConfig('[1, 2]', 'settings.json'), { ok: false, error: 'settings.json does not hold a JSON object' });
    assert.throws(() => jsonEdits('{"env": "x"}', 'env', CLAUDE_ENV), /"env" is not an object/);
  });
});

const EXPORTER = { 'otlp-http': { endpoint: 'http://127.0.0.1:4319/v1/logs', protocol: 'json' } };
const OURS = 'exporter = { otlp-http = { endpoint = "http://127.0.0.1:4319/v1/logs", protocol = "json" } }';

const TOML_FILES: Record<string, string> = {
  empty: '',
  'no otel': '# Codex\nmodel = "gpt-5" # mine\n\n[model_providers.fake]\nbase_url = "http://127.0.0.1:9/v1"\n',
  'no final newline': 'model = "o3"',
  'otel without exporter': 'model = "o3"\n\n[otel]\nenvironment = "dev" # env\nlog_user_prompt = false\n\n[profiles.x]\nmodel = "a"\n',
  'exporter none, commented': '[otel]\nexporter = "none"   # off for now\ntrace_exporter = "none"\n',
  'another exporter': '[otel]\nexporter = { otlp-http = { endpoint = "https://collector.example/v1/logs", protocol = "binary" } }\n',
  crlf: 'model = "o3"\r\n\r\n[otel]\r\nenvironment = "ci"\r\n',
  'lookalikes in strings and arrays': 'notes = """\n[otel]\nexporter = "x"\n"""\nmatrix = [\n  [1, 2], # [otel]\n]\n',
};

describe("Codex's config.toml [otel] edit", () => {
  for (const [name, original] of Object.entries(TOML_FILES)) {
    it(`${name}: sets exporter only, everything else byte for byte, undone exactly`, () => {
      const before = parseTomlConfig(original, 'config.toml');
      assert.ok(before.ok, name);
      const planned = otelExporterEdits(original, EXPORTER);
      assert.ok('edits' in planned, `${name}: ${JSON.stringify(planned)}`);
      const applied = applySequential(original, planned.edits);
      const after = parseTomlConfig(applied.text, 'config.toml');
      assert.ok(after.ok, applied.text);
      assert.deepStrictEqual(otelExporterOf(after.value), EXPORTER);
      const rest = (v: Record<string, unknown>) => JSON.stringify({ ...v, otel: { ...(v.otel as object), exporter: undefined } });
      assert.strictEqual(rest(after.value), rest(before.value), `${name}: nothing else changed`);
      assert.ok(applied.text.includes(OURS), applied.text);
      assert.strictEqual(applySequential(applied.text, applied.undo).text, original, `${name}: undo is byte-exact`);
      // every line of the original is still there, in order
      const lines = original.split('\n');
      let at = 0;
      for (const line of lines.filter((l) => !/^exporter = /.test(l))) {
        at = applied.text.indexOf(line, at);
        assert.ok(at >= 0, `${name}: kept ${JSON.stringify(line)}`);
      }
    });
  }

  it('replaces only the value of an existing exporter, keeping its comment', () => {
    const text = applySequential(TOML_FILES['exporter none, commented'], (otelExporterEdits(TOML_FILES['exporter none, commented'], EXPORTER) as { edits: never[] }).edits).text;
    assert.strictEqual(text, `[otel]\n${OURS}   # off for now\ntrace_exporter = "none"\n`);
    const appended = applySequential(TOML_FILES['no otel'], (otelExporterEdits(TOML_FILES['no otel'], EXPORTER) as { edits: never[] }).edits).text;
    assert.strictEqual(appended, `${TOML_FILES['no otel']}\n[otel]\n${OURS}\n`);
  });

  it('leaves layouts it does not edit to the developer, and reports malformed TOML', () => {
    for (const text of ['otel.exporter = "none"\n', 'otel = { exporter = "none" }\n', '[otel.exporter.otlp-http]\nendpoint = "x"\n', '[otel]\nexporter.otlp-http.endpoint = "x"\n']) {
      const planned = otelExporterEdits(text, EXPORTER);
      assert.ok('manual' in planned, text);
    }
    const bad = otelExporterEdits('[otel\nexporter = 1\n', EXPORTER);
    assert.ok('manual' in bad && /config\.toml is not valid TOML/.test(bad.manual), JSON.stringify(bad));
  });

  it('removes an exporter it set, and the table it added', () => {
    const added = applySequential(TOML_FILES['no otel'], (otelExporterEdits(TOML_FILES['no otel'], EXPORTER) as { edits: never[] }).edits).text;
    const edited = added.replace('model = "gpt-5"', 'model = "gpt-5.1"'); // the developer changed something since
    const removed = otelExporterEdits(edited, undefined);
    assert.ok('edits' in removed);
    assert.strictEqual(applySequential(edited, removed.edits).text, TOML_FILES['no otel'].replace('model = "gpt-5"', 'model = "gpt-5.1"'));
    assert.strictEqual(inlineValue({ a: 'x', 'b c': [1, true] }), '{ a = "x", "b c" = [1, true] }');
  });
});

describe('the preview diff', () => {
  it('shows changed lines with context and line numbers', () => {
    const before = 'a\nb\nc\nd\ne\nf\ng\nh\n';
    const after = 'a\nb\nc\nD\ne\nf\ng\nh\ni\n';
    assert.deepStrictEqual(unifiedDiff(before, after, 1), ['@@ -3,3 +3,3 @@', ' c', '-d', '+D', ' e', '@@ -8,1 +8,2 @@', ' h', '+i']);
    assert.deepStrictEqual(unifiedDiff('', 'x\n'), ['@@ -0,0 +1,1 @@', '+x']);
    assert.deepStrictEqual(unifiedDiff('same\n', 'same\n'), []);
  });
});
