//! From response bytes to [`StreamEvent`]s, shared by every protocol: framing (SSE through
//! `eventsource-stream`, NDJSON split here), the small [`StreamDecoder`] trait each protocol
//! file implements, and the assembly of complete tool calls.
//!
//! The decode path does no I/O of its own, so the benchmark and tests can feed it recorded
//! bytes through [`decode_byte_stream`].

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;

use bytes::Bytes;
use eventsource_stream::{EventStream, EventStreamError};
use futures::{Stream, StreamExt};

use super::catalog::WireApi;
use super::types::{Completion, StopReason, StreamEvent, ToolCall, Usage};
use super::{anthropic, gemini, ollama, openai_chat, openai_responses};

/// The longest NDJSON line accepted (one Ollama chunk is a few hundred bytes).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One framed message: an SSE event (its `event:` name and `data:`), or one NDJSON line
/// (empty name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A frame that is not what the protocol specifies.
    Malformed(String),
    /// The provider sent an error inside the stream.
    Provider { kind: String, message: String },
    /// The bytes ended before the protocol's end marker.
    Cut(String),
    /// The body source failed (idle timeout, size limit, connection error).
    Body(BodyError),
}

/// Failures of the byte source under the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    Idle(std::time::Duration),
    TooLarge(usize),
    Transport(String),
}

impl From<BodyError> for DecodeError {
    fn from(error: BodyError) -> Self {
        DecodeError::Body(error)
    }
}

impl From<std::convert::Infallible> for DecodeError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// One protocol's stream semantics: frames in, events out.
pub(crate) trait StreamDecoder: Send {
    /// Decodes one frame, appending any events to `out`.
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError>;
    /// The frames ended. Emits the final [`StreamEvent::Completed`] for protocols without an
    /// end marker, or reports a cut stream.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError>;
    /// Whether the end marker was seen (later frames are ignored).
    fn is_done(&self) -> bool;
}

/// How a protocol frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Sse,
    Ndjson,
}

impl Framing {
    pub fn of(api: WireApi) -> Framing {
        match api {
            WireApi::Ollama => Framing::Ndjson,
            _ => Framing::Sse,
        }
    }

    /// The `Content-Type` a successful streaming response must have.
    pub fn accepts(self, content_type: &str) -> bool {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match self {
            Framing::Sse => media == "text/event-stream",
            // One JSON object per line: a single-line `application/json` body is valid too.
            Framing::Ndjson => media == "application/x-ndjson" || media == "application/json",
        }
    }

    pub fn expected(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::Ndjson => "application/x-ndjson",
        }
    }
}

pub(crate) fn new_decoder(api: WireApi) -> Box<dyn StreamDecoder> {
    match api {
        WireApi::OpenAiChat => Box::new(openai_chat::Decoder::default()),
        WireApi::OpenAiResponses => Box::new(openai_responses::Decoder::default()),
        WireApi::Anthropic => Box::new(anthropic::Decoder::default()),
        WireApi::Gemini => Box::new(gemini::Decoder::default()),
        WireApi::Ollama => Box::new(ollama::Decoder::default()),
    }
}

type BoxedBytes<E> = Pin<Box<dyn Stream<Item = Result<Bytes, E>> + Send>>;

enum FrameSource<E> {
    Sse(Pin<Box<EventStream<BoxedBytes<E>>>>),
    Ndjson {
        body: BoxedBytes<E>,
        buffer: Vec<u8>,
        scanned: usize,
        ended: bool,
    },
}

impl<E: Into<DecodeError>> FrameSource<E> {
    async fn next_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        match self {
            FrameSource::Sse(events) => match events.next().await? {
                Ok(event) => Some(Ok(Frame {
                    event: event.event,
                    data: event.data,
                })),
                Err(EventStreamError::Transport(error)) => Some(Err(error.into())),
                Err(EventStreamError::Utf8(error)) => Some(Err(DecodeError::Malformed(format!(
                    "stream is not UTF-8: {error}"
                )))),
                Err(EventStreamError::Parser(error)) => Some(Err(DecodeError::Malformed(format!(
                    "not a server-sent event: {error}"
                )))),
            },
            FrameSource::Ndjson {
                body,
                buffer,
                scanned,
                ended,
            } => loop {
                if let Some(offset) = buffer[*scanned..].iter().position(|b| *b == b'\n') {
                    let end = *scanned + offset;
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    *scanned = 0;
                    let line = trim_line(&line);
                    if line.is_empty() {
                        continue;
                    }
                    return Some(line_frame(line));
                }
                *scanned = buffer.len();
                if *ended {
                    if buffer.is_empty() {
                        return None;
                    }
                    let line = std::mem::take(buffer);
                    *scanned = 0;
                    let line = trim_line(&line);
                    if line.is_empty() {
                        return None;
                    }
                    return Some(line_frame(line));
                }
                if buffer.len() > MAX_LINE_BYTES {
                    return Some(Err(DecodeError::Malformed(format!(
                        "an NDJSON line is longer than {MAX_LINE_BYTES} bytes"
                    ))));
                }
                match body.next().await {
                    Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
                    Some(Err(error)) => return Some(Err(error.into())),
                    None => *ended = true,
                }
            },
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut line = line;
    while let [rest @ .., b'\n' | b'\r' | b' ' | b'\t'] = line {
        line = rest;
    }
    while let [b' ' | b'\t', rest @ ..] = line {
        line = rest;
    }
    line
}

fn line_frame(line: &[u8]) -> Result<Frame, DecodeError> {
    match std::str::from_utf8(line) {
        Ok(text) => Ok(Frame {
            event: String::new(),
            data: text.to_owned(),
        }),
        Err(error) => Err(DecodeError::Malformed(format!(
            "line is not UTF-8: {error}"
        ))),
    }
}

/// Turns a body of bytes into events: framing, the protocol's decoder, tool-call assembly.
/// The stream ends after [`StreamEvent::Completed`] or after the first error.
pub fn decode_byte_stream<S, E>(
    api: WireApi,
    body: S,
) -> impl Stream<Item = Result<StreamEvent, DecodeError>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<DecodeError> + Send + 'static,
{
    let body: BoxedBytes<E> = Box::pin(body);
    let frames = match Framing::of(api) {
        Framing::Sse => FrameSource::Sse(Box::pin(EventStream::new(body))),
        Framing::Ndjson => FrameSource::Ndjson {
            body,
            buffer: Vec::new(),
            scanned: 0,
            ended: false,
        },
    };
    let state = DecodeState {
        frames,
        decoder: new_decoder(api),
        pending: VecDeque::new(),
        scratch: Vec::new(),
        assembler: ToolCallAssembler::default(),
        over: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_event().await?;
        Some((item, state))
    })
}

struct DecodeState<E> {
    frames: FrameSource<E>,
    decoder: Box<dyn StreamDecoder>,
    pending: VecDeque<StreamEvent>,
    scratch: Vec<StreamEvent>,
    assembler: ToolCallAssembler,
    over: bool,
}

impl<E: Into<DecodeError>> DecodeState<E> {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, DecodeError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.over {
                return None;
            }
            let decoded = match self.frames.next_frame().await {
                Some(Ok(frame)) => {
                    if self.decoder.is_done() {
                        continue;
                    }
                    self.decoder.decode(&frame, &mut self.scratch)
                }
                Some(Err(error)) => Err(error),
                None => {
                    self.over = true;
                    if self.decoder.is_done() {
                        Ok(())
                    } else {
                        self.decoder.finish(&mut self.scratch)
                    }
                }
            };
            if let Err(error) = decoded {
                self.over = true;
                self.pending.clear();
                return Some(Err(error));
            }
            for event in self.scratch.drain(..) {
                self.assembler.absorb(event, &mut self.pending);
            }
            if self
                .pending
                .iter()
                .any(|e| matches!(e, StreamEvent::Completed(_)))
            {
                self.over = true;
            }
        }
    }
}

/// Collects tool-call pieces and emits each complete call before the final event.
#[derive(Default)]
struct ToolCallAssembler {
    calls: BTreeMap<usize, ToolCall>,
}

impl ToolCallAssembler {
    fn absorb(&mut self, event: StreamEvent, out: &mut VecDeque<StreamEvent>) {
        match &event {
            StreamEvent::ToolCallStarted { index, id, name } => {
                self.calls.insert(
                    *index,
                    ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    },
                );
            }
            StreamEvent::ToolCallArgumentsDelta { index, fragment } => {
                if let Some(call) = self.calls.get_mut(index) {
                    call.arguments.push_str(fragment);
                }
            }
            StreamEvent::Completed(_) => {
                let calls = std::mem::take(&mut self.calls);
                let any_calls = !calls.is_empty();
                for (index, call) in calls {
                    out.push_back(StreamEvent::ToolCallReady { index, call });
                }
                if let StreamEvent::Completed(mut completion) = event {
                    // Gemini and Ollama say "stop" even when the answer is a tool call.
                    if any_calls && completion.stop_reason == StopReason::EndTurn {
                        completion.stop_reason = StopReason::ToolUse;
                    }
                    out.push_back(StreamEvent::Completed(completion));
                }
                return;
            }
            _ => {}
        }
        out.push_back(event);
    }
}

/// Where and how a request goes: the facts the protocol files need to build it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestTarget<'a> {
    /// The provider's base URL without a trailing slash.
    pub base_url: &'a str,
    /// The model id as the provider names it.
    pub model: &'a str,
    /// The catalog's maximum output, when known.
    pub max_output: Option<u64>,
    /// openai-chat: `max_tokens` or `max_completion_tokens`.
    pub max_tokens_field: Option<&'a str>,
    /// Ollama's context size (`num_ctx`).
    pub num_ctx: Option<u64>,
}

/// A protocol request ready to send (POST, JSON body).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireRequest {
    pub url: String,
    pub body: serde_json::Value,
    /// Protocol headers (never the key: the client adds auth).
    pub headers: Vec<(&'static str, String)>,
}

/// A completion without cost (the client adds it from the catalog). A `null` raw usage
/// means the server reported none.
pub(crate) fn completed(
    stop_reason: StopReason,
    usage: Usage,
    raw_usage: serde_json::Value,
) -> StreamEvent {
    StreamEvent::Completed(Completion {
        stop_reason,
        usage: (!raw_usage.is_null()).then_some(usage),
        raw_usage,
        cost: None,
        attempts: 1,
    })
}

/// Parses a frame's JSON, reporting a short excerpt when it is not JSON.
pub(crate) fn parse_json<'a, T: serde::Deserialize<'a>>(data: &'a str) -> Result<T, DecodeError> {
    serde_json::from_str(data)
        .map_err(|error| DecodeError::Malformed(format!("{error} in {:?}", excerpt(data, 120))))
}

/// The first `max` characters of `text`.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The error message inside a provider's error body: `{"error": {"message": …}}` (OpenAI,
/// Anthropic, Gemini), `{"error": "…"}` (Ollama), or `{"message": …}`; else the body's start.
pub fn error_message_from_body(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = parsed.as_ref().and_then(|value| {
        let error = value.get("error");
        error
            .and_then(|e| e.get("message"))
            .or_else(|| error.filter(|e| e.is_string()))
            .or_else(|| value.get("message"))
            .or_else(|| value.get("detail"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    from_json.unwrap_or_else(|| {
        let trimmed = body.trim();
        if trimmed.is_empty() {
            "(empty body)".to_owned()
        } else {
            excerpt(trimmed, 300)
        }
    })
}

/// Reads a JSON unsigned integer field, treating absence and null as zero.
pub(crate) fn count(value: &serde_json::Value, path: &[&str]) -> u64 {
    let mut at = value;
    for key in path {
        match at.get(key) {
            Some(next) => at = next,
            None => return 0,
        }
    }
    at.as_u64().unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&str],
    ) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + use<> {
        let owned: Vec<Result<Bytes, std::convert::Infallible>> = parts
            .iter()
            .map(|p| Ok(Bytes::from(p.to_string())))
            .collect();
        futures::stream::iter(owned)
    }

    #[tokio::test]
    async fn ndjson_lines_split_across_chunks_are_joined() {
        let parts = [
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"He\"},\"done\":false}\n{\"model\":\"m\",\"mess",
            "age\":{\"role\":\"assistant\",\"content\":\"llo\"},\"done\":false}\r\n\n",
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":2}",
        ];
        let events: Vec<_> = decode_byte_stream(WireApi::Ollama, chunks(&parts))
            .collect()
            .await;
        let events: Vec<StreamEvent> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(events[0], StreamEvent::TextDelta { text: "He".into() });
        assert_eq!(events[1], StreamEvent::TextDelta { text: "llo".into() });
        assert!(matches!(events[2], StreamEvent::Completed(_)));
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn error_messages_are_found_in_each_body_shape() {
        assert_eq!(
            error_message_from_body(r#"{"error":{"message":"bad model","type":"x"}}"#),
            "bad model"
        );
        assert_eq!(
            error_message_from_body(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(
            error_message_from_body("<html>oops</html>"),
            "<html>oops</html>"
        );
        assert_eq!(error_message_from_body(""), "(empty body)");
    }

    #[test]
    fn content_types() {
        assert!(Framing::Sse.accepts("text/event-stream; charset=utf-8"));
        assert!(!Framing::Sse.accepts("application/json"));
        assert!(Framing::Ndjson.accepts("application/x-ndjson"));
        assert!(!Framing::Ndjson.accepts("text/html"));
    }
}
