// The extension's settings and the `initializationOptions` they become (the keys of
// tack.toml, see docs/protocol.md). No VS Code API here (tested under Node).

export type Mode = 'companion' | 'proxy';

export interface Settings {
  path: string;
  mode: Mode;
  companionLanguages: string[] | null;
  model: string;
  changes: 'propose' | 'apply';
  /** More tack.toml keys, passed through. */
  settings: Record<string, unknown>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `tack.settings` first, then the dedicated settings over it: `model`, `editor.mode`, and in
 * companion mode `editor.companion.languages` (the languages the editor serves itself).
 */
export function initializationOptions(settings: Settings, companionLanguages: string[]): Record<string, unknown> {
  // A deep copy (the setting's value is a read-only configuration object).
  const options = JSON.parse(JSON.stringify(isObject(settings.settings) ? settings.settings : {})) as Record<string, unknown>;
  if (settings.model.trim() !== '') {
    options.model = settings.model.trim();
  }
  const editor: Record<string, unknown> = isObject(options.editor) ? options.editor : {};
  editor.mode = settings.changes;
  if (settings.mode === 'companion') {
    editor.companion = { languages: companionLanguages };
  } else {
    delete editor.companion;
  }
  options.editor = editor;
  return options;
}
