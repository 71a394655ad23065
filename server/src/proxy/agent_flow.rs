//! The agent inside `tack lsp`: tack's own code actions and commands, runs in the background
//! with `$/progress`, proposals, and undo/redo — all through standard LSP.
//!
//! A run's edits are drafts ([`DraftSet`]): the language servers see them under versions of
//! tack's own (so every edit is checked by the real servers), the editor does not (its
//! diagnostics for a drafted document are held back until the run ends and the servers are
//! given the editor's text again). When the run ends, its change set becomes a proposal —
//! code actions to apply or reject it whole or per hunk, and an information diagnostic
//! where it waits — or, in mode `apply`, is applied at once. Applying takes a snapshot of the
//! editor's texts first, then sends `workspace/applyEdit` with versioned edits, so an
//! editor whose buffer moved on refuses it; the snapshot change is committed when the
//! editor says it applied the edit, abandoned otherwise. Undo and redo go the same way.
//!
//! Everything here runs on the main loop and never waits: snapshot work is a few file reads
//! and writes of the files concerned, model calls happen in the session task.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::main_loop::{EditorBound, Proxy};
use crate::agent::{AgentEvent, DraftSet, ProposalDecision, RestoreDirection, Submission, TurnEnd};
use crate::jsonrpc::{Message, Notification, Request, RequestId, Response, error_code};
use crate::snapshots::{
    ChangeId, FileAction, PendingChange, RestorePlan, SnapshotStore, cli::render_conflicts,
};
use crate::surfaces::edits::{self, EditSupport, FileEdits, Hunk};
use crate::surfaces::{Mode, SharedBuffers, actions, instruction, session, transcript};

/// What the agent side tells the main loop.
#[derive(Debug)]
pub enum SurfaceEvent {
    /// An LSP request of the agent's (navigation) for the children.
    Request {
        method: String,
        params: Value,
        reply: oneshot::Sender<Result<Value, String>>,
    },
    /// The agent drafted (or needs the servers to see) a file's text; the reply is the
    /// version the servers got, `None` when no server serves the file.
    DraftText {
        path: PathBuf,
        text: String,
        reply: oneshot::Sender<Option<i32>>,
    },
    /// An event of the agent session.
    Agent(AgentEvent),
    /// The session resolved its model and runs.
    SessionStarted { model: String },
    /// The session task ended; `error` says why when it could not run.
    SessionEnded { error: Option<String> },
    /// Something the user should know that does not stop the session (an MCP server that
    /// failed to start): shown as a warning message.
    Warning { message: String },
}

/// A request tack itself sent the editor, waiting for its answer.
pub enum SurfaceRequest {
    ProgressCreated { run: u32 },
    Apply(PendingApply),
    Restore { plan: RestorePlan },
    Approval { id: String },
}

/// An applyEdit of a proposal (or part of one) on its way to the editor.
pub struct PendingApply {
    proposal: u32,
    hunk: Option<(String, u32)>,
    /// Each file's text once the edit is applied.
    results: Vec<(PathBuf, String)>,
    change: PendingChange,
}

/// A proposal's edit for some scope (all of it, or one hunk).
struct ProposalEdit {
    edit: Value,
    label: String,
    files: Vec<ScopedFile>,
}

struct ScopedFile {
    path: PathBuf,
    relative: String,
    base: Option<String>,
    /// The file's text once the edit is applied.
    result: String,
}

/// The first version tack gives a drafted document; editors count from 0 or 1, so drafted
/// sets never pass for fresh editor sets.
const FIRST_DRAFT_VERSION: i32 = 1 << 30;

/// The agent of one editor connection.
pub struct EditorAgent {
    submissions: Option<mpsc::Sender<Submission>>,
    drafts: Arc<DraftSet>,
    pub(super) buffers: SharedBuffers,
    store: Arc<SnapshotStore>,
    session_id: String,
    /// The model asked for with `tack.setModel` (else the configured one).
    model: Option<String>,
    /// The model the running session resolved.
    model_label: Option<String>,
    mode: Mode,
    transcript: PathBuf,
    transcript_shown: bool,
    run: Option<Run>,
    next_run: u32,
    proposals: Vec<Proposal>,
    next_proposal: u32,
    /// Agent requests to the children, by the id tack gave them.
    pub(super) replies: HashMap<RequestId, oneshot::Sender<Result<Value, String>>>,
    next_request: u64,
    /// Documents the servers see a draft of: uri → whether tack opened it for them.
    drafted: HashMap<String, bool>,
    next_draft_version: i32,
    /// Snapshot step counter for changes applied from the editor.
    step: u32,
    /// The latest applied change and its files, for "Undo tack change".
    undoable: Option<(ChangeId, Vec<String>)>,
    /// The files of the latest undone change, for "Redo tack change".
    redoable: Option<Vec<String>>,
    tokens: u64,
    cost_usd: Option<f64>,
    /// The session's ledger (`None`: a bad `[ledger]` setting, reported when the agent started).
    ledger: Option<crate::ledger::SessionLedger>,
}

struct Run {
    id: u32,
    title: String,
    token: String,
    progress_ready: bool,
    /// The instruction comment the run was started from: (path, instruction, 0-based line).
    instruction: Option<(PathBuf, String, usize)>,
    answer: String,
}

struct Proposal {
    id: u32,
    summary: String,
    files: Vec<ProposedFile>,
}

struct ProposedFile {
    path: PathBuf,
    uri: String,
    relative: String,
    /// The text the proposal applies to (`None`: the file does not exist).
    base: Option<String>,
    target: String,
}

impl ProposedFile {
    fn hunks(&self) -> Vec<Hunk> {
        edits::hunks(self.base.as_deref().unwrap_or(""), &self.target)
    }
}

impl Proxy {
    // ---- the agent's lifetime ----

    /// The connection's agent, started on first use.
    fn agent(&mut self) -> Option<&mut EditorAgent> {
        if self.agent.is_none() {
            let root = self.root.clone()?;
            let data_dir = match crate::snapshots::default_data_dir() {
                Ok(dir) => dir,
                Err(error) => {
                    self.show_message(1, format!("tack: no data folder for snapshots: {error}"));
                    return None;
                }
            };
            let store = match SnapshotStore::open(&data_dir, &root) {
                Ok(store) => Arc::new(store),
                Err(error) => {
                    self.show_message(1, format!("tack: cannot open the snapshot store: {error}"));
                    return None;
                }
            };
            let buffers: SharedBuffers = Arc::new(RwLock::new(
                self.documents
                    .iter()
                    .map(|d| (d.uri.clone(), (d.version, d.text.clone())))
                    .collect(),
            ));
            let configured = self
                .config
                .section("editor")
                .and_then(|editor| editor.get("mode"))
                .cloned();
            let mode = match &configured {
                None => Mode::default(),
                Some(value) => match value.as_str().and_then(Mode::parse) {
                    Some(mode) => mode,
                    None => {
                        self.show_message(
                            2,
                            format!("tack: [editor] mode = {value} is neither \"propose\" nor \"apply\"; using \"propose\""),
                        );
                        Mode::default()
                    }
                },
            };
            let session_id = crate::run::session_id();
            let ledger = match crate::ledger::SessionLedger::new(&self.config, Some(store.clone()))
            {
                Ok(mut ledger) => {
                    ledger.begin(&session_id);
                    Some(ledger)
                }
                Err(error) => {
                    self.show_message(1, format!("tack: {error}; this session is not recorded"));
                    None
                }
            };
            self.agent = Some(EditorAgent {
                submissions: None,
                drafts: Arc::new(DraftSet::default()),
                buffers,
                store,
                transcript: transcript::path(&data_dir, &session_id),
                session_id,
                model: None,
                model_label: None,
                mode,
                transcript_shown: false,
                run: None,
                next_run: 1,
                proposals: Vec::new(),
                next_proposal: 1,
                replies: HashMap::new(),
                next_request: 1,
                drafted: HashMap::new(),
                next_draft_version: FIRST_DRAFT_VERSION,
                step: 0,
                undoable: None,
                redoable: None,
                tokens: 0,
                cost_usd: None,
                ledger,
            });
        }
        self.agent.as_mut()
    }

    /// The session's submissions channel, starting the session task when there is none.
    fn submissions(&mut self) -> Option<mpsc::Sender<Submission>> {
        let root = self.root.clone()?;
        let config = self.config.clone();
        let proxy = self.handle();
        let events = self.events.clone();
        let front_end = match &self.init_params["clientInfo"] {
            Value::Object(info) => format!(
                "{} {}",
                info.get("name").and_then(Value::as_str).unwrap_or("editor"),
                info.get("version").and_then(Value::as_str).unwrap_or("")
            )
            .trim_end()
            .to_owned(),
            _ => "editor".to_owned(),
        };
        let agent = self.agent()?;
        if let Some(submissions) = &agent.submissions {
            return Some(submissions.clone());
        }
        let submissions = session::spawn(session::EditorSessionSetup {
            root,
            config,
            front_end,
            session_id: agent.session_id.clone(),
            model: agent.model.clone(),
            store: agent.store.clone(),
            drafts: agent.drafts.clone(),
            buffers: agent.buffers.clone(),
            proxy,
            events,
        });
        agent.submissions = Some(submissions.clone());
        Some(submissions)
    }

    /// Keeps the agent's copy of an editor buffer current (called after every text change).
    pub(super) fn share_buffer(&mut self, uri: &str) {
        let Some(agent) = &self.agent else { return };
        let mut buffers = agent
            .buffers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.documents.get(uri) {
            Some(document) => {
                buffers.insert(uri.to_owned(), (document.version, document.text.clone()));
            }
            None => {
                buffers.remove(uri);
            }
        }
    }

    pub(super) fn on_surface_event(&mut self, event: SurfaceEvent) {
        match event {
            SurfaceEvent::Request {
                method,
                params,
                reply,
            } => self.on_agent_request(method, params, reply),
            SurfaceEvent::DraftText { path, text, reply } => {
                let version = self.show_draft(&path, &text);
                let _ = reply.send(version);
            }
            SurfaceEvent::Agent(event) => self.on_agent_event(event),
            SurfaceEvent::SessionStarted { model } => {
                if let Some(agent) = &mut self.agent {
                    agent.model_label = Some(model);
                }
            }
            SurfaceEvent::Warning { message } => self.show_message(2, format!("tack: {message}")),
            SurfaceEvent::SessionEnded { error } => {
                if let Some(agent) = &mut self.agent {
                    agent.submissions = None;
                }
                if let Some(error) = error {
                    self.show_message(1, format!("tack: {error}"));
                    self.finish_run(&TurnEnd::Failed);
                }
            }
        }
    }

    // ---- the agent's requests and drafts ----

    fn on_agent_request(
        &mut self,
        method: String,
        params: Value,
        reply: oneshot::Sender<Result<Value, String>>,
    ) {
        if self.agent.is_none() {
            let _ = reply.send(Err("no agent session".to_owned()));
            return;
        }
        // Servers such as clangd answer only for open documents: a file neither the editor
        // nor the run has open is shown to them with its disk text, until the run ends.
        if let Some(uri) = params.pointer("/textDocument/uri").and_then(Value::as_str)
            && self.documents.get(uri).is_none()
            && !self.is_drafted(uri)
            && let Some(path) = url::Url::parse(uri)
                .ok()
                .and_then(|u| u.to_file_path().ok())
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            self.show_draft(&path, &text);
        }
        let Some(agent) = &mut self.agent else { return };
        let id = RequestId::String(format!("tack/agent/{}", agent.next_request));
        agent.next_request += 1;
        agent.replies.insert(id.clone(), reply);
        let params = match serde_json::value::to_raw_value(&params) {
            Ok(params) => params,
            Err(error) => {
                return self.respond_error(id, error_code::INVALID_PARAMS, error.to_string());
            }
        };
        self.forward_editor_request(Request {
            id,
            method,
            params: Some(params),
        });
    }

    /// An answer for one of the agent's requests, if `response` is one; `Err` gives it back.
    pub(super) fn answer_agent(&mut self, response: Response) -> Result<(), Response> {
        let reply = match (&response.id, &mut self.agent) {
            (Some(id @ RequestId::String(text)), Some(agent)) if text.starts_with("tack/") => {
                agent.replies.remove(id)
            }
            _ => None,
        };
        let Some(reply) = reply else {
            return Err(response);
        };
        let result = match (response.error, response.result) {
            (Some(error), _) => Err(error.message),
            (None, Some(raw)) => serde_json::from_str(raw.get()).map_err(|e| e.to_string()),
            (None, None) => Ok(Value::Null),
        };
        let _ = reply.send(result);
        Ok(())
    }

    /// Shows the servers `text` as the content of `path`; the version they got.
    fn show_draft(&mut self, path: &Path, text: &str) -> Option<i32> {
        let uri = crate::headless::file_uri(path).ok()?;
        let servers = self.running_servers_for(&uri);
        let language = self.language_for(&uri)?;
        let open_in_editor = self.documents.get(&uri).is_some();
        let agent = self.agent.as_mut()?;
        if servers.is_empty() {
            return None;
        }
        let version = agent.next_draft_version;
        agent.next_draft_version += 1;
        let first = !agent.drafted.contains_key(&uri);
        agent.drafted.entry(uri.clone()).or_insert(!open_in_editor);
        let open = first && !open_in_editor;
        for server in servers {
            let Some(child) = self.children.get_mut(&server) else {
                continue;
            };
            let (method, params) = if open {
                (
                    "textDocument/didOpen",
                    json!({ "textDocument": { "uri": uri, "languageId": language, "version": version, "text": text } }),
                )
            } else {
                (
                    "textDocument/didChange",
                    json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
                )
            };
            if let Ok(n) = Notification::with_value(method, &params) {
                child.send(Message::Notification(n));
            }
            self.schedule_pulls_after_change(&server, &uri);
        }
        Some(version)
    }

    /// Whether the servers see a draft of `uri` (its diagnostics are then not the editor's).
    pub(super) fn is_drafted(&self, uri: &str) -> bool {
        self.agent
            .as_ref()
            .is_some_and(|agent| agent.drafted.contains_key(uri))
    }

    /// The editor closed a drafted document: the servers keep the draft open until the run
    /// ends, and tack closes it then. `false` when `uri` is not drafted.
    pub(super) fn keep_draft_open(&mut self, uri: &str) -> bool {
        match self.agent.as_mut().and_then(|a| a.drafted.get_mut(uri)) {
            Some(opened_by_tack) => {
                *opened_by_tack = true;
                true
            }
            None => false,
        }
    }

    /// The editor changed a drafted document: the servers get its text back (in full), and
    /// the draft of it is no longer what they see.
    pub(super) fn undraft(&mut self, uri: &str) -> bool {
        self.agent
            .as_mut()
            .is_some_and(|agent| agent.drafted.remove(uri).is_some())
    }

    /// Gives the servers the editor's (or the disk's) texts back for every drafted document.
    fn end_drafts(&mut self) {
        let Some(agent) = &mut self.agent else { return };
        let drafted: Vec<(String, bool)> = agent.drafted.drain().collect();
        for (uri, opened_by_tack) in drafted {
            let servers = self.running_servers_for(&uri);
            let editor_text = self
                .documents
                .get(&uri)
                .map(|d| (d.version, d.text_string()));
            for server in &servers {
                let Some(child) = self.children.get_mut(server) else {
                    continue;
                };
                let message = match (&editor_text, opened_by_tack) {
                    (Some((version, text)), _) => Notification::with_value(
                        "textDocument/didChange",
                        &json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
                    ),
                    (None, true) => Notification::with_value(
                        "textDocument/didClose",
                        &json!({ "textDocument": { "uri": uri } }),
                    ),
                    (None, false) => continue,
                };
                if let Ok(n) = message {
                    child.send(Message::Notification(n));
                }
            }
            for server in servers {
                self.schedule_pulls_after_change(&server, &uri);
            }
            self.publish_merged(&uri, None);
        }
    }

    // ---- runs ----

    /// Starts a run in the background: answers at once, reports with `$/progress`.
    fn start_run(
        &mut self,
        title: String,
        prompt: String,
        instruction: Option<(PathBuf, String, usize)>,
    ) {
        if let Some(run) = self.agent.as_ref().and_then(|a| a.run.as_ref()) {
            let busy = format!(
                "tack is still working on \"{}\"; cancel it first (tack.cancel)",
                run.title
            );
            return self.show_message(2, busy);
        }
        let Some(submissions) = self.submissions() else {
            return;
        };
        let supports_progress =
            self.client_capabilities["window"]["workDoneProgress"] == Value::Bool(true);
        let supports_show_document =
            self.client_capabilities["window"]["showDocument"]["support"] == Value::Bool(true);
        let Some(agent) = &mut self.agent else { return };
        let id = agent.next_run;
        agent.next_run += 1;
        let token = format!("tack/run/{id}");
        agent.run = Some(Run {
            id,
            title: title.clone(),
            token: token.clone(),
            progress_ready: false,
            instruction,
            answer: String::new(),
        });
        let show_transcript = supports_show_document && !agent.transcript_shown;
        agent.transcript_shown |= show_transcript;
        let transcript_path = agent.transcript.clone();
        transcript::append(&transcript_path, &format!("\n# {title}\n"));
        if !self.send_user_turn(submissions, prompt) {
            self.show_message(
                1,
                "tack: the agent session is not taking requests".to_owned(),
            );
            if let Some(agent) = &mut self.agent {
                agent.run = None;
            }
            return;
        }
        if supports_progress {
            self.request_editor(
                "window/workDoneProgress/create",
                &json!({ "token": token }),
                SurfaceRequest::ProgressCreated { run: id },
            );
        }
        if show_transcript && let Ok(uri) = crate::headless::file_uri(&transcript_path) {
            self.notify_editor_request(
                "window/showDocument",
                &json!({ "uri": uri, "takeFocus": false }),
            );
        }
    }

    fn on_agent_event(&mut self, event: AgentEvent) {
        let Some(agent) = &mut self.agent else { return };
        if let Some(ledger) = &mut agent.ledger {
            ledger.record(&event);
        }
        if let Some(text) = transcript::render(&event) {
            transcript::append(&agent.transcript, &text);
        }
        match &event {
            AgentEvent::TextDelta { text } => {
                if let Some(run) = &mut agent.run {
                    run.answer.push_str(text);
                }
            }
            AgentEvent::Usage { usage, cost } => {
                if let Some(usage) = usage {
                    agent.tokens += usage.total_input() + usage.output;
                }
                if let Some(cost) = cost {
                    agent.cost_usd = Some(agent.cost_usd.unwrap_or(0.0) + cost.usd);
                }
            }
            // An editor that declares no `window.showMessage` (Helix) never answers
            // `showMessageRequest`: asking would hold the run forever, so tack denies and
            // says how to allow it instead.
            AgentEvent::ApprovalAsked { id, tool, .. }
                if self.client_capabilities["window"]["showMessage"].is_null() =>
            {
                if let Some(submissions) = self.agent.as_ref().and_then(|a| a.submissions.clone()) {
                    let _ = submissions.try_send(Submission::ApprovalAnswer {
                        id: id.clone(),
                        allow: false,
                        remember: false,
                    });
                }
                self.show_message(
                    2,
                    format!(
                        "tack: {tool} needs your approval, but this editor cannot ask for it \
                         (no window/showMessageRequest), so it was denied. Allow it in \
                         [permissions] in tack.toml, for example {tool} = \"allow\"."
                    ),
                );
            }
            AgentEvent::ApprovalAsked { id, tool, summary } => {
                let params = json!({
                    "type": 3,
                    "message": format!("tack wants to use {tool}:\n{summary}"),
                    "actions": [{ "title": "Allow" }, { "title": "Allow for this session" }, { "title": "Deny" }],
                });
                let id = id.clone();
                self.request_editor(
                    "window/showMessageRequest",
                    &params,
                    SurfaceRequest::Approval { id },
                );
            }
            _ => {}
        }
        if let Some(line) = transcript::progress(&event) {
            self.report_progress(&line);
        }
        self.send_transcript_event(&event);
        if let AgentEvent::TurnDone { end } = &event {
            self.finish_run(end);
        }
        if matches!(
            event,
            AgentEvent::Usage { .. } | AgentEvent::TurnDone { .. }
        ) {
            self.send_status();
        }
    }

    /// `tack/status` for clients that asked for it (`experimental.tack.status`).
    fn send_status(&mut self) {
        if self.client_capabilities["experimental"]["tack"]["status"] == Value::Bool(true) {
            let status = self.status();
            self.notify_editor("tack/status", &status);
        }
    }

    /// `tack/transcript` for clients that asked for it (`experimental.tack.transcript`).
    fn send_transcript_event(&mut self, event: &AgentEvent) {
        if self.client_capabilities["experimental"]["tack"]["transcript"] != Value::Bool(true) {
            return;
        }
        let Some(agent) = &self.agent else { return };
        let params = json!({
            "session": agent.session_id,
            "run": agent.run.as_ref().map(|r| r.id),
            "event": event,
        });
        self.notify_editor("tack/transcript", &params);
    }

    fn report_progress(&mut self, message: &str) {
        let Some(run) = self.agent.as_ref().and_then(|a| a.run.as_ref()) else {
            return;
        };
        if !run.progress_ready {
            return;
        }
        let params =
            json!({ "token": run.token, "value": { "kind": "report", "message": message } });
        self.notify_editor("$/progress", &params);
    }

    /// The run's turn ended: the servers get the editor's texts back, and the change set
    /// becomes a proposal or is applied.
    fn finish_run(&mut self, end: &TurnEnd) {
        self.end_drafts();
        let Some(agent) = &mut self.agent else { return };
        let Some(run) = agent.run.take() else { return };
        let drafts = agent.drafts.take();
        let mut files: Vec<ProposedFile> = Vec::new();
        let root = self.root.clone().unwrap_or_default();
        for draft in drafts {
            let Ok(uri) = crate::headless::file_uri(&draft.path) else {
                continue;
            };
            files.push(ProposedFile {
                relative: relative(&root, &draft.path),
                uri,
                path: draft.path,
                base: draft.original,
                target: draft.text,
            });
        }
        // An instruction comment goes away with the change it asked for.
        if let Some((path, text, line)) = &run.instruction
            && *end == TurnEnd::Completed
        {
            match files.iter_mut().find(|file| &file.path == path) {
                Some(file) => {
                    if let Some(target) = instruction::remove(&file.target, text, *line) {
                        file.target = target;
                    }
                }
                None => {
                    let current = self.current_text(path);
                    if let (Some(current), Ok(uri)) = (current, crate::headless::file_uri(path))
                        && let Some(target) = instruction::remove(&current, text, *line)
                    {
                        files.push(ProposedFile {
                            relative: relative(&root, path),
                            uri,
                            path: path.clone(),
                            base: Some(current),
                            target,
                        });
                    }
                }
            }
        }
        let end_text = transcript::end_text(end);
        let answer = run.answer.trim().to_owned();
        let Some(agent) = &mut self.agent else { return };
        if files.is_empty() {
            self.end_progress(&run, end_text);
            let message = if answer.is_empty() {
                format!("tack: {} — {end_text}, no changes", run.title)
            } else {
                format!("tack: {answer}")
            };
            return self.show_message(3, message);
        }
        let id = agent.next_proposal;
        agent.next_proposal += 1;
        let summary = summary_of(&answer, &run.title);
        let proposal = Proposal {
            id,
            summary: summary.clone(),
            files,
        };
        let hunks: usize = proposal.files.iter().map(|f| f.hunks().len()).sum();
        let names: Vec<String> = proposal.files.iter().map(|f| f.relative.clone()).collect();
        let mode = agent.mode;
        agent.proposals.push(proposal);
        self.record(AgentEvent::ProposalShown {
            proposal: id,
            summary: summary.clone(),
            files: names.clone(),
            hunks: u32::try_from(hunks).unwrap_or(u32::MAX),
        });
        match mode {
            Mode::Apply => {
                self.end_progress(&run, "applying");
                self.apply_proposal(id, None);
            }
            Mode::Propose => {
                self.end_progress(&run, "proposal ready");
                for name in &names {
                    if let Some(uri) = self.uri_of(name) {
                        self.publish_merged(&uri, None);
                    }
                }
                self.show_message(
                    3,
                    format!(
                        "tack proposes: {summary} ({}). Apply or reject it with the code actions \"Apply tack change\" in the changed lines.",
                        names.join(", ")
                    ),
                );
            }
        }
    }

    fn end_progress(&mut self, run: &Run, message: &str) {
        if run.progress_ready {
            let params =
                json!({ "token": run.token, "value": { "kind": "end", "message": message } });
            self.notify_editor("$/progress", &params);
        }
    }

    /// Records a decision: the transcript, the ledger (with the editor's document versions of
    /// the files), the log, and `tack/transcript` clients.
    fn record(&mut self, event: AgentEvent) {
        let files = match &event {
            AgentEvent::ProposalDecided { files, .. }
            | AgentEvent::ChangesRestored { files, .. } => files.clone(),
            _ => Vec::new(),
        };
        let versions: serde_json::Map<String, Value> = files
            .iter()
            .filter_map(|file| {
                let uri = self.uri_of(file)?;
                Some((file.clone(), json!(self.documents.get(&uri)?.version)))
            })
            .collect();
        if let Some(ledger) = self.agent.as_mut().and_then(|a| a.ledger.as_mut()) {
            let mut detail = serde_json::Map::new();
            if !versions.is_empty() {
                detail.insert("document_versions".to_owned(), Value::Object(versions));
            }
            ledger.record_with(&event, detail);
        }
        if let Some(agent) = &self.agent
            && let Some(text) = transcript::render(&event)
        {
            transcript::append(&agent.transcript, &text);
        }
        tracing::info!(event = ?event, "editor decision");
        self.send_transcript_event(&event);
    }

    fn cancel_run(&mut self) {
        let Some(agent) = &self.agent else { return };
        if agent.run.is_none() {
            return;
        }
        if let Some(submissions) = &agent.submissions {
            let _ = submissions.try_send(Submission::Cancel);
        }
        self.cancel_context_assembly();
    }

    /// `window/workDoneProgress/cancel` for a run's token: the run is cancelled. `false` when
    /// the token is not tack's.
    pub(super) fn cancel_by_token(&mut self, token: &Value) -> bool {
        let ours = self
            .agent
            .as_ref()
            .and_then(|a| a.run.as_ref())
            .is_some_and(|run| token.as_str() == Some(run.token.as_str()));
        if ours {
            self.cancel_run();
        }
        ours
    }

    // ---- code actions ----

    /// tack's code actions for a `textDocument/codeAction` request (cheap: no model call).
    pub(super) fn tack_code_actions(&self, params: &Value) -> Vec<Value> {
        let uri = params["textDocument"]["uri"].as_str().unwrap_or_default();
        let Some(path) = url::Url::parse(uri)
            .ok()
            .and_then(|u| u.to_file_path().ok())
        else {
            return Vec::new();
        };
        let Some(root) = &self.root else {
            return Vec::new();
        };
        if !path.starts_with(root) {
            return Vec::new();
        }
        let only = params["context"]["only"].as_array();
        let range = &params["range"];
        let first = range["start"]["line"].as_u64().unwrap_or(0) as u32;
        let last = range["end"]["line"].as_u64().unwrap_or(u64::from(first)) as u32;
        let mut out = Vec::new();
        let quickfix = actions::kind_wanted(only, "quickfix");
        let refactor = actions::kind_wanted(only, "refactor.rewrite");
        if let Some(agent) = &self.agent {
            self.proposal_actions(agent, uri, first, last, only, &mut out);
            if quickfix
                && let Some((change, uris)) = &agent.undoable
                && uris.iter().any(|u| u == uri)
            {
                out.push(actions::action(
                    "Undo tack change",
                    "quickfix",
                    "tack.undo",
                    json!({ "change": change.0 }),
                ));
            }
            if quickfix
                && let Some(uris) = &agent.redoable
                && uris.iter().any(|u| u == uri)
            {
                out.push(actions::action(
                    "Redo tack change",
                    "quickfix",
                    "tack.redo",
                    json!({}),
                ));
            }
        }
        if quickfix {
            for diagnostic in params["context"]["diagnostics"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if diagnostic["source"] != "tack" {
                    out.push(actions::fix(uri, diagnostic));
                }
            }
            let has_errors = self
                .diagnostics
                .merged(uri)
                .iter()
                .any(|d| d.severity.is_none_or(|s| s == 1));
            if has_errors {
                out.push(actions::action(
                    "Fix all errors in file with tack",
                    "quickfix",
                    "tack.fixFile",
                    json!({ "uri": uri }),
                ));
            }
        }
        if let Some(document) = self.documents.get(uri) {
            let lines = document.text.len_lines() as u32;
            for line in first..=last.min(lines.saturating_sub(1)) {
                let text = document.text.line(line as usize).to_string();
                if refactor && let Some(instruction) = instruction::parse(&text) {
                    out.push(actions::action(
                        &format!("Run tack instruction: {instruction}"),
                        "refactor.rewrite",
                        "tack.instruction",
                        json!({ "uri": uri, "line": line }),
                    ));
                }
            }
        }
        let selected = range["start"] != range["end"];
        if selected && refactor {
            let argument = json!({ "uri": uri, "range": range });
            out.push(actions::action(
                "Explain with tack",
                "refactor",
                "tack.explain",
                argument.clone(),
            ));
            out.push(actions::action(
                "Refactor with tack",
                "refactor.rewrite",
                "tack.refactor",
                argument.clone(),
            ));
            if self.client_capabilities["experimental"]["tack"]["askPrompt"] == Value::Bool(true) {
                out.push(actions::action(
                    "Ask tack…",
                    "refactor.rewrite",
                    "tack.ask",
                    argument,
                ));
            }
        }
        out
    }

    fn proposal_actions(
        &self,
        agent: &EditorAgent,
        uri: &str,
        first: u32,
        last: u32,
        only: Option<&Vec<Value>>,
        out: &mut Vec<Value>,
    ) {
        if !actions::kind_wanted(only, "quickfix") {
            return;
        }
        for proposal in &agent.proposals {
            let Some(file) = proposal.files.iter().find(|f| f.uri == uri) else {
                continue;
            };
            // A proposal whose base is no longer the text is stale: not offered.
            if self.current_text(&file.path) != file.base {
                continue;
            }
            let hunks = file.hunks();
            let total: usize = proposal.files.iter().map(|f| f.hunks().len()).sum();
            let near: Vec<(usize, &Hunk)> = hunks
                .iter()
                .enumerate()
                .filter(|(_, h)| h.start <= last + 1 && first <= h.end.max(h.start + 1))
                .collect();
            if near.is_empty() && !hunks.is_empty() && first > hunks[hunks.len() - 1].end + 1 {
                continue;
            }
            let argument = json!({ "proposal": proposal.id });
            let title = format!("Apply tack change: {}", proposal.summary);
            let mut apply = if self.can_apply_edit() {
                actions::action(&title, "quickfix", "tack.apply", argument.clone())
            } else {
                // No workspace/applyEdit: the action carries the versioned edit itself, and
                // its command records the change once the editor applied it.
                let Ok(scoped) = self.proposal_edit(proposal.id, None) else {
                    continue;
                };
                let mut action =
                    actions::action(&title, "quickfix", "tack.applied", argument.clone());
                action["edit"] = scoped.edit;
                action
            };
            apply["isPreferred"] = Value::Bool(true);
            out.push(apply);
            out.push(actions::action(
                &format!("Reject tack change: {}", proposal.summary),
                "quickfix",
                "tack.reject",
                argument,
            ));
            if total > 1 {
                for (index, hunk) in near {
                    let argument = json!({ "proposal": proposal.id, "uri": uri, "hunk": index });
                    let at = hunk.first_line();
                    let title = format!("Apply this hunk (tack, line {at})");
                    if self.can_apply_edit() {
                        out.push(actions::action(
                            &title,
                            "quickfix",
                            "tack.applyHunk",
                            argument.clone(),
                        ));
                    } else if let Ok(scoped) =
                        self.proposal_edit(proposal.id, Some(&(uri.to_owned(), index as u32)))
                    {
                        let mut action =
                            actions::action(&title, "quickfix", "tack.applied", argument.clone());
                        action["edit"] = scoped.edit;
                        out.push(action);
                    }
                    out.push(actions::action(
                        &format!("Reject this hunk (tack, line {at})"),
                        "quickfix",
                        "tack.rejectHunk",
                        argument,
                    ));
                }
            }
        }
    }

    fn can_apply_edit(&self) -> bool {
        self.client_capabilities["workspace"]["applyEdit"] == Value::Bool(true)
    }

    /// Information diagnostics marking where proposals wait (merged into what the editor gets).
    pub(super) fn proposal_diagnostics(&self, uri: &str) -> Vec<Value> {
        let Some(agent) = &self.agent else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for proposal in &agent.proposals {
            for file in proposal.files.iter().filter(|f| f.uri == uri) {
                let base = file.base.as_deref().unwrap_or("");
                for hunk in file.hunks() {
                    let range = edits::text_edit(base, &hunk)["range"].clone();
                    let line = hunk.start;
                    let range = if hunk.start == hunk.end {
                        json!({ "start": { "line": line, "character": 0 }, "end": { "line": line, "character": 0 } })
                    } else {
                        range
                    };
                    out.push(json!({
                        "range": range,
                        "severity": 3,
                        "source": "tack",
                        "message": format!("tack proposal: {} (code action \"Apply tack change\")", proposal.summary),
                    }));
                }
            }
        }
        out
    }

    // ---- commands ----

    /// `workspace/executeCommand` for a tack command; `false` when the command is not tack's.
    pub(super) fn on_tack_command(&mut self, request: &Request) -> bool {
        let Ok(params) = request.params_as::<Value>() else {
            return false;
        };
        let Some(command) = params["command"].as_str() else {
            return false;
        };
        if !actions::is_tack_command(command) {
            return false;
        }
        let argument = params["arguments"][0].clone();
        let id = request.id.clone();
        let result = self.run_command(command, &argument);
        match result {
            Ok(value) => self.respond_value(id, &value),
            Err(message) => self.respond_error(id, error_code::INVALID_PARAMS, message),
        }
        true
    }

    fn run_command(&mut self, command: &str, argument: &Value) -> Result<Value, String> {
        self.syntax.next_request = super::context_flow::request_of(command, argument);
        let uri = argument["uri"].as_str().unwrap_or_default().to_owned();
        match command {
            "tack.fix" => {
                let (path, relative, text) = self.document_for(&uri)?;
                let diagnostic = &argument["diagnostic"];
                let prompt = actions::fix_prompt(&relative, &text, diagnostic);
                let message = diagnostic["message"].as_str().unwrap_or("diagnostic");
                let _ = path;
                self.start_run(format!("Fix: {message}"), prompt, None);
            }
            "tack.fixFile" => {
                let (_, relative, _) = self.document_for(&uri)?;
                let errors: Vec<String> = self
                    .diagnostics
                    .merged(&uri)
                    .iter()
                    .filter(|d| d.severity.is_none_or(|s| s == 1))
                    .map(|d| format!("- {relative}:{}: {}", d.range.start.line + 1, d.message))
                    .collect();
                let prompt = format!("Fix all errors in {relative}:\n{}", errors.join("\n"));
                self.start_run(format!("Fix all errors in {relative}"), prompt, None);
            }
            "tack.ask" if uri.is_empty() => {
                let prompt = argument["prompt"]
                    .as_str()
                    .filter(|p| !p.trim().is_empty())
                    .ok_or("tack.ask needs a prompt")?
                    .to_owned();
                self.start_run(prompt.clone(), prompt, None);
            }
            "tack.explain" | "tack.refactor" | "tack.ask" => {
                let (_, relative, text) = self.document_for(&uri)?;
                let first = argument["range"]["start"]["line"].as_u64().unwrap_or(0) as usize + 1;
                let last = argument["range"]["end"]["line"].as_u64().unwrap_or(0) as usize + 1;
                let (title, what) = match command {
                    "tack.explain" => (
                        format!("Explain {relative}:{first}-{last}"),
                        "Explain what this code does, briefly. Do not change any file.".to_owned(),
                    ),
                    "tack.refactor" => (
                        format!("Refactor {relative}:{first}-{last}"),
                        "Refactor this code for clarity without changing its behaviour; update its callers if needed.".to_owned(),
                    ),
                    _ => {
                        let prompt = argument["prompt"]
                            .as_str()
                            .ok_or("tack.ask needs a prompt")?
                            .to_owned();
                        (prompt.clone(), prompt)
                    }
                };
                let prompt = actions::selection_prompt(&what, &relative, &text, first, last);
                self.start_run(title, prompt, None);
            }
            "tack.instruction" => {
                let (path, relative, text) = self.document_for(&uri)?;
                let line = argument["line"]
                    .as_u64()
                    .ok_or("tack.instruction needs a line")? as usize;
                let instruction = text
                    .lines()
                    .nth(line)
                    .and_then(instruction::parse)
                    .ok_or_else(|| {
                        format!("no tack: instruction on line {} of {relative}", line + 1)
                    })?;
                let prompt = format!(
                    "{instruction}\n\n(This instruction is a comment at {relative}:{}; leave the comment to tack, it is removed when your change is applied.)\n\n{}",
                    line + 1,
                    actions::numbered_lines(&text, line.saturating_sub(10).max(1), line + 20)
                );
                self.start_run(
                    format!("Instruction: {instruction}"),
                    prompt,
                    Some((path, instruction, line)),
                );
            }
            "tack.apply" => {
                let proposal = proposal_id(argument)?;
                self.apply_proposal(proposal, None);
            }
            "tack.applied" => {
                let proposal = proposal_id(argument)?;
                let hunk = argument["hunk"].as_u64().map(|h| (uri.clone(), h as u32));
                if let Err(reason) = self.record_applied_by_editor(proposal, hunk) {
                    self.show_message(2, format!("tack: {reason}"));
                    return Err(reason);
                }
            }
            "tack.applyHunk" => {
                let proposal = proposal_id(argument)?;
                let hunk = argument["hunk"]
                    .as_u64()
                    .ok_or("tack.applyHunk needs a hunk")? as u32;
                self.apply_proposal(proposal, Some((uri, hunk)));
            }
            "tack.reject" | "tack.rejectHunk" => {
                let proposal = proposal_id(argument)?;
                let hunk = if command == "tack.rejectHunk" {
                    Some((
                        uri,
                        argument["hunk"]
                            .as_u64()
                            .ok_or("tack.rejectHunk needs a hunk")? as u32,
                    ))
                } else {
                    None
                };
                self.reject_proposal(proposal, hunk)?;
            }
            "tack.undo" => self.restore(RestoreDirection::Undo)?,
            "tack.redo" => self.restore(RestoreDirection::Redo)?,
            "tack.restore" => {
                let change = argument["change"].as_u64().map(|c| ChangeId(c as u32));
                self.restore_to(change)?;
            }
            "tack.cancel" => self.cancel_run(),
            "tack.status" => return Ok(self.status()),
            "tack.newSession" | "tack.setModel" => {
                if command == "tack.setModel" {
                    let model = argument["model"]
                        .as_str()
                        .ok_or("tack.setModel needs a model")?;
                    if let Some(agent) = self.agent() {
                        agent.model = Some(model.to_owned());
                    }
                }
                self.new_session();
            }
            "tack.showTranscript" => {
                let Some(agent) = &self.agent else {
                    return Err("no tack session yet".to_owned());
                };
                let uri =
                    crate::headless::file_uri(&agent.transcript).map_err(|e| e.to_string())?;
                return Ok(json!({ "uri": uri }));
            }
            _ => return Err(format!("unknown command {command}")),
        }
        Ok(Value::Null)
    }

    fn status(&self) -> Value {
        match &self.agent {
            None => json!({ "session": null, "running": null }),
            Some(agent) => json!({
                "session": agent.session_id,
                "model": agent.model_label.as_ref().or(agent.model.as_ref()),
                "mode": match agent.mode { Mode::Propose => "propose", Mode::Apply => "apply" },
                "running": agent.run.as_ref().map(|r| r.title.clone()),
                "proposals": agent.proposals.iter().map(|p| json!({ "id": p.id, "summary": p.summary })).collect::<Vec<_>>(),
                "tokens": agent.tokens,
                "costUsd": agent.cost_usd,
                "transcript": agent.transcript,
            }),
        }
    }

    /// Ends the session (its conversation); the next run starts a new one.
    fn new_session(&mut self) {
        self.cancel_run();
        if let Some(agent) = &mut self.agent {
            agent.submissions = None;
            agent.model_label = None;
            agent.session_id = crate::run::session_id();
            if let Some(ledger) = &mut agent.ledger {
                ledger.begin(&agent.session_id);
            }
            agent.undoable = None;
            agent.redoable = None;
            agent.tokens = 0;
            agent.cost_usd = None;
            if let Ok(dir) = crate::snapshots::default_data_dir() {
                agent.transcript = transcript::path(&dir, &agent.session_id);
            }
            agent.transcript_shown = false;
        }
    }

    // ---- applying, rejecting, undoing ----

    fn apply_proposal(&mut self, id: u32, hunk: Option<(String, u32)>) {
        match self.prepare_apply(id, hunk.clone()) {
            Ok((edit, pending)) => {
                let label = self
                    .agent
                    .as_ref()
                    .and_then(|a| a.proposals.iter().find(|p| p.id == id))
                    .map(|p| format!("tack: {}", p.summary))
                    .unwrap_or_else(|| "tack".to_owned());
                self.request_editor(
                    "workspace/applyEdit",
                    &json!({ "label": label, "edit": edit }),
                    SurfaceRequest::Apply(pending),
                );
            }
            Err(reason) => {
                let files = self.proposal_files(id, hunk.as_ref());
                self.record(AgentEvent::ProposalDecided {
                    proposal: id,
                    decision: ProposalDecision::Refused,
                    files,
                    hunk: hunk.map(|(_, h)| h),
                    change: None,
                    reason: Some(reason.clone()),
                });
                self.show_message(2, format!("tack: {reason}"));
            }
        }
    }

    /// The edit applying a proposal (or one hunk of it), and each file's base and text after.
    fn proposal_edit(&self, id: u32, hunk: Option<&(String, u32)>) -> Result<ProposalEdit, String> {
        let support = EditSupport::from_client_capabilities(&self.client_capabilities);
        let agent = self.agent.as_ref().ok_or("no tack session")?;
        let proposal = agent
            .proposals
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| format!("proposal {id} is gone (applied or rejected already)"))?;
        let mut file_edits = Vec::new();
        let mut files = Vec::new();
        for file in &proposal.files {
            let hunk_index = match hunk {
                Some((uri, index)) if *uri == file.uri => Some(*index as usize),
                Some(_) => continue,
                None => None,
            };
            let base = file.base.as_deref().unwrap_or("");
            let hunks = file.hunks();
            let (chosen, result): (Vec<&Hunk>, String) = match hunk_index {
                Some(index) => {
                    let one = hunks
                        .get(index)
                        .ok_or_else(|| format!("{} has no hunk {}", file.relative, index + 1))?;
                    (vec![one], edits::apply_hunks(base, &hunks, |i| i == index))
                }
                None => (hunks.iter().collect(), file.target.clone()),
            };
            file_edits.push(FileEdits {
                uri: file.uri.clone(),
                version: self.documents.get(&file.uri).map(|d| d.version),
                create: file.base.is_none(),
                edits: chosen.iter().map(|h| edits::text_edit(base, h)).collect(),
            });
            files.push(ScopedFile {
                path: file.path.clone(),
                relative: file.relative.clone(),
                base: file.base.clone(),
                result,
            });
        }
        if files.is_empty() {
            return Err(format!("proposal {id} has nothing to apply there"));
        }
        Ok(ProposalEdit {
            edit: edits::workspace_edit(&file_edits, support),
            label: format!("tack: {}", proposal.summary),
            files,
        })
    }

    /// Checks the proposal still applies, snapshots the editor's texts, and builds the edit.
    fn prepare_apply(
        &mut self,
        id: u32,
        hunk: Option<(String, u32)>,
    ) -> Result<(Value, PendingApply), String> {
        let scoped = self.proposal_edit(id, hunk.as_ref())?;
        for file in &scoped.files {
            if self.current_text(&file.path) != file.base {
                return Err(format!(
                    "the proposal is out of date: {} changed since it was made; ask again",
                    file.relative
                ));
            }
        }
        let paths: Vec<PathBuf> = scoped.files.iter().map(|f| f.path.clone()).collect();
        let open: HashMap<PathBuf, String> = paths
            .iter()
            .filter_map(|path| Some((path.clone(), self.open_text(path)?)))
            .collect();
        let overlay = |path: &Path| open.get(path).cloned();
        let change = self.begin_change(&scoped.label, &paths, &overlay)?;
        Ok((
            scoped.edit,
            PendingApply {
                proposal: id,
                hunk,
                results: scoped
                    .files
                    .into_iter()
                    .map(|f| (f.path, f.result))
                    .collect(),
                change,
            },
        ))
    }

    fn begin_change(
        &mut self,
        label: &str,
        paths: &[PathBuf],
        overlay: crate::snapshots::Overlay<'_>,
    ) -> Result<PendingChange, String> {
        let agent = self.agent.as_mut().ok_or("no tack session")?;
        agent.step += 1;
        agent
            .store
            .begin_change(&agent.session_id, agent.step, label, paths, overlay)
            .map_err(|error| {
                format!("cannot snapshot before applying, so nothing was changed: {error}")
            })
    }

    /// `tack.applied`: an editor without `workspace/applyEdit` applied a proposal's edit from
    /// the code action itself; the change is recorded (pre-image: the text the versioned edit
    /// applied to) like one tack applied.
    fn record_applied_by_editor(
        &mut self,
        id: u32,
        hunk: Option<(String, u32)>,
    ) -> Result<(), String> {
        let scoped = self.proposal_edit(id, hunk.as_ref())?;
        for file in &scoped.files {
            if self.current_text(&file.path).as_deref() != Some(file.result.as_str()) {
                return Err(format!(
                    "{} does not hold the proposed text; not recorded",
                    file.relative
                ));
            }
        }
        let paths: Vec<PathBuf> = scoped.files.iter().map(|f| f.path.clone()).collect();
        let before: HashMap<PathBuf, Option<String>> = scoped
            .files
            .iter()
            .map(|f| (f.path.clone(), f.base.clone()))
            .collect();
        let overlay = |path: &Path| before.get(path).cloned().flatten();
        let change = self.begin_change(&scoped.label, &paths, &overlay)?;
        let pending = PendingApply {
            proposal: id,
            hunk,
            results: scoped
                .files
                .into_iter()
                .map(|f| (f.path, f.result))
                .collect(),
            change,
        };
        self.applied(pending);
        Ok(())
    }

    fn on_apply_answer(&mut self, pending: PendingApply, response: &Response) {
        let (applied, reason) = applied_of(response);
        let files: Vec<String> = pending
            .results
            .iter()
            .map(|(path, _)| relative(self.root.as_deref().unwrap_or(Path::new("/")), path))
            .collect();
        let Some(agent) = &mut self.agent else { return };
        let hunk = pending.hunk.as_ref().map(|(_, h)| *h);
        if !applied {
            if let Err(error) = agent.store.abandon_change(pending.change) {
                tracing::error!(%error, "cannot record an abandoned change");
            }
            let reason = reason.unwrap_or_else(|| "the editor did not apply the edit".to_owned());
            self.record(AgentEvent::ProposalDecided {
                proposal: pending.proposal,
                decision: ProposalDecision::Refused,
                files,
                hunk,
                change: None,
                reason: Some(reason.clone()),
            });
            return self.show_message(2, format!("tack: the change was not applied: {reason}"));
        }
        self.applied(pending);
    }

    /// The editor applied a proposal's edit: the snapshot change is committed, the proposal
    /// moves on (what was applied is its new base), and the decision is recorded.
    fn applied(&mut self, pending: PendingApply) {
        let files: Vec<String> = pending
            .results
            .iter()
            .map(|(path, _)| relative(self.root.as_deref().unwrap_or(Path::new("/")), path))
            .collect();
        let hunk = pending.hunk.as_ref().map(|(_, h)| *h);
        let Some(agent) = &mut self.agent else { return };
        let results: HashMap<PathBuf, String> = pending.results.into_iter().collect();
        let overlay = |path: &Path| results.get(path).cloned();
        let change = match agent.store.commit_change(pending.change, &overlay) {
            Ok(change) => Some(change),
            Err(error) => {
                tracing::error!(%error, "the edit was applied but its snapshot could not be completed");
                None
            }
        };
        let uris: Vec<String> = results
            .keys()
            .filter_map(|p| crate::headless::file_uri(p).ok())
            .collect();
        if let Some(proposal) = agent
            .proposals
            .iter_mut()
            .find(|p| p.id == pending.proposal)
        {
            for file in &mut proposal.files {
                if let Some(result) = results.get(&file.path) {
                    file.base = Some(result.clone());
                }
            }
            proposal
                .files
                .retain(|f| f.base.as_deref() != Some(f.target.as_str()));
        }
        agent.proposals.retain(|p| !p.files.is_empty());
        if let Some(change) = change {
            agent.undoable = Some((change, uris.clone()));
            agent.redoable = None;
        }
        self.record(AgentEvent::ProposalDecided {
            proposal: pending.proposal,
            decision: ProposalDecision::Applied,
            files,
            hunk,
            change: change.map(|c| c.0),
            reason: None,
        });
        for uri in uris {
            self.publish_merged(&uri, None);
        }
    }

    fn reject_proposal(&mut self, id: u32, hunk: Option<(String, u32)>) -> Result<(), String> {
        let files = self.proposal_files(id, hunk.as_ref());
        let agent = self.agent.as_mut().ok_or("no tack session")?;
        let index = agent
            .proposals
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| format!("proposal {id} is gone (applied or rejected already)"))?;
        let mut touched = Vec::new();
        match &hunk {
            None => {
                let proposal = agent.proposals.remove(index);
                touched.extend(proposal.files.into_iter().map(|f| f.uri));
            }
            Some((uri, number)) => {
                let proposal = &mut agent.proposals[index];
                let file = proposal
                    .files
                    .iter_mut()
                    .find(|f| &f.uri == uri)
                    .ok_or_else(|| format!("proposal {id} does not change {uri}"))?;
                let hunks = file.hunks();
                let base = file.base.clone().unwrap_or_default();
                let number = *number as usize;
                if number >= hunks.len() {
                    return Err(format!("{} has no hunk {}", file.relative, number + 1));
                }
                file.target = edits::apply_hunks(&base, &hunks, |i| i != number);
                touched.push(uri.clone());
                proposal
                    .files
                    .retain(|f| f.base.as_deref() != Some(f.target.as_str()));
                if proposal.files.is_empty() {
                    agent.proposals.remove(index);
                }
            }
        }
        self.record(AgentEvent::ProposalDecided {
            proposal: id,
            decision: ProposalDecision::Rejected,
            files,
            hunk: hunk.map(|(_, h)| h),
            change: None,
            reason: None,
        });
        for uri in touched {
            self.publish_merged(&uri, None);
        }
        Ok(())
    }

    fn restore(&mut self, direction: RestoreDirection) -> Result<(), String> {
        let agent = self
            .agent
            .as_ref()
            .ok_or("no tack change to undo in this session")?;
        let overlay = |path: &Path| self.open_text(path);
        let plan = match direction {
            RestoreDirection::Undo => agent.store.undo(&agent.session_id, &overlay),
            RestoreDirection::Redo => agent.store.redo(&agent.session_id, &overlay),
        }
        .map_err(|error| error.to_string())?;
        self.send_restore(plan, direction)
    }

    fn restore_to(&mut self, change: Option<ChangeId>) -> Result<(), String> {
        let agent = self
            .agent
            .as_ref()
            .ok_or("no tack change in this session")?;
        let point = match change {
            Some(change) => crate::snapshots::RestorePoint::Before(change),
            None => crate::snapshots::RestorePoint::Start,
        };
        let overlay = |path: &Path| self.open_text(path);
        let plan = agent
            .store
            .restore_to(&agent.session_id, point, &overlay)
            .map_err(|error| error.to_string())?;
        self.send_restore(plan, RestoreDirection::Undo)
    }

    /// Sends a restore plan to the editor as one `workspace/applyEdit`; conflicts refuse.
    fn send_restore(
        &mut self,
        plan: RestorePlan,
        direction: RestoreDirection,
    ) -> Result<(), String> {
        let verb = match direction {
            RestoreDirection::Undo => "undo",
            RestoreDirection::Redo => "redo",
        };
        if plan.has_conflicts() {
            let message = render_conflicts(&plan, verb);
            self.show_message(2, format!("tack: {message}"));
            return Err(message);
        }
        if plan.changes.is_empty() {
            return Err(format!("nothing to {verb}"));
        }
        if !self.can_apply_edit() {
            let message = format!(
                "this editor takes no edits from a language server (workspace/applyEdit); use `tack {verb}` in a terminal"
            );
            self.show_message(2, format!("tack: {message}"));
            return Err(message);
        }
        let support = EditSupport::from_client_capabilities(&self.client_capabilities);
        let mut file_edits = Vec::new();
        let mut deletes = Vec::new();
        for file in &plan.files {
            let uri = crate::headless::file_uri(&file.path).map_err(|e| e.to_string())?;
            match &file.action {
                FileAction::Write { content, .. } => {
                    let target = String::from_utf8(content.clone()).map_err(|_| {
                        format!(
                            "{} is not text; use `tack {verb}` on the command line",
                            file.relative_path
                        )
                    })?;
                    let current = self.current_text(&file.path);
                    let base = current.clone().unwrap_or_default();
                    file_edits.push(FileEdits {
                        version: self.documents.get(&uri).map(|d| d.version),
                        create: current.is_none(),
                        edits: edits::hunks(&base, &target)
                            .iter()
                            .map(|h| edits::text_edit(&base, h))
                            .collect(),
                        uri,
                    });
                }
                FileAction::Delete => deletes.push(uri),
            }
        }
        let mut edit = edits::workspace_edit(&file_edits, support);
        if !deletes.is_empty() {
            let can_delete =
                self.client_capabilities["workspace"]["workspaceEdit"]["resourceOperations"]
                    .as_array()
                    .is_some_and(|ops| ops.iter().any(|op| op == "delete"));
            if !(can_delete && support.document_changes) {
                let message = format!(
                    "this {verb} deletes files, which the editor cannot do through LSP here; use `tack {verb}` on the command line"
                );
                self.show_message(2, format!("tack: {message}"));
                return Err(message);
            }
            if let Some(changes) = edit["documentChanges"].as_array_mut() {
                for uri in deletes {
                    changes.push(json!({ "kind": "delete", "uri": uri, "options": { "ignoreIfNotExists": true } }));
                }
            }
        }
        self.request_editor(
            "workspace/applyEdit",
            &json!({ "label": format!("tack: {verb}"), "edit": edit }),
            SurfaceRequest::Restore { plan },
        );
        Ok(())
    }

    fn on_restore_answer(&mut self, plan: RestorePlan, response: &Response) {
        let (applied, reason) = applied_of(response);
        let verb = match plan.kind {
            crate::snapshots::RestoreKind::Redo => RestoreDirection::Redo,
            _ => RestoreDirection::Undo,
        };
        if !applied {
            let reason = reason.unwrap_or_else(|| "the editor did not apply the edit".to_owned());
            return self.show_message(2, format!("tack: {verb:?} not applied: {reason}"));
        }
        let Some(agent) = &mut self.agent else { return };
        if let Err(error) = agent.store.record_applied(&plan) {
            tracing::error!(%error, "the restore was applied but could not be recorded");
        }
        let uris: Vec<String> = plan
            .files
            .iter()
            .filter_map(|f| crate::headless::file_uri(&f.path).ok())
            .collect();
        let touched: Vec<String> = plan
            .changes
            .iter()
            .flat_map(|c| {
                agent
                    .store
                    .changes(&agent.session_id)
                    .ok()
                    .into_iter()
                    .flatten()
                    .filter(move |r| r.id == *c)
                    .flat_map(|r| r.files.into_iter().map(|f| f.path))
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let touched_uris: Vec<String> = touched
            .iter()
            .filter_map(|p| crate::headless::file_uri(&agent.store.workspace_root().join(p)).ok())
            .collect();
        match verb {
            RestoreDirection::Undo => {
                agent.undoable = None;
                agent.redoable = Some(touched_uris);
            }
            RestoreDirection::Redo => {
                agent.redoable = None;
                agent.undoable = plan.changes.last().map(|c| (*c, touched_uris));
            }
        }
        self.record(AgentEvent::ChangesRestored {
            kind: verb,
            changes: plan.changes.iter().map(|c| c.0).collect(),
            files: touched,
        });
        for uri in uris {
            self.publish_merged(&uri, None);
        }
    }

    // ---- requests to the editor and their answers ----

    fn request_editor(&mut self, method: &str, params: &Value, purpose: SurfaceRequest) {
        let id = RequestId::Number(self.next_editor_bound_id);
        self.next_editor_bound_id += 1;
        let params = match serde_json::value::to_raw_value(params) {
            Ok(params) => params,
            Err(error) => return tracing::error!(%error, method, "cannot encode a request"),
        };
        self.editor_bound
            .insert(id.clone(), EditorBound::Surface(purpose));
        self.send_to_editor(Message::Request(Request {
            id,
            method: method.to_owned(),
            params: Some(params),
        }));
    }

    /// A request whose answer does not matter (showDocument).
    pub(super) fn notify_editor_request(&mut self, method: &str, params: &Value) {
        let id = RequestId::Number(self.next_editor_bound_id);
        self.next_editor_bound_id += 1;
        if let Ok(params) = serde_json::value::to_raw_value(params) {
            self.editor_bound.insert(id.clone(), EditorBound::Ignored);
            self.send_to_editor(Message::Request(Request {
                id,
                method: method.to_owned(),
                params: Some(params),
            }));
        }
    }

    pub(super) fn on_surface_answer(&mut self, purpose: SurfaceRequest, response: Response) {
        match purpose {
            SurfaceRequest::ProgressCreated { run } => {
                let Some(agent) = &mut self.agent else { return };
                let Some(current) = agent.run.as_mut().filter(|r| r.id == run) else {
                    return;
                };
                if response.error.is_some() {
                    return;
                }
                current.progress_ready = true;
                let params = json!({
                    "token": current.token,
                    "value": { "kind": "begin", "title": "tack", "message": current.title, "cancellable": true },
                });
                self.notify_editor("$/progress", &params);
            }
            SurfaceRequest::Apply(pending) => self.on_apply_answer(pending, &response),
            SurfaceRequest::Restore { plan } => self.on_restore_answer(plan, &response),
            SurfaceRequest::Approval { id } => {
                let title = response
                    .result
                    .as_ref()
                    .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
                    .and_then(|v| v["title"].as_str().map(str::to_owned));
                let (allow, remember) = match title.as_deref() {
                    Some("Allow") => (true, false),
                    Some("Allow for this session") => (true, true),
                    _ => (false, false),
                };
                if let Some(submissions) = self.agent.as_ref().and_then(|a| a.submissions.clone()) {
                    let _ = submissions.try_send(Submission::ApprovalAnswer {
                        id,
                        allow,
                        remember,
                    });
                }
            }
        }
    }

    // ---- helpers ----

    /// The text of an editor buffer, if open.
    fn open_text(&self, path: &Path) -> Option<String> {
        let uri = crate::headless::file_uri(path).ok()?;
        self.documents.get(&uri).map(|d| d.text_string())
    }

    /// What the user has now: the editor's buffer, else the disk; `None` if neither.
    fn current_text(&self, path: &Path) -> Option<String> {
        self.open_text(path)
            .or_else(|| std::fs::read_to_string(path).ok())
    }

    /// The path, workspace-relative name and current text of a document tack may work on.
    fn document_for(&self, uri: &str) -> Result<(PathBuf, String, String), String> {
        let path = url::Url::parse(uri)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| format!("{uri:?} is not a file URI"))?;
        let root = self.root.as_ref().ok_or("no workspace folder")?;
        if !path.starts_with(root) {
            return Err(format!(
                "{} is outside the workspace {}",
                path.display(),
                root.display()
            ));
        }
        let text = self
            .current_text(&path)
            .ok_or_else(|| format!("cannot read {}", path.display()))?;
        Ok((path.clone(), relative(root, &path), text))
    }

    fn uri_of(&self, relative_path: &str) -> Option<String> {
        let root = self.root.as_ref()?;
        crate::headless::file_uri(&root.join(relative_path)).ok()
    }

    fn proposal_files(&self, id: u32, hunk: Option<&(String, u32)>) -> Vec<String> {
        self.agent
            .as_ref()
            .and_then(|a| a.proposals.iter().find(|p| p.id == id))
            .map(|p| {
                p.files
                    .iter()
                    .filter(|f| hunk.is_none_or(|(uri, _)| *uri == f.uri))
                    .map(|f| f.relative.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn proposal_id(argument: &Value) -> Result<u32, String> {
    argument["proposal"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| "the command needs a proposal id".to_owned())
}

/// `workspace/applyEdit`'s answer: applied, and the editor's reason if not.
fn applied_of(response: &Response) -> (bool, Option<String>) {
    if let Some(error) = &response.error {
        return (false, Some(error.message.clone()));
    }
    let result = response
        .result
        .as_ref()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .unwrap_or(Value::Null);
    (
        result["applied"] == Value::Bool(true),
        result["failureReason"].as_str().map(str::to_owned),
    )
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// A proposal's one-line summary: the first line of the model's answer, else the run title.
fn summary_of(answer: &str, title: &str) -> String {
    let line = answer
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(title);
    let mut summary: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        summary.push('…');
    }
    summary
}
