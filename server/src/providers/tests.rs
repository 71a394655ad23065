//! Every adapter through the real HTTP client against the fake model server: streamed text,
//! tool calls, thinking, usage and cost, every error path, retries, cancellation, and that no
//! key leaks into an error or a log line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::fake_model::{
    self, Answer, End, FakeModelServer, FakeStop, FakeToolCall, FakeUsage, Reply,
};
use super::*;
use wire::Framing;

const KEY: &str = "sk-test-SECRETSECRET-0123456789";

fn settings() -> ClientSettings {
    ClientSettings {
        retry: RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        ..ClientSettings::default()
    }
}

/// The catalog provider that speaks `api`, pointed at the fake server.
pub(crate) fn resolved(api: WireApi, server: &FakeModelServer) -> ResolvedModel {
    let (provider, model, path) = match api {
        WireApi::OpenAiChat => ("openai", fake_model::openai_chat::MODEL, "/v1"),
        WireApi::OpenAiResponses => (
            "openai-responses",
            fake_model::openai_responses::MODEL,
            "/v1",
        ),
        WireApi::Anthropic => ("anthropic", fake_model::anthropic::MODEL, ""),
        WireApi::Gemini => ("gemini", fake_model::gemini::MODEL, "/v1beta"),
        WireApi::Ollama => ("ollama", fake_model::ollama::MODEL, ""),
    };
    let mut entry = Catalog::builtin().get(provider).cloned().unwrap();
    entry.base_url = format!("{}{path}", server.url());
    ResolvedModel {
        info: entry.model(model).cloned(),
        provider: entry,
        model: model.to_owned(),
        tuning: ProviderTuning::default(),
    }
}

pub(crate) fn stream_reply(api: WireApi, answer: &Answer) -> Reply {
    match api {
        WireApi::OpenAiChat => fake_model::openai_chat::stream(answer),
        WireApi::OpenAiResponses => fake_model::openai_responses::stream(answer),
        WireApi::Anthropic => fake_model::anthropic::stream(answer),
        WireApi::Gemini => fake_model::gemini::stream(answer),
        WireApi::Ollama => fake_model::ollama::stream(answer),
    }
}

/// The protocol's error body for `status`.
fn error_reply(api: WireApi, status: u16, message: &str) -> Reply {
    match api {
        WireApi::OpenAiChat | WireApi::OpenAiResponses => {
            fake_model::openai_chat::error(status, message, "invalid_request_error", None)
        }
        WireApi::Anthropic => {
            let kind = if status == 529 {
                "overloaded_error"
            } else {
                "api_error"
            };
            fake_model::anthropic::error(status, kind, message)
        }
        WireApi::Gemini => fake_model::gemini::error(status, "INVALID_ARGUMENT", message),
        WireApi::Ollama => fake_model::ollama::error(status, message),
    }
}

/// The usage buckets each protocol reports.
fn reported(api: WireApi, usage: FakeUsage) -> Usage {
    let mut out = Usage {
        input_uncached: usage.input_uncached,
        cache_read: usage.cache_read,
        cache_write: usage.cache_write,
        output: usage.output,
        reasoning: usage.reasoning,
    };
    match api {
        WireApi::OpenAiChat | WireApi::OpenAiResponses | WireApi::Gemini => out.cache_write = 0,
        WireApi::Anthropic => out.reasoning = 0,
        WireApi::Ollama => {
            out.cache_read = 0;
            out.cache_write = 0;
            out.reasoning = 0;
        }
    }
    out
}

async fn run(
    api: WireApi,
    server: &FakeModelServer,
    client: &ModelClient,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let model = resolved(api, server);
    let request = ChatRequest {
        messages: vec![Message::user("hi")],
        ..ChatRequest::default()
    };
    let mut stream = client.stream(&model, Some(ApiKey::new(KEY)), &request);
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(error) => return (events, Some(error)),
        }
    }
    (events, None)
}

fn texts(events: &[StreamEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn completion(events: &[StreamEvent]) -> &Completion {
    match events.last() {
        Some(StreamEvent::Completed(completion)) => completion,
        other => panic!("last event is not Completed: {other:?}"),
    }
}

#[tokio::test]
async fn plain_and_streamed_text_with_usage_and_cost_on_every_protocol() {
    let usage = FakeUsage {
        input_uncached: 1200,
        cache_read: 800,
        cache_write: 300,
        output: 95,
        reasoning: 0,
    };
    for api in WireApi::ALL {
        for pieces in [vec!["Hello, world."], vec!["Hel", "lo", ", wor", "ld."]] {
            let server = FakeModelServer::start().await.unwrap();
            server.push(stream_reply(api, &Answer::text(&pieces).with_usage(usage)));
            let client = ModelClient::new(settings());
            let (events, error) = run(api, &server, &client).await;
            assert!(error.is_none(), "{api:?}: {error:?}");
            assert_eq!(texts(&events), pieces, "{api:?}");
            let done = completion(&events);
            assert_eq!(done.stop_reason, StopReason::EndTurn, "{api:?}");
            assert_eq!(done.usage, Some(reported(api, usage)), "{api:?}");
            assert!(!done.raw_usage.is_null(), "{api:?} keeps the raw usage");
            let cost = done.cost.as_ref().expect("every test model has a price");
            let model = resolved(api, &server);
            match model.info.and_then(|i| i.price) {
                Some(price) => {
                    assert_eq!(cost, &price.cost(&done.usage.unwrap()), "{api:?}");
                    assert!(cost.usd > 0.0);
                }
                None => {
                    assert!(model.provider.local, "{api:?}");
                    assert_eq!(cost.usd, 0.0);
                    assert_eq!(cost.prices_as_of, "local");
                }
            }
            assert_eq!(server.requests().len(), 1);
        }
    }
}

#[tokio::test]
async fn a_server_that_reports_no_usage_gives_unknown_usage_and_no_cost() {
    // Like llama-cpp-python's server, which ignores stream_options.include_usage.
    let server = FakeModelServer::start().await.unwrap();
    let mut reply = stream_reply(WireApi::OpenAiChat, &Answer::text(&["hi"]));
    let usage_chunk = reply.body.len() - 2;
    reply.body.remove(usage_chunk);
    assert!(!reply.body_text().contains("prompt_tokens"));
    server.push(reply);
    let (events, error) = run(WireApi::OpenAiChat, &server, &ModelClient::new(settings())).await;
    assert!(error.is_none(), "{error:?}");
    let done = completion(&events);
    assert_eq!(done.usage, None, "unknown, not zero");
    assert_eq!(done.cost, None);
    assert!(done.raw_usage.is_null());
}

#[tokio::test]
async fn requests_carry_the_protocol_path_auth_header_and_stream_flag() {
    for api in WireApi::ALL {
        let server = FakeModelServer::start().await.unwrap();
        server.push(stream_reply(api, &Answer::text(&["ok"])));
        let (_, error) = run(api, &server, &ModelClient::new(settings())).await;
        assert!(error.is_none(), "{api:?}: {error:?}");
        let request = &server.requests()[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body = request.json();
        match api {
            WireApi::OpenAiChat => {
                assert_eq!(request.path, "/v1/chat/completions");
                assert_eq!(
                    request.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
                assert_eq!(body["stream_options"]["include_usage"], true);
            }
            WireApi::OpenAiResponses => {
                assert_eq!(request.path, "/v1/responses");
                assert_eq!(
                    request.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
            }
            WireApi::Anthropic => {
                assert_eq!(request.path, "/v1/messages");
                assert_eq!(request.header("x-api-key"), Some(KEY));
                assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
                assert!(request.header("authorization").is_none());
            }
            WireApi::Gemini => {
                assert_eq!(
                    request.path,
                    "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
                );
                assert_eq!(request.header("x-goog-api-key"), Some(KEY));
                assert!(!request.path.contains(KEY), "the key never goes in the URL");
            }
            WireApi::Ollama => {
                assert_eq!(request.path, "/api/chat");
                assert_eq!(body["stream"], true);
            }
        }
        if api != WireApi::Gemini {
            assert_eq!(body["stream"], true, "{api:?}");
        }
    }
}

#[tokio::test]
async fn one_and_parallel_tool_calls_with_split_arguments() {
    let weather = FakeToolCall::new(
        "call_weather_1",
        "get_weather",
        &["{\"ci", "ty\": \"Par", "is\"}"],
    );
    let time = FakeToolCall::new("call_time_2", "get_time", &["{\"zone\"", ": \"CET\"}"]);
    for api in WireApi::ALL {
        for calls in [vec![weather.clone()], vec![weather.clone(), time.clone()]] {
            let mut answer = Answer::text(&["Let me check."]);
            for call in &calls {
                answer = answer.with_tool_call(call.clone());
            }
            let server = FakeModelServer::start().await.unwrap();
            server.push(stream_reply(api, &answer));
            let (events, error) = run(api, &server, &ModelClient::new(settings())).await;
            assert!(error.is_none(), "{api:?}: {error:?}");
            let mut response = ModelResponse::default();
            for event in events.clone() {
                response.absorb(event);
            }
            assert_eq!(response.text, "Let me check.", "{api:?}");
            assert_eq!(response.tool_calls.len(), calls.len(), "{api:?}");
            for (got, want) in response.tool_calls.iter().zip(&calls) {
                assert_eq!(got.name, want.name, "{api:?}");
                assert_eq!(
                    got.parsed_arguments().unwrap(),
                    serde_json::from_str::<serde_json::Value>(&want.arguments()).unwrap(),
                    "{api:?}"
                );
                match api {
                    // These protocols carry no call ids; tack makes unique ones.
                    WireApi::Gemini | WireApi::Ollama => assert!(!got.id.is_empty()),
                    _ => assert_eq!(got.id, want.id, "{api:?}"),
                }
            }
            if calls.len() == 2 {
                assert_ne!(response.tool_calls[0].id, response.tool_calls[1].id);
            }
            let split = events
                .iter()
                .filter(|e| matches!(e, StreamEvent::ToolCallArgumentsDelta { .. }))
                .count();
            if matches!(api, WireApi::Gemini | WireApi::Ollama) {
                assert_eq!(split, calls.len(), "whole arguments, one piece per call");
            } else {
                let pieces: usize = calls.iter().map(|c| c.argument_pieces.len()).sum();
                assert_eq!(split, pieces, "{api:?}: one event per streamed piece");
            }
            assert_eq!(
                completion(&events).stop_reason,
                StopReason::ToolUse,
                "{api:?}"
            );
        }
    }
}

#[tokio::test]
async fn thinking_streams_apart_from_text() {
    for api in WireApi::ALL {
        let answer = Answer::text(&["42."])
            .with_thinking(&["Let me ", "think."])
            .with_usage(FakeUsage {
                input_uncached: 10,
                output: 30,
                reasoning: 20,
                ..FakeUsage::default()
            });
        let server = FakeModelServer::start().await.unwrap();
        server.push(stream_reply(api, &answer));
        let (events, error) = run(api, &server, &ModelClient::new(settings())).await;
        assert!(error.is_none(), "{api:?}: {error:?}");
        let mut response = ModelResponse::default();
        for event in events.clone() {
            response.absorb(event);
        }
        assert_eq!(response.thinking, "Let me think.", "{api:?}");
        assert_eq!(response.text, "42.", "{api:?}");
        let first_text = events
            .iter()
            .position(|e| matches!(e, StreamEvent::TextDelta { .. }));
        let first_thought = events
            .iter()
            .position(|e| matches!(e, StreamEvent::ThinkingDelta { .. }));
        assert!(first_thought < first_text, "{api:?}: thinking comes first");
        if api == WireApi::Anthropic {
            assert!(
                response.thinking_signature.is_some(),
                "the signature is kept for the next turn"
            );
        }
        let usage = completion(&events).usage.unwrap();
        assert_eq!(
            usage.reasoning,
            reported(api, answer.usage).reasoning,
            "{api:?}"
        );
    }
}

#[tokio::test]
async fn max_tokens_stop_reason_on_every_protocol() {
    for api in WireApi::ALL {
        let server = FakeModelServer::start().await.unwrap();
        server.push(stream_reply(
            api,
            &Answer::text(&["trunc"]).stopped_by(FakeStop::MaxTokens),
        ));
        let (events, error) = run(api, &server, &ModelClient::new(settings())).await;
        assert!(error.is_none(), "{api:?}: {error:?}");
        assert_eq!(
            completion(&events).stop_reason,
            StopReason::MaxTokens,
            "{api:?}"
        );
    }
}

#[tokio::test]
async fn client_errors_are_typed_named_and_not_retried() {
    for api in WireApi::ALL {
        for (status, message) in [(401, "invalid x-api-key"), (404, "model 'nope' not found")] {
            let server = FakeModelServer::start().await.unwrap();
            server.push(error_reply(api, status, message));
            let (events, error) = run(api, &server, &ModelClient::new(settings())).await;
            assert!(events.is_empty());
            let error = error.expect("an error");
            let ProviderError::Http {
                status: got,
                message: got_message,
                provider,
                model,
                ..
            } = &error
            else {
                panic!("{api:?}: {error:?}");
            };
            assert_eq!(*got, status);
            assert_eq!(got_message, message, "{api:?}: the provider's own message");
            assert_eq!(provider, &resolved(api, &server).provider.id);
            assert_eq!(model, &resolved(api, &server).model);
            let shown = error.to_string();
            assert!(
                shown.contains(&status.to_string()) && shown.contains(message),
                "{shown}"
            );
            assert_eq!(
                server.requests().len(),
                1,
                "{api:?}: {status} is not retried"
            );
        }
    }
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after_then_succeed() {
    // The five protocols at once: each waits the server's one second.
    let runs = WireApi::ALL.map(|api| async move {
        let server = FakeModelServer::start().await.unwrap();
        server.push(error_reply(api, 429, "slow down").header("retry-after", "1"));
        server.push(stream_reply(api, &Answer::text(&["fine"])));
        let started = Instant::now();
        let (events, error) = run(api, &server, &ModelClient::new(settings())).await;
        assert!(error.is_none(), "{api:?}: {error:?}");
        assert_eq!(texts(&events), vec!["fine"]);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{api:?}: Retry-After honoured"
        );
        assert_eq!(server.requests().len(), 2);
    });
    futures::future::join_all(runs).await;
}

#[tokio::test]
async fn server_errors_and_overload_are_retried_with_backoff() {
    for api in WireApi::ALL {
        // 500 then 529 (Anthropic's overloaded) then success: two retries.
        let server = FakeModelServer::start().await.unwrap();
        server.push(error_reply(api, 500, "internal"));
        server.push(error_reply(api, 529, "Overloaded"));
        server.push(stream_reply(api, &Answer::text(&["up again"])));
        let (events, error) = run(api, &server, &ModelClient::new(settings())).await;
        assert!(error.is_none(), "{api:?}: {error:?}");
        assert_eq!(texts(&events), vec!["up again"]);
        assert_eq!(server.requests().len(), 3);

        // Three failures exhaust two retries; the last error is returned.
        let server = FakeModelServer::start().await.unwrap();
        for _ in 0..3 {
            server.push(error_reply(api, 500, "still down"));
        }
        let (_, error) = run(api, &server, &ModelClient::new(settings())).await;
        let error = error.expect("an error");
        assert_eq!(error.status(), Some(500), "{api:?}: {error}");
        assert!(error.to_string().contains("still down"));
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn a_stream_cut_after_output_is_an_error_and_not_retried() {
    for api in WireApi::ALL {
        let server = FakeModelServer::start().await.unwrap();
        let full = stream_reply(api, &Answer::text(&["one ", "two ", "three ", "four"]));
        let pieces = full.body.len();
        server.push(full.cut_after(pieces - 4));
        server.push(stream_reply(api, &Answer::text(&["never asked for"])));
        let (events, error) = run(api, &server, &ModelClient::new(settings())).await;
        let error = error.expect("a cut stream is an error");
        assert!(
            matches!(error, ProviderError::StreamCut { .. }),
            "{api:?}: {error:?}"
        );
        assert!(!texts(&events).is_empty(), "{api:?}: output had started");
        assert_eq!(
            server.requests().len(),
            1,
            "{api:?}: no retry once output started"
        );
        assert!(
            error
                .to_string()
                .contains(&resolved(api, &server).provider.id)
        );
    }
}

#[tokio::test]
async fn a_garbage_line_is_a_malformed_event_error() {
    for api in WireApi::ALL {
        let server = FakeModelServer::start().await.unwrap();
        let garbage = match Framing::of(api) {
            Framing::Sse => "data: {this is not json\n\n",
            Framing::Ndjson => "<html>proxy error</html>\n",
        };
        server.push(stream_reply(api, &Answer::text(&["a", "b"])).insert_chunk(2, garbage));
        let (_, error) = run(api, &server, &ModelClient::new(settings())).await;
        let error = error.expect("an error");
        assert!(
            matches!(error, ProviderError::MalformedEvent { .. }),
            "{api:?}: {error:?}"
        );
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_wrong_content_type_is_refused() {
    for api in WireApi::ALL {
        let server = FakeModelServer::start().await.unwrap();
        server.push(Reply::new(200, "text/html").chunk("<html>captive portal</html>"));
        let (_, error) = run(api, &server, &ModelClient::new(settings())).await;
        let error = error.expect("an error");
        assert!(
            matches!(&error, ProviderError::WrongContentType { status: 200, content_type, .. } if content_type == "text/html"),
            "{api:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_oversized_body_and_a_silent_server_end_the_stream() {
    for api in WireApi::ALL {
        let server = FakeModelServer::start().await.unwrap();
        let long = "x".repeat(4096);
        server.push(stream_reply(
            api,
            &Answer::text(&[long.as_str(), long.as_str(), long.as_str()]),
        ));
        let no_retry = ClientSettings {
            retry: RetryPolicy {
                max_retries: 0,
                ..settings().retry
            },
            ..settings()
        };
        let client = ModelClient::new(ClientSettings {
            max_body_bytes: 6000,
            ..no_retry
        });
        let (_, error) = run(api, &server, &client).await;
        assert!(
            matches!(error, Some(ProviderError::BodyTooLarge { limit: 6000, .. })),
            "{api:?}: {error:?}"
        );

        let server = FakeModelServer::start().await.unwrap();
        let reply = stream_reply(api, &Answer::text(&["a", "b"]));
        server.push(reply.cut_after(2).ending(End::Hang));
        let client = ModelClient::new(ClientSettings {
            idle_timeout: Duration::from_millis(200),
            ..no_retry
        });
        let (events, error) = run(api, &server, &client).await;
        assert!(
            matches!(error, Some(ProviderError::Timeout { .. })),
            "{api:?}: {error:?} after {events:?}"
        );
    }
}

#[tokio::test]
async fn errors_inside_the_stream_are_reported_and_retried_only_before_output() {
    // Anthropic's overloaded_error event before any content: retried.
    let server = FakeModelServer::start().await.unwrap();
    let first = stream_reply(WireApi::Anthropic, &Answer::text(&["x"])).cut_after(1);
    server.push(
        first
            .ending(End::Complete)
            .chunk(fake_model::anthropic::error_event(
                "overloaded_error",
                "Overloaded",
            )),
    );
    server.push(stream_reply(
        WireApi::Anthropic,
        &Answer::text(&["second try"]),
    ));
    let (events, error) = run(WireApi::Anthropic, &server, &ModelClient::new(settings())).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(texts(&events), vec!["second try"]);
    assert_eq!(server.requests().len(), 2);

    // The same event after text: an InStream error, no retry.
    let server = FakeModelServer::start().await.unwrap();
    let reply = stream_reply(WireApi::Anthropic, &Answer::text(&["partial"]));
    let cut = reply.body.len() - 3;
    server.push(reply.cut_after(cut).ending(End::Complete).chunk(
        fake_model::anthropic::error_event("overloaded_error", "Overloaded"),
    ));
    let (events, error) = run(WireApi::Anthropic, &server, &ModelClient::new(settings())).await;
    assert_eq!(texts(&events), vec!["partial"]);
    let error = error.expect("an error");
    assert!(
        matches!(&error, ProviderError::InStream { kind, message, .. } if kind == "overloaded_error" && message == "Overloaded"),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn dropping_the_stream_mid_way_hangs_up_at_once() {
    for api in WireApi::ALL {
        let server = FakeModelServer::start().await.unwrap();
        let reply = stream_reply(api, &Answer::text(&["first", "second"]));
        let keep = reply.body.len() - 2;
        server.push(reply.cut_after(keep).ending(End::Hang));
        let model = resolved(api, &server);
        let client = ModelClient::new(settings());
        let request = ChatRequest {
            messages: vec![Message::user("hi")],
            ..ChatRequest::default()
        };
        let mut stream = client.stream(&model, Some(ApiKey::new(KEY)), &request);
        loop {
            match stream.next().await {
                Some(Ok(StreamEvent::TextDelta { .. })) => break,
                Some(Ok(_)) => {}
                other => panic!("{api:?}: {other:?}"),
            }
        }
        drop(stream);
        // The server would otherwise hold the connection open forever.
        assert!(
            server.wait_for_hangup(Duration::from_secs(2)).await,
            "{api:?}: connection kept open"
        );
    }
}

#[tokio::test]
async fn a_missing_key_fails_before_any_request() {
    let server = FakeModelServer::start().await.unwrap();
    let model = resolved(WireApi::Anthropic, &server);
    let client = ModelClient::new(settings());
    let stream = client.stream(&model, None, &ChatRequest::default());
    let error = collect_response(stream).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::MissingKey { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("ANTHROPIC_API_KEY"), "{error}");
    assert!(server.requests().is_empty(), "nothing was sent");
    // A local provider needs none.
    let server = FakeModelServer::start().await.unwrap();
    server.push(stream_reply(WireApi::Ollama, &Answer::text(&["local"])));
    let model = resolved(WireApi::Ollama, &server);
    let response = collect_response(client.stream(&model, None, &ChatRequest::default()))
        .await
        .unwrap();
    assert_eq!(response.text, "local");
    assert!(server.requests()[0].header("authorization").is_none());
}

#[tokio::test]
async fn a_local_server_that_is_not_running_fails_at_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut model = resolved(WireApi::Ollama, &FakeModelServer::start().await.unwrap());
    model.provider.base_url = format!("http://{closed}");
    let started = Instant::now();
    let stream = ModelClient::default().stream(&model, None, &ChatRequest::default());
    let error = collect_response(stream).await.unwrap_err();
    assert!(matches!(error, ProviderError::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&closed.to_string()),
        "names the endpoint: {error}"
    );
    // With the default policy, four backoffs would take at least 3.75 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no backoff: {:?}",
        started.elapsed()
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn keys_never_reach_errors_or_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut shown = Vec::new();
    for api in WireApi::ALL {
        // A server that echoes the key back in its error, in the body and in a stream event.
        let server = FakeModelServer::start().await.unwrap();
        let echo = format!("Incorrect API key provided: {KEY}. Header was Bearer {KEY}");
        server.push(error_reply(api, 500, &echo));
        server.push(error_reply(api, 401, &echo));
        let (_, error) = run(api, &server, &ModelClient::new(settings())).await;
        let error = error.unwrap();
        shown.push(error.to_string());
        shown.push(format!("{error:?}"));

        let server = FakeModelServer::start().await.unwrap();
        let reply = stream_reply(api, &Answer::text(&["a"]));
        let garbage = match Framing::of(api) {
            Framing::Sse => format!("data: {KEY} is bad\n\n"),
            Framing::Ndjson => format!("{{\"error\":\"bad key {KEY}\"}}\n"),
        };
        server.push(reply.insert_chunk(1, garbage));
        let (_, error) = run(api, &server, &ModelClient::new(settings())).await;
        let error = error.unwrap();
        shown.push(error.to_string());
        shown.push(format!("{error:?}"));
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "the retry was logged: {logs}");
    for text in shown.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains("SECRETSECRET"), "key leaked: {text}");
    }
    assert!(
        shown.iter().any(|s| s.contains(error::REDACTED)),
        "{shown:?}"
    );
}

/// Opt-in end-to-end: a real llama.cpp server streams a real completion through the
/// openai-chat adapter, found by discovery and resolved as `local/<model>`. Start the server
/// with `tests/support/llama_cpp_server.sh start`, then run (from `server/`):
/// `TACK_E2E_LLAMA_URL=http://127.0.0.1:8080/v1 cargo test --lib providers::tests::real_local_server -- --ignored --nocapture`
#[tokio::test]
#[ignore = "needs a running llama.cpp server: tests/support/llama_cpp_server.sh start"]
async fn real_local_server_streams_a_completion() {
    let base_url = std::env::var("TACK_E2E_LLAMA_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/v1".to_owned());
    let client = ModelClient::new(ClientSettings::default());
    let mut catalog = Catalog::builtin();
    catalog.providers.get_mut("llamacpp").unwrap().base_url = base_url.clone();
    let servers = discovery::discover(&client, &discovery::probe_targets(&catalog)).await;
    let server = servers
        .iter()
        .find(|s| s.provider == "llamacpp")
        .unwrap_or_else(|| panic!("no llama.cpp server answered at {base_url}"));
    let (registry, _) = Registry::new(
        catalog.clone(),
        ProvidersConfig::default(),
        None,
        Arc::new(|_: &str| None),
    );
    let model = registry
        .default_model(&servers)
        .expect("a discovered model");
    let resolved = registry.resolve(&model, &servers).unwrap();
    assert_eq!(resolved.provider.base_url, server.base_url);
    let request = ChatRequest {
        system: Some("You are a terse assistant.".to_owned()),
        messages: vec![Message::user("Name three colours.")],
        max_output_tokens: Some(40),
        temperature: Some(0.0),
        ..ChatRequest::default()
    };
    let started = Instant::now();
    let mut stream = client.stream(&resolved, None, &request);
    let mut first_text = None;
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        if first_text.is_none() && matches!(event, StreamEvent::TextDelta { .. }) {
            first_text = Some(started.elapsed());
        }
        events.push(event);
    }
    let text: String = texts(&events).concat();
    let done = completion(&events);
    eprintln!(
        "model {model} at {base_url}\n{} text events, first after {:?}, total {:?}\ntext: {text:?}\nstop: {:?}\nusage: {:?}\nraw usage: {}\ncost: {:?}",
        texts(&events).len(),
        first_text.unwrap_or_default(),
        started.elapsed(),
        done.stop_reason,
        done.usage,
        done.raw_usage,
        done.cost,
    );
    assert!(texts(&events).len() >= 2, "the answer streamed in pieces");
    assert!(!text.trim().is_empty());
    assert!(matches!(
        done.stop_reason,
        StopReason::EndTurn | StopReason::MaxTokens
    ));
    // llama-cpp-python's server ignores stream_options.include_usage: unknown, not zero.
    match done.usage {
        Some(usage) => {
            assert!(usage.output > 0 && usage.total_input() > 0, "{usage:?}");
            assert_eq!(
                done.cost.as_ref().map(|c| c.usd),
                Some(0.0),
                "local models are free"
            );
        }
        None => {
            assert!(done.raw_usage.is_null());
            assert!(done.cost.is_none(), "no usage, no cost");
        }
    }
}

/// Decodes a body delivered in `size`-byte chunks, without any server.
async fn decode_in_chunks(api: WireApi, body: &[u8], size: usize) -> Vec<StreamEvent> {
    let chunks: Vec<Result<bytes::Bytes, std::convert::Infallible>> = body
        .chunks(size)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let events: Vec<_> = wire::decode_byte_stream(api, futures::stream::iter(chunks))
        .collect()
        .await;
    events
        .into_iter()
        .map(|e| e.unwrap_or_else(|error| panic!("{api:?} at {size}: {error:?}")))
        .collect()
}

#[tokio::test]
async fn any_chunking_of_the_bytes_decodes_to_the_same_events() {
    // Multi-byte characters and CRLF framing (Gemini) split at every possible place.
    let answer = Answer::text(&["héllo ", "✓ 日本", "語 🎉"])
        .with_thinking(&["ünïcode"])
        .with_tool_call(FakeToolCall::new(
            "call_1",
            "write",
            &["{\"text\": ", "\"ß\"}"],
        ))
        .with_usage(FakeUsage {
            input_uncached: 3,
            output: 9,
            ..FakeUsage::default()
        });
    for api in WireApi::ALL {
        let body = stream_reply(api, &answer).body_text().into_bytes();
        let whole = decode_in_chunks(api, &body, body.len()).await;
        let mut response = ModelResponse::default();
        for event in whole.clone() {
            response.absorb(event);
        }
        assert_eq!(response.text, "héllo ✓ 日本語 🎉", "{api:?}");
        assert_eq!(
            response.tool_calls[0].parsed_arguments().unwrap()["text"],
            "ß"
        );
        for size in 1..=13 {
            let split = decode_in_chunks(api, &body, size).await;
            // Generated tool-call ids differ from run to run; compare everything else.
            let strip = |events: &[StreamEvent]| -> Vec<StreamEvent> {
                events
                    .iter()
                    .cloned()
                    .map(|event| match event {
                        StreamEvent::ToolCallStarted { index, name, .. } => {
                            StreamEvent::ToolCallStarted {
                                index,
                                id: String::new(),
                                name,
                            }
                        }
                        StreamEvent::ToolCallReady { index, mut call } => {
                            call.id.clear();
                            StreamEvent::ToolCallReady { index, call }
                        }
                        other => other,
                    })
                    .collect()
            };
            assert_eq!(
                strip(&split),
                strip(&whole),
                "{api:?} in {size}-byte chunks"
            );
        }
    }
}
