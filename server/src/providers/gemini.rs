//! Google Gemini (`POST {base}/models/{model}:streamGenerateContent?alt=sse`, key in
//! `x-goog-api-key`).
//!
//! Stream: SSE `data:` lines, each a whole `GenerateContentResponse` — `candidates[0].content
//! .parts[]` holding `text` (with `"thought": true` for reasoning summaries) or a complete
//! `functionCall {name, args}`; `finishReason` on the last candidate chunk; `usageMetadata`
//! (`promptTokenCount` including `cachedContentTokenCount`, `candidatesTokenCount`,
//! `thoughtsTokenCount`). There is no end sentinel: the stream ends after the chunk with the
//! finish reason, so a body ending before one is a cut.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{ChatRequest, ContentPart, Role, StopReason, StreamEvent, Usage};
use super::wire::{
    DecodeError, Frame, RequestTarget, StreamDecoder, WireRequest, completed, count, parse_json,
};

/// Marks a thought signature as Gemini's, so it is sent back to Gemini only (another
/// provider cannot verify it).
pub const SIGNATURE_PREFIX: &str = "gemini:";

/// Prefix of the ids tack makes up for calls that came without one.
const GENERATED_ID_PREFIX: &str = "gemini-call-";
static NEXT_CALL_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn build_request(target: &RequestTarget<'_>, request: &ChatRequest) -> WireRequest {
    let mut contents = Vec::new();
    for message in &request.messages {
        let mut parts = Vec::new();
        for part in &message.content {
            match part {
                ContentPart::Text(text) if !text.is_empty() => parts.push(json!({ "text": text })),
                ContentPart::ToolCall(call) => {
                    let args = call.parsed_arguments().unwrap_or_else(|_| json!({}));
                    let mut function_call = json!({ "name": call.name, "args": args });
                    if !call.id.starts_with(GENERATED_ID_PREFIX) {
                        function_call["id"] = json!(call.id);
                    }
                    parts.push(json!({ "functionCall": function_call }));
                }
                ContentPart::ToolResult(result) => {
                    let key = if result.is_error { "error" } else { "output" };
                    let mut response =
                        json!({ "name": result.name, "response": { key: result.content } });
                    if !result.call_id.starts_with(GENERATED_ID_PREFIX) {
                        response["id"] = json!(result.call_id);
                    }
                    parts.push(json!({ "functionResponse": response }));
                }
                _ => {}
            }
        }
        if parts.is_empty() {
            continue;
        }
        // A Gemini thought signature goes back on the part it came with: the first function
        // call, or else the last part.
        let signature = message.content.iter().find_map(|part| match part {
            ContentPart::Thinking {
                signature: Some(signature),
                ..
            } => signature.strip_prefix(SIGNATURE_PREFIX),
            _ => None,
        });
        if let Some(signature) = signature {
            let at = parts
                .iter()
                .position(|p| p.get("functionCall").is_some())
                .unwrap_or(parts.len() - 1);
            parts[at]["thoughtSignature"] = json!(signature);
        }
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        contents.push(json!({ "role": role, "parts": parts }));
    }
    let mut body = json!({ "contents": contents });
    if let Some(system) = &request.system {
        body["systemInstruction"] = json!({ "parts": [{ "text": system }] });
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": openapi_schema(&tool.parameters),
                })
            })
            .collect();
        body["tools"] = json!([{ "functionDeclarations": declarations }]);
    }
    let mut generation = serde_json::Map::new();
    if let Some(max) = request.max_output_tokens {
        generation.insert("maxOutputTokens".into(), json!(max));
    }
    if let Some(temperature) = request.temperature {
        generation.insert("temperature".into(), json!(temperature));
    }
    if let Some(budget) = request.thinking_budget {
        generation.insert(
            "thinkingConfig".into(),
            json!({ "includeThoughts": true, "thinkingBudget": budget }),
        );
    }
    if !generation.is_empty() {
        body["generationConfig"] = Value::Object(generation);
    }
    WireRequest {
        url: format!(
            "{}/models/{}:streamGenerateContent?alt=sse",
            target.base_url, target.model
        ),
        body,
        headers: vec![("accept", "text/event-stream".to_owned())],
    }
}

/// Gemini takes an OpenAPI subset of JSON schema and rejects keywords outside it.
fn openapi_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !matches!(key.as_str(), "$schema" | "additionalProperties"))
                .map(|(key, value)| (key.clone(), openapi_schema(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(openapi_schema).collect()),
        other => other.clone(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Option<Vec<Candidate>>,
    #[serde(default)]
    usage_metadata: Option<Value>,
    #[serde(default)]
    prompt_feedback: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default)]
    function_call: Option<FunctionCall>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Default)]
pub(crate) struct Decoder {
    calls: usize,
    signed: bool,
    finish_reason: Option<String>,
    blocked: Option<String>,
    raw_usage: Option<Value>,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        if frame.data.trim().is_empty() {
            return Ok(());
        }
        let chunk: Chunk = parse_json(&frame.data)?;
        if let Some(error) = chunk.error {
            return Err(DecodeError::Provider {
                kind: error["status"].as_str().unwrap_or("error").to_owned(),
                message: error["message"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_owned(),
            });
        }
        if let Some(usage) = chunk.usage_metadata {
            self.raw_usage = Some(usage);
        }
        if let Some(reason) = chunk
            .prompt_feedback
            .as_ref()
            .and_then(|f| f["blockReason"].as_str())
        {
            self.blocked = Some(reason.to_owned());
        }
        let candidate = chunk.candidates.and_then(|c| c.into_iter().next());
        if let Some(candidate) = candidate {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                // The first signature of an answer is the one to send back (on a function
                // call it comes with the first call).
                if let Some(signature) = part.thought_signature.filter(|s| !s.is_empty())
                    && !self.signed
                {
                    self.signed = true;
                    out.push(StreamEvent::ThinkingSignature {
                        signature: format!("{SIGNATURE_PREFIX}{signature}"),
                    });
                }
                if let Some(call) = part.function_call {
                    let index = self.calls;
                    self.calls += 1;
                    let id = call.id.unwrap_or_else(|| {
                        format!(
                            "{GENERATED_ID_PREFIX}{}",
                            NEXT_CALL_ID.fetch_add(1, Ordering::Relaxed)
                        )
                    });
                    out.push(StreamEvent::ToolCallStarted {
                        index,
                        id,
                        name: call.name,
                    });
                    let args = call.args.unwrap_or_else(|| json!({}));
                    out.push(StreamEvent::ToolCallArgumentsDelta {
                        index,
                        fragment: args.to_string(),
                    });
                } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    if part.thought == Some(true) {
                        out.push(StreamEvent::ThinkingDelta { text });
                    } else {
                        out.push(StreamEvent::TextDelta { text });
                    }
                }
            }
            if let Some(reason) = candidate.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), DecodeError> {
        let stop = match (self.finish_reason.as_deref(), &self.blocked) {
            (_, Some(_)) => StopReason::ContentFilter,
            (Some("STOP"), None) => StopReason::EndTurn,
            (Some("MAX_TOKENS"), None) => StopReason::MaxTokens,
            (
                Some(
                    "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
                    | "IMAGE_SAFETY",
                ),
                None,
            ) => StopReason::ContentFilter,
            (Some(other), None) => StopReason::Other(other.to_owned()),
            (None, None) => return Err(DecodeError::Cut("no finishReason".to_owned())),
        };
        self.done = true;
        let raw = self.raw_usage.take().unwrap_or(Value::Null);
        out.push(completed(stop, usage_of(&raw), raw));
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// `promptTokenCount` includes the cached tokens; thoughts are billed as output but reported
/// apart from `candidatesTokenCount`.
pub(crate) fn usage_of(raw: &Value) -> Usage {
    let prompt = count(raw, &["promptTokenCount"]);
    let cached = count(raw, &["cachedContentTokenCount"]);
    let thoughts = count(raw, &["thoughtsTokenCount"]);
    Usage {
        input_uncached: prompt.saturating_sub(cached),
        cache_read: cached,
        cache_write: 0,
        output: count(raw, &["candidatesTokenCount"]) + thoughts,
        reasoning: thoughts,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::providers::types::{Message, ToolCall, ToolResult, ToolSpec};

    #[test]
    fn request_uses_contents_system_instruction_and_declarations() {
        let target = RequestTarget {
            base_url: "https://g/v1beta",
            model: "gemini-2.5-flash",
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
                        id: "gemini-call-7".into(),
                        name: "read".into(),
                        arguments: "{\"p\":1}".into(),
                    })],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentPart::ToolResult(ToolResult {
                        call_id: "gemini-call-7".into(),
                        name: "read".into(),
                        content: "text".into(),
                        is_error: false,
                    })],
                },
            ],
            tools: vec![ToolSpec {
                name: "read".into(),
                description: "d".into(),
                parameters: json!({"type":"object","additionalProperties":false,"properties":{"p":{"type":"integer"}}}),
            }],
            max_output_tokens: Some(50),
            thinking_budget: Some(1024),
            ..ChatRequest::default()
        };
        let wire = build_request(&target, &request);
        assert_eq!(
            wire.url,
            "https://g/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        let body = wire.body;
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "sys");
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(
            body["contents"][1]["parts"][0]["functionCall"],
            json!({"name":"read","args":{"p":1}})
        );
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"],
            json!({"name":"read","response":{"output":"text"}})
        );
        let parameters = &body["tools"][0]["functionDeclarations"][0]["parameters"];
        assert!(parameters.get("additionalProperties").is_none());
        assert_eq!(parameters["properties"]["p"]["type"], "integer");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 50);
        assert_eq!(
            body["generationConfig"]["thinkingConfig"]["includeThoughts"],
            true
        );
    }

    #[test]
    fn thought_signatures_come_back_on_the_first_function_call() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let data = r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"a","args":{}},"thoughtSignature":"SIG1"},{"functionCall":{"name":"b","args":{}}}]},"finishReason":"STOP"}]}"#;
        decoder
            .decode(
                &Frame {
                    event: "message".into(),
                    data: data.into(),
                },
                &mut out,
            )
            .unwrap();
        assert_eq!(
            out[0],
            StreamEvent::ThinkingSignature {
                signature: "gemini:SIG1".into()
            }
        );
        let call = |name: &str| {
            ContentPart::ToolCall(ToolCall {
                id: "gemini-call-1".into(),
                name: name.into(),
                arguments: "{}".into(),
            })
        };
        let target = RequestTarget {
            base_url: "https://g/v1beta",
            model: "gemini-3-pro",
            max_output: None,
            max_tokens_field: None,
            num_ctx: None,
        };
        let history = |signature: &str| ChatRequest {
            messages: vec![Message {
                role: Role::Assistant,
                content: vec![
                    ContentPart::Thinking {
                        text: String::new(),
                        signature: Some(signature.into()),
                    },
                    ContentPart::Text("calling".into()),
                    call("a"),
                    call("b"),
                ],
            }],
            ..ChatRequest::default()
        };
        let body = build_request(&target, &history("gemini:SIG1")).body;
        let parts = &body["contents"][0]["parts"];
        assert!(parts[0].get("thoughtSignature").is_none());
        assert_eq!(parts[1]["thoughtSignature"], "SIG1");
        assert!(parts[2].get("thoughtSignature").is_none());
        let foreign = build_request(&target, &history("anthropic-signature")).body;
        assert!(
            !foreign.to_string().contains("thoughtSignature"),
            "another provider's signature stays out"
        );
    }

    #[test]
    fn usage_splits_cached_and_thought_tokens() {
        let raw = json!({"promptTokenCount": 100, "cachedContentTokenCount": 30,
            "candidatesTokenCount": 20, "thoughtsTokenCount": 5, "totalTokenCount": 125});
        assert_eq!(
            usage_of(&raw),
            Usage {
                input_uncached: 70,
                cache_read: 30,
                cache_write: 0,
                output: 25,
                reasoning: 5
            }
        );
    }

    #[test]
    fn a_blocked_prompt_ends_as_content_filter() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let data =
            r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":4}}"#;
        decoder
            .decode(
                &Frame {
                    event: "message".into(),
                    data: data.into(),
                },
                &mut out,
            )
            .unwrap();
        decoder.finish(&mut out).unwrap();
        let StreamEvent::Completed(completion) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(completion.stop_reason, StopReason::ContentFilter);
    }
}
