//! The one internal request/response vocabulary every wire adapter converts to and from:
//! messages, tools, streamed events, stop reasons, normalized usage and cost.
//!
//! Nothing here knows a provider's field names; the adapters (`openai_chat.rs`,
//! `anthropic.rs`, …) are the only places that do.

use serde::{Deserialize, Serialize};

/// What the agent asks a model for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The system prompt, sent the way each protocol expects it.
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    /// Upper bound on generated tokens; `None` lets the adapter pick the catalog's maximum
    /// (protocols that require a value) or leave it to the server.
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Ask for visible reasoning ("thinking") with this token budget, where the protocol has one.
    pub thinking_budget: Option<u32>,
    /// Mark the stable prefix (system, tools, history) as cacheable where the protocol needs an
    /// explicit marker (Anthropic `cache_control`); other protocols cache automatically.
    pub cache_prefix: bool,
}

/// Who said a message. Tool results travel inside user messages as [`ContentPart::ToolResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentPart::Text(text.into())],
        }
    }

    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: vec![ContentPart::Text(text.into())],
        }
    }

    /// The concatenated text parts.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One part of a message. Serialized as `{"type": "text", "value": …}` and so on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ContentPart {
    Text(String),
    /// Visible reasoning. `signature` is the provider's opaque token that must be sent back
    /// unchanged with the block in later turns (Anthropic; Gemini's carries a `gemini:`
    /// prefix).
    Thinking {
        text: String,
        signature: Option<String>,
    },
    /// Reasoning the provider returned encrypted (Anthropic `redacted_thinking`); sent back
    /// unchanged, never shown.
    RedactedThinking {
        data: String,
    },
    ToolCall(ToolCall),
    ToolResult(ToolResult),
}

/// A tool the model may call; `parameters` is a JSON schema of its arguments object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A complete tool call. `arguments` is the JSON text exactly as the model produced it; it
/// may be invalid JSON, which is the agent's to report back to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    /// The arguments parsed as JSON; an empty string counts as `{}`.
    pub fn parsed_arguments(&self) -> Result<serde_json::Value, serde_json::Error> {
        if self.arguments.trim().is_empty() {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&self.arguments)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    /// The called tool's name (Gemini and Ollama key results by name, not id).
    pub name: String,
    pub content: String,
    pub is_error: bool,
}

/// One event of a streamed answer, in the order the model produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        text: String,
    },
    /// The opaque signature closing a thinking block (Anthropic), or Gemini's thought
    /// signature.
    ThinkingSignature {
        signature: String,
    },
    /// An encrypted reasoning block to send back with the next turn.
    RedactedThinking {
        data: String,
    },
    /// A tool call begins. `index` identifies it among this answer's calls.
    ToolCallStarted {
        index: usize,
        id: String,
        name: String,
    },
    /// A piece of a tool call's JSON arguments text.
    ToolCallArgumentsDelta {
        index: usize,
        fragment: String,
    },
    /// A tool call is complete (emitted before [`StreamEvent::Completed`]).
    ToolCallReady {
        index: usize,
        call: ToolCall,
    },
    /// The answer is complete. Always the last event of a successful stream.
    Completed(Completion),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    pub stop_reason: StopReason,
    /// `None` when the server reported no usage (some OpenAI-compatible servers ignore
    /// `stream_options.include_usage`): unknown, which is not zero.
    pub usage: Option<Usage>,
    /// The provider's own usage object(s), untouched, for the ledger (`null` when none).
    pub raw_usage: serde_json::Value,
    /// `None` when the usage is unknown or the catalog has no price for this model.
    pub cost: Option<Cost>,
    /// HTTP attempts it took, retries included (set by the client; 1 from the decoders).
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    ContentFilter,
    /// Any other reason, as the provider spelled it.
    Other(String),
}

/// Token counts normalized across providers. The four input/output buckets do not overlap:
/// total input = `input_uncached + cache_read + cache_write`. `reasoning` is the part of
/// `output` spent on reasoning (already counted in `output`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_uncached: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub output: u64,
    pub reasoning: u64,
}

impl Usage {
    pub fn total_input(&self) -> u64 {
        self.input_uncached + self.cache_read + self.cache_write
    }
}

/// What a call cost, from the catalog's prices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    pub usd: f64,
    /// The date the catalog's prices were taken, e.g. `2025-09-29`.
    pub prices_as_of: String,
}

/// A whole answer gathered from a stream; see [`collect_response`](super::collect_response).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelResponse {
    pub text: String,
    pub thinking: String,
    pub thinking_signature: Option<String>,
    pub redacted_thinking: Vec<String>,
    pub tool_calls: Vec<ToolCall>,
    pub completion: Option<Completion>,
}

impl ModelResponse {
    /// Folds one event into the response.
    pub fn absorb(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::TextDelta { text } => self.text.push_str(&text),
            StreamEvent::ThinkingDelta { text } => self.thinking.push_str(&text),
            StreamEvent::ThinkingSignature { signature } => {
                self.thinking_signature = Some(signature)
            }
            StreamEvent::RedactedThinking { data } => self.redacted_thinking.push(data),
            StreamEvent::ToolCallStarted { .. } | StreamEvent::ToolCallArgumentsDelta { .. } => {}
            StreamEvent::ToolCallReady { call, .. } => self.tool_calls.push(call),
            StreamEvent::Completed(completion) => self.completion = Some(completion),
        }
    }

    /// The answer as an assistant message for the next turn's history.
    pub fn to_message(&self) -> Message {
        let mut content = Vec::new();
        if !self.thinking.is_empty() || self.thinking_signature.is_some() {
            content.push(ContentPart::Thinking {
                text: self.thinking.clone(),
                signature: self.thinking_signature.clone(),
            });
        }
        content.extend(
            self.redacted_thinking
                .iter()
                .map(|data| ContentPart::RedactedThinking { data: data.clone() }),
        );
        if !self.text.is_empty() {
            content.push(ContentPart::Text(self.text.clone()));
        }
        content.extend(self.tool_calls.iter().cloned().map(ContentPart::ToolCall));
        Message {
            role: Role::Assistant,
            content,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_arguments_parse_as_empty_object() {
        let call = ToolCall {
            id: "1".into(),
            name: "x".into(),
            arguments: " ".into(),
        };
        assert_eq!(call.parsed_arguments().unwrap(), serde_json::json!({}));
        let bad = ToolCall {
            arguments: "{\"a\":".into(),
            ..call
        };
        assert!(bad.parsed_arguments().is_err());
    }

    #[test]
    fn messages_serialize_for_the_ledger_and_back() {
        let message = Message {
            role: Role::Assistant,
            content: vec![
                ContentPart::Text("hi".into()),
                ContentPart::Thinking {
                    text: "t".into(),
                    signature: None,
                },
                ContentPart::ToolCall(ToolCall {
                    id: "c".into(),
                    name: "n".into(),
                    arguments: "{}".into(),
                }),
            ],
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(
            json["content"][0],
            serde_json::json!({"type": "text", "value": "hi"})
        );
        assert_eq!(serde_json::from_value::<Message>(json).unwrap(), message);
        let done = StreamEvent::Completed(Completion {
            stop_reason: StopReason::EndTurn,
            usage: Some(Usage::default()),
            raw_usage: serde_json::Value::Null,
            cost: None,
            attempts: 1,
        });
        assert_eq!(serde_json::to_value(&done).unwrap()["type"], "completed");
    }

    #[test]
    fn response_round_trips_to_an_assistant_message() {
        let mut response = ModelResponse::default();
        response.absorb(StreamEvent::ThinkingDelta { text: "hm".into() });
        response.absorb(StreamEvent::TextDelta { text: "Hel".into() });
        response.absorb(StreamEvent::TextDelta { text: "lo".into() });
        let call = ToolCall {
            id: "c1".into(),
            name: "read".into(),
            arguments: "{}".into(),
        };
        response.absorb(StreamEvent::ToolCallReady {
            index: 0,
            call: call.clone(),
        });
        let message = response.to_message();
        assert_eq!(message.role, Role::Assistant);
        assert_eq!(message.text(), "Hello");
        assert_eq!(message.content.len(), 3);
        assert_eq!(message.content[2], ContentPart::ToolCall(call));
    }
}
