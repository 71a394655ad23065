// The status bar item: tack's model, the session's tokens and cost (`tack/status`), what is
// running; a click opens the chat view.

import * as vscode from 'vscode';

/** The `tack.status` object (docs/protocol.md). */
export interface TackStatus {
  session: string | null;
  model?: string | null;
  mode?: string;
  running: string | null;
  proposals?: { id: number; summary: string }[];
  tokens?: number;
  costUsd?: number | null;
  transcript?: string;
}

/** `12345` → `12.3k`. */
export function formatTokens(tokens: number): string {
  if (tokens < 1000) {
    return String(tokens);
  }
  if (tokens < 1_000_000) {
    return `${(tokens / 1000).toFixed(tokens < 10_000 ? 1 : 0)}k`;
  }
  return `${(tokens / 1_000_000).toFixed(1)}M`;
}

/** The item's text for a status: `tack <model> · <tokens> tok · $<cost>`. */
export function statusText(status: TackStatus): string {
  const parts = ['tack'];
  if (status.model) {
    parts.push(status.model);
  }
  const details: string[] = [];
  if (status.tokens !== undefined && status.session !== null) {
    details.push(`${formatTokens(status.tokens)} tok`);
  }
  if (typeof status.costUsd === 'number') {
    details.push(`$${status.costUsd.toFixed(status.costUsd < 0.1 ? 4 : 2)}`);
  }
  const icon = status.running ? '$(sync~spin)' : '$(hubot)';
  return [`${icon} ${parts.join(' ')}`, ...details].join(' · ');
}

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('tack.status', vscode.StatusBarAlignment.Right, 100);
  model: string | undefined;

  constructor() {
    this.item.name = 'tack';
    this.item.command = 'tack.vscode.openChat';
    this.item.text = '$(hubot) tack';
    this.item.show();
  }

  starting(): void {
    this.item.text = '$(loading~spin) tack';
    this.item.tooltip = 'tack is starting';
    this.item.backgroundColor = undefined;
    this.item.command = 'tack.vscode.openChat';
  }

  ready(): void {
    this.item.text = '$(hubot) tack';
    this.item.tooltip = 'tack: open the chat';
  }

  showProblem(problem: string): void {
    this.item.text = '$(error) tack';
    this.item.tooltip = problem;
    this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    this.item.command = 'tack.vscode.showOutput';
  }

  update(status: TackStatus): void {
    this.model = status.model ?? this.model;
    this.item.text = statusText(status);
    const lines = [
      `model: ${status.model ?? 'from the configuration'}`,
      `session: ${status.session ?? 'none yet'}`,
      `changes: ${status.mode ?? 'propose'}`,
    ];
    if (status.running) {
      lines.push(`running: ${status.running}`);
    }
    if (status.proposals && status.proposals.length > 0) {
      lines.push(`waiting proposals: ${status.proposals.map((p) => p.summary).join('; ')}`);
    }
    this.item.tooltip = lines.join('\n');
  }

  dispose(): void {
    this.item.dispose();
  }
}
