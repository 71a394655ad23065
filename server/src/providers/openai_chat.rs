//! OpenAI Chat Completions (`POST {base}/chat/completions`, `"stream": true`): the protocol of
//! OpenAI and of most compatible servers (OpenRouter, Groq, DeepSeek, Mistral, xAI, Together,
//! Fireworks, Cerebras, Azure, LM Studio, llama.cpp, vLLM).
//!
//! Stream: SSE `data:` lines of `chat.completion.chunk` objects; text in
//! `choices[0].delta.content`, tool calls as `delta.tool_calls[]` fragments keyed by `index`
//! (the first carries `id` and `function.name`, later ones pieces of `function.arguments`),
//! `finish_reason` on the last choice chunk, then — with `stream_options.include_usage` — one
//! chunk with empty `choices` and the `usage`, then `data: [DONE]`.
//! Reasoning text arrives as `delta.reasoning_content` (DeepSeek, vLLM, llama.cpp) or
//! `delta.reasoning` (OpenRouter).

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{ChatRequest, ContentPart, Role, StopReason, StreamEvent, ToolSpec, Usage};
use super::wire::{
    DecodeError, Frame, RequestTarget, StreamDecoder, WireRequest, completed, count, parse_json,
};

pub(crate) fn build_request(target: &RequestTarget<'_>, request: &ChatRequest) -> WireRequest {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for message in &request.messages {
        match message.role {
            Role::User => {
                let mut text = String::new();
                for part in &message.content {
                    match part {
                        ContentPart::ToolResult(result) => messages.push(json!({
                            "role": "tool",
                            "tool_call_id": result.call_id,
                            "content": result.content,
                        })),
                        ContentPart::Text(t) => text.push_str(t),
                        ContentPart::Thinking { .. }
                        | ContentPart::RedactedThinking { .. }
                        | ContentPart::ToolCall(_) => {}
                    }
                }
                if !text.is_empty() {
                    messages.push(json!({ "role": "user", "content": text }));
                }
            }
            Role::Assistant => {
                let text = message.text();
                let calls: Vec<Value> = message
                    .content
                    .iter()
                    .filter_map(|part| match part {
                        ContentPart::ToolCall(call) => Some(json!({
                            "id": call.id,
                            "type": "function",
                            "function": { "name": call.name, "arguments": call.arguments },
                        })),
                        _ => None,
                    })
                    .collect();
                let mut entry = json!({ "role": "assistant" });
                entry["content"] = if text.is_empty() && !calls.is_empty() {
                    Value::Null
                } else {
                    Value::String(text)
                };
                if !calls.is_empty() {
                    entry["tool_calls"] = Value::Array(calls);
                }
                messages.push(entry);
            }
        }
    }
    let mut body = json!({
        "model": target.model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if !request.tools.is_empty() {
        body["tools"] = Value::Array(request.tools.iter().map(tool_json).collect());
    }
    if let Some(max) = request.max_output_tokens {
        let field = target.max_tokens_field.unwrap_or("max_tokens");
        body[field] = json!(max);
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    WireRequest {
        url: format!("{}/chat/completions", target.base_url),
        body,
        headers: vec![("accept", "text/event-stream".to_owned())],
    }
}

fn tool_json(tool: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    })
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Default)]
pub(crate) struct Decoder {
    started: Vec<usize>,
    finish_reason: Option<String>,
    raw_usage: Option<Value>,
    done: bool,
}

impl Decoder {
    fn complete(&mut self, out: &mut Vec<StreamEvent>) {
        self.done = true;
        let raw = self.raw_usage.take().unwrap_or(Value::Null);
        let stop = match self.finish_reason.as_deref() {
            Some("stop") | None => StopReason::EndTurn,
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::ContentFilter,
            Some(other) => StopReason::Other(other.to_owned()),
        };
        out.push(completed(stop, usage_of(&raw), raw));
    }
}

/// OpenAI counts cached tokens inside `prompt_tokens` and reasoning inside
/// `completion_tokens`; DeepSeek reports `prompt_cache_hit_tokens` instead of the details.
pub(crate) fn usage_of(raw: &Value) -> Usage {
    let prompt = count(raw, &["prompt_tokens"]);
    let cached = match raw.pointer("/prompt_tokens_details/cached_tokens") {
        Some(cached) => cached.as_u64().unwrap_or(0),
        None => count(raw, &["prompt_cache_hit_tokens"]),
    };
    Usage {
        input_uncached: prompt.saturating_sub(cached),
        cache_read: cached,
        cache_write: 0,
        output: count(raw, &["completion_tokens"]),
        reasoning: count(raw, &["completion_tokens_details", "reasoning_tokens"]),
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        let data = frame.data.trim();
        if data == "[DONE]" {
            self.complete(out);
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Chunk = parse_json(data)?;
        if let Some(error) = chunk.error {
            return Err(provider_error(&error));
        }
        if let Some(usage) = chunk.usage.filter(|u| !u.is_null()) {
            self.raw_usage = Some(usage);
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                self.decode_delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        // Some compatible servers end after the finish chunk without `[DONE]`.
        if self.finish_reason.is_some() {
            self.complete(out);
            return Ok(());
        }
        Err(DecodeError::Cut(
            "no finish_reason and no [DONE]".to_owned(),
        ))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

impl Decoder {
    fn decode_delta(&mut self, delta: Delta, out: &mut Vec<StreamEvent>) {
        for thinking in [delta.reasoning_content, delta.reasoning]
            .into_iter()
            .flatten()
        {
            if !thinking.is_empty() {
                out.push(StreamEvent::ThinkingDelta { text: thinking });
            }
        }
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                out.push(StreamEvent::TextDelta { text });
            }
        }
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            let index = call.index.unwrap_or(position);
            let (name, arguments) = match call.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            if !self.started.contains(&index) {
                self.started.push(index);
                out.push(StreamEvent::ToolCallStarted {
                    index,
                    id: call.id.unwrap_or_else(|| format!("call_{index}")),
                    name: name.unwrap_or_default(),
                });
            }
            if let Some(fragment) = arguments.filter(|a| !a.is_empty()) {
                out.push(StreamEvent::ToolCallArgumentsDelta { index, fragment });
            }
        }
    }
}

fn provider_error(error: &Value) -> DecodeError {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| error.as_str())
        .unwrap_or("unknown error")
        .to_owned();
    let kind = error
        .get("type")
        .or_else(|| error.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("error")
        .to_owned();
    DecodeError::Provider { kind, message }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::providers::types::{Message, ToolCall, ToolResult};

    fn frame(data: &str) -> Frame {
        Frame {
            event: "message".into(),
            data: data.into(),
        }
    }

    #[test]
    fn request_maps_history_tools_and_limits() {
        let target = RequestTarget {
            base_url: "http://h/v1",
            model: "gpt-5",
            max_output: None,
            max_tokens_field: Some("max_completion_tokens"),
            num_ctx: None,
        };
        let call = ToolCall {
            id: "call_1".into(),
            name: "read".into(),
            arguments: "{\"p\":1}".into(),
        };
        let request = ChatRequest {
            system: Some("be brief".into()),
            messages: vec![
                Message::user("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![ContentPart::ToolCall(call)],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentPart::ToolResult(ToolResult {
                        call_id: "call_1".into(),
                        name: "read".into(),
                        content: "data".into(),
                        is_error: false,
                    })],
                },
            ],
            tools: vec![ToolSpec {
                name: "read".into(),
                description: "reads".into(),
                parameters: json!({"type": "object"}),
            }],
            max_output_tokens: Some(100),
            ..ChatRequest::default()
        };
        let wire = build_request(&target, &request);
        assert_eq!(wire.url, "http://h/v1/chat/completions");
        let body = wire.body;
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_completion_tokens"], 100);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"p\":1}"
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "data"})
        );
        assert_eq!(body["tools"][0]["function"]["name"], "read");
    }

    #[test]
    fn usage_normalization_subtracts_cached_tokens() {
        let raw = json!({
            "prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 10}
        });
        assert_eq!(
            usage_of(&raw),
            Usage {
                input_uncached: 40,
                cache_read: 60,
                cache_write: 0,
                output: 40,
                reasoning: 10
            }
        );
        let deepseek =
            json!({"prompt_tokens": 10, "completion_tokens": 1, "prompt_cache_hit_tokens": 4});
        assert_eq!(usage_of(&deepseek).cache_read, 4);
        assert_eq!(usage_of(&deepseek).input_uncached, 6);
    }

    #[test]
    fn an_error_chunk_is_a_provider_error() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let error = decoder
            .decode(
                &frame(r#"{"error":{"message":"overloaded","type":"server_error"}}"#),
                &mut out,
            )
            .unwrap_err();
        assert_eq!(
            error,
            DecodeError::Provider {
                kind: "server_error".into(),
                message: "overloaded".into()
            }
        );
    }

    #[test]
    fn a_stream_without_finish_is_cut() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        decoder
            .decode(
                &frame(r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#),
                &mut out,
            )
            .unwrap();
        assert!(matches!(decoder.finish(&mut out), Err(DecodeError::Cut(_))));
    }
}
