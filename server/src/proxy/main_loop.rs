//! The proxy's main loop: one task owns all session state and handles one [`Event`] at a time.
//!
//! Events merge the editor's messages, every child's messages (tagged by server id and process
//! generation), child exits and timers. Handlers never block: I/O happens in transport tasks,
//! waits are timers that come back as events. A panic inside a handler is caught; if the event
//! was an editor request, that request is still answered (invariant 1: exactly one response).

use super::capabilities::MergedCapabilities;
use super::child::{Child, ChildState};
use super::routing::MergeKind;
use crate::config::Config;
use crate::diagnostics::DiagnosticStore;
use crate::documents::DocumentStore;
use crate::jsonrpc::{
    Incoming, Message, Notification, Outgoing, Request, RequestId, Response, ResponseError,
    error_code,
};
use crate::server_id::ServerId;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Everything the main loop reacts to.
#[derive(Debug)]
pub enum Event {
    Editor(Incoming),
    Child {
        server: ServerId,
        generation: u32,
        incoming: Incoming,
    },
    ChildExited {
        server: ServerId,
        generation: u32,
        status: String,
    },
    Timer(Timer),
    /// From the connection's agent (see `agent_flow`).
    Surface(super::agent_flow::SurfaceEvent),
}

#[derive(Debug)]
pub enum Timer {
    RestartChild { server: ServerId, generation: u32 },
    InitializeDeadline,
    ShutdownDeadline,
    ExitDeadline,
    PullDiagnostics { server: ServerId, uri: String },
}

/// How the session ended, as the `exit` notification defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// `exit` after `shutdown`.
    Clean,
    /// `exit` without `shutdown`, or the editor went away.
    Abrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Waiting for `initialize`.
    Uninitialized,
    /// `initialize` received; children are starting.
    Initializing,
    Running,
    ShuttingDown,
    Exiting(SessionEnd),
}

/// An editor request forwarded to one or more children, waiting for their answers.
pub struct Inflight {
    pub method: String,
    pub merge: Option<MergeKind>,
    /// (server, generation, the child-facing id) not yet answered.
    pub waiting: Vec<(ServerId, u32, i64)>,
    pub parts: Vec<super::merge::Part>,
    /// Server priority order, for ordering parts.
    pub order: Vec<ServerId>,
    /// tack's own items, appended to the merged answer (code actions).
    pub appended: Vec<Value>,
}

/// A request tack sent to the editor, and what its answer is for.
pub enum EditorBound {
    /// A child's request, forwarded: the answer goes back to it with its own id.
    FromChild {
        server: ServerId,
        generation: u32,
        child_id: RequestId,
    },
    /// tack's own request (progress, applyEdit, approvals).
    Surface(super::agent_flow::SurfaceRequest),
    /// tack's own request whose answer does not matter.
    Ignored,
}

pub struct Proxy {
    pub(super) editor: Outgoing,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) lifecycle: Lifecycle,
    /// The editor has sent `initialized`: messages to it need no longer be held back.
    pub(super) editor_ready: bool,
    pub(super) held_for_editor: Vec<Message>,
    pub(super) root: Option<PathBuf>,
    pub(super) config: Config,
    pub(super) init_params: Value,
    pub(super) client_capabilities: Value,
    pub(super) documents: DocumentStore,
    pub(super) diagnostics: DiagnosticStore,
    pub(super) children: BTreeMap<ServerId, Child>,
    /// Language id → its servers, in priority order (the first is the primary).
    pub(super) language_servers: BTreeMap<String, Vec<ServerId>>,
    pub(super) merged: MergedCapabilities,
    pub(super) inflight: HashMap<RequestId, Inflight>,
    pub(super) editor_bound: HashMap<RequestId, EditorBound>,
    pub(super) next_editor_bound_id: i64,
    /// The editor's `initialize` id while children start.
    pub(super) initialize_id: Option<RequestId>,
    pub(super) initializing: HashSet<ServerId>,
    pub(super) shutdown_id: Option<RequestId>,
    pub(super) shutting_down: HashSet<ServerId>,
    /// Editor-facing progress token → (server, the child's own token).
    pub(super) progress_tokens: HashMap<String, (ServerId, Value)>,
    pub(super) pulls_scheduled: HashSet<(ServerId, String)>,
    pub(super) routing: Arc<RwLock<RoutingView>>,
    last_published_states: Vec<(ServerId, ChildState)>,
    /// The connection's agent, from its first use.
    pub(super) agent: Option<super::agent_flow::EditorAgent>,
    /// Parse trees of the open documents and the tags index (see `context_flow`).
    pub(super) syntax: super::context_flow::EditorSyntax,
}

/// What code outside the main loop (the agent) may know of the session: the diagnostics
/// store, and which servers are responsible for a file.
#[derive(Clone)]
pub struct ProxyHandle {
    pub diagnostics: DiagnosticStore,
    routing: Arc<RwLock<RoutingView>>,
}

/// A copy of the routing facts, refreshed by the main loop whenever a child's state changes.
#[derive(Default)]
pub struct RoutingView {
    config: Option<Config>,
    /// Language id → its live servers, in priority order.
    servers: BTreeMap<String, Vec<ServerId>>,
}

impl ProxyHandle {
    /// The language of a file, by the workspace configuration (`None` before `initialize`).
    pub fn language_of(&self, path: &std::path::Path) -> Option<String> {
        let view = self.routing.read().ok()?;
        view.config
            .as_ref()?
            .language_of_path(path)
            .map(str::to_owned)
    }

    /// The live servers responsible for a file: the ones whose diagnostics a wait needs.
    pub fn servers_for(&self, path: &std::path::Path) -> Vec<ServerId> {
        let Some(language) = self.language_of(path) else {
            return Vec::new();
        };
        self.routing
            .read()
            .ok()
            .and_then(|view| view.servers.get(&language).cloned())
            .unwrap_or_default()
    }
}

/// What a handler tells the loop.
pub(super) enum Flow {
    Continue,
    End(SessionEnd),
}

pub const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(30);
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(1);
pub const PULL_DEBOUNCE: Duration = Duration::from_millis(50);

impl Proxy {
    pub fn new(editor: Outgoing, events: mpsc::UnboundedSender<Event>) -> Self {
        Self {
            editor,
            events,
            lifecycle: Lifecycle::Uninitialized,
            editor_ready: false,
            held_for_editor: Vec::new(),
            root: None,
            config: Config::default(),
            init_params: Value::Null,
            client_capabilities: Value::Null,
            documents: DocumentStore::default(),
            diagnostics: DiagnosticStore::default(),
            children: BTreeMap::new(),
            language_servers: BTreeMap::new(),
            merged: super::capabilities::merge_server_capabilities(&[]),
            inflight: HashMap::new(),
            editor_bound: HashMap::new(),
            next_editor_bound_id: 1,
            initialize_id: None,
            initializing: HashSet::new(),
            shutdown_id: None,
            shutting_down: HashSet::new(),
            progress_tokens: HashMap::new(),
            pulls_scheduled: HashSet::new(),
            routing: Arc::new(RwLock::new(RoutingView::default())),
            last_published_states: Vec::new(),
            agent: None,
            syntax: Default::default(),
        }
    }

    /// A handle for code outside the loop; stays valid for the session's life.
    pub fn handle(&self) -> ProxyHandle {
        ProxyHandle {
            diagnostics: self.diagnostics.clone(),
            routing: self.routing.clone(),
        }
    }

    /// Refreshes the routing facts the handle exposes.
    pub(super) fn publish_routing(&self) {
        let mut servers: BTreeMap<String, Vec<ServerId>> = self
            .language_servers
            .iter()
            .map(|(language, ids)| {
                let live = ids
                    .iter()
                    .filter(|id| {
                        self.children.get(*id).is_some_and(|c| {
                            matches!(
                                c.state,
                                ChildState::Starting | ChildState::Running | ChildState::Restarting
                            )
                        })
                    })
                    .cloned()
                    .collect();
                (language.clone(), live)
            })
            .collect();
        self.add_companion_routing(&mut servers);
        if let Ok(mut view) = self.routing.write() {
            view.config = Some(self.config.clone());
            view.servers = servers;
        }
    }

    /// The diagnostics store, shared with whoever needs to read or wait on it.
    pub fn diagnostics(&self) -> DiagnosticStore {
        self.diagnostics.clone()
    }

    /// Runs until the editor sends `exit` or goes away.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) -> SessionEnd {
        while let Some(event) = events.recv().await {
            let request_id = match &event {
                Event::Editor(Incoming::Message(Message::Request(r))) => Some(r.id.clone()),
                _ => None,
            };
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.handle_event(event)));
            match outcome {
                Ok(Flow::Continue) => {}
                Ok(Flow::End(end)) => {
                    self.kill_all_children();
                    return end;
                }
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_owned());
                    tracing::error!(panic = %what, "a handler panicked; the session goes on");
                    if let Some(id) = request_id {
                        // Answer unless a response went out before the panic.
                        if let Some(inflight) = self.inflight.remove(&id) {
                            drop(inflight);
                        }
                        self.respond_error(
                            id,
                            error_code::INTERNAL_ERROR,
                            format!("tack failed handling this request: {what}"),
                        );
                    }
                }
            }
        }
        self.kill_all_children();
        SessionEnd::Abrupt
    }

    fn handle_event(&mut self, event: Event) -> Flow {
        let flow = self.dispatch_event(event);
        self.publish_routing_if_changed();
        flow
    }

    /// Child states change in many handlers; the routing view is refreshed after any event
    /// that changed one.
    /// Runs after every event, so the unchanged case compares in place without allocating.
    fn publish_routing_if_changed(&mut self) {
        let unchanged = self.children.values().map(|c| (&c.id, c.state)).eq(self
            .last_published_states
            .iter()
            .map(|(id, state)| (id, *state)));
        if !unchanged {
            self.publish_routing();
            self.last_published_states = self
                .children
                .values()
                .map(|c| (c.id.clone(), c.state))
                .collect();
        }
    }

    fn dispatch_event(&mut self, event: Event) -> Flow {
        match event {
            Event::Editor(incoming) => self.on_editor(incoming),
            Event::Child {
                server,
                generation,
                incoming,
            } => {
                if self.is_current(&server, generation) {
                    self.on_child(server, generation, incoming);
                }
                Flow::Continue
            }
            Event::ChildExited {
                server,
                generation,
                status,
            } => {
                if self.is_current(&server, generation) {
                    self.on_child_exited(server, status)
                } else {
                    Flow::Continue
                }
            }
            Event::Timer(timer) => self.on_timer(timer),
            Event::Surface(event) => {
                if self.lifecycle == Lifecycle::Running {
                    self.on_surface_event(event);
                }
                Flow::Continue
            }
        }
    }

    fn is_current(&self, server: &ServerId, generation: u32) -> bool {
        self.children
            .get(server)
            .is_some_and(|c| c.generation == generation)
    }

    fn on_editor(&mut self, incoming: Incoming) -> Flow {
        match incoming {
            Incoming::Message(Message::Request(request)) => {
                self.on_editor_request(request);
                Flow::Continue
            }
            Incoming::Message(Message::Notification(notification)) => {
                self.on_editor_notification(notification)
            }
            Incoming::Message(Message::Response(response)) => {
                self.on_editor_response(response);
                Flow::Continue
            }
            Incoming::Invalid(error) => {
                tracing::warn!(%error, "invalid message from the editor");
                self.send_to_editor(Message::Response(error.to_response()));
                Flow::Continue
            }
            Incoming::Skipped(why) => {
                tracing::warn!(%why, "skipped malformed input from the editor");
                Flow::Continue
            }
            Incoming::Closed(problem) => {
                match problem {
                    Some(problem) => tracing::warn!(%problem, "the editor connection broke"),
                    None => tracing::info!("the editor closed the connection"),
                }
                Flow::End(SessionEnd::Abrupt)
            }
        }
    }

    fn on_editor_request(&mut self, request: Request) {
        match (self.lifecycle, request.method.as_str()) {
            (Lifecycle::Uninitialized, "initialize") => self.on_initialize(request),
            (Lifecycle::Uninitialized, _) => self.respond_error(
                request.id,
                error_code::SERVER_NOT_INITIALIZED,
                format!("{} before initialize", request.method),
            ),
            (_, "initialize") => self.respond_error(
                request.id,
                error_code::INVALID_REQUEST,
                "initialize was already received".to_owned(),
            ),
            (Lifecycle::ShuttingDown | Lifecycle::Exiting(_), _) => self.respond_error(
                request.id,
                error_code::INVALID_REQUEST,
                format!("{} after shutdown", request.method),
            ),
            (_, "shutdown") => self.on_shutdown(request),
            (_, "textDocument/diagnostic") => self.on_pull_diagnostic_request(request),
            (_, "textDocument/codeAction") => self.on_code_action(request),
            (_, "workspace/executeCommand") => {
                if !self.on_tack_command(&request) {
                    self.forward_editor_request(request);
                }
            }
            _ => self.forward_editor_request(request),
        }
    }

    fn on_editor_notification(&mut self, notification: Notification) -> Flow {
        let method = notification.method.as_str();
        if method == "exit" {
            return self.on_exit();
        }
        if matches!(
            self.lifecycle,
            Lifecycle::Uninitialized | Lifecycle::Exiting(_)
        ) {
            tracing::debug!(method, "notification before initialize dropped");
            return Flow::Continue;
        }
        match method {
            "initialized" => self.on_editor_initialized(),
            "textDocument/didOpen" => self.on_did_open(notification),
            "textDocument/didChange" => self.on_did_change(notification),
            "textDocument/didSave" => self.on_did_save(notification),
            "textDocument/didClose" => self.on_did_close(notification),
            "textDocument/willSave" => self.on_will_save(notification),
            "$/cancelRequest" => self.on_editor_cancel(notification),
            "window/workDoneProgress/cancel" => self.on_progress_cancel(notification),
            super::companion::EDITOR_DIAGNOSTICS => self.on_editor_diagnostics(notification),
            _ => self.forward_editor_notification(notification),
        }
        Flow::Continue
    }

    fn on_timer(&mut self, timer: Timer) -> Flow {
        match timer {
            Timer::RestartChild { server, generation } => {
                if self.is_current(&server, generation) {
                    self.restart_child(&server);
                }
                Flow::Continue
            }
            Timer::InitializeDeadline => {
                if self.initialize_id.is_some() {
                    let late: Vec<_> = self.initializing.iter().map(ServerId::to_string).collect();
                    tracing::warn!(servers = ?late, "language servers did not answer initialize in time");
                    self.initializing.clear();
                    self.finish_initialize();
                }
                Flow::Continue
            }
            Timer::ShutdownDeadline => {
                if self.shutdown_id.is_some() {
                    tracing::warn!(servers = ?self.shutting_down, "language servers did not answer shutdown in time");
                    self.shutting_down.clear();
                    self.finish_shutdown();
                }
                Flow::Continue
            }
            Timer::ExitDeadline => match self.lifecycle {
                Lifecycle::Exiting(end) => Flow::End(end),
                _ => Flow::Continue,
            },
            Timer::PullDiagnostics { server, uri } => {
                self.pulls_scheduled.remove(&(server.clone(), uri.clone()));
                self.pull_diagnostics(&server, &uri);
                Flow::Continue
            }
        }
    }

    /// Sends after `delay` an event back to the loop.
    pub(super) fn schedule(&self, delay: Duration, timer: Timer) {
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = events.send(Event::Timer(timer));
        });
    }

    // ---- sending to the editor ----

    /// Sends to the editor, holding messages back until it has sent `initialized`
    /// (responses to its own requests and log/show messages always go at once).
    pub(super) fn send_to_editor(&mut self, message: Message) {
        let immediate = match &message {
            Message::Response(_) => true,
            Message::Notification(n) => matches!(
                n.method.as_str(),
                "window/showMessage" | "window/logMessage" | "telemetry/event"
            ),
            Message::Request(_) => false,
        };
        if immediate || self.editor_ready {
            if !self.editor.send(message) {
                tracing::debug!("the editor is gone; message dropped");
            }
        } else {
            self.held_for_editor.push(message);
        }
    }

    pub(super) fn respond(&mut self, response: Response) {
        let response = match self.answer_agent(response) {
            Ok(()) => return,
            Err(response) => response,
        };
        self.send_to_editor(Message::Response(response));
    }

    pub(super) fn respond_error(&mut self, id: RequestId, code: i64, message: String) {
        self.respond(Response::error(Some(id), ResponseError::new(code, message)));
    }

    pub(super) fn respond_value(&mut self, id: RequestId, value: &impl serde::Serialize) {
        self.respond(Response::ok_value(id, value));
    }

    pub(super) fn notify_editor(&mut self, method: &str, params: &impl serde::Serialize) {
        match Notification::with_value(method, params) {
            Ok(n) => self.send_to_editor(Message::Notification(n)),
            Err(error) => tracing::error!(%error, method, "could not serialize a notification"),
        }
    }

    /// `window/showMessage` with type 1 error, 2 warning, 3 info.
    pub(super) fn show_message(&mut self, kind: u8, message: String) {
        self.notify_editor(
            "window/showMessage",
            &serde_json::json!({ "type": kind, "message": message }),
        );
    }

    fn on_editor_initialized(&mut self) {
        self.editor_ready = true;
        for message in std::mem::take(&mut self.held_for_editor) {
            self.send_to_editor(message);
        }
    }

    pub(super) fn kill_all_children(&mut self) {
        for child in self.children.values_mut() {
            if let Some(process) = &mut child.process {
                process.kill();
            }
            child.state = ChildState::Stopped;
        }
    }
}
