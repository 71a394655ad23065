//! Model providers: one streaming interface over every major model API and local servers.
//!
//! - `types`: the internal request/event/usage vocabulary (the only one the agent sees).
//! - `catalog` + `catalog.toml`: provider facts as data; `config`: `[providers.*]` tables;
//!   `registry`: model string → endpoint, keys; `discovery`: local servers on 127.0.0.1.
//! - `client`: HTTP, timeouts, retries (`retry`), cancellation, cost; `wire`: framing and the
//!   decoder trait; one file per wire protocol: `openai_chat`, `openai_responses`,
//!   `anthropic`, `gemini`, `ollama`.
//! - `auth`: keys from the environment or the 0600 credential file; `error`: typed errors
//!   and secret redaction; `cli`: what `tack models` and `tack auth login` print.
//!
//! A call, start to end:
//!
//! ```no_run
//! # async fn example() -> Result<(), tack::providers::ProviderError> {
//! use tack::providers::{ChatRequest, Message, ModelClient, ProvidersConfig, Registry};
//! let (registry, _warnings) = Registry::for_user(ProvidersConfig::default());
//! let model = registry.resolve("anthropic/claude-sonnet-4-5", &[])?;
//! let key = registry.key_for(&model.provider).map(|(key, _source)| key);
//! let request = ChatRequest { messages: vec![Message::user("hi")], ..ChatRequest::default() };
//! let stream = ModelClient::default().stream(&model, key, &request);
//! let answer = tack::providers::collect_response(stream).await?;
//! # Ok(()) }
//! ```
//!
//! The fake model server the tests use is `tests/support/fake_model.rs`, included here under
//! `#[cfg(test)]`.

pub mod anthropic;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod discovery;
pub mod error;
pub mod gemini;
pub mod ollama;
pub mod openai_chat;
pub mod openai_responses;
pub mod registry;
pub mod retry;
pub mod types;
pub mod wire;

#[cfg(test)]
#[path = "../../../tests/support/fake_model.rs"]
pub(crate) mod fake_model;

#[cfg(test)]
pub(crate) mod tests;

pub use auth::{ApiKey, CredentialStore, KeySource};
pub use catalog::{AuthScheme, Catalog, ModelInfo, Price, ProviderEntry, WireApi};
pub use client::{ClientSettings, ModelClient, ModelStream, collect_response};
pub use config::{ProviderTuning, ProvidersConfig};
pub use discovery::LocalServer;
pub use error::{ProviderError, Redactor, ResolveError};
pub use registry::{Registry, ResolvedModel};
pub use retry::RetryPolicy;
pub use types::{
    ChatRequest, Completion, ContentPart, Cost, Message, ModelResponse, Role, StopReason,
    StreamEvent, ToolCall, ToolResult, ToolSpec, Usage,
};

/// Installs rustls' ring crypto provider as the process default, once. Safe to call from
/// anywhere, any number of times; if another provider was installed first, that one stays.
pub fn install_crypto() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
