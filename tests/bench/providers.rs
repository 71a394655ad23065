//! Provider stream decoders: parse throughput of each adapter (events/s, MB/s) and the added
//! latency from the first byte of a response to the first event delivered (target ≤ 100 µs).
//!
//! The byte streams come from the fake model server's builders, so they are the documented
//! wire formats. Baseline, measured in the same run: parsing the same frames' JSON with
//! `serde_json` alone — the figure a decoder cannot beat. Run with
//! `cargo bench --bench providers`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/fake_model.rs"]
mod fake_model;

use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_model::{Answer, FakeToolCall, FakeUsage, Reply};
use futures::StreamExt;
use futures::executor::block_on;
use tack::providers::WireApi;
use tack::providers::wire::decode_byte_stream;

/// Network-like chunk size for the throughput runs.
const CHUNK: usize = 16 * 1024;

fn answer() -> Answer {
    let words: Vec<String> = (0..4000).map(|i| format!("token{i} ")).collect();
    let pieces: Vec<&str> = words.iter().map(String::as_str).collect();
    let args: Vec<String> = (0..200).map(|i| format!("\"k{i}\": {i}, ")).collect();
    let mut arg_pieces: Vec<&str> = vec!["{"];
    arg_pieces.extend(args.iter().map(String::as_str));
    arg_pieces.push("\"end\": true}");
    Answer::text(&pieces)
        .with_thinking(&pieces[..500])
        .with_tool_call(FakeToolCall::new("call_1", "edit_file", &arg_pieces))
        .with_tool_call(FakeToolCall::new(
            "call_2",
            "read_file",
            &["{\"path\": ", "\"src/lib.rs\"}"],
        ))
        .with_usage(FakeUsage {
            input_uncached: 5000,
            cache_read: 20000,
            output: 4700,
            ..FakeUsage::default()
        })
}

fn reply(api: WireApi, answer: &Answer) -> Reply {
    match api {
        WireApi::OpenAiChat => fake_model::openai_chat::stream(answer),
        WireApi::OpenAiResponses => fake_model::openai_responses::stream(answer),
        WireApi::Anthropic => fake_model::anthropic::stream(answer),
        WireApi::Gemini => fake_model::gemini::stream(answer),
        WireApi::Ollama => fake_model::ollama::stream(answer),
    }
}

fn rechunk(body: &[u8], size: usize) -> Vec<Bytes> {
    body.chunks(size).map(Bytes::copy_from_slice).collect()
}

/// Decodes the chunks; returns the number of events.
fn decode(api: WireApi, chunks: &[Bytes]) -> usize {
    let owned: Vec<Result<Bytes, std::convert::Infallible>> =
        chunks.iter().cloned().map(Ok).collect();
    block_on(async {
        let mut events = std::pin::pin!(decode_byte_stream(api, futures::stream::iter(owned)));
        let mut count = 0;
        while let Some(event) = events.next().await {
            event.expect("the benchmark stream decodes");
            count += 1;
        }
        count
    })
}

/// The JSON payloads of the frames (SSE `data:` or NDJSON lines), for the baseline.
fn payloads(body: &str) -> Vec<String> {
    body.split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter_map(|line| match line.strip_prefix("data: ") {
            Some(data) => Some(data),
            None if line.starts_with('{') => Some(line),
            None => None,
        })
        .filter(|data| data.starts_with('{'))
        .map(str::to_owned)
        .collect()
}

/// Runs `work` repeatedly for at least `budget`; returns the mean time of one run.
fn time(budget: Duration, mut work: impl FnMut()) -> Duration {
    work();
    let started = Instant::now();
    let mut runs = 0u32;
    while started.elapsed() < budget || runs < 3 {
        work();
        runs += 1;
    }
    started.elapsed() / runs
}

fn first_event_latency(api: WireApi, reply: &Reply) -> (Duration, Duration) {
    // The first chunk ends with the first frame that yields an event (text or thinking).
    let frames = reply.body_chunks();
    let mut first = Vec::new();
    for frame in &frames {
        first.extend_from_slice(frame);
        let text = String::from_utf8_lossy(frame);
        if text.contains("token0") {
            break;
        }
    }
    let first = Bytes::from(first);
    let mut samples: Vec<Duration> = (0..3000)
        .map(|_| {
            let chunk: Result<Bytes, std::convert::Infallible> = Ok(first.clone());
            let mut events = Box::pin(decode_byte_stream(api, futures::stream::iter([chunk])));
            block_on(async {
                let received = Instant::now();
                let event = events.next().await;
                let elapsed = received.elapsed();
                assert!(matches!(event, Some(Ok(_))), "{api:?}: {event:?}");
                elapsed
            })
        })
        .collect();
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn main() {
    let answer = answer();
    let budget = Duration::from_millis(if std::env::var_os("QUICK").is_some() {
        100
    } else {
        600
    });
    println!(
        "provider stream decoders ({} text pieces, 2 tool calls; {CHUNK}-byte chunks)",
        answer.text.len()
    );
    println!(
        "{:<18}{:>9}{:>8}{:>11}{:>8}{:>16}{:>9}{:>18}{:>10}",
        "protocol",
        "bytes",
        "events",
        "events/s",
        "MB/s",
        "json-only MB/s",
        "vs json",
        "first event p50",
        "p99"
    );
    let mut missed = Vec::new();
    for api in WireApi::ALL {
        let reply = reply(api, &answer);
        let body = reply.body_text();
        let chunks = rechunk(body.as_bytes(), CHUNK);
        let events = decode(api, &chunks);
        let per_run = time(budget, || {
            decode(api, &chunks);
        });
        let frames = payloads(&body);
        let baseline = time(budget, || {
            for frame in &frames {
                let value: serde_json::Value = serde_json::from_str(frame).unwrap();
                std::hint::black_box(value);
            }
        });
        let mb = body.len() as f64 / 1e6;
        let (p50, p99) = first_event_latency(api, &reply);
        println!(
            "{:<18}{:>9}{:>8}{:>11.0}{:>8.1}{:>16.1}{:>8.2}x{:>16.1}µs{:>8.1}µs",
            api.as_str(),
            body.len(),
            events,
            events as f64 / per_run.as_secs_f64(),
            mb / per_run.as_secs_f64(),
            mb / baseline.as_secs_f64(),
            per_run.as_secs_f64() / baseline.as_secs_f64(),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
        );
        if p50 > Duration::from_micros(100) {
            missed.push(api.as_str());
        }
    }
    match missed.as_slice() {
        [] => println!("first byte → first event: within the 100 µs target for every protocol"),
        slow => println!(
            "first byte → first event: OVER the 100 µs target for {}",
            slow.join(", ")
        ),
    }
}
