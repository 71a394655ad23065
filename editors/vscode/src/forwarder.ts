// Companion mode: VS Code's diagnostics of every source go to tack as
// `tack/editorDiagnostics` {uri, version?, diagnostics} (docs/protocol.md), so the agent sees
// what the user sees. What tack itself published is left out: it is tack's already.

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';

export const EDITOR_DIAGNOSTICS = 'tack/editorDiagnostics';

/** A diagnostic as a comparable key (two equal diagnostics have the same key). */
function key(diagnostic: vscode.Diagnostic): string {
  const { start, end } = diagnostic.range;
  const code = typeof diagnostic.code === 'object' ? diagnostic.code.value : diagnostic.code;
  return [start.line, start.character, end.line, end.character, diagnostic.severity, diagnostic.source ?? '', code ?? '', diagnostic.message].join('\u0000');
}

/** `all` without the diagnostics of `own`, counting duplicates. */
export function withoutOwn(all: readonly vscode.Diagnostic[], own: readonly vscode.Diagnostic[]): vscode.Diagnostic[] {
  const remaining = new Map<string, number>();
  for (const diagnostic of own) {
    const k = key(diagnostic);
    remaining.set(k, (remaining.get(k) ?? 0) + 1);
  }
  return all.filter((diagnostic) => {
    const k = key(diagnostic);
    const count = remaining.get(k) ?? 0;
    if (count > 0) {
      remaining.set(k, count - 1);
      return false;
    }
    return diagnostic.source !== 'tack';
  });
}

export class DiagnosticsForwarder implements vscode.Disposable {
  private readonly pending = new Set<string>();
  private readonly lastSent = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly client: LanguageClient) {
    this.subscription = vscode.languages.onDidChangeDiagnostics((event) => {
      for (const uri of event.uris) {
        this.queue(uri);
      }
    });
    for (const [uri] of vscode.languages.getDiagnostics()) {
      this.queue(uri);
    }
  }

  private queue(uri: vscode.Uri): void {
    if (uri.scheme !== 'file') {
      return;
    }
    this.pending.add(uri.toString());
    // One short batch: a language server's burst of publishes is sent once per uri.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, 25);
  }

  private async flush(): Promise<void> {
    const uris = [...this.pending];
    this.pending.clear();
    for (const text of uris) {
      const uri = vscode.Uri.parse(text);
      const own = this.client.diagnostics?.get(uri) ?? [];
      const reported = withoutOwn(vscode.languages.getDiagnostics(uri), own);
      const diagnostics = this.client.code2ProtocolConverter.asDiagnosticsSync(reported);
      const fingerprint = JSON.stringify(diagnostics);
      if (this.lastSent.get(text) === fingerprint) {
        continue;
      }
      this.lastSent.set(text, fingerprint);
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === text);
      await this.client.sendNotification(EDITOR_DIAGNOSTICS, {
        uri: this.client.code2ProtocolConverter.asUri(uri),
        version: document?.version ?? null,
        diagnostics,
      });
    }
  }

  dispose(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
    }
    this.subscription.dispose();
  }
}
