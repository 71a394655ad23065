// How the extension finds the tack binary (node --test).
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';

import { findTack } from '../binary';

const executables = (...paths: string[]) => (candidate: string) => paths.includes(candidate);

test('the setting wins, and a wrong setting is named instead of silently looking elsewhere', () => {
  const lookup = { configured: '/opt/tack/bin/tack', searchPath: '/usr/bin', bundled: '/ext/bin/tack' };
  assert.deepEqual(findTack(lookup, executables('/opt/tack/bin/tack', '/usr/bin/tack')), {
    found: true,
    path: '/opt/tack/bin/tack',
    via: 'setting',
  });
  const wrong = findTack(lookup, executables('/usr/bin/tack'));
  assert.equal(wrong.found, false);
  assert.match(!wrong.found ? wrong.problem : '', /tack\.path names \/opt\/tack\/bin\/tack, which is not an executable file/);
});

test('then PATH in order, then the bundled binary', () => {
  const searchPath = ['/a', '', '/b', '/c'].join(path.delimiter);
  const lookup = { configured: '', searchPath, bundled: '/ext/bin/tack' };
  assert.deepEqual(findTack(lookup, executables('/b/tack', '/c/tack', '/ext/bin/tack')), { found: true, path: '/b/tack', via: 'PATH' });
  assert.deepEqual(findTack(lookup, executables('/ext/bin/tack')), { found: true, path: '/ext/bin/tack', via: 'bundled' });
});

test('nothing found lists every place looked at', () => {
  const result = findTack({ configured: '  ', searchPath: `/a${path.delimiter}/b`, bundled: '/ext/bin/tack' }, executables());
  assert.equal(result.found, false);
  if (!result.found) {
    assert.deepEqual(result.looked, ['/a/tack', '/b/tack', '/ext/bin/tack']);
    assert.match(result.problem, /not set, tack is not on PATH, and none is bundled/);
  }
});
