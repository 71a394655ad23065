// The chat view's page: renders what the extension posts (see src/chat.ts) and sends the
// user's prompts and button presses back. Text is always set as text, never as HTML.
(function () {
  const vscode = acquireVsCodeApi();
  const transcript = document.getElementById('transcript');
  const form = document.getElementById('prompt');
  const input = document.getElementById('prompt-text');
  let assistant = null; // the element the model's streamed text goes into
  let thinking = null;
  const tools = new Map(); // tool call id → its element
  const proposals = new Map(); // proposal id → its card
  const approvals = new Map(); // approval key → its card

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function add(node) {
    const empty = transcript.querySelector('.empty');
    if (empty) empty.remove();
    transcript.appendChild(node);
    transcript.scrollTop = transcript.scrollHeight;
    return node;
  }

  function button(label, onClick) {
    const node = element('button', '', label);
    node.addEventListener('click', onClick);
    return node;
  }

  function diff(text) {
    const pre = element('pre', 'diff');
    for (const line of text.split('\n')) {
      let kind = '';
      if (line.startsWith('+') && !line.startsWith('+++')) kind = 'added';
      else if (line.startsWith('-') && !line.startsWith('---')) kind = 'removed';
      else if (line.startsWith('@@')) kind = 'hunk';
      pre.appendChild(element('span', kind, line + '\n'));
    }
    return pre;
  }

  function diagnosticLines(list, sign) {
    return list.map((d) => `${sign} ${d.path}:${d.line}: ${d.severity}: ${d.message}`);
  }

  function onEvent(event) {
    switch (event.type) {
      case 'turn_started':
        assistant = null;
        thinking = null;
        add(element('div', 'message user', event.text));
        break;
      case 'text_delta':
        if (!assistant) assistant = add(element('div', 'message assistant', ''));
        assistant.textContent += event.text;
        transcript.scrollTop = transcript.scrollHeight;
        break;
      case 'thinking_delta':
        if (!thinking) thinking = add(element('div', 'message thinking', ''));
        thinking.textContent += event.text;
        break;
      case 'tool_call_begun': {
        assistant = null;
        const node = add(element('details', 'tool'));
        const summary = element('summary', '', `${event.name} ${shortArguments(event.arguments)}`);
        node.appendChild(summary);
        node.appendChild(element('pre', 'arguments', event.arguments));
        tools.set(event.id, node);
        break;
      }
      case 'tool_call_ended': {
        const node = tools.get(event.id);
        if (node) {
          node.classList.add(event.is_error ? 'failed' : 'done');
          node.appendChild(element('pre', 'result', event.summary));
          node.querySelector('summary').appendChild(element('span', 'duration', ` ${event.duration} ms`));
        }
        break;
      }
      // approval_asked: its card (with the buttons) comes from the extension, which holds the
      // editor's request to answer.
      case 'decision':
        add(element('div', 'note', `${event.allowed ? 'Allowed' : 'Denied'} (${event.source})`));
        break;
      case 'edit_drafted':
      case 'edit_applied': {
        const node = add(element('div', 'edit'));
        node.appendChild(element('div', 'title', `${event.type === 'edit_drafted' ? 'Drafted' : 'Edited'} ${event.paths.join(', ')}`));
        node.appendChild(diff(event.diff));
        break;
      }
      case 'diagnostics_changed': {
        const lines = [...diagnosticLines(event.introduced, '+'), ...diagnosticLines(event.fixed, '-')];
        if (event.pending_servers.length) lines.push(`not yet answered: ${event.pending_servers.join(', ')}`);
        if (event.failed_servers.length) lines.push(`failed: ${event.failed_servers.join(', ')}`);
        add(element('pre', 'diagnostics', lines.length ? lines.join('\n') : 'Diagnostics: no change'));
        break;
      }
      case 'proposal_shown': {
        const card = add(element('div', 'proposal'));
        card.appendChild(element('div', 'title', `Proposal: ${event.summary}`));
        card.appendChild(element('div', 'files', `${event.files.join(', ')} — ${event.hunks} hunk(s)`));
        const actions = card.appendChild(element('div', 'actions'));
        actions.appendChild(button('Apply', () => vscode.postMessage({ type: 'apply', proposal: event.proposal })));
        actions.appendChild(button('Reject', () => vscode.postMessage({ type: 'reject', proposal: event.proposal })));
        proposals.set(event.proposal, card);
        break;
      }
      case 'proposal_decided': {
        const card = proposals.get(event.proposal);
        const text = `${event.decision}${event.hunk !== undefined ? ` (hunk ${event.hunk + 1})` : ''}: ${event.files.join(', ')}${event.reason ? ` — ${event.reason}` : ''}`;
        if (card && event.hunk === undefined && event.decision !== 'refused') {
          card.classList.add(event.decision);
          card.querySelectorAll('button').forEach((b) => (b.disabled = true));
        }
        add(element('div', `note decision ${event.decision}`, text));
        break;
      }
      case 'changes_restored':
        add(element('div', 'note restored', `${event.kind === 'undo' ? 'Undone' : 'Redone'}: ${event.files.join(', ')}`));
        break;
      case 'compacted':
        add(element('div', 'note', `Conversation compacted (${event.tokens_before} tokens before).`));
        break;
      case 'error':
        add(element('div', 'message error', event.message));
        break;
      case 'turn_done':
        assistant = null;
        thinking = null;
        add(element('div', 'note end', `— ${event.end.replace(/_/g, ' ')}`));
        break;
      default:
        break;
    }
  }

  function shortArguments(text) {
    try {
      const value = JSON.parse(text);
      if (value && typeof value.path === 'string') return value.path;
      if (value && Array.isArray(value.paths)) return value.paths.join(', ');
    } catch (_) {
      // shown in full below
    }
    return text.length > 60 ? text.slice(0, 57) + '…' : text;
  }

  function onApproval(message) {
    const card = add(element('div', 'approval'));
    card.appendChild(element('div', 'title', message.message));
    const actions = card.appendChild(element('div', 'actions'));
    for (const title of message.actions) {
      actions.appendChild(button(title, () => vscode.postMessage({ type: 'answer', key: message.key, answer: title })));
    }
    approvals.set(message.key, card);
  }

  window.addEventListener('message', (incoming) => {
    const message = incoming.data;
    switch (message.type) {
      case 'event':
        onEvent(message.event);
        break;
      case 'approval':
        onApproval(message);
        break;
      case 'approval-answered': {
        const card = approvals.get(message.key);
        if (card) {
          card.querySelectorAll('button').forEach((b) => (b.disabled = true));
          card.appendChild(element('div', 'answer', message.answer ?? 'dismissed'));
        }
        break;
      }
      case 'session':
        add(element('div', 'note session', message.session ? `Session ${message.session}` : 'New session'));
        break;
      case 'notice':
        add(element('div', 'note', message.text));
        break;
    }
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const prompt = input.value.trim();
    if (prompt) {
      vscode.postMessage({ type: 'ask', prompt });
      input.value = '';
    }
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.querySelectorAll('#toolbar button').forEach((node) => {
    node.addEventListener('click', () => vscode.postMessage({ type: 'command', command: node.dataset.command }));
  });
  vscode.postMessage({ type: 'ready' });
})();
