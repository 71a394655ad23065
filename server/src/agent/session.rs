//! The turn loop. A session waits for a user turn, then asks the model, streams its answer
//! out as events, runs the tools it calls (asking permission where the policy says so,
//! snapshotting before every change, appending the diagnostics each edit caused), feeds the
//! results back, and repeats until the model stops calling tools, `max_turns` requests were
//! made, the same failing call repeats (doom loop), or the user cancels.
//!
//! Cancellation is honoured wherever the loop waits: the model stream is dropped, a running
//! command's process group is killed, an approval wait ends. The one place it is not is
//! applying an edit (snapshot, write, record), which is short and all or nothing, so no
//! half-applied edit is ever left. Every tool call in the history gets exactly one result,
//! also when the turn stops early, so the next request is valid for every protocol.
//!
//! Compaction: when the last request used more than [`COMPACT_AT`] of the model's context
//! window (from the catalog), the model is asked to summarize the work so far, and the
//! history becomes one user message: every user request verbatim, then that summary. The
//! system prompt (with the project's instructions) is never compacted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::drafts::DraftSet;
use super::feedback::{DiagnosticsDelta, FeedbackDiagnostic, LanguageFeedback, render_report};
use super::permissions::{Action, Permissions};
use super::protocol::{
    AgentEvent, CallPurpose, ContextItem, DecisionSource, ModelCallReport, SessionStart,
    Submission, TurnEnd, sha256_hex,
};
use super::tools::{Effect, FileEdit, ToolContext, ToolOutput, ToolRegistry, ToolSettings};
use super::workspace::Workspace;
use crate::providers::{
    ApiKey, ChatRequest, ContentPart, Message, ModelClient, ModelResponse, ResolvedModel, Role,
    StopReason, StreamEvent, ToolCall, ToolResult, Usage,
};
use crate::snapshots::{ChangeId, SnapshotStore};

/// Project instruction files read into the system prompt, in this order.
pub const INSTRUCTION_FILES: [&str; 2] = ["AGENTS.md", "CLAUDE.md"];
/// Each instruction file is cut to this many bytes.
const MAX_INSTRUCTION_BYTES: usize = 16 * 1024;
/// Diagnostics lines in the workspace summary of a user turn.
const SUMMARY_LINES: usize = 20;
/// Share of the model's context window above which the history is compacted.
const COMPACT_AT: f64 = 0.8;
/// The question that asks the model for its own summary.
const COMPACT_PROMPT: &str = "The conversation is about to be shortened. Do not call tools. \
    Write a brief summary for yourself to continue from: what was asked, what you did (files \
    changed and how), what you learned (paths, symbols, errors), and what remains to do.";
/// What the model and the front end are told of a call the user cancelled.
const CANCELLED: &str = "Cancelled by the user.";
/// The diff shown when asking to approve an edit is cut to this many bytes.
const MAX_APPROVAL_DIFF: usize = 4000;

/// Everything a session needs besides its channels and the language feedback.
#[derive(Clone)]
pub struct SessionConfig {
    pub workspace_root: PathBuf,
    pub model: ResolvedModel,
    pub api_key: Option<ApiKey>,
    pub client: ModelClient,
    pub tools: ToolRegistry,
    pub tool_settings: ToolSettings,
    /// `[context]`: its `repo_map_tokens` of repository map go in the system prompt (0, the
    /// default here: none). `tack run` sets it from the configuration; editor runs get
    /// context per request instead.
    pub context: crate::context::ContextSettings,
    pub permissions: Permissions,
    /// Where the pre- and post-images of every change go.
    pub snapshots: Arc<SnapshotStore>,
    /// The snapshot session (also the ledger's session id): `tack undo` works on it.
    pub snapshot_session: String,
    /// Model requests per user turn.
    pub max_turns: u32,
    /// The same failing call this many times stops the turn.
    pub doom_loop_limit: u32,
    pub max_output_tokens: Option<u32>,
    /// In the editor: edits go into this working copy instead of to disk, and become a
    /// proposal (or an applied change) when the turn ends. The snapshot is taken then.
    pub drafts: Option<Arc<DraftSet>>,
    /// Who drives the session, for [`AgentEvent::SessionStarted`] (`tack run`, the editor).
    pub front_end: String,
}

impl SessionConfig {
    /// A configuration with the defaults: the full tool set, default permissions (read-only
    /// tools allowed, the rest asked), 50 requests per turn, a doom-loop limit of 3 (the diagnostics
    /// deadline is `tool_settings.diagnostics_deadline`).
    pub fn new(
        workspace_root: PathBuf,
        model: ResolvedModel,
        api_key: Option<ApiKey>,
        snapshots: Arc<SnapshotStore>,
        snapshot_session: String,
    ) -> SessionConfig {
        SessionConfig {
            workspace_root,
            model,
            api_key,
            client: ModelClient::default(),
            tools: ToolRegistry::default(),
            tool_settings: ToolSettings::default(),
            context: crate::context::ContextSettings {
                repo_map_tokens: 0,
                ..crate::context::ContextSettings::default()
            },
            permissions: Permissions::default(),
            snapshots,
            snapshot_session,
            max_turns: 50,
            doom_loop_limit: 3,
            max_output_tokens: None,
            drafts: None,
            front_end: "tack".to_owned(),
        }
    }
}

/// What a session did, for the front end's closing summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionOutcome {
    /// User turns run.
    pub turns: u32,
    pub model_calls: u32,
    /// Summed over every model call.
    pub usage: Usage,
    /// `None` when a call had no price.
    pub cost_usd: Option<f64>,
    /// Snapshot changes made, in order (what `tack undo` can take back).
    pub changes: Vec<ChangeId>,
    /// Workspace-relative paths written, sorted, once each.
    pub files_changed: Vec<String>,
    /// How the last turn ended.
    pub last_end: Option<TurnEnd>,
    /// Set when the session could not start.
    pub error: Option<String>,
}

/// Runs a session until `submissions` closes (between turns). Each
/// [`Submission::UserTurn`] runs one turn, which ends with [`AgentEvent::TurnDone`].
pub async fn run_session(
    config: SessionConfig,
    submissions: mpsc::Receiver<Submission>,
    events: mpsc::Sender<AgentEvent>,
    feedback: Arc<dyn LanguageFeedback>,
) -> SessionOutcome {
    let workspace = match Workspace::new(&config.workspace_root, feedback) {
        Ok(workspace) => workspace,
        Err(error) => {
            let message = format!("{}: {error}", config.workspace_root.display());
            let _ = events
                .send(AgentEvent::Error {
                    message: message.clone(),
                })
                .await;
            return SessionOutcome {
                error: Some(message),
                ..SessionOutcome::default()
            };
        }
    };
    let (mut system, mut context) = system_prompt(&workspace);
    if let Some(section) =
        crate::context::repo_map_section(&config.workspace_root, &config.context).await
    {
        context.push(ContextItem::new(
            "repo_map",
            "the repository's most referenced definitions",
            &section,
        ));
        system.push_str(&section);
    }
    let started = session_started(&config, &system, &workspace).await;
    let _ = events.send(started).await;
    context.push(ContextItem::new(
        "tools",
        "the tools the model may call",
        &serde_json::to_string(&config.tools.specs()).unwrap_or_default(),
    ));
    let mut session = Session {
        system,
        context,
        history_items: Vec::new(),
        workspace,
        inbox: Inbox {
            receiver: submissions,
            open: true,
            queued: VecDeque::new(),
        },
        events,
        history: Vec::new(),
        user_texts: Vec::new(),
        last_call_tokens: 0,
        known: BTreeMap::new(),
        known_text: HashMap::new(),
        failures: HashMap::new(),
        step: 0,
        outcome: SessionOutcome::default(),
        config,
    };
    while let Some((text, context)) = session.inbox.next_turn().await {
        let end = session.run_turn(text, context).await;
        session.outcome.turns += 1;
        session.outcome.last_end = Some(end.clone());
        session.emit(AgentEvent::TurnDone { end }).await;
    }
    session.outcome.files_changed.sort_unstable();
    session.outcome.files_changed.dedup();
    let outcome = &session.outcome;
    session
        .emit(AgentEvent::SessionEnded {
            turns: outcome.turns,
            model_calls: outcome.model_calls,
            usage: outcome.usage,
            cost_usd: outcome.cost_usd,
            files_changed: outcome.files_changed.clone(),
            last_end: outcome.last_end.clone(),
        })
        .await;
    session.outcome
}

/// The first event: who, where, which model, the repository's state, what the model is told.
async fn session_started(
    config: &SessionConfig,
    system: &str,
    workspace: &Workspace,
) -> AgentEvent {
    let root = workspace.root().to_path_buf();
    let git = tokio::task::spawn_blocking(move || crate::ledger::git_state(&root))
        .await
        .ok()
        .flatten();
    let specs = config.tools.specs();
    AgentEvent::SessionStarted(Box::new(SessionStart {
        session: config.snapshot_session.clone(),
        client: config.front_end.clone(),
        workspace: workspace.root().display().to_string(),
        provider: config.model.provider.id.clone(),
        model: config.model.model.clone(),
        git,
        system_prompt_hash: sha256_hex(system.as_bytes()),
        tools_hash: sha256_hex(&serde_json::to_vec(&specs).unwrap_or_default()),
        tools: specs.into_iter().map(|spec| spec.name).collect(),
        tack_version: env!("CARGO_PKG_VERSION").to_owned(),
    }))
}

/// The short system prompt, with the project's instruction files; and the context items it is
/// made of (the prompt itself, then one per instruction file).
fn system_prompt(workspace: &Workspace) -> (String, Vec<ContextItem>) {
    let mut prompt = format!(
        "You are tack, a coding agent in the folder {}. Use the tools to look around, edit and \
         check; paths are relative to that folder. Make small exact edits. Each edit's result \
         lists the compiler errors it introduced or fixed: fix what you broke before you \
         finish. When done, reply with a short summary.",
        workspace.root().display()
    );
    let mut items = vec![ContextItem::new(
        "system_prompt",
        "tack's instructions to the model",
        &prompt,
    )];
    for name in INSTRUCTION_FILES {
        let Ok(text) = std::fs::read_to_string(workspace.root().join(name)) else {
            continue;
        };
        let mut text = text.trim().to_owned();
        if text.is_empty() {
            continue;
        }
        if text.len() > MAX_INSTRUCTION_BYTES {
            let mut cut = MAX_INSTRUCTION_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("\n…");
        }
        let section = format!("\n\nProject instructions ({name}):\n{text}");
        let mut item = ContextItem::new("instructions", "the project's instruction file", &section);
        item.uri = crate::headless::file_uri(&workspace.root().join(name)).ok();
        items.push(item);
        prompt.push_str(&section);
    }
    (prompt, items)
}

/// The submissions channel, seen from inside a turn.
struct Inbox {
    receiver: mpsc::Receiver<Submission>,
    open: bool,
    /// User turns that arrived while a turn ran.
    queued: VecDeque<(String, Vec<ContextItem>)>,
}

/// What matters to a running turn.
enum Control {
    Cancel,
    Answer {
        id: String,
        allow: bool,
        remember: bool,
    },
}

impl Inbox {
    /// The next user turn; `None` once the channel is closed and nothing is queued.
    async fn next_turn(&mut self) -> Option<(String, Vec<ContextItem>)> {
        loop {
            if let Some(turn) = self.queued.pop_front() {
                return Some(turn);
            }
            if !self.open {
                return None;
            }
            match self.receiver.recv().await {
                Some(Submission::UserTurn { text, context }) => return Some((text, context)),
                Some(Submission::Cancel) => {}
                Some(Submission::ApprovalAnswer { id, .. }) => {
                    tracing::warn!(id, "approval answer outside a turn ignored");
                }
                None => self.open = false,
            }
        }
    }

    /// The next cancel or approval answer; user turns are queued meanwhile. Never resolves
    /// once the channel is closed.
    async fn next_control(&mut self) -> Control {
        loop {
            if !self.open {
                return std::future::pending().await;
            }
            match self.receiver.recv().await {
                Some(Submission::UserTurn { text, context }) => {
                    self.queued.push_back((text, context));
                }
                Some(Submission::Cancel) => return Control::Cancel,
                Some(Submission::ApprovalAnswer {
                    id,
                    allow,
                    remember,
                }) => {
                    return Control::Answer {
                        id,
                        allow,
                        remember,
                    };
                }
                None => self.open = false,
            }
        }
    }

    /// Runs `work` unless a cancel arrives first (`None`). Approval answers that arrive
    /// meanwhile answer nothing and are dropped.
    async fn unless_cancelled<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                // A cancel wins over a result that is ready at the same moment.
                biased;
                control = self.next_control() => match control {
                    Control::Cancel => return None,
                    Control::Answer { id, .. } => {
                        tracing::warn!(id, "approval answer for no pending question ignored");
                    }
                },
                output = &mut work => return Some(output),
            }
        }
    }
}

struct Session {
    config: SessionConfig,
    workspace: Workspace,
    system: String,
    /// The context items every request carries: system prompt, instruction files, tools.
    context: Vec<ContextItem>,
    /// Items inside the history, counted apart from the rest of the conversation: the
    /// workspace diagnostics summaries (one per turn that had one) and what front ends
    /// assembled into their user turns.
    history_items: Vec<ContextItem>,
    inbox: Inbox,
    events: mpsc::Sender<AgentEvent>,
    history: Vec<Message>,
    /// Every user request, verbatim (kept through compaction).
    user_texts: Vec<String>,
    /// Input plus output tokens of the last model call (what the next one builds on).
    last_call_tokens: u64,
    /// The diagnostics last seen for files the agent changed (the "before" of the next edit).
    known: BTreeMap<PathBuf, Vec<FeedbackDiagnostic>>,
    /// A hash of the text each `known` entry was computed for: an entry whose file has changed
    /// since (an undo, the user's own edit) is stale and is fetched again.
    known_text: HashMap<PathBuf, u64>,
    /// Failing calls of this turn by (tool, arguments), cleared when a change succeeds.
    failures: HashMap<(String, String), u32>,
    /// Mutating steps so far (the snapshot store's step number).
    step: u32,
    outcome: SessionOutcome,
}

/// How one tool call ended.
enum CallEnd {
    Answered(ToolResult),
    Cancelled,
}

impl Session {
    async fn emit(&self, event: AgentEvent) {
        // A front end that stopped listening does not stop the session's bookkeeping.
        let _ = self.events.send(event).await;
    }

    fn push_user(&mut self, parts: Vec<ContentPart>) {
        push_user(&mut self.history, parts);
    }

    async fn run_turn(&mut self, text: String, context: Vec<ContextItem>) -> TurnEnd {
        self.emit(AgentEvent::TurnStarted { text: text.clone() })
            .await;
        self.failures.clear();
        self.user_texts.push(text.clone());
        self.history_items.extend(context);
        let mut prompt = text;
        let known = self.workspace.feedback().known_diagnostics();
        if !known.files.is_empty() {
            let summary = render_report(&known, |p| self.workspace.relative(p), SUMMARY_LINES);
            let block = format!("\n\n<workspace diagnostics>\n{summary}\n</workspace diagnostics>");
            self.history_items.push(ContextItem::new(
                "diagnostics",
                "the workspace's diagnostics when the turn started",
                &block,
            ));
            prompt.push_str(&block);
        }
        self.push_user(vec![ContentPart::Text(prompt)]);
        for _ in 0..self.config.max_turns {
            if self.needs_compaction()
                && let Err(end) = self.compact().await
            {
                return end;
            }
            let request = self.request(self.history.clone());
            let response = match self.ask_model(request, CallPurpose::Turn).await {
                Ok(response) => response,
                Err(end) => return end,
            };
            let message = response.to_message();
            if !message.content.is_empty() {
                self.history.push(message);
            }
            let stop = response
                .completion
                .as_ref()
                .map(|c| c.stop_reason.clone())
                .unwrap_or(StopReason::EndTurn);
            if response.tool_calls.is_empty() {
                return match stop {
                    StopReason::MaxTokens => TurnEnd::MaxOutputTokens,
                    StopReason::ContentFilter => TurnEnd::ContentFilter,
                    _ => TurnEnd::Completed,
                };
            }
            let mut results = Vec::new();
            let mut stopped = None;
            for call in &response.tool_calls {
                if stopped.is_some() {
                    results.push(ContentPart::ToolResult(ToolResult {
                        call_id: call.id.clone(),
                        name: call.name.clone(),
                        content: "Not run: the turn was stopped.".to_owned(),
                        is_error: true,
                    }));
                    continue;
                }
                match self.run_call(call).await {
                    CallEnd::Answered(result) => {
                        if result.is_error && self.is_doom_loop(call) {
                            let first =
                                result.content.lines().next().unwrap_or_default().to_owned();
                            self.emit(AgentEvent::Error {
                                message: format!(
                                    "Stopped: {} failed {} times with the same arguments: {first}",
                                    call.name, self.config.doom_loop_limit
                                ),
                            })
                            .await;
                            stopped = Some(TurnEnd::DoomLoop);
                        }
                        results.push(ContentPart::ToolResult(result));
                    }
                    CallEnd::Cancelled => {
                        results.push(ContentPart::ToolResult(ToolResult {
                            call_id: call.id.clone(),
                            name: call.name.clone(),
                            content: CANCELLED.to_owned(),
                            is_error: true,
                        }));
                        stopped = Some(TurnEnd::Cancelled);
                    }
                }
            }
            self.push_user(results);
            if let Some(end) = stopped {
                return end;
            }
        }
        TurnEnd::MaxTurns
    }

    fn request(&self, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            system: Some(self.system.clone()),
            messages,
            tools: self.config.tools.specs(),
            max_output_tokens: self.config.max_output_tokens,
            temperature: None,
            thinking_budget: None,
            cache_prefix: true,
        }
    }

    /// Whether the last call filled the context window past [`COMPACT_AT`].
    fn needs_compaction(&self) -> bool {
        let Some(window) = self
            .config
            .model
            .info
            .as_ref()
            .and_then(|info| info.context)
        else {
            return false;
        };
        self.history.len() > 1 && self.last_call_tokens as f64 > window as f64 * COMPACT_AT
    }

    /// Replaces the history with the user's requests verbatim and the model's own summary.
    /// A summary that comes back empty leaves the history as it was.
    async fn compact(&mut self) -> Result<(), TurnEnd> {
        let tokens_before = self.last_call_tokens;
        let mut messages = self.history.clone();
        push_user(
            &mut messages,
            vec![ContentPart::Text(COMPACT_PROMPT.to_owned())],
        );
        // The tools stay declared (some protocols require them next to tool calls), unused.
        let request = self.request(messages);
        let response = self.ask_model(request, CallPurpose::Compaction).await?;
        let summary = response.text.trim();
        if summary.is_empty() {
            tracing::warn!("the model returned an empty summary; history kept");
            return Ok(());
        }
        let requests = self.user_texts.join("\n---\n");
        self.history = vec![Message::user(format!(
            "<user requests, verbatim>\n{requests}\n</user requests>\n\n\
             <summary of the work so far>\n{summary}\n</summary of the work so far>\n\
             Continue with the latest request."
        ))];
        self.emit(AgentEvent::Compacted {
            tokens_before,
            summary: summary.to_owned(),
        })
        .await;
        self.last_call_tokens = 0;
        self.history_items.clear();
        Ok(())
    }

    /// The context items of a request: the fixed ones, the diagnostics summaries, and the
    /// conversation (the history without those summaries).
    fn context_items(&self, request: &ChatRequest) -> Vec<ContextItem> {
        let mut items = self.context.clone();
        items.extend(self.history_items.iter().cloned());
        let within_history: u64 = self.history_items.iter().map(|i| i.tokens).sum();
        let bytes = serde_json::to_vec(&request.messages).unwrap_or_default();
        items.push(ContextItem {
            kind: "conversation".to_owned(),
            uri: None,
            range: None,
            reason: format!("{} message(s) of history", request.messages.len()),
            tokens: conversation_tokens(&request.messages).saturating_sub(within_history),
            hash: sha256_hex(&bytes),
        });
        items
    }

    /// One model request, streamed out as events (text and thinking only for a turn's
    /// calls). `Err` ends the turn (cancel or failure); nothing of a partial answer enters
    /// the history.
    async fn ask_model(
        &mut self,
        request: ChatRequest,
        purpose: CallPurpose,
    ) -> Result<ModelResponse, TurnEnd> {
        let to_front_end = purpose == CallPurpose::Turn;
        self.outcome.model_calls += 1;
        let call = self.outcome.model_calls;
        self.emit(AgentEvent::ContextSent {
            call,
            items: self.context_items(&request),
        })
        .await;
        let started = Instant::now();
        let mut first_event = None;
        let mut stream =
            self.config
                .client
                .stream(&self.config.model, self.config.api_key.clone(), &request);
        let mut response = ModelResponse::default();
        loop {
            tokio::select! {
                // A cancel wins over more output.
                biased;
                control = self.inbox.next_control() => match control {
                    Control::Cancel => {
                        self.emit_failed_call(call, purpose, started, first_event, CANCELLED).await;
                        return Err(TurnEnd::Cancelled);
                    }
                    Control::Answer { id, .. } => {
                        tracing::warn!(id, "approval answer for no pending question ignored");
                    }
                },
                item = stream.next() => match item {
                    Some(Ok(event)) if !to_front_end => {
                        first_event.get_or_insert_with(|| started.elapsed());
                        response.absorb(event);
                    }
                    Some(Ok(event)) => {
                        first_event.get_or_insert_with(|| started.elapsed());
                        match &event {
                            StreamEvent::TextDelta { text } => {
                                self.emit(AgentEvent::TextDelta { text: text.clone() }).await;
                            }
                            StreamEvent::ThinkingDelta { text } => {
                                self.emit(AgentEvent::ThinkingDelta { text: text.clone() }).await;
                            }
                            _ => {}
                        }
                        response.absorb(event);
                    }
                    Some(Err(error)) => {
                        let message = error.to_string();
                        self.emit(AgentEvent::Error { message: message.clone() }).await;
                        self.emit_failed_call(call, purpose, started, first_event, &message).await;
                        return Err(TurnEnd::Failed);
                    }
                    None => break,
                },
            }
        }
        let Some(completion) = &response.completion else {
            let message = "the model's answer ended without completing";
            self.emit(AgentEvent::Error {
                message: message.to_owned(),
            })
            .await;
            self.emit_failed_call(call, purpose, started, first_event, message)
                .await;
            return Err(TurnEnd::Failed);
        };
        let usage = completion.usage;
        let cost = completion.cost.clone();
        if let Some(usage) = usage {
            self.last_call_tokens = usage.total_input() + usage.output;
            let total = &mut self.outcome.usage;
            total.input_uncached += usage.input_uncached;
            total.cache_read += usage.cache_read;
            total.cache_write += usage.cache_write;
            total.output += usage.output;
            total.reasoning += usage.reasoning;
        }
        self.outcome.cost_usd = match (&cost, self.outcome.model_calls) {
            (Some(cost), 1) => Some(cost.usd),
            (Some(cost), _) => self.outcome.cost_usd.map(|sum| sum + cost.usd),
            (None, _) => None,
        };
        let mut report = self.call_report(call, purpose, started, first_event);
        report.stop_reason = Some(completion.stop_reason.clone());
        report.attempts = Some(completion.attempts);
        report.usage = usage;
        report.raw_usage = completion.raw_usage.clone();
        report.price_source = cost.as_ref().map(|c| {
            if c.prices_as_of == "local" {
                "local"
            } else {
                "catalog"
            }
            .to_owned()
        });
        report.cost = cost.clone();
        self.emit(AgentEvent::Usage { usage, cost }).await;
        self.emit(AgentEvent::ModelCall(Box::new(report))).await;
        Ok(response)
    }

    /// The report of a call so far: who, when, how long; no outcome yet.
    fn call_report(
        &self,
        call: u32,
        purpose: CallPurpose,
        started: Instant,
        first_event: Option<std::time::Duration>,
    ) -> ModelCallReport {
        ModelCallReport {
            call,
            purpose,
            provider: self.config.model.provider.id.clone(),
            model: self.config.model.model.clone(),
            time_to_first_token: first_event,
            duration: started.elapsed(),
            stop_reason: None,
            attempts: None,
            usage: None,
            raw_usage: serde_json::Value::Null,
            cost: None,
            price_source: None,
            error: None,
        }
    }

    /// [`AgentEvent::ModelCall`] for a call that ended without an answer.
    async fn emit_failed_call(
        &self,
        call: u32,
        purpose: CallPurpose,
        started: Instant,
        first_event: Option<std::time::Duration>,
        error: &str,
    ) {
        let mut report = self.call_report(call, purpose, started, first_event);
        report.error = Some(error.to_owned());
        self.emit(AgentEvent::ModelCall(Box::new(report))).await;
    }

    /// Counts a failing call; true when it reached the doom-loop limit.
    fn is_doom_loop(&mut self, call: &ToolCall) -> bool {
        let arguments = call
            .parsed_arguments()
            .map(|value| value.to_string())
            .unwrap_or_else(|_| call.arguments.clone());
        let count = self
            .failures
            .entry((call.name.clone(), arguments))
            .or_default();
        *count += 1;
        *count >= self.config.doom_loop_limit
    }

    async fn run_call(&mut self, call: &ToolCall) -> CallEnd {
        self.emit(AgentEvent::ToolCallBegun {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        })
        .await;
        let started = Instant::now();
        let (content, is_error) = match self.execute(call).await {
            None => {
                self.emit(AgentEvent::ToolCallEnded {
                    id: call.id.clone(),
                    summary: CANCELLED.to_owned(),
                    is_error: true,
                    duration: started.elapsed(),
                })
                .await;
                return CallEnd::Cancelled;
            }
            Some(Ok(content)) => (content, false),
            Some(Err(content)) => (content, true),
        };
        self.emit(AgentEvent::ToolCallEnded {
            id: call.id.clone(),
            summary: summarize(&content),
            is_error,
            duration: started.elapsed(),
        })
        .await;
        CallEnd::Answered(ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content,
            is_error,
        })
    }

    /// `None`: cancelled. `Err`: the error text for the model.
    async fn execute(&mut self, call: &ToolCall) -> Option<Result<String, String>> {
        let Some(tool) = self.config.tools.get(&call.name).cloned() else {
            return Some(Err(format!(
                "unknown tool {:?}; the tools are: {}",
                call.name,
                self.config.tools.names().join(", ")
            )));
        };
        let args = match call.parsed_arguments() {
            Ok(args) => args,
            Err(error) => return Some(Err(format!("arguments are not valid JSON: {error}"))),
        };
        let mut subjects = match tool.subjects(&args, &self.workspace) {
            Ok(subjects) => subjects,
            Err(error) => return Some(Err(error.to_string())),
        };
        let context = ToolContext {
            workspace: self.workspace.clone(),
            settings: self.config.tool_settings,
        };
        let effect = tool.effect();
        // Edits are computed first (nothing is written), so an approval shows the diff.
        let prepared = if effect == Effect::Edits {
            match self
                .inbox
                .unless_cancelled(tool.run(args.clone(), context.clone()))
                .await?
            {
                Ok(ToolOutput::Edits { edits, message }) => Some((edits, message)),
                Ok(ToolOutput::Text(text)) => return Some(Ok(text)),
                Err(error) => return Some(Err(error.to_string())),
            }
        } else {
            None
        };
        // The policy judges every file the edits touch, not only the ones the arguments
        // name (a rename reaches files the model never mentioned).
        for edit in prepared.iter().flat_map(|(edits, _)| edits) {
            let path = self.workspace.relative(&edit.path);
            if !subjects.contains(&path) {
                subjects.push(path);
            }
        }
        let summary = match &prepared {
            Some((edits, _)) => {
                self.workspace.feedback().edits_prepared(&call.id, edits);
                cap(&self.diff(edits), MAX_APPROVAL_DIFF)
            }
            None => format!("{} {}", call.name, subjects.join(" ")),
        };
        let allowed = self
            .decide(call, effect != Effect::ReadOnly, &subjects, summary)
            .await?;
        if let Err(reason) = allowed {
            return Some(Err(reason));
        }
        match (effect, prepared) {
            (Effect::Edits, Some((edits, message))) => {
                Some(self.apply(&call.name, edits, message).await)
            }
            (Effect::Anything, _) => {
                if let Err(error) = self.checkpoint().await {
                    return Some(Err(error));
                }
                let output = self.inbox.unless_cancelled(tool.run(args, context)).await?;
                if output.is_ok() {
                    self.failures.clear();
                }
                Some(render_output(output))
            }
            _ => {
                let output = self.inbox.unless_cancelled(tool.run(args, context)).await?;
                Some(render_output(output))
            }
        }
    }

    /// The permission decision, asking the front end when the policy says so. `None`:
    /// cancelled while asking; `Some(Err)`: denied, with the reason for the model.
    async fn decide(
        &mut self,
        call: &ToolCall,
        is_mutating: bool,
        subjects: &[String],
        summary: String,
    ) -> Option<Result<(), String>> {
        let (action, source) = self
            .config
            .permissions
            .decide(&call.name, is_mutating, subjects);
        let (allowed, source) = match action {
            Action::Allow => (true, source),
            Action::Deny => (false, source),
            Action::Ask if !self.inbox.open => {
                tracing::warn!(tool = call.name, "no front end to ask; denied");
                (false, DecisionSource::Policy)
            }
            Action::Ask => {
                self.emit(AgentEvent::ApprovalAsked {
                    id: call.id.clone(),
                    tool: call.name.clone(),
                    summary,
                })
                .await;
                let (allow, remember) = loop {
                    match self.inbox.next_control().await {
                        Control::Cancel => return None,
                        Control::Answer {
                            id,
                            allow,
                            remember,
                        } if id == call.id => break (allow, remember),
                        Control::Answer { id, .. } => {
                            tracing::warn!(id, "approval answer for another question ignored");
                        }
                    }
                };
                if remember {
                    let subject = (call.name == "run_command")
                        .then(|| subjects.first().cloned())
                        .flatten();
                    self.config.permissions.remember(&call.name, subject, allow);
                }
                (allow, DecisionSource::User)
            }
        };
        self.emit(AgentEvent::Decision {
            id: call.id.clone(),
            allowed,
            source,
        })
        .await;
        Some(if allowed {
            Ok(())
        } else {
            Err(match source {
                DecisionSource::User => format!("The user denied {}.", call.name),
                DecisionSource::Remembered => {
                    format!("The user denied {} for this session.", call.name)
                }
                DecisionSource::Policy => {
                    format!("{} is denied by the permission policy.", call.name)
                }
            })
        })
    }

    /// A unified diff of the edits, workspace-relative.
    fn diff(&self, edits: &[FileEdit]) -> String {
        let mut out = String::new();
        for edit in edits {
            let path = self.workspace.relative(&edit.path);
            let old_name = if edit.before.is_some() {
                format!("a/{path}")
            } else {
                "/dev/null".to_owned()
            };
            out.push_str(
                &similar::TextDiff::from_lines(edit.before.as_deref().unwrap_or(""), &edit.after)
                    .unified_diff()
                    .context_radius(2)
                    .header(&old_name, &format!("b/{path}"))
                    .to_string(),
            );
        }
        out
    }

    /// Snapshots, writes and records the edits (all or nothing), then waits for the
    /// diagnostics they caused. Not cancellable: it is short and must not stop half-way.
    async fn apply(
        &mut self,
        tool: &str,
        edits: Vec<FileEdit>,
        message: String,
    ) -> Result<String, String> {
        let feedback = self.workspace.feedback().clone();
        for edit in &edits {
            let now = if self.workspace.exists(&edit.path) {
                self.workspace.read_text(&edit.path).ok()
            } else {
                None
            };
            if now != edit.before {
                return Err(format!(
                    "{} changed while waiting; read it again. Nothing was changed.",
                    self.workspace.relative(&edit.path)
                ));
            }
        }
        let paths: Vec<PathBuf> = edits.iter().map(|edit| edit.path.clone()).collect();
        // The "before" of files the session has not seen as they are now; a new file has none.
        let mut unseen = Vec::new();
        for edit in &edits {
            let path = &edit.path;
            if self.known.contains_key(path)
                && self.known_text.get(path) == Some(&text_hash(edit.before.as_deref()))
            {
                continue;
            }
            self.known_text
                .insert(path.clone(), text_hash(edit.before.as_deref()));
            if edit.before.is_some() {
                unseen.push(path.clone());
            } else {
                self.known.insert(path.clone(), Vec::new());
            }
        }
        if !unseen.is_empty() {
            let deadline = Instant::now() + self.config.tool_settings.diagnostics_deadline;
            let before = feedback.fresh_diagnostics(&unseen, deadline).await;
            for file in before.files {
                self.known.insert(file.path, file.diagnostics);
            }
        }
        let shown: Vec<String> = paths.iter().map(|p| self.workspace.relative(p)).collect();
        if let Some(drafts) = &self.config.drafts {
            for edit in &edits {
                drafts.record(&edit.path, edit.before.clone(), edit.after.clone());
            }
            self.outcome.files_changed.extend(shown.iter().cloned());
            self.failures.clear();
            self.emit(AgentEvent::EditDrafted {
                paths: shown,
                diff: self.diff(&edits),
            })
            .await;
            return Ok(self.diagnostics_after(&edits, &paths, message).await);
        }
        self.step += 1;
        let store = self.config.snapshots.clone();
        let session = self.config.snapshot_session.clone();
        let step = self.step;
        let label = format!("{tool} {}", self.relative_list(&paths));
        let writes = edits.clone();
        let overlay_source = feedback.clone();
        let change = tokio::task::spawn_blocking(move || {
            write_with_snapshot(&store, &session, step, &label, &writes, &*overlay_source)
        })
        .await
        .map_err(|error| format!("the edit stopped: {error}"))??;
        self.outcome.changes.push(change);
        self.outcome.files_changed.extend(shown.iter().cloned());
        self.failures.clear();
        self.emit(AgentEvent::EditApplied {
            paths: shown,
            change: change.0,
            diff: self.diff(&edits),
        })
        .await;
        Ok(self.diagnostics_after(&edits, &paths, message).await)
    }

    /// Tells the servers of the new texts, waits for their fresh diagnostics, and returns
    /// the tool result: `message` and what the edit introduced and fixed.
    async fn diagnostics_after(
        &mut self,
        edits: &[FileEdit],
        paths: &[PathBuf],
        message: String,
    ) -> String {
        let feedback = self.workspace.feedback().clone();
        for edit in edits {
            feedback.file_changed(&edit.path, &edit.after).await;
        }
        let deadline = Instant::now() + self.config.tool_settings.diagnostics_deadline;
        let after = feedback.fresh_diagnostics(paths, deadline).await;
        let delta = DiagnosticsDelta::between(&self.known, &after, |p| self.workspace.relative(p));
        for file in &after.files {
            self.known
                .insert(file.path.clone(), file.diagnostics.clone());
        }
        for edit in edits {
            self.known_text
                .insert(edit.path.clone(), text_hash(Some(&edit.after)));
        }
        self.emit(AgentEvent::DiagnosticsChanged {
            introduced: delta.introduced.clone(),
            fixed: delta.fixed.clone(),
            pending_servers: delta.pending_servers.clone(),
            failed_servers: delta.failed_servers.clone(),
        })
        .await;
        format!("{message}\n{}", delta.render())
    }

    fn relative_list(&self, paths: &[PathBuf]) -> String {
        paths
            .iter()
            .map(|p| self.workspace.relative(p))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A whole-worktree checkpoint before a command that may change anything.
    async fn checkpoint(&self) -> Result<(), String> {
        let store = self.config.snapshots.clone();
        let session = self.config.snapshot_session.clone();
        tokio::task::spawn_blocking(move || store.checkpoint(&session))
            .await
            .map_err(|error| format!("the snapshot stopped: {error}"))?
            .map(|_| ())
            .map_err(|error| {
                format!("cannot snapshot the workspace before running the command, so it was not run: {error}")
            })
    }
}

/// Appends a user message, merged into the last one when that is a user message too (a
/// cancelled turn leaves one behind), so roles keep alternating.
fn push_user(history: &mut Vec<Message>, mut parts: Vec<ContentPart>) {
    if let Some(last) = history.last_mut()
        && last.role == Role::User
    {
        if let (Some(ContentPart::Text(text)), Some(ContentPart::Text(_))) =
            (parts.first_mut(), last.content.last())
        {
            text.insert_str(0, "\n\n");
        }
        last.content.append(&mut parts);
        return;
    }
    history.push(Message {
        role: Role::User,
        content: parts,
    });
}

/// Blocking: pre-images, every file written (atomically each), post-images. A failed write
/// puts back the files already written and abandons the change. (`tack mcp` edits through
/// it too.)
pub(crate) fn write_with_snapshot(
    store: &SnapshotStore,
    session: &str,
    step: u32,
    label: &str,
    edits: &[FileEdit],
    feedback: &dyn LanguageFeedback,
) -> Result<ChangeId, String> {
    let paths: Vec<PathBuf> = edits.iter().map(|edit| edit.path.clone()).collect();
    let buffers = |path: &Path| feedback.buffer_text(path);
    let pending = store
        .begin_change(session, step, label, &paths, &buffers)
        .map_err(|error| {
            format!("cannot snapshot before the edit, so nothing was changed: {error}")
        })?;
    let mut written: Vec<&FileEdit> = Vec::new();
    for edit in edits {
        if let Err(error) = feedback.write_file(&edit.path, &edit.after) {
            for done in written.iter().rev() {
                let restored = match &done.before {
                    Some(text) => feedback.write_file(&done.path, text),
                    None => std::fs::remove_file(&done.path),
                };
                if let Err(undo_error) = restored {
                    tracing::error!(path = %done.path.display(), %undo_error, "cannot put a file back");
                }
            }
            if let Err(abandon_error) = store.abandon_change(pending) {
                tracing::error!(%abandon_error, "cannot record an abandoned change");
            }
            return Err(format!(
                "{}: {error}. Nothing was changed.",
                edit.path.display()
            ));
        }
        written.push(edit);
    }
    // The post-image is the text written, also when the front end wrote it into an editor
    // buffer that is not saved yet.
    let written = |path: &Path| {
        edits
            .iter()
            .find(|edit| edit.path == path)
            .map(|edit| edit.after.clone())
    };
    store.commit_change(pending, &written).map_err(|error| {
        format!("the files were written but the snapshot could not be completed: {error}")
    })
}

/// Writes through a temporary file in the same folder and a rename, so a reader never sees
/// half a file; creates missing folders; keeps an existing file's permissions.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    std::fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = parent.join(format!(".{name}.tack-{}", std::process::id()));
    std::fs::write(&temporary, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&temporary, meta.permissions());
    }
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

fn render_output(output: Result<ToolOutput, super::tools::ToolError>) -> Result<String, String> {
    match output {
        Ok(ToolOutput::Text(text)) => Ok(text),
        Ok(ToolOutput::Edits { message, .. }) => Ok(message),
        Err(error) => Err(error.to_string()),
    }
}

/// Estimated tokens of the messages' text: text, reasoning, tool call arguments and results.
fn conversation_tokens(messages: &[Message]) -> u64 {
    let bytes: usize = messages
        .iter()
        .flat_map(|message| &message.content)
        .map(|part| match part {
            ContentPart::Text(text) => text.len(),
            ContentPart::Thinking { text, .. } => text.len(),
            ContentPart::RedactedThinking { data } => data.len(),
            ContentPart::ToolCall(call) => call.name.len() + call.arguments.len(),
            ContentPart::ToolResult(result) => result.content.len(),
        })
        .sum();
    (bytes as u64).div_ceil(4)
}

/// The first lines of a result, for [`AgentEvent::ToolCallEnded`].
fn summarize(content: &str) -> String {
    let first: Vec<&str> = content.lines().take(3).collect();
    cap(&first.join("\n"), 300)
}

fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// The hash `Session::known_text` keeps of a file's text (`None`: the file does not exist).
fn text_hash(text: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}
