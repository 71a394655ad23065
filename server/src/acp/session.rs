//! One ACP session: tack's agent session for a folder, and the relay between it and the
//! client. A prompt becomes a user turn (or runs `/undo`, `/redo`); every agent event becomes
//! a `session/update`; an approval becomes a `session/request_permission` with the diff; the
//! turn's end answers the prompt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use agent_client_protocol::v1::schema::{
    AvailableCommand, AvailableCommandsUpdate, ClientCapabilities, ContentBlock, ContentChunk,
    PromptResponse, RequestPermissionOutcome, RequestPermissionRequest, SessionId,
    SessionNotification, SessionUpdate, TextContent, ToolCall, ToolCallContent, ToolCallStatus,
    ToolCallUpdate, ToolCallUpdateFields,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Client, ErrorCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::feedback::AcpFeedback;
use super::updates;
use crate::agent::{
    AgentEvent, LanguageFeedback, Permissions, RestoreDirection, SessionConfig, Submission,
    TurnEnd, run_session,
};
use crate::config::{Config, ConfigSources};
use crate::headless::{HeadlessFeedback, LanguageSession};
use crate::snapshots::{FileAction, SnapshotStore};

/// Sessions started by this process, for ids that stay unique within a second.
static STARTED: AtomicU32 = AtomicU32::new(0);

/// The prompt being answered.
struct Turn {
    responder: Responder<PromptResponse>,
    /// The last error the session reported in this turn (the answer when the model failed).
    last_error: Option<String>,
}

pub struct AcpSession {
    /// The ACP session id, also the snapshot session (`tack undo` works on it).
    id: String,
    root: PathBuf,
    connection: ConnectionTo<Client>,
    submissions: Mutex<Option<mpsc::Sender<Submission>>>,
    turn: Mutex<Option<Turn>>,
    store: Arc<SnapshotStore>,
    feedback: Arc<AcpFeedback>,
    /// The model's context window, when the catalog knows it (for usage updates).
    context_window: Option<u64>,
    agent: Mutex<Option<tokio::task::JoinHandle<crate::agent::SessionOutcome>>>,
    /// The folder's MCP servers, whose tools the agent has; closed with the session.
    mcp: crate::mcp::McpClients,
    /// The session's ledger: every agent event, and `/undo` `/redo`.
    ledger: Mutex<crate::ledger::SessionLedger>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn text_block(text: impl Into<String>) -> ContentBlock {
    ContentBlock::Text(TextContent::new(text))
}

impl AcpSession {
    /// Starts the session `tack run` would start in `cwd`: configuration, model (or the
    /// message naming what to set), permissions, snapshot store, language servers.
    pub async fn start(
        cwd: PathBuf,
        connection: ConnectionTo<Client>,
        capabilities: &ClientCapabilities,
        front_end: String,
    ) -> Result<Arc<AcpSession>, String> {
        let root = super::workspace_root(&cwd)?;
        let loaded = Config::load(&ConfigSources::from_env(Some(root.clone()), None));
        for warning in &loaded.warnings {
            tracing::warn!(%warning, "configuration");
        }
        let config = loaded.config;
        let (model, api_key, client) = crate::run::resolve_model(
            &config,
            None,
            |warning| tracing::warn!(%warning, "provider configuration"),
        )
        .await
        .map_err(|error| error.to_string())?;
        let permissions = Permissions::from_config(config.section("permissions"))
            .map_err(|error| format!("invalid [permissions]: {error}"))?;
        let data_dir = crate::snapshots::default_data_dir()
            .map_err(|error| format!("snapshot store: {error}"))?;
        let store = Arc::new(
            SnapshotStore::open(&data_dir, &root)
                .map_err(|error| format!("snapshot store: {error}"))?,
        );
        let id = format!(
            "{}-{}",
            crate::run::session_id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        // The folder's MCP servers start beside its language servers; one that fails is
        // told to the user and left out.
        let mcp = crate::mcp::McpClients::for_workspace(&config, &root);
        let (language, mcp_start) = tokio::join!(LanguageSession::start(&root), mcp.start());
        let language = language.map_err(|error| format!("language servers: {error}"))?;
        let mcp_problems = mcp_start.problems();
        let feedback = Arc::new(AcpFeedback::new(
            HeadlessFeedback::new(language),
            connection.clone(),
            SessionId::new(id.clone()),
            capabilities.fs.read_text_file,
            capabilities.fs.write_text_file,
        ));
        tracing::info!(
            session = id,
            model = model.label(),
            root = %root.display(),
            writes_through_client = feedback.writes_through_client(),
            "ACP session started"
        );
        let context_window = model.info.as_ref().and_then(|info| info.context);
        let mut ledger = crate::ledger::SessionLedger::new(&config, Some(store.clone()))
            .map_err(|error| format!("session ledger: {error}"))?;
        ledger.begin(&id);
        let mut session_config =
            SessionConfig::new(root.clone(), model, api_key, store.clone(), id.clone());
        session_config.client = client;
        session_config.permissions = permissions;
        session_config.front_end = front_end;
        for tool in mcp_start.tools {
            session_config.tools.register(tool);
        }
        let (submissions, submissions_rx) = mpsc::channel(16);
        let (events_tx, events_rx) = mpsc::channel(256);
        let agent = tokio::spawn(run_session(
            session_config,
            submissions_rx,
            events_tx,
            feedback.clone(),
        ));
        let session = Arc::new(AcpSession {
            id,
            root,
            connection,
            submissions: Mutex::new(Some(submissions)),
            turn: Mutex::new(None),
            store,
            feedback,
            context_window,
            agent: Mutex::new(Some(agent)),
            mcp,
            ledger: Mutex::new(ledger),
        });
        tokio::spawn(relay(session.clone(), events_rx));
        for problem in mcp_problems {
            session.say(format!("tack: {problem}\n"));
        }
        Ok(session)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Tells the client which slash commands the session takes.
    pub fn announce_commands(&self) {
        let commands = updates::COMMANDS
            .iter()
            .map(|(name, description)| AvailableCommand::new(*name, *description))
            .collect();
        self.update(SessionUpdate::AvailableCommandsUpdate(
            AvailableCommandsUpdate::new(commands),
        ));
    }

    fn update(&self, update: SessionUpdate) {
        let notification = SessionNotification::new(self.id.clone(), update);
        if let Err(error) = self.connection.send_notification(notification) {
            tracing::debug!(%error, "a session update was not sent");
        }
    }

    fn say(&self, text: impl Into<String>) {
        self.update(SessionUpdate::AgentMessageChunk(ContentChunk::new(
            text_block(text),
        )));
    }

    fn sender(&self) -> Option<mpsc::Sender<Submission>> {
        lock(&self.submissions).clone()
    }

    /// `session/prompt`: starts a turn, answered when it ends. One prompt at a time.
    pub fn prompt(
        self: &Arc<Self>,
        blocks: &[ContentBlock],
        responder: Responder<PromptResponse>,
    ) -> Result<(), agent_client_protocol::Error> {
        let text = updates::prompt_text(blocks);
        if text.trim().is_empty() {
            return responder.respond_with_error(super::error(
                "the prompt has no text tack can read (text, file links or embedded text)"
                    .to_owned(),
            ));
        }
        let mut turn = lock(&self.turn);
        if turn.is_some() {
            return responder.respond_with_error(super::error(
                "a prompt is already running in this session; send session/cancel first".to_owned(),
            ));
        }
        let Some(sender) = self.sender() else {
            return responder.respond_with_error(super::error(
                "this session has ended; start another with session/new".to_owned(),
            ));
        };
        *turn = Some(Turn {
            responder,
            last_error: None,
        });
        drop(turn);
        if let Some(command) = updates::slash_command(&text) {
            let session = self.clone();
            tokio::task::spawn_blocking(move || {
                let report = session.restore(command);
                session.say(report);
                session.finish_turn(&TurnEnd::Completed);
            });
            return Ok(());
        }
        if sender
            .try_send(Submission::UserTurn {
                text,
                context: Vec::new(),
            })
            .is_err()
        {
            self.fail_turn("the agent session is not taking prompts".to_owned());
        }
        Ok(())
    }

    /// `session/cancel`: stops the running turn (its prompt is answered `cancelled`).
    pub fn cancel(&self) {
        if let Some(sender) = self.sender()
            && sender.try_send(Submission::Cancel).is_err()
        {
            tracing::warn!(session = self.id, "the cancel did not reach the agent");
        }
    }

    /// Ends the agent session (the connection closed).
    pub async fn close(&self) {
        lock(&self.submissions).take();
        let agent = lock(&self.agent).take();
        if let Some(agent) = agent {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), agent).await;
        }
        self.mcp.shutdown().await;
        self.fail_turn("the connection closed".to_owned());
    }

    fn note_error(&self, message: &str) {
        if let Some(turn) = lock(&self.turn).as_mut() {
            turn.last_error = Some(message.to_owned());
        }
    }

    /// Answers the running prompt for a turn that ended.
    fn finish_turn(&self, end: &TurnEnd) {
        let Some(turn) = lock(&self.turn).take() else {
            return;
        };
        let answer = match updates::stop_reason(end, turn.last_error.as_deref()) {
            Ok(reason) => turn.responder.respond(PromptResponse::new(reason)),
            Err(message) => turn
                .responder
                .respond_with_error(agent_client_protocol::Error::new(
                    ErrorCode::INTERNAL_ERROR,
                    message,
                )),
        };
        if let Err(error) = answer {
            tracing::debug!(%error, "the prompt answer was not sent");
        }
    }

    fn fail_turn(&self, message: String) {
        if let Some(turn) = lock(&self.turn).take() {
            let _ = turn.responder.respond_with_error(super::error(message));
        }
    }

    /// Asks the client to approve a call, showing `content` (the diff); the answer goes to
    /// the agent. Runs in its own task: the relay goes on (a cancel must still end the turn).
    fn ask_permission(&self, call: String, content: Vec<ToolCallContent>) {
        let request = RequestPermissionRequest::new(
            self.id.clone(),
            ToolCallUpdate::new(call.clone(), ToolCallUpdateFields::new().content(content)),
            updates::permission_options(),
        );
        let sent = self.connection.send_request(request);
        let Some(sender) = self.sender() else { return };
        tokio::spawn(async move {
            let (allow, remember) = match sent.block_task().await {
                Ok(response) => match response.outcome {
                    RequestPermissionOutcome::Selected(selected) => {
                        updates::permission_answer(&selected.option_id.0)
                    }
                    _ => (false, false),
                },
                Err(error) => {
                    tracing::warn!(%error, "session/request_permission failed; denied");
                    (false, false)
                }
            };
            let _ = sender
                .send(Submission::ApprovalAnswer {
                    id: call,
                    allow,
                    remember,
                })
                .await;
        });
    }

    /// `/undo` or `/redo` (blocking): the plan is merged against the client's buffers and
    /// written through the client, like the agent's own edits. Returns what to tell the user.
    fn restore(&self, command: &str) -> String {
        let overlay = |path: &Path| self.feedback.buffer_text(path);
        let plan = if command == "undo" {
            self.store.undo(&self.id, &overlay)
        } else {
            self.store.redo(&self.id, &overlay)
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(error) => return format!("{command}: {error}"),
        };
        if plan.has_conflicts() {
            return crate::snapshots::cli::render_conflicts(&plan, command);
        }
        let mut written = Vec::new();
        for file in &plan.files {
            let result = match &file.action {
                FileAction::Write { content, .. } => match String::from_utf8(content.clone()) {
                    Ok(text) => {
                        let result = self.feedback.write_file(&file.path, &text);
                        written.push((file.path.clone(), text));
                        result
                    }
                    Err(_) => std::fs::write(&file.path, content),
                },
                FileAction::Delete => std::fs::remove_file(&file.path),
            };
            if let Err(error) = result {
                return format!(
                    "{command} stopped at {}: {error}; the files before it were restored",
                    file.relative_path
                );
            }
        }
        if let Err(error) = self.store.record_applied(&plan) {
            return format!("{command}: the files were restored but not recorded: {error}");
        }
        lock(&self.ledger).record(&AgentEvent::ChangesRestored {
            kind: if command == "undo" {
                RestoreDirection::Undo
            } else {
                RestoreDirection::Redo
            },
            changes: plan.changes.iter().map(|change| change.0).collect(),
            files: plan
                .files
                .iter()
                .map(|file| file.relative_path.clone())
                .collect(),
        });
        let runtime = tokio::runtime::Handle::current();
        for (path, text) in &written {
            runtime.block_on(self.feedback.file_changed(path, text));
        }
        let changes: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
        let files: Vec<&str> = plan
            .files
            .iter()
            .map(|file| file.relative_path.as_str())
            .collect();
        let mut report = format!("{command} of change {} done", changes.join(", "));
        if !files.is_empty() {
            report.push_str(&format!(": {}", files.join(", ")));
        }
        for note in &plan.notes {
            report.push_str(&format!("\nnote: {note}"));
        }
        report
    }
}

/// Relays the agent's events to the client until the agent session ends.
async fn relay(session: Arc<AcpSession>, mut events: mpsc::Receiver<AgentEvent>) {
    // The content shown so far for each running call (an update replaces the whole list).
    let mut content: HashMap<String, Vec<ToolCallContent>> = HashMap::new();
    let mut running: Option<String> = None;
    // The session's cost so far; `None` once a call had no price.
    let mut cost_usd = Some(0.0);
    while let Some(event) = events.recv().await {
        lock(&session.ledger).record(&event);
        match event {
            AgentEvent::TextDelta { text } => session.say(text),
            AgentEvent::ThinkingDelta { text } => session.update(SessionUpdate::AgentThoughtChunk(
                ContentChunk::new(text_block(text)),
            )),
            AgentEvent::ToolCallBegun {
                id,
                name,
                arguments,
            } => {
                let arguments: Value = serde_json::from_str(&arguments).unwrap_or(Value::Null);
                let call = ToolCall::new(id.clone(), updates::tool_title(&name, &arguments))
                    .kind(updates::tool_kind(&name))
                    .status(ToolCallStatus::Pending)
                    .locations(updates::tool_locations(&session.root, &arguments))
                    .raw_input(arguments);
                session.update(SessionUpdate::ToolCall(call));
                content.insert(id.clone(), Vec::new());
                running = Some(id);
            }
            AgentEvent::ApprovalAsked { id, summary, .. } => {
                let edits = session.feedback.prepared_edits(&id, false);
                let shown = if edits.is_empty() {
                    vec![ToolCallContent::from(summary)]
                } else {
                    updates::diffs(&edits)
                };
                content.insert(id.clone(), shown.clone());
                session.ask_permission(id, shown);
            }
            AgentEvent::Decision {
                id, allowed: true, ..
            } => {
                let fields = ToolCallUpdateFields::new().status(ToolCallStatus::InProgress);
                session.update(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                    id, fields,
                )));
            }
            AgentEvent::EditApplied { diff, .. } => {
                if let Some(id) = &running {
                    let edits = session.feedback.prepared_edits(id, false);
                    let shown = content.entry(id.clone()).or_default();
                    if !shown
                        .iter()
                        .any(|item| matches!(item, ToolCallContent::Diff(_)))
                    {
                        if edits.is_empty() {
                            shown.push(ToolCallContent::from(format!("```diff\n{diff}```")));
                        } else {
                            shown.extend(updates::diffs(&edits));
                        }
                    }
                }
            }
            AgentEvent::ToolCallEnded {
                id,
                summary,
                is_error,
                ..
            } => {
                session.feedback.prepared_edits(&id, true);
                let mut shown = content.remove(&id).unwrap_or_default();
                shown.push(ToolCallContent::from(summary));
                let status = if is_error {
                    ToolCallStatus::Failed
                } else {
                    ToolCallStatus::Completed
                };
                let fields = ToolCallUpdateFields::new().status(status).content(shown);
                session.update(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                    id.clone(),
                    fields,
                )));
                if running.as_deref() == Some(id.as_str()) {
                    running = None;
                }
            }
            AgentEvent::Usage { usage, cost } => {
                cost_usd = match (cost_usd, cost) {
                    (Some(sum), Some(cost)) => Some(sum + cost.usd),
                    _ => None,
                };
                if let Some(update) =
                    updates::usage_update(usage.as_ref(), session.context_window, cost_usd)
                {
                    session.update(SessionUpdate::UsageUpdate(update));
                }
            }
            AgentEvent::Error { message } => {
                session.note_error(&message);
                session.say(format!("\n\nError: {message}\n"));
            }
            AgentEvent::TurnDone { end } => {
                content.clear();
                running = None;
                session.finish_turn(&end);
            }
            _ => {}
        }
    }
    session.fail_turn("the agent session ended".to_owned());
}
