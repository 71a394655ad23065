// The language extensions tack knows: in companion mode their languages are the editor's own
// (tack starts no server for them); in proxy mode they would run a second server next to
// tack's, so the user is told to turn them off. No VS Code API here (tested under Node).

export interface LanguageExtension {
  id: string;
  name: string;
  /** VS Code language ids, which are the LSP ids tack uses. */
  languages: string[];
}

export const LANGUAGE_EXTENSIONS: LanguageExtension[] = [
  { id: 'llvm-vs-code-extensions.vscode-clangd', name: 'clangd', languages: ['c', 'cpp', 'objective-c', 'objective-cpp', 'cuda'] },
  { id: 'ms-vscode.cpptools', name: 'C/C++', languages: ['c', 'cpp', 'cuda'] },
  { id: 'rust-lang.rust-analyzer', name: 'rust-analyzer', languages: ['rust'] },
  { id: 'ms-python.vscode-pylance', name: 'Pylance', languages: ['python'] },
  { id: 'ms-pyright.pyright', name: 'Pyright', languages: ['python'] },
  { id: 'detachhead.basedpyright', name: 'BasedPyright', languages: ['python'] },
  { id: 'golang.go', name: 'Go', languages: ['go', 'go.mod'] },
  {
    id: 'vscode.typescript-language-features',
    name: 'TypeScript and JavaScript Language Features (built in)',
    languages: ['typescript', 'typescriptreact', 'javascript', 'javascriptreact'],
  },
  { id: 'mads-hartmann.bash-ide-vscode', name: 'Bash IDE', languages: ['shellscript'] },
];

/** The known language extensions that are installed and enabled. */
export function installedLanguageExtensions(isEnabled: (id: string) => boolean): LanguageExtension[] {
  return LANGUAGE_EXTENSIONS.filter((extension) => isEnabled(extension.id));
}

/** The languages companion mode declares as the editor's: the setting, else the installed extensions'. */
export function companionLanguages(setting: string[] | null | undefined, installed: LanguageExtension[]): string[] {
  const languages = Array.isArray(setting) ? setting : installed.flatMap((extension) => extension.languages);
  return [...new Set(languages)].sort();
}

/** The warning for proxy mode, or undefined when no installed extension duplicates tack's servers. */
export function proxyDuplicatesWarning(installed: LanguageExtension[]): string | undefined {
  if (installed.length === 0) {
    return undefined;
  }
  const names = installed.map((extension) => `${extension.name} (${extension.id})`).join(', ');
  return (
    `tack runs in proxy mode: it starts the language servers itself. These extensions run their own, ` +
    `so their diagnostics would show twice: ${names}. Disable them for this workspace, or set tack.mode to "companion".`
  );
}
