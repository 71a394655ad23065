//! A language-server session without an editor, for `tack run`: tack acts as the editor of
//! its own proxy, in process, over an in-memory pipe. The agent gets the same children,
//! routing, merged and versioned diagnostics as in an editor session.

use crate::diagnostics::{FreshnessReport, FreshnessWant};
use crate::jsonrpc::{
    self, Incoming, Message, Notification, Outgoing, Request, RequestId, Response, ResponseError,
    error_code,
};
use crate::proxy::{self, ProxyHandle, SessionEnd};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long a request to the servers may take before it is given up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const PIPE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    #[error("the language-server session has ended")]
    Ended,
    #[error("{method} timed out after {seconds} s")]
    Timeout { method: String, seconds: u64 },
    #[error("{method} failed: {message} ({code})")]
    Failed {
        method: String,
        code: i64,
        message: String,
    },
    #[error("cannot encode {method}: {source}")]
    Encode {
        method: String,
        source: serde_json::Error,
    },
    #[error("{path} is not a file path tack can name with a URI")]
    BadPath { path: PathBuf },
}

type Pending = Arc<Mutex<HashMap<RequestId, oneshot::Sender<Response>>>>;

/// One headless session over the workspace `root`.
pub struct LanguageSession {
    root: PathBuf,
    proxy: ProxyHandle,
    to_proxy: Outgoing,
    pending: Pending,
    next_id: AtomicI64,
    /// Open documents: uri → (version, text).
    documents: Mutex<HashMap<String, (i32, String)>>,
    /// Messages the servers showed (`window/showMessage`), for the front end to print.
    pub messages: Arc<Mutex<Vec<String>>>,
    task: Mutex<Option<tokio::task::JoinHandle<SessionEnd>>>,
}

impl LanguageSession {
    /// Starts the proxy over `root` and initializes it; the servers of the workspace's
    /// languages start in parallel.
    pub async fn start(root: &Path) -> Result<LanguageSession, HeadlessError> {
        let (editor_side, proxy_side) = tokio::io::duplex(PIPE_BYTES);
        let (proxy_read, proxy_write) = tokio::io::split(proxy_side);
        let (handle, task) = proxy::start(proxy_read, proxy_write);
        let (editor_read, editor_write) = tokio::io::split(editor_side);
        let to_proxy = jsonrpc::spawn_writer(editor_write);
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        jsonrpc::spawn_reader(
            tokio::io::BufReader::new(editor_read),
            incoming_tx,
            |incoming| incoming,
        );
        tokio::spawn(read_from_proxy(
            incoming_rx,
            pending.clone(),
            to_proxy.clone(),
            messages.clone(),
        ));
        let session = LanguageSession {
            root: root.to_path_buf(),
            proxy: handle,
            to_proxy,
            pending,
            next_id: AtomicI64::new(1),
            documents: Mutex::new(HashMap::new()),
            messages,
            task: Mutex::new(Some(task)),
        };
        let uri = file_uri(root)?;
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        session
            .request(
                "initialize",
                json!({
                    "processId": std::process::id(),
                    "clientInfo": { "name": "tack run", "version": env!("CARGO_PKG_VERSION") },
                    "rootUri": uri,
                    "workspaceFolders": [{ "uri": uri, "name": name }],
                    "capabilities": client_capabilities(),
                }),
            )
            .await?;
        session.notify("initialized", json!({}))?;
        Ok(session)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn proxy(&self) -> &ProxyHandle {
        &self.proxy
    }

    /// Sends a request through the proxy and waits for the answer.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, HeadlessError> {
        let id = RequestId::Number(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id.clone(), tx);
        }
        let params = jsonrpc::message::to_raw(&params).map_err(|source| HeadlessError::Encode {
            method: method.to_owned(),
            source,
        })?;
        if !self.to_proxy.send(Message::Request(Request::new(
            id.clone(),
            method,
            Some(params),
        ))) {
            return Err(HeadlessError::Ended);
        }
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => return Err(HeadlessError::Ended),
            Err(_) => {
                if let Ok(mut pending) = self.pending.lock() {
                    pending.remove(&id);
                }
                let _ = self.notify("$/cancelRequest", json!({ "id": id }));
                return Err(HeadlessError::Timeout {
                    method: method.to_owned(),
                    seconds: REQUEST_TIMEOUT.as_secs(),
                });
            }
        };
        if let Some(error) = response.error {
            return Err(HeadlessError::Failed {
                method: method.to_owned(),
                code: error.code,
                message: error.message,
            });
        }
        Ok(response
            .result
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null))
    }

    pub fn notify(&self, method: &str, params: Value) -> Result<(), HeadlessError> {
        let notification =
            Notification::with_value(method, &params).map_err(|source| HeadlessError::Encode {
                method: method.to_owned(),
                source,
            })?;
        if self.to_proxy.send(Message::Notification(notification)) {
            Ok(())
        } else {
            Err(HeadlessError::Ended)
        }
    }

    /// The version of a file the servers last got, when it is open in this session.
    pub fn version_of(&self, path: &Path) -> Option<i32> {
        let uri = file_uri(path).ok()?;
        let documents = self.documents.lock().ok()?;
        documents.get(&uri).map(|(version, _)| *version)
    }

    /// The files open in this session.
    pub fn open_paths(&self) -> Vec<PathBuf> {
        let Ok(documents) = self.documents.lock() else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = documents
            .keys()
            .filter_map(|uri| url::Url::parse(uri).ok()?.to_file_path().ok())
            .collect();
        paths.sort();
        paths
    }

    /// The text the servers have for a file, when it is open in this session.
    pub fn open_text(&self, path: &Path) -> Option<String> {
        let uri = file_uri(path).ok()?;
        let documents = self.documents.lock().ok()?;
        documents.get(&uri).map(|(_, text)| text.clone())
    }

    /// Opens the file in the servers with its text on disk unless it is open already (servers
    /// such as clangd answer requests only for open documents).
    pub fn ensure_open(&self, path: &Path) {
        if self.open_text(path).is_none()
            && let Ok(text) = std::fs::read_to_string(path)
            && let Err(error) = self.set_text(path, &text)
        {
            tracing::warn!(%error, path = %path.display(), "could not open the file in the servers");
        }
    }

    /// Opens the file in the servers with this text, or sends the new text if it is open.
    /// Returns the document version sent.
    pub fn set_text(&self, path: &Path, text: &str) -> Result<i32, HeadlessError> {
        let uri = file_uri(path)?;
        let previous = self
            .documents
            .lock()
            .ok()
            .and_then(|documents| documents.get(&uri).map(|(version, _)| *version));
        let version = match previous {
            None => {
                let language = self.proxy.language_of(path).unwrap_or_default();
                self.notify(
                    "textDocument/didOpen",
                    json!({ "textDocument": { "uri": uri, "languageId": language, "version": 1, "text": text } }),
                )?;
                1
            }
            Some(version) => {
                let version = version + 1;
                self.notify(
                    "textDocument/didChange",
                    json!({
                        "textDocument": { "uri": uri, "version": version },
                        "contentChanges": [{ "text": text }],
                    }),
                )?;
                version
            }
        };
        if let Ok(mut documents) = self.documents.lock() {
            documents.insert(uri, (version, text.to_owned()));
        }
        Ok(version)
    }

    /// Sends the new text of files and waits (until `deadline`) for every responsible server
    /// to publish diagnostics for them. Pending servers are named in the report, never taken
    /// for clean.
    pub async fn diagnostics_after(
        &self,
        files: &[(PathBuf, String)],
        deadline: Instant,
    ) -> Result<FreshnessReport, HeadlessError> {
        let mark = self.proxy.diagnostics.publish_mark();
        let mut wanted = Vec::with_capacity(files.len());
        for (path, text) in files {
            let version = self.set_text(path, text)?;
            wanted.push(FreshnessWant {
                uri: file_uri(path)?,
                min_version: version,
                servers: self.proxy.servers_for(path),
            });
        }
        Ok(self
            .proxy
            .diagnostics
            .wait_fresh_since(mark, &wanted, deadline)
            .await)
    }

    /// Shuts the servers down in order and ends the session.
    pub async fn shutdown(self) {
        let _ = self.request("shutdown", Value::Null).await;
        let _ = self.notify("exit", Value::Null);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Answers the proxy's messages: responses to our requests, and server→client requests
/// answered as a headless editor can.
async fn read_from_proxy(
    mut incoming: mpsc::UnboundedReceiver<Incoming>,
    pending: Pending,
    to_proxy: Outgoing,
    messages: Arc<Mutex<Vec<String>>>,
) {
    while let Some(item) = incoming.recv().await {
        match item {
            Incoming::Message(Message::Response(response)) => {
                let waiter = response
                    .id
                    .as_ref()
                    .and_then(|id| pending.lock().ok()?.remove(id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(response);
                }
            }
            Incoming::Message(Message::Request(request)) => {
                let answer = headless_answer(&request);
                to_proxy.send(Message::Response(answer));
            }
            Incoming::Message(Message::Notification(notification)) => {
                if notification.method == "window/showMessage"
                    && let Ok(params) = notification.params_as::<Value>()
                    && let Some(text) = params["message"].as_str()
                    && let Ok(mut messages) = messages.lock()
                {
                    messages.push(text.to_owned());
                }
            }
            Incoming::Invalid(error) => tracing::warn!(%error, "invalid message from the proxy"),
            Incoming::Skipped(why) => tracing::warn!(%why, "skipped output of the proxy"),
            Incoming::Closed(_) => break,
        }
    }
    // The session ended: wake every waiter.
    if let Ok(mut pending) = pending.lock() {
        pending.clear();
    }
}

/// What a headless editor answers to a server's request.
fn headless_answer(request: &Request) -> Response {
    let ok = |value: Value| Response::ok_value(request.id.clone(), &value);
    match request.method.as_str() {
        "workspace/configuration" => {
            let items = request
                .params_as::<Value>()
                .ok()
                .and_then(|p| p["items"].as_array().map(Vec::len))
                .unwrap_or(0);
            ok(Value::Array(vec![Value::Null; items]))
        }
        "window/showDocument" => ok(json!({ "success": false })),
        // Edits reach disk only through the agent's own snapshot-backed tools.
        "workspace/applyEdit" => ok(json!({
            "applied": false,
            "failureReason": "tack run applies no server-initiated edits",
        })),
        "client/registerCapability"
        | "client/unregisterCapability"
        | "window/workDoneProgress/create"
        | "window/showMessageRequest" => ok(Value::Null),
        method if method.starts_with("workspace/") && method.ends_with("/refresh") => {
            ok(Value::Null)
        }
        method => Response::error(
            Some(request.id.clone()),
            ResponseError::new(
                error_code::METHOD_NOT_FOUND,
                format!("tack run does not handle {method}"),
            ),
        ),
    }
}

fn client_capabilities() -> Value {
    json!({
        "general": { "positionEncodings": ["utf-16"] },
        "window": { "workDoneProgress": false },
        "workspace": { "configuration": true, "workspaceFolders": true, "applyEdit": false },
        "textDocument": {
            "synchronization": { "didSave": true },
            "publishDiagnostics": { "versionSupport": true, "relatedInformation": true },
            "hover": { "contentFormat": ["plaintext", "markdown"] },
            "definition": { "linkSupport": false },
            "documentSymbol": { "hierarchicalDocumentSymbolSupport": true },
            "rename": { "prepareSupport": false },
        }
    })
}

/// The `file://` URI of a path.
pub fn file_uri(path: &Path) -> Result<String, HeadlessError> {
    url::Url::from_file_path(path)
        .map(String::from)
        .map_err(|()| HeadlessError::BadPath {
            path: path.to_path_buf(),
        })
}

/// The agent's view of the language servers in a headless run.
pub struct HeadlessFeedback {
    session: LanguageSession,
    /// Taken at the first change since the last wait: servers that publish without a
    /// version (clangd) count as fresh only for sets published after it.
    mark: Mutex<Option<crate::diagnostics::PublishMark>>,
}

impl HeadlessFeedback {
    pub fn new(session: LanguageSession) -> Self {
        Self {
            session,
            mark: Mutex::new(None),
        }
    }

    pub fn session(&self) -> &LanguageSession {
        &self.session
    }

    pub fn into_session(self) -> LanguageSession {
        self.session
    }
}

/// A wait's answer as the agent reads it: per file, the diagnostics and each server's state.
pub(crate) fn feedback_report(
    documents: Vec<crate::diagnostics::DocumentFreshness>,
) -> FeedbackReport {
    use crate::diagnostics::ServerStatus;
    let files = documents
        .into_iter()
        .filter_map(|document| {
            let path = url::Url::parse(&document.uri).ok()?.to_file_path().ok()?;
            Some(FileDiagnostics {
                path,
                diagnostics: document
                    .diagnostics
                    .iter()
                    .map(feedback_diagnostic)
                    .collect(),
                servers: document
                    .servers
                    .into_iter()
                    .map(|(server, status)| {
                        let state = match status {
                            ServerStatus::Answered { .. } => ServerState::Answered,
                            ServerStatus::Pending => ServerState::Pending,
                            ServerStatus::Failed { reason } => ServerState::Failed { reason },
                        };
                        (server.to_string(), state)
                    })
                    .collect(),
            })
        })
        .collect();
    FeedbackReport { files }
}

/// Every diagnostic the servers have published so far, without waiting.
pub(crate) fn known_report(proxy: &ProxyHandle) -> FeedbackReport {
    let diagnostics = &proxy.diagnostics;
    let files = diagnostics
        .uris()
        .into_iter()
        .filter_map(|uri| {
            let path = url::Url::parse(&uri).ok()?.to_file_path().ok()?;
            Some(FileDiagnostics {
                diagnostics: diagnostics
                    .merged(&uri)
                    .iter()
                    .map(feedback_diagnostic)
                    .collect(),
                servers: proxy
                    .servers_for(&path)
                    .into_iter()
                    .map(|s| (s.to_string(), ServerState::Answered))
                    .collect(),
                path,
            })
        })
        .collect();
    FeedbackReport { files }
}

fn feedback_diagnostic(diagnostic: &crate::diagnostics::Diagnostic) -> FeedbackDiagnostic {
    FeedbackDiagnostic {
        severity: Severity::from_lsp(diagnostic.severity),
        line: diagnostic.range.start.line + 1,
        message: diagnostic.message.clone(),
        source: diagnostic.source.clone(),
    }
}

use crate::agent::{
    FeedbackDiagnostic, FeedbackReport, FileDiagnostics, LanguageFeedback, ServerState, Severity,
};
use futures::future::BoxFuture;

impl LanguageFeedback for HeadlessFeedback {
    fn buffer_text(&self, path: &Path) -> Option<String> {
        self.session.open_text(path)
    }

    fn file_changed<'a>(&'a self, path: &'a Path, text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(mut mark) = self.mark.lock() {
                mark.get_or_insert_with(|| self.session.proxy.diagnostics.publish_mark());
            }
            if let Err(error) = self.session.set_text(path, text) {
                tracing::warn!(%error, path = %path.display(), "the servers were not told of a change");
            }
        })
    }

    fn fresh_diagnostics<'a>(
        &'a self,
        paths: &'a [PathBuf],
        deadline: std::time::Instant,
    ) -> BoxFuture<'a, FeedbackReport> {
        Box::pin(async move {
            let diagnostics = &self.session.proxy.diagnostics;
            let mark = self
                .mark
                .lock()
                .ok()
                .and_then(|mut mark| mark.take())
                .unwrap_or_else(|| diagnostics.publish_mark());
            let mut wanted = Vec::new();
            for path in paths {
                self.session.ensure_open(path);
                let Ok(uri) = file_uri(path) else { continue };
                let version = self
                    .session
                    .documents
                    .lock()
                    .ok()
                    .and_then(|d| d.get(&uri).map(|(v, _)| *v))
                    .unwrap_or(0);
                wanted.push(FreshnessWant {
                    uri,
                    min_version: version,
                    servers: self.session.proxy.servers_for(path),
                });
            }
            let report = diagnostics
                .wait_fresh_since(mark, &wanted, Instant::from_std(deadline))
                .await;
            feedback_report(report.documents)
        })
    }

    fn known_diagnostics(&self) -> FeedbackReport {
        known_report(&self.session.proxy)
    }

    fn request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            if let Some(path) = params
                .pointer("/textDocument/uri")
                .and_then(Value::as_str)
                .and_then(|uri| url::Url::parse(uri).ok()?.to_file_path().ok())
            {
                self.session.ensure_open(&path);
            }
            self.session
                .request(method, params)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
