//! The typed errors of a model call, and the redaction that keeps secrets out of them.
//!
//! Every error names the provider and the model; HTTP errors add the status and the
//! provider's own message. Any text that came from outside (a response body, a transport
//! error) passes through [`Redactor::redact`] before it is stored in an error, so an API key
//! never reaches a log, the ledger or a message on screen (invariant 7).

use std::time::Duration;

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider}/{model}: HTTP {status}: {message}")]
    Http {
        provider: String,
        model: String,
        status: u16,
        /// The provider's error message (redacted), or the start of the body.
        message: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error("{provider}/{model}: the provider reported an error in the stream: {kind}: {message}")]
    InStream {
        provider: String,
        model: String,
        kind: String,
        message: String,
    },
    #[error("{provider}/{model}: cannot connect to {endpoint}: {detail}")]
    Connect {
        provider: String,
        model: String,
        endpoint: String,
        detail: String,
    },
    #[error("{provider}/{model}: timed out after {after:?} {phase}")]
    Timeout {
        provider: String,
        model: String,
        phase: &'static str,
        after: Duration,
    },
    #[error("{provider}/{model}: the stream ended before the answer was complete: {detail}")]
    StreamCut {
        provider: String,
        model: String,
        detail: String,
    },
    #[error("{provider}/{model}: malformed stream event: {detail}")]
    MalformedEvent {
        provider: String,
        model: String,
        detail: String,
    },
    #[error("{provider}/{model}: response body exceeds {limit} bytes")]
    BodyTooLarge {
        provider: String,
        model: String,
        limit: usize,
    },
    #[error(
        "{provider}/{model}: HTTP {status} with content type {content_type:?}, expected {expected}"
    )]
    WrongContentType {
        provider: String,
        model: String,
        status: u16,
        content_type: String,
        expected: &'static str,
    },
    #[error("{provider}/{model}: no API key: set {env} or run `tack auth login {provider}`")]
    MissingKey {
        provider: String,
        model: String,
        env: String,
    },
    #[error("the API key for {provider} has characters that cannot be sent in an HTTP header")]
    InvalidKey { provider: String },
    #[error("the configured header {header:?} of provider {provider} is not a valid HTTP header")]
    InvalidHeader { provider: String, header: String },
    #[error("{0}")]
    Resolve(#[from] ResolveError),
}

impl ProviderError {
    /// Whether trying the same request again may succeed (rate limits, overload, server errors,
    /// connection failures). Never decides alone: the caller also checks that no output was
    /// delivered yet.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { status, .. } => is_retryable_status(*status),
            Self::InStream { kind, .. } => {
                matches!(
                    kind.as_str(),
                    "overloaded_error" | "rate_limit_error" | "api_error" | "server_error"
                )
            }
            Self::Connect { .. } | Self::Timeout { .. } | Self::StreamCut { .. } => true,
            Self::MalformedEvent { .. }
            | Self::BodyTooLarge { .. }
            | Self::WrongContentType { .. }
            | Self::MissingKey { .. }
            | Self::InvalidKey { .. }
            | Self::InvalidHeader { .. }
            | Self::Resolve(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } | Self::WrongContentType { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// HTTP statuses worth retrying: timeout, rate limit, server errors, Anthropic's 529 overload.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// A model string or provider that cannot be resolved to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown provider {provider:?} in model {model:?}; known: {known}")]
    UnknownProvider {
        provider: String,
        model: String,
        known: String,
    },
    #[error(
        "model {model:?} names no provider; write it as provider/model (for example anthropic/claude-sonnet-4-5)"
    )]
    NoProvider { model: String },
    #[error("provider {provider:?} has no base_url; set base_url in [providers.{provider}]")]
    NoBaseUrl { provider: String },
    #[error(
        "no local model server is running (looked for Ollama, LM Studio and llama.cpp on 127.0.0.1)"
    )]
    NoLocalServer,
}

/// Replaces secrets in text. Holds the exact secrets in use and also masks the shapes API keys
/// usually have, so a key tack never saw (echoed by a proxy, say) is masked too.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

pub const REDACTED: &str = "[redacted]";

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers a secret to mask. Very short values are ignored: masking them would mangle
    /// ordinary text and they are no real key.
    pub fn add_secret(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= 8 && !self.secrets.iter().any(|known| known == secret) {
            self.secrets.push(secret.to_owned());
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        mask_key_shapes(&out)
    }
}

/// Masks tokens that look like API keys: `sk-…`, `sk-ant-…`, `AIza…`, `gsk_…`, `xai-…`,
/// `Bearer …`, and `key=…` / `api_key=…` query parameters.
fn mask_key_shapes(text: &str) -> String {
    const PREFIXES: [&str; 6] = ["sk-", "AIza", "gsk_", "xai-", "fw_", "csk-"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let next = next_key_start(rest, &PREFIXES);
        match next {
            Some((start, skip)) => {
                out.push_str(&rest[..start + skip]);
                let tail = &rest[start + skip..];
                let token_len = tail.find(|c: char| !is_key_char(c)).unwrap_or(tail.len());
                if token_len >= 8 {
                    out.push_str(REDACTED);
                } else {
                    out.push_str(&tail[..token_len]);
                }
                rest = &tail[token_len..];
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

/// The next place a key may start: returns (offset, how many leading bytes to keep).
fn next_key_start(text: &str, prefixes: &[&str]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut consider = |found: Option<usize>, keep: usize| {
        if let Some(at) = found
            && best.is_none_or(|(b, _)| at < b)
        {
            best = Some((at, keep));
        }
    };
    for prefix in prefixes {
        // A key prefix counts only at a word boundary.
        let mut from = 0;
        while let Some(at) = text[from..].find(prefix) {
            let at = from + at;
            let boundary = text[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !is_key_char(c));
            if boundary {
                consider(Some(at), prefix.len());
                break;
            }
            from = at + prefix.len();
        }
    }
    for marker in [
        "Bearer ",
        "bearer ",
        "key=",
        "api_key=",
        "x-api-key: ",
        "api-key: ",
    ] {
        consider(text.find(marker), marker.len());
    }
    best
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_are_replaced_everywhere() {
        let mut redactor = Redactor::new();
        redactor.add_secret("my-very-secret-value");
        let text = "bad key my-very-secret-value (again: my-very-secret-value)";
        let redacted = redactor.redact(text);
        assert!(!redacted.contains("my-very-secret-value"), "{redacted}");
        assert_eq!(redacted.matches(REDACTED).count(), 2);
    }

    #[test]
    fn key_shapes_are_masked_without_knowing_the_key() {
        let redactor = Redactor::new();
        for (text, secret) in [
            (
                "Incorrect API key provided: sk-proj-abcdefgh12345678.",
                "sk-proj-abcdefgh12345678",
            ),
            (
                "x-api-key: sk-ant-api03-ZZZZZZZZZZZZ",
                "sk-ant-api03-ZZZZZZZZZZZZ",
            ),
            (
                "https://host/v1?alt=sse&key=AIzaSyA1234567890abcdef",
                "AIzaSyA1234567890abcdef",
            ),
            ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ] {
            let redacted = redactor.redact(text);
            assert!(!redacted.contains(secret), "{text} -> {redacted}");
            assert!(redacted.contains(REDACTED), "{text} -> {redacted}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let redactor = Redactor::new();
        let text = "model \"gpt-5\" not found; task-list and desk-top are fine";
        assert_eq!(redactor.redact(text), text);
    }

    #[test]
    fn retryable_statuses() {
        for status in [429, 500, 502, 503, 504, 529] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
