//! Anthropic Messages (`POST {base}/v1/messages`, `"stream": true`,
//! `anthropic-version: 2023-06-01`).
//!
//! Stream: named SSE events — `message_start` (the message with empty content and the input
//! usage), then per content block `content_block_start`, `content_block_delta`s (`text_delta`,
//! `input_json_delta` with `partial_json`, `thinking_delta`, `signature_delta`) and
//! `content_block_stop`; then `message_delta` (stop reason, cumulative output usage) and
//! `message_stop`. Any number of `ping`s may come between; an `error` event (for example
//! `overloaded_error`) can arrive mid-stream. Unknown event types are ignored, as the
//! versioning policy asks.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{ChatRequest, ContentPart, Role, StopReason, StreamEvent, Usage};
use super::wire::{
    DecodeError, Frame, RequestTarget, StreamDecoder, WireRequest, completed, count, parse_json,
};

pub const API_VERSION: &str = "2023-06-01";

/// Output limit when neither the request nor the catalog gives one.
const DEFAULT_MAX_TOKENS: u64 = 8192;

pub(crate) fn build_request(target: &RequestTarget<'_>, request: &ChatRequest) -> WireRequest {
    let cache = || json!({ "type": "ephemeral" });
    let mut messages: Vec<Value> = Vec::new();
    for message in &request.messages {
        let mut blocks: Vec<Value> = Vec::new();
        // Tool results must open the user turn that answers the tool calls.
        for part in &message.content {
            if let ContentPart::ToolResult(result) = part {
                blocks.push(json!({
                    "type": "tool_result",
                    "tool_use_id": result.call_id,
                    "content": result.content,
                    "is_error": result.is_error,
                }));
            }
        }
        for part in &message.content {
            match part {
                ContentPart::Text(text) if !text.is_empty() => {
                    blocks.push(json!({ "type": "text", "text": text }));
                }
                ContentPart::Thinking {
                    text,
                    signature: Some(signature),
                } if message.role == Role::Assistant
                    && !signature.starts_with(super::gemini::SIGNATURE_PREFIX) =>
                {
                    blocks.push(
                        json!({ "type": "thinking", "thinking": text, "signature": signature }),
                    );
                }
                ContentPart::RedactedThinking { data } if message.role == Role::Assistant => {
                    blocks.push(json!({ "type": "redacted_thinking", "data": data }));
                }
                ContentPart::ToolCall(call) => {
                    let input = call.parsed_arguments().unwrap_or_else(|_| json!({}));
                    blocks.push(json!({
                        "type": "tool_use", "id": call.id, "name": call.name, "input": input,
                    }));
                }
                _ => {}
            }
        }
        if blocks.is_empty() {
            continue;
        }
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({ "role": role, "content": blocks }));
    }
    if request.cache_prefix
        && let Some(last) = messages
            .last_mut()
            .and_then(|m| m["content"].as_array_mut())
        && let Some(block) = last.last_mut()
    {
        block["cache_control"] = cache();
    }

    let thinking_budget = request.thinking_budget.map(u64::from);
    let mut max_tokens = request
        .max_output_tokens
        .map(u64::from)
        .or(target.max_output.map(|m| m.min(32_000)))
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(budget) = thinking_budget
        && max_tokens <= budget
    {
        max_tokens = budget + DEFAULT_MAX_TOKENS;
    }
    let mut body = json!({
        "model": target.model,
        "max_tokens": max_tokens,
        "messages": messages,
        "stream": true,
    });
    if let Some(system) = &request.system {
        let mut block = json!({ "type": "text", "text": system });
        if request.cache_prefix {
            block["cache_control"] = cache();
        }
        body["system"] = json!([block]);
    }
    if !request.tools.is_empty() {
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
        if request.cache_prefix
            && let Some(last) = tools.last_mut()
        {
            last["cache_control"] = cache();
        }
        body["tools"] = Value::Array(tools);
    }
    match thinking_budget {
        Some(budget) => body["thinking"] = json!({ "type": "enabled", "budget_tokens": budget }),
        // Extended thinking requires the default temperature.
        None => {
            if let Some(temperature) = request.temperature {
                body["temperature"] = json!(temperature);
            }
        }
    }
    WireRequest {
        url: format!("{}/v1/messages", target.base_url),
        body,
        headers: vec![
            ("anthropic-version", API_VERSION.to_owned()),
            ("accept", "text/event-stream".to_owned()),
        ],
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Default)]
pub(crate) struct Decoder {
    /// `message_start`'s usage, updated field by field by `message_delta`s.
    usage: serde_json::Map<String, Value>,
    stop_reason: Option<String>,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        // The event name repeats the data's `type`; the data is authoritative.
        if frame.event == "ping" {
            return Ok(());
        }
        let event: Event = parse_json(&frame.data)?;
        match event.kind.as_str() {
            "message_start" => {
                if let Some(mut message) = event.message
                    && let Value::Object(usage) = message["usage"].take()
                {
                    self.usage = usage;
                }
            }
            "content_block_start" => {
                let index = event.index.unwrap_or(0);
                let block = event.content_block.unwrap_or(Value::Null);
                match block["type"].as_str() {
                    Some("tool_use") => out.push(StreamEvent::ToolCallStarted {
                        index,
                        id: block["id"].as_str().unwrap_or_default().to_owned(),
                        name: block["name"].as_str().unwrap_or_default().to_owned(),
                    }),
                    Some("text") => push_text(out, &block["text"]),
                    Some("thinking") => push_thinking(out, &block["thinking"]),
                    Some("redacted_thinking") => {
                        if let Some(data) = block["data"].as_str() {
                            out.push(StreamEvent::RedactedThinking {
                                data: data.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = event.index.unwrap_or(0);
                let delta = event.delta.unwrap_or(Value::Null);
                match delta["type"].as_str() {
                    Some("text_delta") => push_text(out, &delta["text"]),
                    Some("input_json_delta") => {
                        if let Some(fragment) =
                            delta["partial_json"].as_str().filter(|f| !f.is_empty())
                        {
                            out.push(StreamEvent::ToolCallArgumentsDelta {
                                index,
                                fragment: fragment.to_owned(),
                            });
                        }
                    }
                    Some("thinking_delta") => push_thinking(out, &delta["thinking"]),
                    Some("signature_delta") => {
                        if let Some(signature) = delta["signature"].as_str() {
                            out.push(StreamEvent::ThinkingSignature {
                                signature: signature.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = event.delta.as_ref().and_then(|d| d["stop_reason"].as_str()) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(Value::Object(usage)) = event.usage {
                    for (key, value) in usage {
                        if !value.is_null() {
                            self.usage.insert(key, value);
                        }
                    }
                }
            }
            "message_stop" => {
                self.done = true;
                let raw = Value::Object(std::mem::take(&mut self.usage));
                let stop = match self.stop_reason.as_deref() {
                    Some("end_turn" | "stop_sequence") | None => StopReason::EndTurn,
                    Some("tool_use") => StopReason::ToolUse,
                    Some("max_tokens" | "model_context_window_exceeded") => StopReason::MaxTokens,
                    Some("refusal") => StopReason::ContentFilter,
                    Some(other) => StopReason::Other(other.to_owned()),
                };
                out.push(completed(stop, usage_of(&raw), raw));
            }
            "error" => {
                let error = event.error.unwrap_or(Value::Null);
                return Err(DecodeError::Provider {
                    kind: error["type"].as_str().unwrap_or("error").to_owned(),
                    message: error["message"]
                        .as_str()
                        .unwrap_or("unknown error")
                        .to_owned(),
                });
            }
            // content_block_stop, ping, and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        Err(DecodeError::Cut("no message_stop".to_owned()))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// Anthropic's `input_tokens` already excludes cache reads and writes.
pub(crate) fn usage_of(raw: &Value) -> Usage {
    Usage {
        input_uncached: count(raw, &["input_tokens"]),
        cache_read: count(raw, &["cache_read_input_tokens"]),
        cache_write: count(raw, &["cache_creation_input_tokens"]),
        output: count(raw, &["output_tokens"]),
        reasoning: 0,
    }
}

fn push_text(out: &mut Vec<StreamEvent>, text: &Value) {
    if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
        out.push(StreamEvent::TextDelta {
            text: text.to_owned(),
        });
    }
}

fn push_thinking(out: &mut Vec<StreamEvent>, text: &Value) {
    if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
        out.push(StreamEvent::ThinkingDelta {
            text: text.to_owned(),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::providers::types::{Message, ToolCall, ToolResult, ToolSpec};

    fn target() -> RequestTarget<'static> {
        RequestTarget {
            base_url: "https://api.anthropic.com",
            model: "claude-sonnet-4-5",
            max_output: Some(64_000),
            max_tokens_field: None,
            num_ctx: None,
        }
    }

    #[test]
    fn request_has_system_tools_thinking_and_cache_markers() {
        let request = ChatRequest {
            system: Some("sys".into()),
            messages: vec![
                Message::user("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentPart::Thinking {
                            text: "t".into(),
                            signature: Some("sig".into()),
                        },
                        ContentPart::ToolCall(ToolCall {
                            id: "toolu_1".into(),
                            name: "read".into(),
                            arguments: "{\"path\":\"a\"}".into(),
                        }),
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        ContentPart::Text("and then?".into()),
                        ContentPart::ToolResult(ToolResult {
                            call_id: "toolu_1".into(),
                            name: "read".into(),
                            content: "x".into(),
                            is_error: true,
                        }),
                    ],
                },
            ],
            tools: vec![ToolSpec {
                name: "read".into(),
                description: "d".into(),
                parameters: json!({"type":"object"}),
            }],
            thinking_budget: Some(2048),
            temperature: Some(0.2),
            cache_prefix: true,
            ..ChatRequest::default()
        };
        let wire = build_request(&target(), &request);
        assert_eq!(wire.url, "https://api.anthropic.com/v1/messages");
        assert!(
            wire.headers
                .contains(&("anthropic-version", "2023-06-01".to_owned()))
        );
        let body = wire.body;
        assert_eq!(body["max_tokens"], 32_000);
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert!(
            body.get("temperature").is_none(),
            "thinking needs the default temperature"
        );
        assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(body["tools"][0]["cache_control"]["type"], "ephemeral");
        let assistant = &body["messages"][1]["content"];
        assert_eq!(
            assistant[0],
            json!({"type":"thinking","thinking":"t","signature":"sig"})
        );
        assert_eq!(assistant[1]["input"], json!({"path": "a"}));
        let user = &body["messages"][2]["content"];
        assert_eq!(user[0]["type"], "tool_result", "tool results come first");
        assert_eq!(user[0]["is_error"], true);
        assert_eq!(user[1]["cache_control"]["type"], "ephemeral");
    }

    #[test]
    fn redacted_thinking_is_kept_and_sent_back() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let data = r#"{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}}"#;
        decoder
            .decode(
                &Frame {
                    event: "content_block_start".into(),
                    data: data.into(),
                },
                &mut out,
            )
            .unwrap();
        assert_eq!(
            out,
            vec![StreamEvent::RedactedThinking {
                data: "EmwKAhgBEgy3va3pzix".into()
            }]
        );
        let mut response = crate::providers::types::ModelResponse::default();
        response.absorb(out.remove(0));
        response.absorb(StreamEvent::TextDelta { text: "ok".into() });
        let request = ChatRequest {
            messages: vec![response.to_message()],
            ..ChatRequest::default()
        };
        let body = build_request(&target(), &request).body;
        assert_eq!(
            body["messages"][0]["content"][0],
            json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"})
        );
        assert_eq!(body["messages"][0]["content"][1]["text"], "ok");
    }

    #[test]
    fn usage_merges_message_start_and_message_delta() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let frames = [
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":1}}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ];
        for (event, data) in frames {
            decoder
                .decode(
                    &Frame {
                        event: event.into(),
                        data: data.into(),
                    },
                    &mut out,
                )
                .unwrap();
        }
        let StreamEvent::Completed(completion) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(completion.stop_reason, StopReason::MaxTokens);
        assert_eq!(
            completion.usage,
            Some(Usage {
                input_uncached: 25,
                cache_read: 100,
                cache_write: 10,
                output: 15,
                reasoning: 0
            })
        );
        assert_eq!(completion.raw_usage["output_tokens"], 15);
    }
}
