// Finding the `tack` binary: the `tack.path` setting, else `tack` on PATH, else the binary
// bundled with the extension. No VS Code API here, so the rules are tested under plain Node.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface BinaryLookup {
  /** The `tack.path` setting ('' when unset). */
  configured: string;
  /** The PATH the extension host runs with. */
  searchPath: string | undefined;
  /** Where a bundled binary would be: `<extension>/bin/tack`. */
  bundled: string;
}

export type BinaryResult =
  | { found: true; path: string; via: 'setting' | 'PATH' | 'bundled' }
  | { found: false; looked: string[]; problem: string };

export function isExecutableFile(candidate: string): boolean {
  try {
    if (!fs.statSync(candidate).isFile()) {
      return false;
    }
    fs.accessSync(candidate, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `~/x` → the home folder's `x`. */
function expandHome(value: string): string {
  return value === '~' || value.startsWith('~/') ? path.join(os.homedir(), value.slice(1)) : value;
}

export function findTack(
  lookup: BinaryLookup,
  isExecutable: (candidate: string) => boolean = isExecutableFile,
): BinaryResult {
  const configured = lookup.configured.trim();
  if (configured !== '') {
    const candidate = expandHome(configured);
    if (isExecutable(candidate)) {
      return { found: true, path: candidate, via: 'setting' };
    }
    // The user named a binary: looking elsewhere would run one they did not choose.
    return {
      found: false,
      looked: [candidate],
      problem: `the setting tack.path names ${candidate}, which is not an executable file`,
    };
  }
  const looked: string[] = [];
  for (const folder of (lookup.searchPath ?? '').split(path.delimiter)) {
    if (folder === '') {
      continue;
    }
    const candidate = path.join(folder, 'tack');
    looked.push(candidate);
    if (isExecutable(candidate)) {
      return { found: true, path: candidate, via: 'PATH' };
    }
  }
  looked.push(lookup.bundled);
  if (isExecutable(lookup.bundled)) {
    return { found: true, path: lookup.bundled, via: 'bundled' };
  }
  return {
    found: false,
    looked,
    problem: 'no tack binary: tack.path is not set, tack is not on PATH, and none is bundled with the extension',
  };
}
