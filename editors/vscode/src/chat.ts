// The chat view: a webview that shows the session's transcript as it streams (`tack/transcript`
// events: the model's text, tool calls, drafted diffs, proposals with Apply / Reject,
// approvals with their buttons) and a prompt box. It keeps the session's messages, so a view
// opened late, or reopened, shows everything from the start.

import * as vscode from 'vscode';

/** What the extension posts to the webview. */
export type ToView =
  | { type: 'event'; run: number | null; event: Record<string, unknown> }
  | { type: 'approval'; key: number; message: string; actions: string[] }
  | { type: 'approval-answered'; key: number; answer: string | null }
  | { type: 'notice'; text: string }
  | { type: 'session'; session: string | null };

/** What the webview asks for. */
export type FromView =
  | { type: 'ready' }
  | { type: 'ask'; prompt: string }
  | { type: 'apply'; proposal: number }
  | { type: 'reject'; proposal: number }
  | { type: 'answer'; key: number; answer: string }
  | { type: 'command'; command: 'cancel' | 'undo' | 'redo' | 'newSession' };

/** Messages kept for a view opened later (a long session keeps its latest ones). */
const KEPT = 5000;

export class ChatView implements vscode.WebviewViewProvider {
  static readonly viewId = 'tack.chat';
  private view: vscode.WebviewView | undefined;
  /** The view's page has loaded and replayed the history: it gets messages as they come. */
  private viewReady = false;
  private readonly history: ToView[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onRequest: (message: FromView) => void,
  ) {}

  post(message: ToView): void {
    this.history.push(message);
    if (this.history.length > KEPT) {
      this.history.splice(0, this.history.length - KEPT);
    }
    if (this.viewReady) {
      void this.view?.webview.postMessage(message);
    }
  }

  /** Whether the view is on screen. */
  isVisible(): boolean {
    return this.view?.visible === true;
  }

  /** Shows the view without taking the focus from the editor. */
  async reveal(): Promise<void> {
    if (this.view !== undefined) {
      this.view.show(true);
      return;
    }
    await vscode.commands.executeCommand(`${ChatView.viewId}.focus`, { preserveFocus: true });
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.viewReady = false;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = this.html(view.webview, media);
    view.webview.onDidReceiveMessage((message: FromView) => {
      if (message.type === 'ready') {
        for (const kept of this.history) {
          void view.webview.postMessage(kept);
        }
        this.viewReady = this.view === view;
        return;
      }
      this.onRequest(message);
    });
    view.onDidDispose(() => {
      if (this.view === view) {
        this.view = undefined;
        this.viewReady = false;
      }
    });
  }

  private html(webview: vscode.Webview, media: vscode.Uri): string {
    const nonce = [...Array(32)].map(() => Math.floor(Math.random() * 36).toString(36)).join('');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css'));
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>tack</title>
</head>
<body>
<div id="toolbar">
  <button data-command="cancel" title="Cancel the running request">Cancel</button>
  <button data-command="undo" title="Undo the latest tack change">Undo</button>
  <button data-command="redo" title="Redo the latest undone tack change">Redo</button>
  <button data-command="newSession" title="Start a new conversation">New session</button>
</div>
<div id="transcript" aria-live="polite"><p class="empty">Ask tack anything, or pick "Fix with tack" on a diagnostic.</p></div>
<form id="prompt">
  <textarea id="prompt-text" rows="3" placeholder="Ask tack… (Enter sends, Shift+Enter for a new line)"></textarea>
  <button type="submit" id="send">Ask</button>
</form>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }
}
