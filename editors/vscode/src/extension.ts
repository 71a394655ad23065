// tack in VS Code: starts `tack lsp` for every file document with vscode-languageclient, in
// companion mode (the user's language extensions keep running; their diagnostics are
// forwarded to tack) or proxy mode (tack fronts the language servers itself); the chat view,
// the status bar item and the palette commands over tack's LSP surface (docs/protocol.md).

import * as path from 'path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions,
  type StaticFeature,
} from 'vscode-languageclient/node';

import { findTack } from './binary';
import { ChatView, type FromView } from './chat';
import { DiagnosticsForwarder } from './forwarder';
import { companionLanguages, installedLanguageExtensions, proxyDuplicatesWarning } from './languages';
import { initializationOptions, type Mode, type Settings } from './settings';
import { StatusItem, type TackStatus } from './status';

const INSTALL_ANCHOR = 'install-tack';

let session: Session | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('tack', { log: true });
  const status = new StatusItem();
  const chat = new ChatView(context.extensionUri, (message) => void session?.onChatRequest(message));
  context.subscriptions.push(
    output,
    status,
    vscode.window.registerWebviewViewProvider(ChatView.viewId, chat, { webviewOptions: { retainContextWhenHidden: true } }),
  );
  session = new Session(context, output, status, chat);
  registerCommands(context, () => session);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration('tack') && !event.affectsConfiguration('tack.trace')) {
        const choice = await vscode.window.showInformationMessage('tack settings changed: restart tack to use them?', 'Restart');
        if (choice === 'Restart') {
          await session?.restart();
        }
      }
    }),
  );
  try {
    await session.start();
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    output.error(`tack did not start: ${message}`);
    status.showProblem(`tack did not start: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
}

function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration('tack');
  return {
    path: config.get<string>('path', ''),
    mode: config.get<Mode>('mode', 'companion') === 'proxy' ? 'proxy' : 'companion',
    companionLanguages: config.get<string[] | null>('companion.languages', null),
    model: config.get<string>('model', ''),
    changes: config.get<string>('changes', 'propose') === 'apply' ? 'apply' : 'propose',
    settings: config.get<Record<string, unknown>>('settings', {}),
  };
}

/** One running `tack lsp` and what hangs on it. */
class Session {
  client: LanguageClient | undefined;
  private forwarder: DiagnosticsForwarder | undefined;
  private readonly approvals = new Map<number, (answer: string | undefined) => void>();
  private nextApproval = 1;
  private lastSession: string | null = null;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly output: vscode.LogOutputChannel,
    readonly status: StatusItem,
    readonly chat: ChatView,
  ) {}

  async start(): Promise<void> {
    const settings = readSettings();
    const binary = findTack({
      configured: settings.path,
      searchPath: process.env.PATH,
      bundled: this.context.asAbsolutePath(path.join('bin', 'tack')),
    });
    if (!binary.found) {
      this.output.error(`${binary.problem}. Looked at: ${binary.looked.join(', ')}`);
      this.status.showProblem(binary.problem);
      void this.offerInstallSteps(binary.problem);
      return;
    }
    this.output.info(`tack binary: ${binary.path} (from ${binary.via})`);

    const installed = installedLanguageExtensions((id) => vscode.extensions.getExtension(id) !== undefined);
    const companion = settings.mode === 'companion' ? companionLanguages(settings.companionLanguages, installed) : [];
    if (settings.mode === 'companion') {
      this.output.info(
        companion.length > 0
          ? `companion mode: your extensions serve ${companion.join(', ')}; tack serves the other languages and sees every diagnostic`
          : 'companion mode: no known language extension is installed; tack serves every language',
      );
    } else {
      const warning = proxyDuplicatesWarning(installed);
      if (warning !== undefined) {
        this.output.warn(warning);
        void this.warnDuplicates(warning, installed.map((extension) => extension.id));
      }
    }

    const serverOptions: ServerOptions = { command: binary.path, args: ['lsp'] };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: initializationOptions(settings, companion),
      middleware: {
        executeCommand: async (command, args, next) => {
          // "Ask tack…" leaves the prompt to the editor (experimental.tack.askPrompt).
          if (command === 'tack.ask' && typeof args[0]?.prompt !== 'string') {
            const prompt = await vscode.window.showInputBox({ prompt: 'Ask tack', placeHolder: 'What should tack do with the selection?' });
            if (prompt === undefined || prompt.trim() === '') {
              return null;
            }
            args = [{ ...args[0], prompt }];
          }
          return next(command, args);
        },
        window: {
          showDocument: async (params, token, next) => {
            // The run's transcript streams into the chat view; the markdown file stays
            // available through "tack: Show session log".
            if (params.uri.includes('/tack/transcripts/')) {
              await this.chat.reveal();
              return { success: true };
            }
            return next(params, token);
          },
        },
      },
    };
    const client = new LanguageClient('tack', 'tack', serverOptions, clientOptions);
    client.registerFeature(tackCapabilities);
    client.onNotification('tack/transcript', (params: { session: string; run: number | null; event: Record<string, unknown> }) =>
      this.onTranscript(params),
    );
    client.onNotification('tack/status', (params: TackStatus) => this.status.update(params));
    client.onRequest('window/showMessageRequest', (params: { type: number; message: string; actions?: { title: string }[] }) =>
      this.onShowMessageRequest(params),
    );
    this.client = client;
    this.status.starting();
    try {
      await client.start();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.output.error(`tack lsp did not start: ${message}`);
      this.status.showProblem(`tack lsp did not start: ${message}`);
      return;
    }
    this.status.ready();
    if (settings.mode === 'companion') {
      this.forwarder = new DiagnosticsForwarder(client);
    }
    const current = await this.command('tack.status', undefined, { quiet: true });
    if (current !== undefined) {
      this.status.update(current as TackStatus);
    }
  }

  async stop(): Promise<void> {
    this.forwarder?.dispose();
    this.forwarder = undefined;
    const client = this.client;
    this.client = undefined;
    if (client !== undefined && client.isRunning()) {
      await client.stop();
    }
  }

  showOutput(): void {
    this.output.show(true);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Runs one of tack's commands (`workspace/executeCommand`); a refusal is shown, not thrown. */
  async command(command: string, argument?: unknown, options: { quiet?: boolean } = {}): Promise<unknown> {
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      if (!options.quiet) {
        void vscode.window.showWarningMessage('tack is not running (see "tack: Show output").');
      }
      return undefined;
    }
    try {
      return await client.sendRequest('workspace/executeCommand', {
        command,
        arguments: argument === undefined ? [] : [argument],
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!options.quiet) {
        void vscode.window.showWarningMessage(`tack: ${message}`);
      }
      return undefined;
    }
  }

  private onTranscript(params: { session: string; run: number | null; event: Record<string, unknown> }): void {
    if (params.session !== this.lastSession) {
      this.lastSession = params.session;
      this.chat.post({ type: 'session', session: params.session });
    }
    this.chat.post({ type: 'event', run: params.run, event: params.event });
    if (params.event.type === 'turn_started' && vscode.workspace.getConfiguration('tack').get<boolean>('chat.revealOnRun', true)) {
      void this.chat.reveal();
    }
  }

  /**
   * `window/showMessageRequest`, as VS Code shows it (a notification with buttons). tack's
   * approvals are offered in the chat view, and also as a notification when the chat is not
   * on screen; the first answer wins.
   */
  private async onShowMessageRequest(params: { type: number; message: string; actions?: { title: string }[] }): Promise<{ title: string } | null> {
    const actions = params.actions ?? [];
    const titles = actions.map((action) => action.title);
    const notify = () => {
      const show =
        params.type === 1 ? vscode.window.showErrorMessage : params.type === 2 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
      return Promise.resolve(show(params.message, ...titles));
    };
    if (!params.message.startsWith('tack wants to use')) {
      const title = await notify();
      return actions.find((action) => action.title === title) ?? null;
    }
    const key = this.nextApproval++;
    const fromChat = new Promise<string | undefined>((resolve) => this.approvals.set(key, resolve));
    const answers = [fromChat];
    if (!this.chat.isVisible()) {
      answers.push(notify());
    }
    this.chat.post({ type: 'approval', key, message: params.message, actions: titles });
    void this.chat.reveal();
    const title = await Promise.race(answers);
    this.approvals.delete(key);
    this.chat.post({ type: 'approval-answered', key, answer: title ?? null });
    return actions.find((action) => action.title === title) ?? null;
  }

  async onChatRequest(message: FromView): Promise<void> {
    switch (message.type) {
      case 'ask':
        await this.ask(message.prompt);
        break;
      case 'apply':
        await this.command('tack.apply', { proposal: message.proposal });
        break;
      case 'reject':
        await this.command('tack.reject', { proposal: message.proposal });
        break;
      case 'answer':
        this.approvals.get(message.key)?.(message.answer);
        break;
      case 'command':
        // Only the toolbar's commands: the page asks, the extension decides.
        if (!['cancel', 'undo', 'redo', 'newSession'].includes(message.command)) {
          return;
        }
        await this.command(`tack.${message.command}`);
        if (message.command === 'newSession') {
          this.chat.post({ type: 'notice', text: 'The next request starts a new conversation.' });
        }
        break;
      default:
        break;
    }
  }

  /** `tack.ask`, about the selection when there is one. */
  async ask(prompt: string): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const client = this.client;
    if (editor !== undefined && client !== undefined && !editor.selection.isEmpty && editor.document.uri.scheme === 'file') {
      await this.command('tack.ask', {
        prompt,
        uri: client.code2ProtocolConverter.asUri(editor.document.uri),
        range: client.code2ProtocolConverter.asRange(editor.selection),
      });
    } else {
      await this.command('tack.ask', { prompt });
    }
  }

  private async offerInstallSteps(problem: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(
      `tack: ${problem}. Install tack (cargo install --path server in a tack checkout) or set tack.path.`,
      'Install steps',
      'Set tack.path',
    );
    if (choice === 'Install steps') {
      const readme = vscode.Uri.joinPath(this.context.extensionUri, 'README.md').with({ fragment: INSTALL_ANCHOR });
      await vscode.commands.executeCommand('markdown.showPreview', readme);
    } else if (choice === 'Set tack.path') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'tack.path');
    }
  }

  private async warnDuplicates(warning: string, ids: string[]): Promise<void> {
    const choice = await vscode.window.showWarningMessage(warning, 'Show extensions', 'Use companion mode');
    if (choice === 'Show extensions') {
      await vscode.commands.executeCommand('workbench.extensions.search', ids.map((id) => `@id:${id}`).join(' '));
    } else if (choice === 'Use companion mode') {
      await vscode.workspace.getConfiguration('tack').update('mode', 'companion', vscode.ConfigurationTarget.Workspace);
    }
  }
}

/** The client capabilities that turn on tack's extras (docs/protocol.md). */
const tackCapabilities: StaticFeature = {
  fillClientCapabilities(capabilities) {
    capabilities.experimental = {
      ...(capabilities.experimental as Record<string, unknown> | undefined),
      tack: { transcript: true, status: true, askPrompt: true },
    };
  },
  initialize() {},
  getState() {
    return { kind: 'static' };
  },
  clear() {},
};

function registerCommands(context: vscode.ExtensionContext, current: () => Session | undefined): void {
  const withSession = (run: (session: Session) => unknown) => () => {
    const session = current();
    return session === undefined ? undefined : run(session);
  };
  const activeUri = (session: Session): string | undefined => {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || session.client === undefined || editor.document.uri.scheme !== 'file') {
      void vscode.window.showWarningMessage('tack: open the file to fix first.');
      return undefined;
    }
    return session.client.code2ProtocolConverter.asUri(editor.document.uri);
  };
  const commands: Record<string, (session: Session) => unknown> = {
    'tack.vscode.ask': async (session) => {
      const prompt = await vscode.window.showInputBox({ prompt: 'Ask tack', placeHolder: 'What should tack do?' });
      if (prompt !== undefined && prompt.trim() !== '') {
        await session.ask(prompt);
      }
    },
    'tack.vscode.fixFile': async (session) => {
      const uri = activeUri(session);
      if (uri !== undefined) {
        await session.command('tack.fixFile', { uri });
      }
    },
    'tack.vscode.undo': (session) => session.command('tack.undo'),
    'tack.vscode.redo': (session) => session.command('tack.redo'),
    'tack.vscode.cancel': (session) => session.command('tack.cancel'),
    'tack.vscode.newSession': async (session) => {
      await session.command('tack.newSession');
      session.chat.post({ type: 'notice', text: 'The next request starts a new conversation.' });
    },
    'tack.vscode.setModel': async (session) => {
      const model = await vscode.window.showInputBox({
        prompt: 'The model tack uses, as provider/model (a new session starts)',
        value: session.status.model ?? '',
      });
      if (model !== undefined && model.trim() !== '') {
        await session.command('tack.setModel', { model: model.trim() });
        session.chat.post({ type: 'notice', text: `Model: ${model.trim()} (from the next request on).` });
      }
    },
    'tack.vscode.showLog': async (session) => {
      const shown = (await session.command('tack.showTranscript')) as { uri: string } | undefined;
      if (shown !== undefined) {
        await vscode.window.showTextDocument(vscode.Uri.parse(shown.uri), { preview: false });
      }
    },
    'tack.vscode.openChat': (session) => session.chat.reveal(),
    'tack.vscode.showOutput': (session) => session.showOutput(),
    'tack.vscode.restart': (session) => session.restart(),
  };
  for (const [id, run] of Object.entries(commands)) {
    context.subscriptions.push(vscode.commands.registerCommand(id, withSession(run)));
  }
}
