//! A scriptable fake language server for tests and benchmarks.
//!
//! It speaks real LSP over stdio, keeps its own copy of open documents, derives everything it
//! answers deterministically from their content (a line containing `ERROR:` is an error), and
//! takes its behaviour from flags (see [`Flags`]). Methods under `fake/` script a test from
//! the client side — send a request or notification to the client, sleep until cancelled,
//! crash, write garbage, report what was received — and also prove that custom methods pass
//! through a proxy. Every answer names the server (`--name`), so a test in front of several
//! fakes can tell them apart.
//!
//! One task handles messages in order; only `fake/sleep` runs beside it, so a cancellation or
//! other requests are handled while it sleeps.

mod text;

use clap::Parser;
use serde_json::{Value, json};
use std::collections::HashMap;
use tack::jsonrpc::framing::write_frame;
use tack::jsonrpc::message::to_raw;
use tack::jsonrpc::{
    Incoming, Message, Notification, Request, RequestId, Response, ResponseError, error_code,
    spawn_reader,
};
use text::{Position, range_json};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The behaviour of one fake server.
#[derive(Parser, Debug)]
#[command(
    name = "fake-lsp",
    about = "A scriptable fake language server for tests"
)]
struct Flags {
    /// Used in every answer and as the diagnostics `source`.
    #[arg(long, default_value = "fake")]
    name: String,
    /// The `textDocumentSync.change` kind advertised (both kinds of change are accepted).
    #[arg(long, value_enum, default_value_t = SyncKind::Incremental)]
    sync: SyncKind,
    /// Advertise `diagnosticProvider`, answer `textDocument/diagnostic`, publish nothing.
    #[arg(long)]
    pull_diagnostics: bool,
    /// `executeCommandProvider.commands`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    commands: Vec<String>,
    /// Completion trigger characters: each character of the text is one.
    #[arg(long, default_value = ".")]
    trigger_chars: String,
    /// Exit with status 3 at once, before reading anything.
    #[arg(long)]
    crash_on_start: bool,
    /// Write this line to stderr at start.
    #[arg(long)]
    stderr: Option<String>,
    /// Print a line that is not LSP to stdout before the first message.
    #[arg(long)]
    garbage_stdout: bool,
    /// Do not advertise `hoverProvider`.
    #[arg(long)]
    no_hover: bool,
    /// On `initialized`, create the work-done token "fake-progress" and report begin and end.
    #[arg(long)]
    progress: bool,
    /// Log every message received to stderr.
    #[arg(long)]
    verbose: bool,
    /// Answer `textDocument/definition` only after this many milliseconds (other messages
    /// are handled meanwhile).
    #[arg(long, default_value_t = 0)]
    definition_delay_ms: u64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SyncKind {
    Full,
    Incremental,
}

const PROGRESS_TOKEN: &str = "fake-progress";

fn main() {
    let flags = Flags::parse();
    if let Some(text) = &flags.stderr {
        eprintln!("{text}");
    }
    if flags.crash_on_start {
        std::process::exit(3);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fake-lsp: cannot start a runtime: {error}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async { Server::new(flags).run().await });
    std::process::exit(code);
}

/// What the stdout writer task writes, in order.
enum Output {
    /// A message body, written as one frame.
    Frame(String),
    /// Bytes exactly as given (garbage, broken frames).
    Raw(Vec<u8>),
    /// Answered once everything before it is written and flushed.
    Flushed(oneshot::Sender<()>),
}

/// The sending side of the stdout writer task.
#[derive(Clone)]
struct Stdout {
    queue: mpsc::UnboundedSender<Output>,
}

impl Stdout {
    fn spawn(writer: impl AsyncWrite + Unpin + Send + 'static) -> Stdout {
        let (queue, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut writer = writer;
            while let Some(output) = rx.recv().await {
                let written = match output {
                    Output::Frame(body) => write_frame(&mut writer, body.as_bytes()).await,
                    Output::Raw(bytes) => writer.write_all(&bytes).await,
                    Output::Flushed(done) => {
                        let _ = done.send(());
                        Ok(())
                    }
                };
                if written.is_err() || writer.flush().await.is_err() {
                    // The client is gone; the reader sees the end of input and we exit.
                    return;
                }
            }
        });
        Stdout { queue }
    }

    fn send(&self, message: Message) {
        match message.to_json() {
            Ok(body) => {
                let _ = self.queue.send(Output::Frame(body));
            }
            Err(error) => eprintln!("fake-lsp: cannot serialize a message: {error}"),
        }
    }

    fn raw(&self, bytes: &[u8]) {
        let _ = self.queue.send(Output::Raw(bytes.to_vec()));
    }

    fn respond(&self, id: RequestId, result: Result<Value, ResponseError>) {
        self.send(Message::Response(match result {
            Ok(value) => Response::ok_value(id, &value),
            Err(error) => Response::error(Some(id), error),
        }));
    }

    fn notify(&self, method: &str, params: &Value) {
        match Notification::with_value(method, params) {
            Ok(notification) => self.send(Message::Notification(notification)),
            Err(error) => eprintln!("fake-lsp: cannot serialize {method}: {error}"),
        }
    }

    /// Waits until everything queued so far is written.
    async fn flushed(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Output::Flushed(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

enum Event {
    Client(Incoming),
    SleepFinished(RequestId),
}

/// What a server→client request of ours is for, so its answer can be routed.
enum Awaiting {
    /// A `fake/request` from the client, to be answered with the client's answer.
    FakeRequest(RequestId),
    ProgressCreate,
}

struct Document {
    version: i64,
    text: String,
}

/// How a request handler answers.
enum Reply {
    Now(Result<Value, ResponseError>),
    /// The handler arranged for the answer to come later.
    Later,
}

struct Server {
    flags: Flags,
    out: Stdout,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    documents: HashMap<String, Document>,
    /// Every message received, as JSON, for `fake/received`.
    received: Vec<Value>,
    initialized: bool,
    shutdown: bool,
    next_id: i64,
    awaiting: HashMap<RequestId, Awaiting>,
    /// Cancellation switches of the `fake/sleep` requests in progress.
    sleeping: HashMap<RequestId, oneshot::Sender<()>>,
}

impl Server {
    fn new(flags: Flags) -> Server {
        let (events_tx, events) = mpsc::unbounded_channel();
        Server {
            flags,
            out: Stdout::spawn(tokio::io::stdout()),
            events_tx,
            events,
            documents: HashMap::new(),
            received: Vec::new(),
            initialized: false,
            shutdown: false,
            next_id: 1,
            awaiting: HashMap::new(),
            sleeping: HashMap::new(),
        }
    }

    /// Serves until `exit` or the end of input; returns the exit status.
    async fn run(mut self) -> i32 {
        if self.flags.garbage_stdout {
            self.out
                .raw(format!("{} says hello on stdout\n", self.flags.name).as_bytes());
        }
        spawn_reader(
            tokio::io::BufReader::new(tokio::io::stdin()),
            self.events_tx.clone(),
            Event::Client,
        );
        while let Some(event) = self.events.recv().await {
            match event {
                Event::Client(Incoming::Message(message)) => {
                    if self.flags.verbose {
                        eprintln!("fake-lsp[{}] <- {}", self.flags.name, describe(&message));
                    }
                    self.received.push(received_entry(&message));
                    match message {
                        Message::Request(request) => self.on_request(request).await,
                        Message::Notification(notification) => {
                            if notification.method == "exit" {
                                self.out.flushed().await;
                                return if self.shutdown { 0 } else { 1 };
                            }
                            self.on_notification(notification);
                        }
                        Message::Response(response) => self.on_response(response),
                    }
                }
                Event::Client(Incoming::Invalid(error)) => {
                    eprintln!("fake-lsp[{}]: invalid message: {error}", self.flags.name);
                    self.out.send(Message::Response(error.to_response()));
                }
                Event::Client(Incoming::Skipped(why)) => {
                    eprintln!("fake-lsp[{}]: skipped input: {why}", self.flags.name);
                }
                Event::Client(Incoming::Closed(why)) => {
                    if self.flags.verbose || why.is_some() {
                        eprintln!(
                            "fake-lsp[{}]: input closed: {}",
                            self.flags.name,
                            why.as_deref().unwrap_or("end of input")
                        );
                    }
                    self.out.flushed().await;
                    return if self.shutdown { 0 } else { 1 };
                }
                Event::SleepFinished(id) => {
                    self.sleeping.remove(&id);
                }
            }
        }
        1
    }

    async fn on_request(&mut self, request: Request) {
        let id = request.id.clone();
        let reply = if !self.initialized && request.method != "initialize" {
            Reply::Now(Err(ResponseError::new(
                error_code::SERVER_NOT_INITIALIZED,
                format!("{} arrived before initialize", request.method),
            )))
        } else if self.shutdown {
            Reply::Now(Err(ResponseError::new(
                error_code::INVALID_REQUEST,
                format!("{} arrived after shutdown", request.method),
            )))
        } else {
            let params = params_value(request.params.as_deref());
            self.handle_request(&id, &request.method, &params).await
        };
        if let Reply::Now(result) = reply {
            self.out.respond(id, result);
        }
    }

    /// The routing table of requests.
    async fn handle_request(&mut self, id: &RequestId, method: &str, params: &Value) -> Reply {
        let name = self.flags.name.clone();
        let result = match method {
            "initialize" => {
                self.initialized = true;
                Ok(self.initialize_result())
            }
            "shutdown" => {
                self.shutdown = true;
                Ok(Value::Null)
            }
            "textDocument/hover" => Ok(self.hover(params)),
            "textDocument/completion" => Ok(json!({
                "isIncomplete": false,
                "items": [{ "label": format!("{name}-item"), "data": { "server": name } }]
            })),
            "completionItem/resolve" => {
                let mut item = params.clone();
                item["detail"] = json!(format!("resolved by {name}"));
                Ok(item)
            }
            "textDocument/definition" if self.flags.definition_delay_ms > 0 => {
                let answer = json!({
                    "uri": params["textDocument"]["uri"],
                    "range": range_json(Position { line: 0, character: 0 }, Position { line: 0, character: 0 })
                });
                let (out, id, ms) = (self.out.clone(), id.clone(), self.flags.definition_delay_ms);
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    out.respond(id, Ok(answer));
                });
                return Reply::Later;
            }
            "textDocument/definition" => Ok(json!({
                "uri": params["textDocument"]["uri"],
                "range": range_json(Position { line: 0, character: 0 }, Position { line: 0, character: 0 })
            })),
            "textDocument/codeAction" => Ok(self.code_actions(params)),
            "textDocument/documentSymbol" => Ok(self.document_symbols(params)),
            "textDocument/diagnostic" if self.flags.pull_diagnostics => {
                let uri = params["textDocument"]["uri"].as_str().unwrap_or_default();
                Ok(json!({ "kind": "full", "items": self.diagnostics(uri) }))
            }
            "workspace/executeCommand" => Ok(json!({
                "executed": params["command"],
                "by": name,
                "arguments": params.get("arguments").cloned().unwrap_or(Value::Null)
            })),
            "fake/echo" => Ok(json!({ "method": method, "params": params, "server": name })),
            "fake/request" => {
                let outgoing = self.send_request(
                    params["method"].as_str().unwrap_or_default(),
                    params.get("params"),
                );
                self.awaiting
                    .insert(outgoing, Awaiting::FakeRequest(id.clone()));
                return Reply::Later;
            }
            "fake/notify" => {
                let method = params["method"].as_str().unwrap_or_default();
                let notification = Notification::new(method, raw(params.get("params")));
                self.out.send(Message::Notification(notification));
                Ok(Value::Null)
            }
            "fake/sleep" => {
                self.sleep(id.clone(), params["ms"].as_u64().unwrap_or(0));
                return Reply::Later;
            }
            "fake/crash" => {
                let code = params["code"].as_i64().unwrap_or(1);
                self.out.flushed().await;
                std::process::exit(i32::try_from(code).unwrap_or(1));
            }
            "fake/garbage" => {
                self.out.raw(b"fake-lsp garbage: this is not a header\n");
                Ok(json!("ok"))
            }
            "fake/invalidJson" => {
                self.out.raw(b"Content-Length: 14\r\n\r\n{not json at a");
                Ok(json!("ok"))
            }
            "fake/received" => Ok(Value::Array(self.received.clone())),
            "fake/documents" => Ok(Value::Object(
                self.documents
                    .iter()
                    .map(|(uri, doc)| {
                        (
                            uri.clone(),
                            json!({ "version": doc.version, "text": doc.text }),
                        )
                    })
                    .collect(),
            )),
            _ => Err(ResponseError::new(
                error_code::METHOD_NOT_FOUND,
                format!("{name} does not handle {method}"),
            )),
        };
        Reply::Now(result)
    }

    fn initialize_result(&self) -> Value {
        let flags = &self.flags;
        let change = match flags.sync {
            SyncKind::Full => 1,
            SyncKind::Incremental => 2,
        };
        let trigger_characters: Vec<String> =
            flags.trigger_chars.chars().map(String::from).collect();
        let mut capabilities = json!({
            "positionEncoding": "utf-16",
            "textDocumentSync": {
                "openClose": true,
                "change": change,
                "save": { "includeText": false }
            },
            "completionProvider": {
                "resolveProvider": true,
                "triggerCharacters": trigger_characters
            },
            "definitionProvider": true,
            "codeActionProvider": { "codeActionKinds": ["quickfix"] },
            "documentSymbolProvider": true,
            "executeCommandProvider": { "commands": flags.commands }
        });
        if !flags.no_hover {
            capabilities["hoverProvider"] = json!(true);
        }
        if flags.pull_diagnostics {
            capabilities["diagnosticProvider"] = json!({
                "identifier": flags.name,
                "interFileDependencies": false,
                "workspaceDiagnostics": false
            });
        }
        json!({
            "capabilities": capabilities,
            "serverInfo": { "name": flags.name, "version": "0" }
        })
    }

    fn on_notification(&mut self, notification: Notification) {
        if !self.initialized {
            return;
        }
        let params = params_value(notification.params.as_deref());
        let uri = params["textDocument"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match notification.method.as_str() {
            "initialized" if self.flags.progress => {
                let id = self.send_request(
                    "window/workDoneProgress/create",
                    Some(&json!({ "token": PROGRESS_TOKEN })),
                );
                self.awaiting.insert(id, Awaiting::ProgressCreate);
            }
            "textDocument/didOpen" => {
                let document = Document {
                    version: params["textDocument"]["version"].as_i64().unwrap_or(0),
                    text: params["textDocument"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                };
                self.documents.insert(uri.clone(), document);
                self.publish_diagnostics(&uri);
            }
            "textDocument/didChange" => {
                let Some(document) = self.documents.get_mut(&uri) else {
                    eprintln!(
                        "fake-lsp[{}]: didChange for {uri}, which is not open",
                        self.flags.name
                    );
                    return;
                };
                for change in params["contentChanges"].as_array().into_iter().flatten() {
                    let new_text = change["text"].as_str().unwrap_or_default();
                    let range = change.get("range").and_then(|range| {
                        Some((
                            Position::from_json(&range["start"])?,
                            Position::from_json(&range["end"])?,
                        ))
                    });
                    match range {
                        Some((start, end)) => {
                            text::apply_edit(&mut document.text, start, end, new_text)
                        }
                        None => document.text = new_text.to_owned(),
                    }
                }
                if let Some(version) = params["textDocument"]["version"].as_i64() {
                    document.version = version;
                }
                self.publish_diagnostics(&uri);
            }
            "textDocument/didClose" => {
                self.documents.remove(&uri);
                if !self.flags.pull_diagnostics {
                    self.out.notify(
                        "textDocument/publishDiagnostics",
                        &json!({ "uri": uri, "diagnostics": [] }),
                    );
                }
            }
            "$/cancelRequest" => {
                let id = serde_json::from_value::<RequestId>(params["id"].clone());
                if let Some(cancel) = id.ok().and_then(|id| self.sleeping.remove(&id)) {
                    let _ = cancel.send(());
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, response: Response) {
        let Some(awaiting) = response.id.as_ref().and_then(|id| self.awaiting.remove(id)) else {
            eprintln!(
                "fake-lsp[{}]: a response to an unknown id {:?}",
                self.flags.name, response.id
            );
            return;
        };
        let outcome = match response.error {
            Some(error) => Err(error),
            None => Ok(params_value(response.result.as_deref())),
        };
        match awaiting {
            Awaiting::FakeRequest(original) => {
                let answer = match outcome {
                    Ok(result) => json!({ "response": result }),
                    Err(error) => json!({ "error": error }),
                };
                self.out.respond(original, Ok(answer));
            }
            Awaiting::ProgressCreate => {
                if outcome.is_err() {
                    return;
                }
                let title = format!("{} indexing", self.flags.name);
                for value in [
                    json!({ "kind": "begin", "title": title, "percentage": 0 }),
                    json!({ "kind": "end", "message": "done" }),
                ] {
                    self.out.notify(
                        "$/progress",
                        &json!({ "token": PROGRESS_TOKEN, "value": value }),
                    );
                }
            }
        }
    }

    /// Sends a request to the client; returns its id.
    fn send_request(&mut self, method: &str, params: Option<&Value>) -> RequestId {
        let id = RequestId::Number(self.next_id);
        self.next_id += 1;
        self.out.send(Message::Request(Request::new(
            id.clone(),
            method,
            raw(params),
        )));
        id
    }

    fn sleep(&mut self, id: RequestId, ms: u64) {
        let (cancel, cancelled) = oneshot::channel();
        self.sleeping.insert(id.clone(), cancel);
        let out = self.out.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(ms)) => {
                    out.respond(id.clone(), Ok(json!({ "slept": ms })));
                }
                Ok(()) = cancelled => {
                    out.respond(id.clone(), Err(ResponseError::new(
                        error_code::REQUEST_CANCELLED,
                        format!("fake/sleep {ms} was cancelled"),
                    )));
                }
            }
            let _ = events.send(Event::SleepFinished(id));
        });
    }

    fn diagnostics(&self, uri: &str) -> Vec<Value> {
        let Some(document) = self.documents.get(uri) else {
            return Vec::new();
        };
        text::error_lines(&document.text)
            .into_iter()
            .map(|error| {
                json!({
                    "range": range_json(error.start, error.end),
                    "severity": 1,
                    "source": self.flags.name,
                    "message": error.message,
                    "data": { "line": error.start.line }
                })
            })
            .collect()
    }

    fn publish_diagnostics(&self, uri: &str) {
        if self.flags.pull_diagnostics {
            return;
        }
        let version = self.documents.get(uri).map(|document| document.version);
        self.out.notify(
            "textDocument/publishDiagnostics",
            &json!({ "uri": uri, "version": version, "diagnostics": self.diagnostics(uri) }),
        );
    }

    fn hover(&self, params: &Value) -> Value {
        let uri = params["textDocument"]["uri"].as_str().unwrap_or_default();
        let position = Position::from_json(&params["position"]).unwrap_or(Position {
            line: 0,
            character: 0,
        });
        let word = self
            .documents
            .get(uri)
            .map_or("", |document| text::word_at(&document.text, position));
        json!({
            "contents": {
                "kind": "markdown",
                "value": format!(
                    "{} hover at {}:{}: {word}",
                    self.flags.name, position.line, position.character
                )
            }
        })
    }

    fn code_actions(&self, params: &Value) -> Value {
        let uri = params["textDocument"]["uri"].as_str().unwrap_or_default();
        let first_error = self
            .documents
            .get(uri)
            .and_then(|document| text::error_lines(&document.text).into_iter().next());
        let Some(error) = first_error else {
            return json!([]);
        };
        let diagnostic = self
            .diagnostics(uri)
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        json!([{
            "title": format!("{} fix", self.flags.name),
            "kind": "quickfix",
            "diagnostics": [diagnostic],
            "edit": {
                "changes": {
                    uri: [{ "range": range_json(error.start, error.end), "newText": "FIXED:" }]
                }
            }
        }])
    }

    fn document_symbols(&self, params: &Value) -> Value {
        let uri = params["textDocument"]["uri"].as_str().unwrap_or_default();
        let Some(document) = self.documents.get(uri) else {
            return json!([]);
        };
        let symbols: Vec<Value> = text::functions(&document.text)
            .into_iter()
            .map(|(name, start, end)| {
                let line_range = range_json(
                    Position {
                        line: start.line,
                        character: 0,
                    },
                    end,
                );
                json!({
                    "name": name,
                    "kind": 12,
                    "range": line_range,
                    "selectionRange": range_json(start, end)
                })
            })
            .collect();
        Value::Array(symbols)
    }
}

/// Params or result as a `Value`, `null` when absent or unreadable.
fn params_value(raw: Option<&serde_json::value::RawValue>) -> Value {
    raw.and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null)
}

/// Params to send: absent when `None` or `null`.
fn raw(value: Option<&Value>) -> Option<Box<serde_json::value::RawValue>> {
    value
        .filter(|value| !value.is_null())
        .and_then(|value| to_raw(value).ok())
}

/// A received message as recorded for `fake/received`.
fn received_entry(message: &Message) -> Value {
    match message {
        Message::Request(request) => json!({
            "id": request.id,
            "method": request.method,
            "params": params_value(request.params.as_deref())
        }),
        Message::Notification(notification) => json!({
            "method": notification.method,
            "params": params_value(notification.params.as_deref())
        }),
        Message::Response(response) => match &response.error {
            Some(error) => json!({ "id": response.id, "error": error }),
            None => {
                json!({ "id": response.id, "result": params_value(response.result.as_deref()) })
            }
        },
    }
}

fn describe(message: &Message) -> String {
    message
        .to_json()
        .unwrap_or_else(|error| format!("<unprintable: {error}>"))
}
