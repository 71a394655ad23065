//! [`TestClient`]: an LSP client for tests that drives a server process over stdio (or a
//! socket), the way an editor would.
//!
//! A background task reads everything the server sends: responses are kept for the caller
//! waiting on them, notifications are kept in arrival order, and server→client requests are
//! recorded and answered at once by a responder (editor-like defaults, overridable per method).
//! Anything on the wire that is not a well-formed message, and any response to an id that was
//! never sent or was already answered, is recorded as a protocol violation.
//!
//! Every wait has a timeout and panics with a message that says what was awaited: these are
//! tests. The usual shape of a test:
//!
//! ```ignore
//! let client = TestClient::spawn(&support::fake_lsp_path(), &[], ws.root().as_path(), &[]);
//! client.initialize(&ws.root(), None).await;
//! // … requests, notifications, waits …
//! client.shutdown_and_exit().await; // the clean-shutdown check
//! ```
//!
//! A client dropped without `shutdown_and_exit` kills its process and does not panic (a test
//! that is already failing must not be turned into a double panic, and a test that kills a
//! server on purpose should not have to shut it down). When the thread is panicking, the drop
//! prints the tail of the server's stderr and the protocol violations, to explain the failure.

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tack::jsonrpc::framing::write_frame;
use tack::jsonrpc::message::to_raw;
use tack::jsonrpc::{
    Incoming, Message, Notification, Request, RequestId, Response, ResponseError, spawn_reader,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How long `request` waits for its response unless changed with `set_request_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `shutdown_and_exit` waits for the process to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of the server's stderr is kept (the newest bytes).
const STDERR_TAIL_BYTES: usize = 1024 * 1024;

/// Answers a server→client request: `Ok(result)` or `Err((code, message))`.
pub type Responder = Box<dyn Fn(&str, &Value) -> Result<Value, (i64, String)> + Send + Sync>;

pub struct TestClient {
    /// What the client is connected to, for messages.
    label: String,
    output: mpsc::UnboundedSender<Chunk>,
    shared: Arc<Shared>,
    child: Option<Child>,
    next_id: AtomicI64,
    request_timeout: Duration,
    /// Versions of the documents this client opened, by URI.
    versions: Mutex<HashMap<String, i32>>,
}

/// State written by the background tasks and read by the test.
struct Shared {
    state: Mutex<State>,
    /// Bumped on every change of `state` or `stderr`, to wake waiters.
    changed: watch::Sender<u64>,
    answers: Mutex<ServerRequestAnswers>,
    stderr: Mutex<Vec<u8>>,
}

#[derive(Default)]
struct State {
    /// Method of every request this client sent, by id.
    sent: HashMap<RequestId, String>,
    /// Responses not yet taken by a waiter.
    responses: HashMap<RequestId, Result<Value, ResponseError>>,
    /// Ids whose response has arrived (taken or not), to spot duplicates.
    answered: HashSet<RequestId>,
    responses_without_id: Vec<ResponseError>,
    notifications: Vec<(String, Value)>,
    server_requests: Vec<(String, Value)>,
    protocol_violations: Vec<String>,
    /// Why the connection closed, once it has.
    closed: Option<String>,
}

#[derive(Default)]
struct ServerRequestAnswers {
    by_method: HashMap<String, Value>,
    responder: Option<Responder>,
}

enum WaitError {
    TimedOut,
    Closed(String),
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl TestClient {
    /// Spawns `program` with piped stdin/stdout (the LSP channel) and captured stderr. `env` is
    /// added to the inherited environment. Must be called inside a tokio runtime.
    pub fn spawn(program: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> TestClient {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", program.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let name = program.file_name().map_or_else(
            || program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let label = format!("{name} {}", args.join(" ")).trim_end().to_owned();
        let mut client = Self::over(label, stdout, stdin);
        client.capture_stderr(stderr);
        client.child = Some(child);
        client
    }

    /// Connects to a server listening on TCP (`tack lsp --listen`), retrying for up to 10 s
    /// while the server starts.
    pub async fn connect_tcp(addr: SocketAddr) -> TestClient {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => {
                    let (read, write) = stream.into_split();
                    return Self::over(format!("tcp {addr}"), read, write);
                }
                Err(e) if Instant::now() >= deadline => panic!("cannot connect to {addr}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Connects to a server listening on a Unix socket, retrying for up to 10 s.
    #[cfg(unix)]
    pub async fn connect_unix(path: &Path) -> TestClient {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match tokio::net::UnixStream::connect(path).await {
                Ok(stream) => {
                    let (read, write) = stream.into_split();
                    return Self::over(format!("unix {}", path.display()), read, write);
                }
                Err(e) if Instant::now() >= deadline => {
                    panic!("cannot connect to {}: {e}", path.display())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn over(
        label: String,
        read: impl AsyncRead + Unpin + Send + 'static,
        write: impl AsyncWrite + Unpin + Send + 'static,
    ) -> TestClient {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
            answers: Mutex::new(ServerRequestAnswers::default()),
            stderr: Mutex::new(Vec::new()),
        });
        let output = spawn_raw_writer(write);
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        spawn_reader(BufReader::new(read), incoming_tx, |incoming| incoming);
        tokio::spawn(dispatch(incoming_rx, shared.clone(), output.clone()));
        TestClient {
            label,
            output,
            shared,
            child: None,
            next_id: AtomicI64::new(1),
            request_timeout: DEFAULT_TIMEOUT,
            versions: Mutex::new(HashMap::new()),
        }
    }

    fn capture_stderr(&mut self, mut stderr: impl AsyncRead + Unpin + Send + 'static) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                {
                    let mut tail = shared.stderr.lock().unwrap();
                    tail.extend_from_slice(&chunk[..n]);
                    if tail.len() > STDERR_TAIL_BYTES {
                        let excess = tail.len() - STDERR_TAIL_BYTES;
                        tail.drain(..excess);
                    }
                }
                shared.bump();
            }
        });
    }

    // ----- configuration -------------------------------------------------------------------

    /// Changes how long `request` and `wait_response` wait (default [`DEFAULT_TIMEOUT`]).
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    /// Answers every later server→client request for `method` with `result`. Takes precedence
    /// over `set_responder` and the defaults.
    pub fn set_response(&self, method: &str, result: Value) {
        let mut answers = self.shared.answers.lock().unwrap();
        answers.by_method.insert(method.to_owned(), result);
    }

    /// Answers server→client requests (those without a `set_response`) with `responder`;
    /// [`TestClient::default_response`] is there to fall back on.
    pub fn set_responder(
        &self,
        responder: impl Fn(&str, &Value) -> Result<Value, (i64, String)> + Send + Sync + 'static,
    ) {
        self.shared.answers.lock().unwrap().responder = Some(Box::new(responder));
    }

    /// What an editor-like client answers by default: `workspace/configuration` → one `null`
    /// per item, `workspace/applyEdit` → applied, `window/showDocument` → success, anything
    /// else (registerCapability, workDoneProgress/create, showMessageRequest, …) → `null`.
    pub fn default_response(method: &str, params: &Value) -> Value {
        match method {
            "workspace/configuration" => {
                let items = params["items"].as_array().map_or(0, Vec::len);
                Value::Array(vec![Value::Null; items])
            }
            "workspace/applyEdit" => json!({ "applied": true }),
            "window/showDocument" => json!({ "success": true }),
            _ => Value::Null,
        }
    }

    // ----- sending --------------------------------------------------------------------------

    /// Sends a request and waits for its response ([`DEFAULT_TIMEOUT`]; panics on timeout or if
    /// the connection closes first). `Value::Null` params are sent as absent params.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ResponseError> {
        let id = self.send_request(method, params);
        self.wait_response(&id).await
    }

    /// Like `request`, with an id chosen by the test (for string ids, reused ids, …).
    pub async fn request_with_id(
        &self,
        id: RequestId,
        method: &str,
        params: Value,
    ) -> Result<Value, ResponseError> {
        self.send_request_with_id(id.clone(), method, params);
        self.wait_response(&id).await
    }

    /// Sends a request without waiting; returns its id for `wait_response` or `cancel`.
    pub fn send_request(&self, method: &str, params: Value) -> RequestId {
        let id = RequestId::Number(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.send_request_with_id(id.clone(), method, params);
        id
    }

    /// Sends a request with the given id without waiting.
    pub fn send_request_with_id(&self, id: RequestId, method: &str, params: Value) {
        self.shared
            .state()
            .sent
            .insert(id.clone(), method.to_owned());
        self.send(Message::Request(Request::new(
            id,
            method,
            raw_params(&params),
        )));
    }

    /// Sends `$/cancelRequest` for `id`.
    pub fn cancel(&self, id: &RequestId) {
        self.notify("$/cancelRequest", json!({ "id": id }));
    }

    /// Sends a notification. `Value::Null` params are sent as absent params.
    pub fn notify(&self, method: &str, params: Value) {
        self.send(Message::Notification(Notification::new(
            method,
            raw_params(&params),
        )));
    }

    /// Writes exactly these bytes to the server (in order with the messages sent before).
    pub fn send_raw(&self, bytes: &[u8]) {
        // A closed channel means the server is gone; a later wait reports that.
        let _ = self.output.send(Chunk::Raw(bytes.to_vec()));
    }

    fn send(&self, message: Message) {
        let _ = self.output.send(Chunk::Frame(message.to_json().unwrap()));
    }

    // ----- waiting --------------------------------------------------------------------------

    /// Waits for the response to `id` (the request timeout; panics naming the method and id on
    /// timeout or when the connection closes first).
    pub async fn wait_response(&self, id: &RequestId) -> Result<Value, ResponseError> {
        match self
            .wait_for(self.request_timeout, |s| s.responses.remove(id))
            .await
        {
            Ok(response) => response,
            Err(error) => {
                let method = self
                    .shared
                    .state()
                    .sent
                    .get(id)
                    .cloned()
                    .unwrap_or_default();
                match error {
                    WaitError::TimedOut => panic!(
                        "{}: no response to {method:?} (id {id}) within {:?}",
                        self.label, self.request_timeout
                    ),
                    WaitError::Closed(why) => panic!(
                        "{}: connection closed before the response to {method:?} (id {id}): {why}",
                        self.label
                    ),
                }
            }
        }
    }

    /// The response to `id` if it arrives within `timeout`; `None` on timeout or when the
    /// connection closes without it (for "this is not answered" checks).
    pub async fn try_wait_response(
        &self,
        id: &RequestId,
        timeout: Duration,
    ) -> Option<Result<Value, ResponseError>> {
        self.wait_for(timeout, |s| s.responses.remove(id))
            .await
            .ok()
    }

    /// The params of the first notification of `method` (oldest first, including ones that
    /// arrived before this call) for which `predicate` holds; waits up to `timeout` for one.
    /// Use a predicate (a version, a count) to tell later notifications from earlier ones, or
    /// `clear_notifications`.
    pub async fn wait_notification(
        &self,
        method: &str,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let found = self
            .wait_for(timeout, |s| {
                s.notifications
                    .iter()
                    .find(|(m, params)| m == method && predicate(params))
                    .map(|(_, params)| params.clone())
            })
            .await;
        match found {
            Ok(params) => params,
            Err(error) => {
                let seen = self.notifications(method);
                let why = match error {
                    WaitError::TimedOut => format!("within {timeout:?}"),
                    WaitError::Closed(why) => format!("before the connection closed ({why})"),
                };
                panic!(
                    "{}: no matching {method:?} notification {why}; received {} of that method: {}",
                    self.label,
                    seen.len(),
                    Value::Array(seen)
                )
            }
        }
    }

    /// Params of every notification of `method` received so far, in order.
    pub fn notifications(&self, method: &str) -> Vec<Value> {
        let state = self.shared.state();
        let found = state.notifications.iter().filter(|(m, _)| m == method);
        found.map(|(_, params)| params.clone()).collect()
    }

    /// Every notification received so far as (method, params), in order.
    pub fn all_notifications(&self) -> Vec<(String, Value)> {
        self.shared.state().notifications.clone()
    }

    /// Forgets the notifications received so far.
    pub fn clear_notifications(&self) {
        self.shared.state().notifications.clear();
    }

    /// Params of every server→client request of `method` received so far, in order.
    pub fn server_requests(&self, method: &str) -> Vec<Value> {
        let state = self.shared.state();
        let found = state.server_requests.iter().filter(|(m, _)| m == method);
        found.map(|(_, params)| params.clone()).collect()
    }

    /// The params of the first server→client request of `method` (oldest first, including
    /// ones already received); waits up to `timeout` for one.
    pub async fn wait_server_request(&self, method: &str, timeout: Duration) -> Value {
        let found = self
            .wait_for(timeout, |s| {
                s.server_requests
                    .iter()
                    .find(|(m, _)| m == method)
                    .map(|(_, params)| params.clone())
            })
            .await;
        found.unwrap_or_else(|_| {
            panic!(
                "{}: no {method:?} request from the server within {timeout:?}",
                self.label
            )
        })
    }

    /// Error responses that came with a `null` id (answers to unparseable input), in order.
    pub fn responses_without_id(&self) -> Vec<ResponseError> {
        self.shared.state().responses_without_id.clone()
    }

    /// Waits up to `timeout` for an error response with a `null` id; returns the first one.
    pub async fn wait_response_without_id(&self, timeout: Duration) -> ResponseError {
        let found = self
            .wait_for(timeout, |s| s.responses_without_id.first().cloned())
            .await;
        found.unwrap_or_else(|_| {
            panic!(
                "{}: no response with a null id within {timeout:?}",
                self.label
            )
        })
    }

    /// Everything received that was not a well-formed message (skipped bytes, invalid bodies),
    /// and responses to ids never sent or already answered. Empty for a well-behaved server.
    pub fn protocol_violations(&self) -> Vec<String> {
        self.shared.state().protocol_violations.clone()
    }

    /// Why the connection closed, once it has (`"end of input"` for a clean end).
    pub fn closed(&self) -> Option<String> {
        self.shared.state().closed.clone()
    }

    /// Waits up to `timeout` for the server to close the connection; returns whether it did.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        matches!(
            self.wait_for(timeout, |_| None::<()>).await,
            Err(WaitError::Closed(_))
        )
    }

    /// The newest part (up to 1 MiB) of what the server wrote to stderr.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.shared.stderr.lock().unwrap()).into_owned()
    }

    /// Waits up to `timeout` until the server's stderr contains `needle`; returns the stderr.
    pub async fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.changed.subscribe();
        loop {
            changes.borrow_and_update();
            let text = self.stderr_text();
            if text.contains(needle) {
                return text;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                panic!(
                    "{}: stderr did not contain {needle:?} within {timeout:?}; it was:\n{text}",
                    self.label
                );
            }
        }
    }

    /// Waits until `check` finds something in the state, the connection closes, or `timeout`.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<T, WaitError> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.changed.subscribe();
        loop {
            changes.borrow_and_update();
            {
                let mut state = self.shared.state();
                if let Some(found) = check(&mut state) {
                    return Ok(found);
                }
                if let Some(why) = &state.closed {
                    return Err(WaitError::Closed(why.clone()));
                }
            }
            // The sender lives in `shared`, which `self` holds: `changed` cannot fail.
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return Err(WaitError::TimedOut);
            }
        }
    }

    // ----- the process ----------------------------------------------------------------------

    /// The server process id (`None` for a socket connection).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("a socket client has no process");
        tokio::time::timeout(timeout, child.wait())
            .await
            .ok()
            .map(|status| status.expect("waiting for the child"))
    }

    /// Kills the process and waits for it.
    pub async fn kill(&mut self) {
        let child = self.child.as_mut().expect("a socket client has no process");
        let _ = child.kill().await;
    }

    // ----- LSP conveniences -----------------------------------------------------------------

    /// The `initialize` params a modern editor sends for `root`.
    pub fn initialize_params(root: &Path, initialization_options: Option<Value>) -> Value {
        let root_uri = super::file_uri(root);
        let root_name = root
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut params = json!({
            "processId": std::process::id(),
            "clientInfo": { "name": "tack-test-client", "version": "0" },
            "locale": "en",
            "rootPath": root,
            "rootUri": root_uri,
            "workspaceFolders": [{ "uri": root_uri, "name": root_name }],
            "trace": "off",
            "capabilities": {
                "general": { "positionEncodings": ["utf-16"] },
                "window": {
                    "workDoneProgress": true,
                    "showMessage": { "messageActionItem": { "additionalPropertiesSupport": true } },
                    "showDocument": { "support": true }
                },
                "workspace": {
                    "applyEdit": true,
                    "configuration": true,
                    "workspaceFolders": true,
                    "didChangeConfiguration": { "dynamicRegistration": true },
                    "didChangeWatchedFiles": { "dynamicRegistration": true },
                    "executeCommand": { "dynamicRegistration": true },
                    "workspaceEdit": {
                        "documentChanges": true,
                        "resourceOperations": ["create", "rename", "delete"]
                    },
                    "diagnostics": { "refreshSupport": true }
                },
                "textDocument": {
                    "synchronization": {
                        "dynamicRegistration": true,
                        "willSave": false,
                        "willSaveWaitUntil": false,
                        "didSave": true
                    },
                    "publishDiagnostics": {
                        "relatedInformation": true,
                        "versionSupport": true,
                        "codeDescriptionSupport": true,
                        "dataSupport": true,
                        "tagSupport": { "valueSet": [1, 2] }
                    },
                    "diagnostic": { "dynamicRegistration": true, "relatedDocumentSupport": false },
                    "codeAction": {
                        "dynamicRegistration": true,
                        "isPreferredSupport": true,
                        "dataSupport": true,
                        "resolveSupport": { "properties": ["edit"] },
                        "codeActionLiteralSupport": {
                            "codeActionKind": {
                                "valueSet": [
                                    "", "quickfix", "refactor", "refactor.extract",
                                    "refactor.inline", "refactor.rewrite", "source",
                                    "source.organizeImports"
                                ]
                            }
                        }
                    },
                    "completion": {
                        "dynamicRegistration": true,
                        "contextSupport": true,
                        "completionItem": {
                            "snippetSupport": true,
                            "documentationFormat": ["markdown", "plaintext"],
                            "resolveSupport": {
                                "properties": ["documentation", "detail", "additionalTextEdits"]
                            },
                            "insertReplaceSupport": true,
                            "labelDetailsSupport": true
                        }
                    },
                    "hover": {
                        "dynamicRegistration": true,
                        "contentFormat": ["markdown", "plaintext"]
                    },
                    "definition": { "dynamicRegistration": true, "linkSupport": true },
                    "documentSymbol": {
                        "dynamicRegistration": true,
                        "hierarchicalDocumentSymbolSupport": true
                    },
                    "signatureHelp": { "dynamicRegistration": true }
                }
            }
        });
        if let Some(options) = initialization_options {
            params["initializationOptions"] = options;
        }
        params
    }

    /// Sends `initialize` with [`TestClient::initialize_params`] (asserting it succeeds), then
    /// `initialized`; returns the initialize result.
    pub async fn initialize(&self, root: &Path, initialization_options: Option<Value>) -> Value {
        let params = Self::initialize_params(root, initialization_options);
        let result = self
            .request("initialize", params)
            .await
            .unwrap_or_else(|e| panic!("{}: initialize failed: {e:?}", self.label));
        self.notify("initialized", json!({}));
        result
    }

    /// Sends `textDocument/didOpen` with version 1.
    pub fn did_open(&self, path: &Path, language_id: &str, text: &str) {
        let uri = super::file_uri(path);
        self.versions.lock().unwrap().insert(uri.clone(), 1);
        self.notify(
            "textDocument/didOpen",
            json!({
                "textDocument": { "uri": uri, "languageId": language_id, "version": 1, "text": text }
            }),
        );
    }

    /// Sends `textDocument/didChange` with these `contentChanges`; returns the new version.
    pub fn did_change(&self, path: &Path, content_changes: Vec<Value>) -> i32 {
        let uri = super::file_uri(path);
        let version = {
            let mut versions = self.versions.lock().unwrap();
            let version = versions.entry(uri.clone()).or_insert(0);
            *version += 1;
            *version
        };
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri, "version": version },
                "contentChanges": content_changes
            }),
        );
        version
    }

    /// Replaces the whole text; returns the new version.
    pub fn did_change_full(&self, path: &Path, text: &str) -> i32 {
        self.did_change(path, vec![json!({ "text": text })])
    }

    /// Replaces the range `start..end` — (line, UTF-16 character) positions — with `new_text`;
    /// returns the new version.
    pub fn did_change_incremental(
        &self,
        path: &Path,
        start: (u32, u32),
        end: (u32, u32),
        new_text: &str,
    ) -> i32 {
        self.did_change(
            path,
            vec![json!({ "range": range(start, end), "text": new_text })],
        )
    }

    pub fn did_save(&self, path: &Path) {
        self.notify(
            "textDocument/didSave",
            json!({ "textDocument": { "uri": super::file_uri(path) } }),
        );
    }

    pub fn did_close(&self, path: &Path) {
        let uri = super::file_uri(path);
        self.versions.lock().unwrap().remove(&uri);
        self.notify(
            "textDocument/didClose",
            json!({ "textDocument": { "uri": uri } }),
        );
    }

    /// Sends `shutdown` (asserting it succeeds) and `exit`, then waits up to 10 s for the process
    /// to exit and asserts that it exited with status 0: the clean-shutdown check.
    pub async fn shutdown_and_exit(mut self) -> ExitStatus {
        assert!(
            self.child.is_some(),
            "{}: a socket client has no process; use shutdown_and_close",
            self.label
        );
        self.shutdown_then_exit_notification().await;
        let Some(status) = self.wait_exit(EXIT_TIMEOUT).await else {
            panic!(
                "{}: the process did not exit within {EXIT_TIMEOUT:?} of shutdown and exit",
                self.label
            );
        };
        assert!(
            status.success(),
            "{}: exited with {status} after shutdown and exit",
            self.label
        );
        status
    }

    /// For socket connections: sends `shutdown` and `exit`, then asserts that the server closes
    /// the connection within 10 s.
    pub async fn shutdown_and_close(self) {
        self.shutdown_then_exit_notification().await;
        assert!(
            self.wait_closed(EXIT_TIMEOUT).await,
            "{}: the connection stayed open {EXIT_TIMEOUT:?} after shutdown and exit",
            self.label
        );
    }

    async fn shutdown_then_exit_notification(&self) {
        let answer = self.request("shutdown", Value::Null).await;
        assert_eq!(
            answer,
            Ok(Value::Null),
            "{}: shutdown was not answered with null",
            self.label
        );
        self.notify("exit", Value::Null);
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            let violations = self.protocol_violations();
            eprintln!(
                "---- {}: stderr tail ----\n{}\n---- protocol violations: {violations:?}",
                self.label,
                tail_lines(&self.stderr_text(), 200)
            );
        }
    }
}

fn tail_lines(text: &str, lines: usize) -> &str {
    match text.rmatch_indices('\n').nth(lines) {
        Some((at, _)) => &text[at + 1..],
        None => text,
    }
}

/// An LSP range from (line, character) pairs.
pub fn range(start: (u32, u32), end: (u32, u32)) -> Value {
    json!({
        "start": { "line": start.0, "character": start.1 },
        "end": { "line": end.0, "character": end.1 }
    })
}

fn raw_params(params: &Value) -> Option<Box<serde_json::value::RawValue>> {
    (!params.is_null()).then(|| to_raw(params).unwrap())
}

fn raw_to_value(raw: Option<&serde_json::value::RawValue>) -> Value {
    raw.map_or(Value::Null, |raw| serde_json::from_str(raw.get()).unwrap())
}

/// What the writer task writes: a message body to frame, or bytes exactly as given.
enum Chunk {
    Frame(String),
    Raw(Vec<u8>),
}

async fn write_chunk(writer: &mut (impl AsyncWrite + Unpin), chunk: Chunk) -> std::io::Result<()> {
    match chunk {
        Chunk::Frame(body) => write_frame(writer, body.as_bytes()).await,
        Chunk::Raw(bytes) => writer.write_all(&bytes).await,
    }
}

/// Writes chunks in order, flushing after each burst. (The transport's own writer takes only
/// messages; tests also need raw bytes in the same stream.)
fn spawn_raw_writer(
    mut writer: impl AsyncWrite + Unpin + Send + 'static,
) -> mpsc::UnboundedSender<Chunk> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Chunk>();
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if write_chunk(&mut writer, chunk).await.is_err() {
                return;
            }
            while let Ok(chunk) = rx.try_recv() {
                if write_chunk(&mut writer, chunk).await.is_err() {
                    return;
                }
            }
            if writer.flush().await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    tx
}

/// The background task: files every incoming item into the shared state and answers
/// server→client requests.
async fn dispatch(
    mut incoming: mpsc::UnboundedReceiver<Incoming>,
    shared: Arc<Shared>,
    output: mpsc::UnboundedSender<Chunk>,
) {
    while let Some(item) = incoming.recv().await {
        let closed = matches!(item, Incoming::Closed(_));
        match item {
            Incoming::Message(Message::Response(response)) => file_response(&shared, response),
            Incoming::Message(Message::Notification(notification)) => {
                let params = raw_to_value(notification.params.as_deref());
                let mut state = shared.state();
                state.notifications.push((notification.method, params));
            }
            Incoming::Message(Message::Request(request)) => {
                let params = raw_to_value(request.params.as_deref());
                let answer = answer_server_request(&shared, &request.method, &params);
                shared
                    .state()
                    .server_requests
                    .push((request.method, params));
                let response = match answer {
                    Ok(result) => Response::ok(request.id, to_raw(&result).unwrap()),
                    Err((code, message)) => {
                        Response::error(Some(request.id), ResponseError::new(code, message))
                    }
                };
                let body = Message::Response(response).to_json().unwrap();
                let _ = output.send(Chunk::Frame(body));
            }
            Incoming::Invalid(error) => {
                let mut state = shared.state();
                state
                    .protocol_violations
                    .push(format!("invalid message: {error}"));
            }
            Incoming::Skipped(why) => {
                let mut state = shared.state();
                state
                    .protocol_violations
                    .push(format!("skipped bytes: {why}"));
            }
            Incoming::Closed(why) => {
                shared.state().closed = Some(why.unwrap_or_else(|| "end of input".to_owned()));
            }
        }
        shared.bump();
        if closed {
            return;
        }
    }
}

fn file_response(shared: &Shared, response: Response) {
    let outcome = match response.error {
        Some(error) => Err(error),
        None => Ok(raw_to_value(response.result.as_deref())),
    };
    let mut state = shared.state();
    let Some(id) = response.id else {
        match outcome {
            Err(error) => state.responses_without_id.push(error),
            Ok(result) => state
                .protocol_violations
                .push(format!("a success response with a null id: {result}")),
        }
        return;
    };
    if !state.sent.contains_key(&id) {
        let violation = format!("a response to id {id}, which was never sent");
        state.protocol_violations.push(violation);
    } else if !state.answered.insert(id.clone()) {
        let violation = format!("a second response to id {id}");
        state.protocol_violations.push(violation);
    } else {
        state.responses.insert(id, outcome);
    }
}

fn answer_server_request(
    shared: &Shared,
    method: &str,
    params: &Value,
) -> Result<Value, (i64, String)> {
    let answers = shared.answers.lock().unwrap();
    if let Some(result) = answers.by_method.get(method) {
        return Ok(result.clone());
    }
    match &answers.responder {
        Some(responder) => responder(method, params),
        None => Ok(TestClient::default_response(method, params)),
    }
}
