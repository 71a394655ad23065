//! OpenAI Responses (`POST {base}/responses`, `"stream": true`, `"store": false`).
//!
//! Stream: named SSE events, each with a `type` equal to its name and a `sequence_number` —
//! `response.created`, `response.output_item.added` (a `message`, `reasoning` or
//! `function_call` item with `call_id` and `name`), `response.output_text.delta`,
//! `response.reasoning_summary_text.delta`, `response.function_call_arguments.delta` (keyed by
//! `output_index`), `response.output_item.done`, and one terminal event:
//! `response.completed`, `response.incomplete` or `response.failed`, whose `response.usage`
//! has `input_tokens` (with `input_tokens_details.cached_tokens`) and `output_tokens` (with
//! `output_tokens_details.reasoning_tokens`). There is no `[DONE]`. A top-level `error` event
//! reports a failure.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{ChatRequest, ContentPart, Role, StopReason, StreamEvent, Usage};
use super::wire::{
    DecodeError, Frame, RequestTarget, StreamDecoder, WireRequest, completed, count, parse_json,
};

pub(crate) fn build_request(target: &RequestTarget<'_>, request: &ChatRequest) -> WireRequest {
    let mut input = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        for part in &message.content {
            if let ContentPart::ToolResult(result) = part {
                input.push(json!({
                    "type": "function_call_output",
                    "call_id": result.call_id,
                    "output": result.content,
                }));
            }
        }
        let text = message.text();
        if !text.is_empty() {
            input.push(json!({ "role": role, "content": text }));
        }
        for part in &message.content {
            if let ContentPart::ToolCall(call) = part {
                input.push(json!({
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                }));
            }
        }
    }
    let mut body = json!({
        "model": target.model,
        "input": input,
        "stream": true,
        "store": false,
    });
    if let Some(system) = &request.system {
        body["instructions"] = json!(system);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    if let Some(max) = request.max_output_tokens {
        body["max_output_tokens"] = json!(max);
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(budget) = request.thinking_budget {
        let effort = match budget {
            0..=2048 => "low",
            2049..=8192 => "medium",
            _ => "high",
        };
        body["reasoning"] = json!({ "effort": effort, "summary": "auto" });
    }
    WireRequest {
        url: format!("{}/responses", target.base_url),
        body,
        headers: vec![("accept", "text/event-stream".to_owned())],
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    output_index: Option<usize>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Default)]
pub(crate) struct Decoder {
    started: Vec<usize>,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        let event: Event = parse_json(&frame.data)?;
        let index = event.output_index.unwrap_or(0);
        match event.kind.as_str() {
            "response.output_text.delta" | "response.refusal.delta" => {
                if let Some(text) = event.delta.filter(|d| !d.is_empty()) {
                    out.push(StreamEvent::TextDelta { text });
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(text) = event.delta.filter(|d| !d.is_empty()) {
                    out.push(StreamEvent::ThinkingDelta { text });
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                let item = event.item.unwrap_or(Value::Null);
                if item["type"] == "function_call" && !self.started.contains(&index) {
                    self.started.push(index);
                    let id = item["call_id"]
                        .as_str()
                        .or(item["id"].as_str())
                        .unwrap_or_default();
                    out.push(StreamEvent::ToolCallStarted {
                        index,
                        id: id.to_owned(),
                        name: item["name"].as_str().unwrap_or_default().to_owned(),
                    });
                    if let Some(arguments) = item["arguments"].as_str().filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolCallArgumentsDelta {
                            index,
                            fragment: arguments.to_owned(),
                        });
                    }
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(fragment) = event.delta.filter(|d| !d.is_empty()) {
                    out.push(StreamEvent::ToolCallArgumentsDelta { index, fragment });
                }
            }
            "response.completed" | "response.incomplete" => {
                self.done = true;
                let response = event.response.unwrap_or(Value::Null);
                let stop = if event.kind == "response.completed" {
                    StopReason::EndTurn
                } else {
                    match response
                        .pointer("/incomplete_details/reason")
                        .and_then(Value::as_str)
                    {
                        Some("max_output_tokens") => StopReason::MaxTokens,
                        Some("content_filter") => StopReason::ContentFilter,
                        Some(other) => StopReason::Other(other.to_owned()),
                        None => StopReason::Other("incomplete".to_owned()),
                    }
                };
                let raw = response.get("usage").cloned().unwrap_or(Value::Null);
                out.push(completed(stop, usage_of(&raw), raw));
            }
            "response.failed" => {
                let error = event
                    .response
                    .as_ref()
                    .and_then(|r| r.get("error"))
                    .cloned();
                let error = error.unwrap_or(Value::Null);
                return Err(DecodeError::Provider {
                    kind: error["code"].as_str().unwrap_or("failed").to_owned(),
                    message: error["message"]
                        .as_str()
                        .unwrap_or("the response failed")
                        .to_owned(),
                });
            }
            "error" => {
                let kind = match &event.code {
                    Some(Value::String(code)) => code.clone(),
                    _ => "error".to_owned(),
                };
                return Err(DecodeError::Provider {
                    kind,
                    message: event.message.unwrap_or_else(|| "unknown error".to_owned()),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        Err(DecodeError::Cut("no response.completed".to_owned()))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// `input_tokens` includes the cached ones; `output_tokens` includes reasoning.
pub(crate) fn usage_of(raw: &Value) -> Usage {
    let input = count(raw, &["input_tokens"]);
    let cached = count(raw, &["input_tokens_details", "cached_tokens"]);
    Usage {
        input_uncached: input.saturating_sub(cached),
        cache_read: cached,
        cache_write: 0,
        output: count(raw, &["output_tokens"]),
        reasoning: count(raw, &["output_tokens_details", "reasoning_tokens"]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::providers::types::{Message, ToolCall, ToolResult};

    #[test]
    fn request_uses_instructions_and_function_call_items() {
        let target = RequestTarget {
            base_url: "https://api.openai.com/v1",
            model: "gpt-5",
            max_output: None,
            max_tokens_field: None,
            num_ctx: None,
        };
        let request = ChatRequest {
            system: Some("sys".into()),
            messages: vec![
                Message::user("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![ContentPart::ToolCall(ToolCall {
                        id: "call_1".into(),
                        name: "read".into(),
                        arguments: "{}".into(),
                    })],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentPart::ToolResult(ToolResult {
                        call_id: "call_1".into(),
                        name: "read".into(),
                        content: "r".into(),
                        is_error: false,
                    })],
                },
            ],
            thinking_budget: Some(10_000),
            ..ChatRequest::default()
        };
        let wire = build_request(&target, &request);
        assert_eq!(wire.url, "https://api.openai.com/v1/responses");
        let body = wire.body;
        assert_eq!(body["instructions"], "sys");
        assert_eq!(body["store"], false);
        assert_eq!(body["input"][0], json!({"role":"user","content":"hi"}));
        assert_eq!(body["input"][1]["type"], "function_call");
        assert_eq!(
            body["input"][2],
            json!({"type":"function_call_output","call_id":"call_1","output":"r"})
        );
        assert_eq!(body["reasoning"]["effort"], "high");
    }

    #[test]
    fn incomplete_for_max_output_tokens_is_max_tokens() {
        let mut out = Vec::new();
        let data = r#"{"type":"response.incomplete","sequence_number":5,"response":{"id":"resp_1","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":17}}}"#;
        Decoder::default()
            .decode(
                &Frame {
                    event: "response.incomplete".into(),
                    data: data.into(),
                },
                &mut out,
            )
            .unwrap();
        let StreamEvent::Completed(completion) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(completion.stop_reason, StopReason::MaxTokens);
        assert_eq!(
            completion.usage,
            Some(Usage {
                input_uncached: 6,
                cache_read: 4,
                cache_write: 0,
                output: 7,
                reasoning: 3
            })
        );
    }
}
