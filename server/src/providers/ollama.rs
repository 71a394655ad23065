//! Ollama's native chat (`POST {base}/api/chat`, `"stream": true`), local by default.
//!
//! Stream: NDJSON (`application/x-ndjson`), one object per line — `message.content` (and
//! `message.thinking` when `think` is on) pieces with `"done": false`; tool calls arrive whole
//! in `message.tool_calls[].function {name, arguments}` (arguments an object); the last line
//! has `"done": true`, `done_reason`, and the counts `prompt_eval_count` / `eval_count`. An
//! error is a line `{"error": "…"}`. The context size is a request option (`num_ctx`), which
//! otherwise defaults to a few thousand tokens and silently truncates the prompt.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{ChatRequest, ContentPart, Role, StopReason, StreamEvent, Usage};
use super::wire::{
    DecodeError, Frame, RequestTarget, StreamDecoder, WireRequest, completed, count, parse_json,
};

static NEXT_CALL_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn build_request(target: &RequestTarget<'_>, request: &ChatRequest) -> WireRequest {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for message in &request.messages {
        match message.role {
            Role::User => {
                for part in &message.content {
                    if let ContentPart::ToolResult(result) = part {
                        messages.push(json!({
                            "role": "tool",
                            "content": result.content,
                            "tool_name": result.name,
                        }));
                    }
                }
                let text = message.text();
                if !text.is_empty() {
                    messages.push(json!({ "role": "user", "content": text }));
                }
            }
            Role::Assistant => {
                let mut entry = json!({ "role": "assistant", "content": message.text() });
                let calls: Vec<Value> = message
                    .content
                    .iter()
                    .filter_map(|part| match part {
                        ContentPart::ToolCall(call) => Some(json!({
                            "function": {
                                "name": call.name,
                                "arguments": call.parsed_arguments().unwrap_or_else(|_| json!({})),
                            }
                        })),
                        _ => None,
                    })
                    .collect();
                if !calls.is_empty() {
                    entry["tool_calls"] = Value::Array(calls);
                }
                messages.push(entry);
            }
        }
    }
    let mut body = json!({ "model": target.model, "messages": messages, "stream": true });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    let mut options = serde_json::Map::new();
    if let Some(num_ctx) = target.num_ctx {
        options.insert("num_ctx".into(), json!(num_ctx));
    }
    if let Some(max) = request.max_output_tokens {
        options.insert("num_predict".into(), json!(max));
    }
    if let Some(temperature) = request.temperature {
        options.insert("temperature".into(), json!(temperature));
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    if request.thinking_budget.is_some() {
        body["think"] = json!(true);
    }
    WireRequest {
        url: format!("{}/api/chat", target.base_url),
        body,
        headers: vec![("accept", "application/x-ndjson".to_owned())],
    }
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<LineToolCall>>,
}

#[derive(Deserialize)]
struct LineToolCall {
    #[serde(default)]
    id: Option<String>,
    function: LineFunction,
}

#[derive(Deserialize)]
struct LineFunction {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Default)]
pub(crate) struct Decoder {
    calls: usize,
    done: bool,
}

/// The counters of the final line, as the raw usage.
const USAGE_FIELDS: [&str; 7] = [
    "prompt_eval_count",
    "prompt_eval_cached_count",
    "eval_count",
    "total_duration",
    "load_duration",
    "prompt_eval_duration",
    "eval_duration",
];

impl StreamDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        let line: Line = parse_json(&frame.data)?;
        if let Some(error) = line.error {
            let message = error
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string());
            return Err(DecodeError::Provider {
                kind: "error".to_owned(),
                message,
            });
        }
        if let Some(message) = line.message {
            if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::ThinkingDelta { text: thinking });
            }
            if let Some(text) = message.content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta { text });
            }
            for call in message.tool_calls.into_iter().flatten() {
                let index = self.calls;
                self.calls += 1;
                let id = call.id.unwrap_or_else(|| {
                    format!(
                        "ollama-call-{}",
                        NEXT_CALL_ID.fetch_add(1, Ordering::Relaxed)
                    )
                });
                out.push(StreamEvent::ToolCallStarted {
                    index,
                    id,
                    name: call.function.name,
                });
                let arguments = match call.function.arguments {
                    Some(Value::String(text)) => text,
                    Some(value) => value.to_string(),
                    None => "{}".to_owned(),
                };
                out.push(StreamEvent::ToolCallArgumentsDelta {
                    index,
                    fragment: arguments,
                });
            }
        }
        if line.done {
            self.done = true;
            let full: Value = parse_json(&frame.data)?;
            let raw: serde_json::Map<String, Value> = USAGE_FIELDS
                .iter()
                .filter_map(|key| full.get(*key).map(|v| ((*key).to_owned(), v.clone())))
                .collect();
            let raw = Value::Object(raw);
            let stop = match line.done_reason.as_deref() {
                Some("stop") | None => StopReason::EndTurn,
                Some("length") => StopReason::MaxTokens,
                Some(other) => StopReason::Other(other.to_owned()),
            };
            out.push(completed(stop, usage_of(&raw), raw));
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        Err(DecodeError::Cut("no line with \"done\": true".to_owned()))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// `prompt_eval_count` counts the prompt tokens evaluated; `prompt_eval_cached_count`, where
/// the server reports it, those reused from its cache.
pub(crate) fn usage_of(raw: &Value) -> Usage {
    Usage {
        input_uncached: count(raw, &["prompt_eval_count"]),
        cache_read: count(raw, &["prompt_eval_cached_count"]),
        cache_write: 0,
        output: count(raw, &["eval_count"]),
        reasoning: 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::providers::types::{Message, ToolCall, ToolResult};

    #[test]
    fn request_sets_num_ctx_think_and_tool_messages() {
        let target = RequestTarget {
            base_url: "http://127.0.0.1:11434",
            model: "qwen2.5-coder:7b",
            max_output: None,
            max_tokens_field: None,
            num_ctx: Some(32768),
        };
        let request = ChatRequest {
            messages: vec![
                Message::user("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![ContentPart::ToolCall(ToolCall {
                        id: "x".into(),
                        name: "read".into(),
                        arguments: "{\"p\":\"a\"}".into(),
                    })],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentPart::ToolResult(ToolResult {
                        call_id: "x".into(),
                        name: "read".into(),
                        content: "ok".into(),
                        is_error: false,
                    })],
                },
            ],
            thinking_budget: Some(1),
            ..ChatRequest::default()
        };
        let wire = build_request(&target, &request);
        assert_eq!(wire.url, "http://127.0.0.1:11434/api/chat");
        let body = wire.body;
        assert_eq!(body["options"]["num_ctx"], 32768);
        assert_eq!(body["think"], true);
        assert_eq!(
            body["messages"][1]["tool_calls"][0]["function"]["arguments"],
            json!({"p":"a"})
        );
        assert_eq!(
            body["messages"][2],
            json!({"role":"tool","content":"ok","tool_name":"read"})
        );
    }

    #[test]
    fn an_error_line_is_a_provider_error() {
        let mut out = Vec::new();
        let error = Decoder::default()
            .decode(
                &Frame {
                    event: String::new(),
                    data: r#"{"error":"model \"x\" not found"}"#.into(),
                },
                &mut out,
            )
            .unwrap_err();
        assert_eq!(
            error,
            DecodeError::Provider {
                kind: "error".into(),
                message: "model \"x\" not found".into()
            }
        );
    }
}
