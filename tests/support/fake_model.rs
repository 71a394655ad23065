//! A fake model server for tests: a small HTTP/1.1 server on 127.0.0.1 that answers each
//! request with the next scripted [`Reply`], records every request, and notices when a client
//! hangs up mid-stream.
//!
//! The `openai_chat`, `openai_responses`, `anthropic`, `gemini` and `ollama` modules build
//! replies in each provider's documented wire format — field names, event names and order,
//! `[DONE]`, CRLF framing, NDJSON — from one protocol-neutral [`Answer`], so one test can run
//! the same answer through every adapter.
//!
//! Standalone on purpose (std, tokio, serde_json only): the library's unit tests include it
//! with `#[path]`, and so can integration tests and benchmarks.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One piece of a response body.
#[derive(Debug, Clone)]
pub enum Piece {
    Bytes(Vec<u8>),
    Pause(Duration),
}

/// How a reply's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The terminating chunk: a complete response.
    Complete,
    /// The connection closes without the terminating chunk: a stream cut mid-way.
    Cut,
    /// The connection stays open, silent, until the client leaves.
    Hang,
}

/// A scripted response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<Piece>,
    pub end: End,
}

impl Reply {
    pub fn new(status: u16, content_type: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: Vec::new(),
            end: End::Complete,
        }
    }

    /// A JSON body (an error, a model list).
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::new(status, "application/json").chunk(body.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn chunk(mut self, bytes: impl Into<Vec<u8>>) -> Reply {
        self.body.push(Piece::Bytes(bytes.into()));
        self
    }

    pub fn pause(mut self, duration: Duration) -> Reply {
        self.body.push(Piece::Pause(duration));
        self
    }

    pub fn ending(mut self, end: End) -> Reply {
        self.end = end;
        self
    }

    /// Keeps only the first `pieces` body pieces and cuts the connection after them.
    pub fn cut_after(mut self, pieces: usize) -> Reply {
        self.body.truncate(pieces);
        self.end = End::Cut;
        self
    }

    /// Inserts a piece of raw bytes after the first `after` pieces.
    pub fn insert_chunk(mut self, after: usize, bytes: impl Into<Vec<u8>>) -> Reply {
        let at = after.min(self.body.len());
        self.body.insert(at, Piece::Bytes(bytes.into()));
        self
    }

    /// The whole body as text (for decoders fed without a server).
    pub fn body_text(&self) -> String {
        let mut text = String::new();
        for piece in &self.body {
            if let Piece::Bytes(bytes) = piece {
                text.push_str(&String::from_utf8_lossy(bytes));
            }
        }
        text
    }

    /// The body pieces' bytes.
    pub fn body_chunks(&self) -> Vec<Vec<u8>> {
        self.body
            .iter()
            .filter_map(|piece| match piece {
                Piece::Bytes(bytes) => Some(bytes.clone()),
                Piece::Pause(_) => None,
            })
            .collect()
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/v1beta/models/m:streamGenerateContent?alt=sse`.
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Reply>,
    routes: Vec<(String, String, Reply)>,
    requests: Vec<RecordedRequest>,
    /// Replies during which the client hung up before the body was done.
    client_hangups: usize,
}

/// The server. Dropping it stops accepting connections.
pub struct FakeModelServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    hangup: Arc<tokio::sync::Notify>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FakeModelServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeModelServer {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<FakeModelServer> {
        Self::start_on("127.0.0.1:0").await
    }

    /// Listens on a given loopback address (discovery tests need a known port).
    pub async fn start_on(addr: &str) -> std::io::Result<FakeModelServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let hangup = Arc::new(tokio::sync::Notify::new());
        let accept = {
            let state = state.clone();
            let hangup = hangup.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve(socket, state.clone(), hangup.clone()));
                }
            })
        };
        Ok(FakeModelServer {
            addr,
            state,
            hangup,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next request (of any path) with `reply`; replies are used in order.
    pub fn push(&self, reply: Reply) {
        lock(&self.state).queue.push_back(reply);
    }

    /// Answers every `method path` request with `reply` (checked before the queue).
    pub fn route(&self, method: &str, path: &str, reply: Reply) {
        lock(&self.state)
            .routes
            .push((method.to_owned(), path.to_owned(), reply));
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    pub fn client_hangups(&self) -> usize {
        lock(&self.state).client_hangups
    }

    /// Waits until a client hangs up mid-reply; false on timeout.
    pub async fn wait_for_hangup(&self, timeout: Duration) -> bool {
        if self.client_hangups() > 0 {
            return true;
        }
        let notified = self.hangup.notified();
        tokio::time::timeout(timeout, notified).await.is_ok() || self.client_hangups() > 0
    }
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>, hangup: Arc<tokio::sync::Notify>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let reply = {
        let mut state = lock(&state);
        state.requests.push(request.clone());
        let routed = state
            .routes
            .iter()
            .find(|(method, path, _)| *method == request.method && *path == request.path)
            .map(|(_, _, reply)| reply.clone());
        routed
            .or_else(|| state.queue.pop_front())
            .unwrap_or_else(|| {
                Reply::json(
                    500,
                    &json!({"error": {"message": "fake model server: no reply scripted"}}),
                )
            })
    };
    if write_reply(&mut socket, &reply).await.is_err() {
        lock(&state).client_hangups += 1;
        hangup.notify_waiters();
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Writes the reply as a chunked HTTP/1.1 response, one chunk per piece. Fails when the client
/// hung up before the body was complete.
async fn write_reply(socket: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.flush().await?;
    for piece in &reply.body {
        match piece {
            Piece::Bytes(bytes) if bytes.is_empty() => {}
            Piece::Bytes(bytes) => {
                let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
                chunk.extend_from_slice(bytes);
                chunk.extend_from_slice(b"\r\n");
                socket.write_all(&chunk).await?;
                socket.flush().await?;
            }
            Piece::Pause(duration) => wait_or_hangup(socket, Some(*duration)).await?,
        }
    }
    match reply.end {
        End::Complete => {
            socket.write_all(b"0\r\n\r\n").await?;
            socket.flush().await?;
            // Let the client read everything before the socket closes.
            let _ = tokio::time::timeout(Duration::from_millis(200), wait_or_hangup(socket, None))
                .await;
            Ok(())
        }
        End::Cut => {
            socket.shutdown().await?;
            Ok(())
        }
        End::Hang => wait_or_hangup(socket, None).await,
    }
}

/// Sleeps (for `duration`, or forever), returning an error as soon as the client closes.
async fn wait_or_hangup(socket: &mut TcpStream, duration: Option<Duration>) -> std::io::Result<()> {
    let mut probe = [0u8; 1024];
    let watch = async {
        loop {
            match socket.read(&mut probe).await {
                Ok(0) | Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "client left",
                    ));
                }
                Ok(_) => {}
            }
        }
    };
    match duration {
        Some(duration) => tokio::select! {
            result = watch => result,
            () = tokio::time::sleep(duration) => Ok(()),
        },
        None => watch.await,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// A protocol-neutral answer to stream.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// Reasoning pieces, streamed first.
    pub thinking: Vec<String>,
    pub text: Vec<String>,
    pub tool_calls: Vec<FakeToolCall>,
    pub usage: FakeUsage,
    pub stop: FakeStop,
}

#[derive(Debug, Clone)]
pub struct FakeToolCall {
    pub id: String,
    pub name: String,
    /// The arguments JSON text, in the pieces it is streamed in.
    pub argument_pieces: Vec<String>,
}

impl FakeToolCall {
    pub fn new(id: &str, name: &str, pieces: &[&str]) -> FakeToolCall {
        FakeToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            argument_pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    pub fn arguments(&self) -> String {
        self.argument_pieces.concat()
    }

    fn arguments_value(&self) -> Value {
        serde_json::from_str(&self.arguments()).unwrap_or_else(|_| json!({}))
    }
}

/// Token counts in tack's normalized buckets; each builder spells them its protocol's way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeUsage {
    pub input_uncached: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    /// Includes `reasoning`.
    pub output: u64,
    pub reasoning: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FakeStop {
    #[default]
    EndTurn,
    MaxTokens,
}

impl Answer {
    pub fn text(pieces: &[&str]) -> Answer {
        Answer {
            text: pieces.iter().map(|p| (*p).to_owned()).collect(),
            ..Answer::default()
        }
    }

    pub fn with_thinking(mut self, pieces: &[&str]) -> Answer {
        self.thinking = pieces.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    pub fn with_tool_call(mut self, call: FakeToolCall) -> Answer {
        self.tool_calls.push(call);
        self
    }

    pub fn with_usage(mut self, usage: FakeUsage) -> Answer {
        self.usage = usage;
        self
    }

    pub fn stopped_by(mut self, stop: FakeStop) -> Answer {
        self.stop = stop;
        self
    }
}

fn sse(event: Option<&str>, data: &Value) -> Vec<u8> {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n").into_bytes(),
        None => format!("data: {data}\n\n").into_bytes(),
    }
}

/// OpenAI Chat Completions streaming (`chat.completion.chunk` SSE, `[DONE]`).
pub mod openai_chat {
    use super::*;

    pub const MODEL: &str = "gpt-4o-mini";

    fn chunk(choices: Value, usage: Value) -> Value {
        json!({
            "id": "chatcmpl-7fake",
            "object": "chat.completion.chunk",
            "created": 1_694_268_190,
            "model": MODEL,
            "system_fingerprint": "fp_44709d6fcb",
            "choices": choices,
            "usage": usage,
        })
    }

    fn delta(delta: Value, finish: Value) -> Value {
        chunk(
            json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]),
            Value::Null,
        )
    }

    /// The stream for `answer`, one SSE event per piece. Thinking uses `reasoning_content`
    /// (DeepSeek, vLLM, llama.cpp).
    pub fn stream(answer: &Answer) -> Reply {
        let mut reply = Reply::new(200, "text/event-stream; charset=utf-8");
        reply = reply.chunk(sse(
            None,
            &delta(json!({"role": "assistant", "content": ""}), Value::Null),
        ));
        for piece in &answer.thinking {
            reply = reply.chunk(sse(
                None,
                &delta(json!({"reasoning_content": piece}), Value::Null),
            ));
        }
        for piece in &answer.text {
            reply = reply.chunk(sse(None, &delta(json!({"content": piece}), Value::Null)));
        }
        for (index, call) in answer.tool_calls.iter().enumerate() {
            let opening = json!({"tool_calls": [{
                "index": index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""}
            }]});
            reply = reply.chunk(sse(None, &delta(opening, Value::Null)));
            for piece in &call.argument_pieces {
                let more =
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]});
                reply = reply.chunk(sse(None, &delta(more, Value::Null)));
            }
        }
        let finish = match (answer.stop, answer.tool_calls.is_empty()) {
            (FakeStop::MaxTokens, _) => "length",
            (FakeStop::EndTurn, false) => "tool_calls",
            (FakeStop::EndTurn, true) => "stop",
        };
        reply = reply.chunk(sse(None, &delta(json!({}), json!(finish))));
        let u = answer.usage;
        let usage = json!({
            "prompt_tokens": u.input_uncached + u.cache_read,
            "completion_tokens": u.output,
            "total_tokens": u.input_uncached + u.cache_read + u.output,
            "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        });
        reply = reply.chunk(sse(None, &chunk(json!([]), usage)));
        reply.chunk("data: [DONE]\n\n")
    }

    /// `{"error": {...}}` as OpenAI sends it.
    pub fn error(status: u16, message: &str, kind: &str, code: Option<&str>) -> Reply {
        Reply::json(
            status,
            &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        )
    }
}

/// OpenAI Responses streaming (semantic SSE events with `sequence_number`).
pub mod openai_responses {
    use super::*;

    pub const MODEL: &str = "gpt-5";

    struct Events {
        reply: Reply,
        sequence: u64,
    }

    impl Events {
        fn push(&mut self, kind: &str, mut data: Value) {
            data["type"] = json!(kind);
            data["sequence_number"] = json!(self.sequence);
            self.sequence += 1;
            let reply = std::mem::replace(&mut self.reply, Reply::new(0, ""));
            self.reply = reply.chunk(sse(Some(kind), &data));
        }
    }

    fn response(status: &str, output: Value, usage: Value) -> Value {
        json!({
            "id": "resp_67ccd2bed1ec8190b14f964abc054267",
            "object": "response",
            "created_at": 1_741_290_958,
            "status": status,
            "error": null,
            "incomplete_details": null,
            "model": MODEL,
            "output": output,
            "parallel_tool_calls": true,
            "store": false,
            "usage": usage,
        })
    }

    pub fn stream(answer: &Answer) -> Reply {
        let mut events = Events {
            reply: Reply::new(200, "text/event-stream; charset=utf-8"),
            sequence: 0,
        };
        events.push(
            "response.created",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        );
        events.push(
            "response.in_progress",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        );
        let mut output = Vec::new();
        if !answer.thinking.is_empty() {
            let index = output.len();
            let item_id = "rs_1";
            events.push(
                "response.output_item.added",
                json!({"output_index": index,
                "item": {"id": item_id, "type": "reasoning", "summary": []}}),
            );
            events.push("response.reasoning_summary_part.added", json!({"item_id": item_id,
                "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}));
            for piece in &answer.thinking {
                events.push(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": item_id,
                    "output_index": index, "summary_index": 0, "delta": piece}),
                );
            }
            let text = answer.thinking.concat();
            events.push(
                "response.reasoning_summary_text.done",
                json!({"item_id": item_id,
                "output_index": index, "summary_index": 0, "text": text}),
            );
            let item = json!({"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]});
            events.push(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            );
            output.push(item);
        }
        if !answer.text.is_empty() {
            let index = output.len();
            let item_id = "msg_67ccd2bf17f0819081ff3bb2cf6508e6";
            events.push("response.output_item.added", json!({"output_index": index,
                "item": {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}));
            events.push("response.content_part.added", json!({"item_id": item_id, "output_index": index,
                "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}));
            for piece in &answer.text {
                events.push(
                    "response.output_text.delta",
                    json!({"item_id": item_id,
                    "output_index": index, "content_index": 0, "delta": piece, "logprobs": []}),
                );
            }
            let text = answer.text.concat();
            events.push(
                "response.output_text.done",
                json!({"item_id": item_id, "output_index": index,
                "content_index": 0, "text": text, "logprobs": []}),
            );
            let part = json!({"type": "output_text", "text": text, "annotations": []});
            events.push(
                "response.content_part.done",
                json!({"item_id": item_id, "output_index": index,
                "content_index": 0, "part": part}),
            );
            let item = json!({"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]});
            events.push(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            );
            output.push(item);
        }
        for (n, call) in answer.tool_calls.iter().enumerate() {
            let index = output.len();
            let item_id = format!("fc_{n}");
            events.push(
                "response.output_item.added",
                json!({"output_index": index,
                "item": {"id": item_id, "type": "function_call", "status": "in_progress",
                    "arguments": "", "call_id": call.id, "name": call.name}}),
            );
            for piece in &call.argument_pieces {
                events.push(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id,
                    "output_index": index, "delta": piece}),
                );
            }
            events.push(
                "response.function_call_arguments.done",
                json!({"item_id": item_id,
                "output_index": index, "arguments": call.arguments()}),
            );
            let item = json!({"id": item_id, "type": "function_call", "status": "completed",
                "arguments": call.arguments(), "call_id": call.id, "name": call.name});
            events.push(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            );
            output.push(item);
        }
        let u = answer.usage;
        let usage = json!({
            "input_tokens": u.input_uncached + u.cache_read,
            "input_tokens_details": {"cached_tokens": u.cache_read},
            "output_tokens": u.output,
            "output_tokens_details": {"reasoning_tokens": u.reasoning},
            "total_tokens": u.input_uncached + u.cache_read + u.output,
        });
        match answer.stop {
            FakeStop::EndTurn => {
                events.push(
                    "response.completed",
                    json!({"response": response("completed", Value::Array(output), usage)}),
                );
            }
            FakeStop::MaxTokens => {
                let mut incomplete = response("incomplete", Value::Array(output), usage);
                incomplete["incomplete_details"] = json!({"reason": "max_output_tokens"});
                events.push("response.incomplete", json!({"response": incomplete}));
            }
        }
        events.reply
    }

    pub fn error(status: u16, message: &str, kind: &str, code: Option<&str>) -> Reply {
        super::openai_chat::error(status, message, kind, code)
    }
}

/// Anthropic Messages streaming (named SSE events, `ping`s, `message_stop`).
pub mod anthropic {
    use super::*;

    pub const MODEL: &str = "claude-sonnet-4-5";

    fn push(reply: Reply, kind: &str, mut data: Value) -> Reply {
        data["type"] = json!(kind);
        reply.chunk(sse(Some(kind), &data))
    }

    pub fn stream(answer: &Answer) -> Reply {
        let u = answer.usage;
        let mut reply = Reply::new(200, "text/event-stream; charset=utf-8")
            .header("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG");
        reply = push(
            reply,
            "message_start",
            json!({"message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant",
            "content": [], "model": MODEL, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": u.input_uncached, "cache_creation_input_tokens": u.cache_write,
                "cache_read_input_tokens": u.cache_read, "output_tokens": 1}}}),
        );
        let mut index = 0;
        if !answer.thinking.is_empty() {
            reply = push(
                reply,
                "content_block_start",
                json!({"index": index,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            );
            for piece in &answer.thinking {
                reply = push(
                    reply,
                    "content_block_delta",
                    json!({"index": index,
                    "delta": {"type": "thinking_delta", "thinking": piece}}),
                );
            }
            reply = push(
                reply,
                "content_block_delta",
                json!({"index": index,
                "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}),
            );
            reply = push(reply, "content_block_stop", json!({"index": index}));
            index += 1;
        }
        if !answer.text.is_empty() {
            reply = push(
                reply,
                "content_block_start",
                json!({"index": index,
                "content_block": {"type": "text", "text": ""}}),
            );
            reply = reply.chunk(sse(Some("ping"), &json!({"type": "ping"})));
            for piece in &answer.text {
                reply = push(
                    reply,
                    "content_block_delta",
                    json!({"index": index,
                    "delta": {"type": "text_delta", "text": piece}}),
                );
            }
            reply = push(reply, "content_block_stop", json!({"index": index}));
            index += 1;
        }
        for call in &answer.tool_calls {
            reply = push(
                reply,
                "content_block_start",
                json!({"index": index,
                "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}}),
            );
            reply = push(
                reply,
                "content_block_delta",
                json!({"index": index,
                "delta": {"type": "input_json_delta", "partial_json": ""}}),
            );
            for piece in &call.argument_pieces {
                reply = push(
                    reply,
                    "content_block_delta",
                    json!({"index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}),
                );
            }
            reply = push(reply, "content_block_stop", json!({"index": index}));
            index += 1;
        }
        let stop = match (answer.stop, answer.tool_calls.is_empty()) {
            (FakeStop::MaxTokens, _) => "max_tokens",
            (FakeStop::EndTurn, false) => "tool_use",
            (FakeStop::EndTurn, true) => "end_turn",
        };
        reply = push(
            reply,
            "message_delta",
            json!({"delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": u.output}}),
        );
        push(reply, "message_stop", json!({}))
    }

    /// The `error` event Anthropic sends mid-stream.
    pub fn error_event(kind: &str, message: &str) -> Vec<u8> {
        sse(
            Some("error"),
            &json!({"type": "error", "error": {"type": kind, "message": message}}),
        )
    }

    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &json!({"type": "error", "error": {"type": kind, "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}),
        )
    }
}

/// Gemini `streamGenerateContent?alt=sse` (whole `GenerateContentResponse`s, CRLF framing,
/// no sentinel).
pub mod gemini {
    use super::*;

    pub const MODEL: &str = "gemini-2.5-flash";

    fn data(value: &Value) -> Vec<u8> {
        format!("data: {value}\r\n\r\n").into_bytes()
    }

    fn response(parts: Value, finish: Option<&str>, usage: Value) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(finish) = finish {
            candidate["finishReason"] = json!(finish);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": MODEL,
            "responseId": "mL3HaOnvAqOnz7IP6KqNqQc"})
    }

    pub fn stream(answer: &Answer) -> Reply {
        let u = answer.usage;
        let prompt = u.input_uncached + u.cache_read;
        let mut usage = json!({"promptTokenCount": prompt, "totalTokenCount": prompt});
        if u.cache_read > 0 {
            usage["cachedContentTokenCount"] = json!(u.cache_read);
        }
        let mut reply = Reply::new(200, "text/event-stream");
        for piece in &answer.thinking {
            reply = reply.chunk(data(&response(
                json!([{"text": piece, "thought": true}]),
                None,
                usage.clone(),
            )));
        }
        for piece in &answer.text {
            reply = reply.chunk(data(&response(
                json!([{"text": piece}]),
                None,
                usage.clone(),
            )));
        }
        let finish = match answer.stop {
            FakeStop::EndTurn => "STOP",
            FakeStop::MaxTokens => "MAX_TOKENS",
        };
        let calls: Vec<Value> = answer
            .tool_calls
            .iter()
            .map(
                |call| json!({"functionCall": {"name": call.name, "args": call.arguments_value()}}),
            )
            .collect();
        let mut last_usage = json!({"promptTokenCount": prompt,
            "candidatesTokenCount": u.output - u.reasoning,
            "totalTokenCount": prompt + u.output});
        if u.cache_read > 0 {
            last_usage["cachedContentTokenCount"] = json!(u.cache_read);
        }
        if u.reasoning > 0 {
            last_usage["thoughtsTokenCount"] = json!(u.reasoning);
        }
        let last_parts = if calls.is_empty() {
            json!([{"text": ""}])
        } else {
            Value::Array(calls)
        };
        reply.chunk(data(&response(last_parts, Some(finish), last_usage)))
    }

    pub fn error(status: u16, google_status: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &json!({"error": {"code": status, "message": message, "status": google_status}}),
        )
    }
}

/// Ollama `/api/chat` streaming (NDJSON, `done: true` last line).
pub mod ollama {
    use super::*;

    pub const MODEL: &str = "qwen2.5-coder:7b";

    fn line(message: Value) -> Vec<u8> {
        let value = json!({"model": MODEL, "created_at": "2025-10-26T17:15:24.097767Z",
            "message": message, "done": false});
        format!("{value}\n").into_bytes()
    }

    pub fn stream(answer: &Answer) -> Reply {
        let mut reply = Reply::new(200, "application/x-ndjson");
        for piece in &answer.thinking {
            reply = reply.chunk(line(
                json!({"role": "assistant", "content": "", "thinking": piece}),
            ));
        }
        for piece in &answer.text {
            reply = reply.chunk(line(json!({"role": "assistant", "content": piece})));
        }
        if !answer.tool_calls.is_empty() {
            let calls: Vec<Value> = answer
                .tool_calls
                .iter()
                .map(|call| json!({"function": {"name": call.name, "arguments": call.arguments_value()}}))
                .collect();
            reply = reply.chunk(line(
                json!({"role": "assistant", "content": "", "tool_calls": calls}),
            ));
        }
        let u = answer.usage;
        let done_reason = match answer.stop {
            FakeStop::EndTurn => "stop",
            FakeStop::MaxTokens => "length",
        };
        let last = json!({"model": MODEL, "created_at": "2025-10-26T17:15:24.166576Z",
            "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": done_reason,
            "total_duration": 4_883_583_458u64, "load_duration": 1_334_875,
            "prompt_eval_count": u.input_uncached, "prompt_eval_duration": 342_546_000,
            "eval_count": u.output, "eval_duration": 4_535_599_000u64});
        reply.chunk(format!("{last}\n").into_bytes())
    }

    pub fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, &json!({"error": message}))
    }

    /// `GET /api/tags`
    pub fn tags(models: &[&str]) -> Reply {
        let list: Vec<Value> = models
            .iter()
            .map(|m| json!({"name": m, "model": m, "size": 4_683_087_332u64}))
            .collect();
        Reply::json(200, &json!({"models": list}))
    }
}

/// `GET /v1/models` as OpenAI-compatible servers answer it.
pub fn openai_models(models: &[&str]) -> Reply {
    let list: Vec<Value> = models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "owned_by": "me"}))
        .collect();
    Reply::json(200, &json!({"object": "list", "data": list}))
}
