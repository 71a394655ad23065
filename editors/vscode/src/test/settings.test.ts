// Settings → initializationOptions (node --test).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';

import { initializationOptions, type Settings } from '../settings';

const base: Settings = { path: '', mode: 'companion', companionLanguages: null, model: '', changes: 'propose', settings: {} };

test('companion mode declares the editor languages; the dedicated settings win over tack.settings', () => {
  const options = initializationOptions(
    { ...base, model: ' ollama/qwen ', changes: 'apply', settings: { model: 'other/m', editor: { mode: 'propose', x: 1 }, agent: { max_turns: 3 } } },
    ['python'],
  );
  assert.deepEqual(options, {
    model: 'ollama/qwen',
    editor: { mode: 'apply', x: 1, companion: { languages: ['python'] } },
    agent: { max_turns: 3 },
  });
});

test('proxy mode declares none, and the user setting object is not changed', () => {
  const settings = { editor: { companion: { languages: ['c'] } } };
  const options = initializationOptions({ ...base, mode: 'proxy', settings }, ['c']);
  assert.deepEqual(options, { editor: { mode: 'propose' } });
  assert.deepEqual(settings, { editor: { companion: { languages: ['c'] } } });
});

test('the setting may be a read-only proxy, as VS Code hands configuration values out', () => {
  const settings = new Proxy(Object.freeze({ agent: Object.freeze({ max_turns: 3 }) }), {});
  const options = initializationOptions({ ...base, settings }, []);
  assert.deepEqual(options, { agent: { max_turns: 3 }, editor: { mode: 'propose', companion: { languages: [] } } });
});
