//! The HTTP side of a model call: builds the protocol request, sends it with the key in the
//! protocol's header, checks status and content type, guards the body (idle timeout, size
//! limit), decodes it, retries what may be retried, and adds the cost.
//!
//! Cancellation is dropping the [`ModelStream`]: the connection is dropped with it, at once,
//! whatever the stream was waiting for (headers, the next chunk, a backoff).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderName, HeaderValue};

use super::auth::ApiKey;
use super::catalog::{AuthScheme, Price, WireApi};
use super::error::{ProviderError, Redactor};
use super::registry::ResolvedModel;
use super::retry::{RetryPolicy, parse_retry_after};
use super::types::{ChatRequest, ModelResponse, StreamEvent};
use super::wire::{
    BodyError, DecodeError, Framing, RequestTarget, WireRequest, decode_byte_stream,
};
use super::{anthropic, gemini, install_crypto, ollama, openai_chat, openai_responses};

/// The least a local server gets to answer: loading a model from disk takes minutes.
const LOCAL_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(600);

/// Default limits; a provider's `[providers.*]` tuning overrides the timeouts and retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    /// The largest streamed body accepted.
    pub max_body_bytes: usize,
    /// How much of an error body is read for its message.
    pub max_error_body_bytes: usize,
    pub retry: RetryPolicy,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(180),
            max_body_bytes: 64 * 1024 * 1024,
            max_error_body_bytes: 64 * 1024,
            retry: RetryPolicy::default(),
        }
    }
}

/// Sends model requests. Cheap to clone; connections are pooled per connect timeout and
/// proxy setting.
#[derive(Clone)]
pub struct ModelClient {
    settings: ClientSettings,
    http: Arc<Mutex<HashMap<(Duration, bool), reqwest::Client>>>,
}

impl Default for ModelClient {
    fn default() -> Self {
        ModelClient::new(ClientSettings::default())
    }
}

impl ModelClient {
    pub fn new(settings: ClientSettings) -> Self {
        install_crypto();
        ModelClient {
            settings,
            http: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// A pooled HTTP client. Local servers are reached without any proxy.
    pub(crate) fn http(
        &self,
        connect_timeout: Duration,
        local: bool,
    ) -> Result<reqwest::Client, String> {
        let mut clients = self
            .http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&(connect_timeout, local)) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        if local {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|error| error_chain(&error))?;
        clients.insert((connect_timeout, local), client.clone());
        Ok(client)
    }

    /// Starts a streamed call. Errors (including a missing key) arrive as the stream's only
    /// item, so callers handle every failure in one place.
    pub fn stream(
        &self,
        model: &ResolvedModel,
        key: Option<ApiKey>,
        request: &ChatRequest,
    ) -> ModelStream {
        let provider = model.provider.id.clone();
        let model_id = model.model.clone();
        let mut redactor = Redactor::new();
        if let Some(key) = &key {
            redactor.add_secret(key.expose());
        }
        for (name, value) in &model.provider.headers {
            if looks_secret(name) {
                redactor.add_secret(value);
            }
        }
        let tuning = model.tuning;
        let setup = || -> Result<Call, ProviderError> {
            let auth = match (model.provider.auth, &key) {
                (scheme, Some(key)) => auth_header(scheme, key, &provider)?,
                (AuthScheme::None, None) => None,
                (_, None) if !model.provider.needs_key() => None,
                (_, None) => {
                    return Err(ProviderError::MissingKey {
                        provider: provider.clone(),
                        model: model_id.clone(),
                        env: model.provider.api_key_env.join(" or "),
                    });
                }
            };
            let num_ctx = tuning
                .num_ctx
                .or(model.info.as_ref().and_then(|i| i.context));
            let target = RequestTarget {
                base_url: model.provider.base_url.trim_end_matches('/'),
                model: &model.model,
                max_output: model.info.as_ref().and_then(|i| i.max_output),
                max_tokens_field: model.provider.max_tokens_field.as_deref(),
                num_ctx,
            };
            let wire = build_wire_request(model.provider.api, &target, request);
            let mut headers = Vec::new();
            for (name, value) in wire
                .headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .chain(
                    model
                        .provider
                        .headers
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone())),
                )
            {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad_header(&provider, &name))?;
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| bad_header(&provider, name.as_str()))?;
                value.set_sensitive(looks_secret(name.as_str()));
                headers.push((name, value));
            }
            let connect_timeout = tuning
                .connect_timeout
                .unwrap_or(self.settings.connect_timeout);
            let http = self
                .http(connect_timeout, model.provider.local)
                .map_err(|detail| ProviderError::Connect {
                    provider: provider.clone(),
                    model: model_id.clone(),
                    endpoint: wire.url.clone(),
                    detail,
                })?;
            let mut retry = self.settings.retry;
            if let Some(max) = tuning.max_retries {
                retry.max_retries = max;
            }
            Ok(Call {
                http,
                api: model.provider.api,
                url: wire.url,
                body: Bytes::from(wire.body.to_string()),
                headers,
                auth,
                provider: provider.clone(),
                model: model_id.clone(),
                price: if model.provider.local {
                    Some(Price {
                        input: 0.0,
                        output: 0.0,
                        cache_read: None,
                        cache_write: None,
                        as_of: "local".to_owned(),
                    })
                } else {
                    model.info.as_ref().and_then(|i| i.price.clone())
                },
                redactor: redactor.clone(),
                local: model.provider.local,
                connect_timeout,
                first_byte_timeout: tuning
                    .first_byte_timeout
                    .unwrap_or(if model.provider.local {
                        // A local server may load the model from disk before it answers.
                        self.settings
                            .first_byte_timeout
                            .max(LOCAL_FIRST_BYTE_TIMEOUT)
                    } else {
                        self.settings.first_byte_timeout
                    }),
                idle_timeout: tuning.idle_timeout.unwrap_or(self.settings.idle_timeout),
                max_body_bytes: self.settings.max_body_bytes,
                max_error_body_bytes: self.settings.max_error_body_bytes,
                retry,
                retries: 0,
                events: None,
                delivered: false,
                over: false,
            })
        };
        match setup() {
            Ok(call) => ModelStream {
                inner: Box::pin(futures::stream::unfold(call, |mut call| async move {
                    let item = call.next_event().await?;
                    Some((item, call))
                })),
            },
            Err(error) => ModelStream {
                inner: Box::pin(futures::stream::iter([Err(error)])),
            },
        }
    }
}

/// The protocol request for `api`.
pub(crate) fn build_wire_request(
    api: WireApi,
    target: &RequestTarget<'_>,
    request: &ChatRequest,
) -> WireRequest {
    match api {
        WireApi::OpenAiChat => openai_chat::build_request(target, request),
        WireApi::OpenAiResponses => openai_responses::build_request(target, request),
        WireApi::Anthropic => anthropic::build_request(target, request),
        WireApi::Gemini => gemini::build_request(target, request),
        WireApi::Ollama => ollama::build_request(target, request),
    }
}

fn bad_header(provider: &str, header: &str) -> ProviderError {
    ProviderError::InvalidHeader {
        provider: provider.to_owned(),
        header: header.to_owned(),
    }
}

fn looks_secret(header: &str) -> bool {
    let header = header.to_ascii_lowercase();
    ["auth", "key", "token", "secret", "cookie"]
        .iter()
        .any(|word| header.contains(word))
}

pub(crate) fn auth_header(
    scheme: AuthScheme,
    key: &ApiKey,
    provider: &str,
) -> Result<Option<(HeaderName, HeaderValue)>, ProviderError> {
    let (name, text) = match scheme {
        AuthScheme::Bearer => (
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", key.expose()),
        ),
        AuthScheme::XApiKey => (
            HeaderName::from_static("x-api-key"),
            key.expose().to_owned(),
        ),
        AuthScheme::XGoogApiKey => (
            HeaderName::from_static("x-goog-api-key"),
            key.expose().to_owned(),
        ),
        AuthScheme::ApiKeyHeader => (HeaderName::from_static("api-key"), key.expose().to_owned()),
        AuthScheme::None => return Ok(None),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| ProviderError::InvalidKey {
        provider: provider.to_owned(),
    })?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

/// A streamed model answer: [`StreamEvent`]s, ending with [`StreamEvent::Completed`] or one
/// error. Drop it to cancel.
pub struct ModelStream {
    inner: Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>,
}

impl Stream for ModelStream {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Reads a stream to its end.
pub async fn collect_response(mut stream: ModelStream) -> Result<ModelResponse, ProviderError> {
    let mut response = ModelResponse::default();
    while let Some(event) = stream.next().await {
        response.absorb(event?);
    }
    Ok(response)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, DecodeError>> + Send>>;

struct Call {
    http: reqwest::Client,
    api: WireApi,
    url: String,
    body: Bytes,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Option<(HeaderName, HeaderValue)>,
    provider: String,
    model: String,
    price: Option<Price>,
    redactor: Redactor,
    /// A server on this machine: a refused connection means it is not running, and waiting
    /// will not change that.
    local: bool,
    connect_timeout: Duration,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    max_body_bytes: usize,
    max_error_body_bytes: usize,
    retry: RetryPolicy,
    retries: u32,
    events: Option<EventStream>,
    /// Whether any event reached the caller: after that, no retry.
    delivered: bool,
    over: bool,
}

impl Call {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            if self.over {
                return None;
            }
            let outcome = match &mut self.events {
                None => match self.open().await {
                    Ok(events) => {
                        self.events = Some(events);
                        continue;
                    }
                    Err(error) => error,
                },
                Some(events) => match events.next().await {
                    Some(Ok(event)) => {
                        self.delivered = true;
                        return Some(Ok(self.finish_event(event)));
                    }
                    Some(Err(error)) => self.decode_error(error),
                    None => {
                        self.over = true;
                        return None;
                    }
                },
            };
            self.events = None;
            let not_running = self.local && matches!(outcome, ProviderError::Connect { .. });
            if !self.delivered && outcome.is_retryable() && !not_running {
                self.retries += 1;
                let retry_after = match &outcome {
                    ProviderError::Http { retry_after, .. } => *retry_after,
                    _ => None,
                };
                if let Some(wait) = self.retry.delay(self.retries, retry_after) {
                    tracing::warn!(
                        provider = %self.provider,
                        model = %self.model,
                        retry = self.retries,
                        wait_ms = wait.as_millis() as u64,
                        error = %outcome,
                        "model request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            self.over = true;
            return Some(Err(outcome));
        }
    }

    fn finish_event(&mut self, event: StreamEvent) -> StreamEvent {
        match event {
            StreamEvent::Completed(mut completion) => {
                self.over = true;
                completion.attempts = self.retries + 1;
                completion.cost = self
                    .price
                    .as_ref()
                    .zip(completion.usage.as_ref())
                    .map(|(price, usage)| price.cost(usage));
                tracing::debug!(
                    provider = %self.provider,
                    model = %self.model,
                    input = completion.usage.map(|u| u.total_input()),
                    output = completion.usage.map(|u| u.output),
                    "model call completed"
                );
                StreamEvent::Completed(completion)
            }
            other => other,
        }
    }

    async fn open(&mut self) -> Result<EventStream, ProviderError> {
        tracing::debug!(provider = %self.provider, model = %self.model, url = %self.redactor.redact(&self.url), attempt = self.retries + 1, "model request");
        let mut builder = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.body.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        if let Some((name, value)) = &self.auth {
            builder = builder.header(name.clone(), value.clone());
        }
        let response = match tokio::time::timeout(self.first_byte_timeout, builder.send()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: self.provider.clone(),
                    model: self.model.clone(),
                    phase: "waiting for the response headers",
                    after: self.first_byte_timeout,
                });
            }
            Ok(Err(error)) => return Err(self.send_error(&error)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = parse_retry_after(response.headers());
            let body =
                Call::read_error_body(response, self.max_error_body_bytes, self.idle_timeout).await;
            let message = self
                .redactor
                .redact(&super::wire::error_message_from_body(&body));
            return Err(ProviderError::Http {
                provider: self.provider.clone(),
                model: self.model.clone(),
                status,
                message,
                retry_after,
            });
        }
        let framing = Framing::of(self.api);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !framing.accepts(&content_type) {
            return Err(ProviderError::WrongContentType {
                provider: self.provider.clone(),
                model: self.model.clone(),
                status,
                content_type: self.redactor.redact(&content_type),
                expected: framing.expected(),
            });
        }
        let body = guarded_body(response, self.idle_timeout, self.max_body_bytes);
        Ok(Box::pin(decode_byte_stream(self.api, body)))
    }

    async fn read_error_body(response: reqwest::Response, max: usize, idle: Duration) -> String {
        let mut response = response;
        let mut body = Vec::new();
        let read = async {
            while let Ok(Some(chunk)) = response.chunk().await {
                body.extend_from_slice(&chunk);
                if body.len() >= max {
                    body.truncate(max);
                    break;
                }
            }
        };
        // A server that sends an error status and then stalls still yields its status.
        let _ = tokio::time::timeout(idle.min(Duration::from_secs(10)), read).await;
        String::from_utf8_lossy(&body).into_owned()
    }

    fn send_error(&self, error: &reqwest::Error) -> ProviderError {
        let detail = self.redactor.redact(&error_chain(error));
        if error.is_timeout() {
            return ProviderError::Timeout {
                provider: self.provider.clone(),
                model: self.model.clone(),
                phase: "connecting",
                after: self.connect_timeout,
            };
        }
        ProviderError::Connect {
            provider: self.provider.clone(),
            model: self.model.clone(),
            endpoint: self.redactor.redact(&self.url),
            detail,
        }
    }

    fn decode_error(&self, error: DecodeError) -> ProviderError {
        let (provider, model) = (self.provider.clone(), self.model.clone());
        match error {
            DecodeError::Malformed(detail) => ProviderError::MalformedEvent {
                provider,
                model,
                detail: self.redactor.redact(&detail),
            },
            DecodeError::Provider { kind, message } => ProviderError::InStream {
                provider,
                model,
                kind: self.redactor.redact(&kind),
                message: self.redactor.redact(&message),
            },
            DecodeError::Cut(detail) => ProviderError::StreamCut {
                provider,
                model,
                detail: self.redactor.redact(&detail),
            },
            DecodeError::Body(BodyError::Idle(after)) => ProviderError::Timeout {
                provider,
                model,
                phase: "waiting for the next part of the stream",
                after,
            },
            DecodeError::Body(BodyError::TooLarge(limit)) => ProviderError::BodyTooLarge {
                provider,
                model,
                limit,
            },
            DecodeError::Body(BodyError::Transport(detail)) => ProviderError::StreamCut {
                provider,
                model,
                detail: self.redactor.redact(&detail),
            },
        }
    }
}

/// The response body with an idle timeout between chunks and a total size limit.
fn guarded_body(
    response: reqwest::Response,
    idle: Duration,
    limit: usize,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
    let chunks = Box::pin(response.bytes_stream());
    futures::stream::unfold(
        (chunks, 0usize, false),
        move |(mut chunks, total, failed)| async move {
            if failed {
                return None;
            }
            match tokio::time::timeout(idle, chunks.next()).await {
                Err(_) => Some((Err(BodyError::Idle(idle)), (chunks, total, true))),
                Ok(None) => None,
                Ok(Some(Ok(bytes))) => {
                    let total = total + bytes.len();
                    if total > limit {
                        Some((Err(BodyError::TooLarge(limit)), (chunks, total, true)))
                    } else {
                        Some((Ok(bytes), (chunks, total, false)))
                    }
                }
                Ok(Some(Err(error))) => Some((
                    Err(BodyError::Transport(error_chain(&error))),
                    (chunks, total, true),
                )),
            }
        },
    )
}

/// An error and its sources, joined.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
