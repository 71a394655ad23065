// Companion languages and the proxy-mode duplicates warning (node --test).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';

import { companionLanguages, installedLanguageExtensions, proxyDuplicatesWarning } from '../languages';

test('companion languages come from the installed extensions unless the setting lists them', () => {
  const installed = installedLanguageExtensions((id) => id === 'rust-lang.rust-analyzer' || id === 'ms-vscode.cpptools');
  assert.deepEqual(companionLanguages(null, installed), ['c', 'cpp', 'cuda', 'rust']);
  assert.deepEqual(companionLanguages(['python', 'python'], installed), ['python']);
  assert.deepEqual(companionLanguages([], installed), []);
  assert.deepEqual(companionLanguages(undefined, []), []);
});

test('proxy mode names each extension that would duplicate diagnostics', () => {
  assert.equal(proxyDuplicatesWarning([]), undefined);
  const installed = installedLanguageExtensions((id) => id === 'llvm-vs-code-extensions.vscode-clangd');
  const warning = proxyDuplicatesWarning(installed) ?? '';
  assert.match(warning, /clangd \(llvm-vs-code-extensions\.vscode-clangd\)/);
  assert.match(warning, /set tack\.mode to "companion"/);
});
