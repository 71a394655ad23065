//! `tack export --format otlp`: the ledger as OpenTelemetry traces and metrics, OTLP/HTTP
//! with the JSON encoding, to `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` and `/v1/metrics`
//! appended; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `_METRICS_ENDPOINT` are used as they
//! are; `OTEL_EXPORTER_OTLP_HEADERS` adds headers), following the GenAI semantic
//! conventions.
//!
//! Each user turn is a trace: an `invoke_agent tack` span (kind internal) with a
//! `chat {model}` span (kind client) per model call and an `execute_tool {tool}` span (kind
//! internal) per tool call under it. Every span carries `gen_ai.conversation.id` (the
//! session id) and `gen_ai.operation.name`; chat spans `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.usage.input_tokens` (all input: uncached, cache read and
//! write), `gen_ai.usage.output_tokens`; tool spans `gen_ai.tool.name` and
//! `gen_ai.tool.call.id`. tack's own attributes: `tack.cost.usd`, `tack.price_source`,
//! `tack.lines.added`, `tack.decision.source`, `tack.decision.allowed`,
//! `tack.decision.wait_ms`, `tack.turn.end`. Metrics: the histograms
//! `gen_ai.client.token.usage` (`{token}`, by `gen_ai.token.type`) and
//! `gen_ai.client.operation.duration` (`s`), with the conventions' bucket boundaries, and
//! the sums `tack.cost` (`USD`), `tack.lines.added` and `tack.decisions`.
//!
//! Ids are derived from the session, turn and line numbers, so exporting the same ledger
//! twice gives the same trace and span ids. The JSON mapping: ids in hex, 64-bit integers
//! and nanosecond times as decimal strings, enums as numbers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::LedgerError;
use super::reader::LedgerFile;
use super::record::Line;

const KIND_INTERNAL: u32 = 1;
const KIND_CLIENT: u32 = 3;
const STATUS_ERROR: u32 = 2;
const CUMULATIVE: u32 = 2;
const TOKEN_BOUNDS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
const DURATION_BOUNDS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Where to send: the traces and metrics URLs and extra headers, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    pub traces_url: String,
    pub metrics_url: String,
    pub headers: Vec<(String, String)>,
}

impl OtlpTarget {
    /// From `OTEL_EXPORTER_OTLP_*` through `env`; an error names what to set.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<OtlpTarget, LedgerError> {
        let base = env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.trim().is_empty());
        let signal = |name: &str, path: &str| -> Result<String, LedgerError> {
            if let Some(url) = env(name).filter(|v| !v.trim().is_empty()) {
                return Ok(url);
            }
            match &base {
                Some(base) => Ok(format!("{}/{path}", base.trim_end_matches('/'))),
                None => Err(LedgerError::Export(
                    "set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's OTLP/HTTP address \
                     (for example http://localhost:4318)"
                        .to_owned(),
                )),
            }
        };
        let headers = env("OTEL_EXPORTER_OTLP_HEADERS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                let value = percent_encoding::percent_decode_str(value.trim())
                    .decode_utf8_lossy()
                    .into_owned();
                Some((name.trim().to_owned(), value))
            })
            .filter(|(name, _)| !name.is_empty())
            .collect();
        Ok(OtlpTarget {
            traces_url: signal("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "v1/traces")?,
            metrics_url: signal("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "v1/metrics")?,
            headers,
        })
    }
}

fn nanos(ms: u64) -> String {
    (u128::from(ms) * 1_000_000).to_string()
}

/// The hex of the first `bytes` bytes of the SHA-256 of `seed`.
fn id(seed: &str, bytes: usize) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    digest[..bytes].iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(text) => json!({ "stringValue": text }),
        Value::Bool(flag) => json!({ "boolValue": flag }),
        Value::Number(number) if number.is_u64() || number.is_i64() => {
            json!({ "intValue": number.to_string() })
        }
        Value::Number(number) => json!({ "doubleValue": number.as_f64().unwrap_or(0.0) }),
        Value::Array(items) => {
            json!({ "arrayValue": { "values": items.into_iter().map(|v| attribute("", v)["value"].clone()).collect::<Vec<_>>() } })
        }
        other => json!({ "stringValue": other.to_string() }),
    };
    json!({ "key": key, "value": value })
}

fn attributes(pairs: Vec<(&str, Value)>) -> Vec<Value> {
    pairs
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| attribute(key, value))
        .collect()
}

fn resource() -> Value {
    json!({ "attributes": attributes(vec![
        ("service.name", json!("tack")),
        ("service.version", json!(env!("CARGO_PKG_VERSION"))),
    ]) })
}

fn scope() -> Value {
    json!({ "name": "tack.ledger", "version": env!("CARGO_PKG_VERSION") })
}

/// Input tokens as the conventions count them: uncached plus cache read and write.
fn input_tokens(usage: &Value) -> Value {
    if usage.is_null() {
        return Value::Null;
    }
    let field = |key: &str| usage[key].as_u64().unwrap_or(0);
    json!(field("input_uncached") + field("cache_read") + field("cache_write"))
}

/// The spans of the sessions' turns: an `ExportTraceServiceRequest`.
pub fn traces(sessions: &[(LedgerFile, Vec<Line>)]) -> Value {
    let mut spans = Vec::new();
    for (file, lines) in sessions {
        let conversation = file.session.as_str();
        let mut provider = Value::Null;
        let mut model = Value::Null;
        let mut turn: Option<TurnSpan> = None;
        let mut tools: BTreeMap<String, (u64, String)> = BTreeMap::new();
        let mut decisions: BTreeMap<String, &Line> = BTreeMap::new();
        for line in lines {
            let ts = line.header.ts;
            match line.kind() {
                "session_started" => {
                    provider = line.get("provider").clone();
                    model = line.get("model").clone();
                }
                "turn_started" => {
                    if let Some(open) = turn.take() {
                        spans.push(open.finish(conversation, ts, None, &provider, &model));
                    }
                    turn = Some(TurnSpan::new(conversation, line.header.turn, ts));
                }
                "model_call" => {
                    let Some(open) = &mut turn else { continue };
                    let duration = line.u64("duration").unwrap_or(0);
                    let usage = line.get("usage");
                    let cost = &line.get("cost")["usd"];
                    open.add_usage(usage, cost);
                    let request_model = line.str("model").unwrap_or("");
                    let mut span = open.child(
                        conversation,
                        line,
                        format!("chat {request_model}"),
                        (KIND_CLIENT, ts.saturating_sub(duration)),
                        attributes(vec![
                            ("gen_ai.operation.name", json!("chat")),
                            ("gen_ai.provider.name", line.get("provider").clone()),
                            ("gen_ai.request.model", json!(request_model)),
                            ("gen_ai.conversation.id", json!(conversation)),
                            ("gen_ai.usage.input_tokens", input_tokens(usage)),
                            ("gen_ai.usage.output_tokens", usage["output"].clone()),
                            (
                                "gen_ai.usage.cache_read.input_tokens",
                                usage["cache_read"].clone(),
                            ),
                            (
                                "gen_ai.usage.cache_creation.input_tokens",
                                usage["cache_write"].clone(),
                            ),
                            (
                                "gen_ai.response.finish_reasons",
                                match line.get("stop_reason") {
                                    Value::String(reason) => json!([reason]),
                                    _ => Value::Null,
                                },
                            ),
                            ("tack.cost.usd", cost.clone()),
                            ("tack.price_source", line.get("price_source").clone()),
                            ("tack.attempts", line.get("attempts").clone()),
                            (
                                "tack.time_to_first_token_ms",
                                line.get("time_to_first_token").clone(),
                            ),
                            (
                                "error.type",
                                line.get("error")
                                    .as_str()
                                    .map_or(Value::Null, |_| json!("_OTHER")),
                            ),
                        ]),
                    );
                    if let Some(error) = line.str("error") {
                        span["status"] = json!({ "code": STATUS_ERROR, "message": error });
                    }
                    spans.push(span);
                }
                "tool_call_begun" => {
                    if let (Some(call), Some(name)) = (line.str("id"), line.str("name")) {
                        tools.insert(call.to_owned(), (ts, name.to_owned()));
                    }
                }
                "decision" => {
                    if let Some(call) = line.str("id") {
                        decisions.insert(call.to_owned(), line);
                    }
                }
                "tool_call_ended" => {
                    let Some(open) = &turn else { continue };
                    let call = line.str("id").unwrap_or("");
                    let (start, name) = tools
                        .remove(call)
                        .unwrap_or((ts, line.detail("tool").as_str().unwrap_or("?").to_owned()));
                    let decision = decisions.remove(call);
                    let field = |key: &str| decision.map_or(Value::Null, |d| d.get(key).clone());
                    let mut span = open.child(
                        conversation,
                        line,
                        format!("execute_tool {name}"),
                        (KIND_INTERNAL, start),
                        attributes(vec![
                            ("gen_ai.operation.name", json!("execute_tool")),
                            ("gen_ai.tool.name", json!(name)),
                            ("gen_ai.tool.call.id", json!(call)),
                            ("gen_ai.conversation.id", json!(conversation)),
                            ("tack.decision.source", field("source")),
                            ("tack.decision.allowed", field("allowed")),
                            (
                                "tack.decision.wait_ms",
                                decision.map_or(Value::Null, |d| d.detail("wait_ms").clone()),
                            ),
                        ]),
                    );
                    if line.get("is_error") == true {
                        span["status"] = json!({ "code": STATUS_ERROR });
                    }
                    spans.push(span);
                }
                "edit_applied" | "proposal_decided" => {
                    if let Some(open) = &mut turn {
                        open.lines_added += added_lines(line);
                    }
                }
                "turn_done" => {
                    if let Some(open) = turn.take() {
                        spans.push(open.finish(
                            conversation,
                            ts,
                            line.str("end"),
                            &provider,
                            &model,
                        ));
                    }
                }
                _ => {}
            }
        }
        if let (Some(open), Some(last)) = (turn.take(), lines.last()) {
            spans.push(open.finish(conversation, last.header.ts, None, &provider, &model));
        }
    }
    json!({ "resourceSpans": [{
        "resource": resource(),
        "scopeSpans": [{ "scope": scope(), "spans": spans }],
    }] })
}

fn added_lines(line: &Line) -> u64 {
    if line.kind() == "proposal_decided" && line.str("decision") != Some("applied") {
        return 0;
    }
    line.detail("files")
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["hunks"].as_array().into_iter().flatten())
        .map(|h| h["new_lines"].as_u64().unwrap_or(0))
        .sum()
}

/// The `invoke_agent` span of a turn while its lines are read.
struct TurnSpan {
    trace_id: String,
    span_id: String,
    start: u64,
    input: u64,
    output: u64,
    cost: Option<f64>,
    lines_added: u64,
}

impl TurnSpan {
    fn new(conversation: &str, turn: u32, start: u64) -> TurnSpan {
        TurnSpan {
            trace_id: id(&format!("{conversation}/turn/{turn}"), 16),
            span_id: id(&format!("{conversation}/turn/{turn}/span"), 8),
            start,
            input: 0,
            output: 0,
            cost: None,
            lines_added: 0,
        }
    }

    /// A span under this turn's, for `line` (its id from the line's number; it ends at the
    /// line's time), of `kind` and starting at `start`.
    fn child(
        &self,
        conversation: &str,
        line: &Line,
        name: String,
        (kind, start): (u32, u64),
        attributes: Vec<Value>,
    ) -> Value {
        json!({
            "traceId": self.trace_id,
            "spanId": id(&format!("{conversation}/{}", line.header.seq), 8),
            "parentSpanId": self.span_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": nanos(start),
            "endTimeUnixNano": nanos(line.header.ts),
            "attributes": attributes,
        })
    }

    fn add_usage(&mut self, usage: &Value, cost: &Value) {
        self.input += input_tokens(usage).as_u64().unwrap_or(0);
        self.output += usage["output"].as_u64().unwrap_or(0);
        if let Some(cost) = cost.as_f64() {
            self.cost = Some(self.cost.unwrap_or(0.0) + cost);
        }
    }

    fn finish(
        self,
        conversation: &str,
        end: u64,
        outcome: Option<&str>,
        provider: &Value,
        model: &Value,
    ) -> Value {
        json!({
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": "invoke_agent tack",
            "kind": KIND_INTERNAL,
            "startTimeUnixNano": nanos(self.start),
            "endTimeUnixNano": nanos(end),
            "attributes": attributes(vec![
                ("gen_ai.operation.name", json!("invoke_agent")),
                ("gen_ai.agent.name", json!("tack")),
                ("gen_ai.provider.name", provider.clone()),
                ("gen_ai.request.model", model.clone()),
                ("gen_ai.conversation.id", json!(conversation)),
                ("gen_ai.usage.input_tokens", json!(self.input)),
                ("gen_ai.usage.output_tokens", json!(self.output)),
                ("tack.cost.usd", self.cost.map_or(Value::Null, |c| json!(c))),
                ("tack.lines.added", json!(self.lines_added)),
                ("tack.turn.end", outcome.map_or(Value::Null, |o| json!(o))),
            ]),
        })
    }
}

/// A metric point's attributes.
type Key = Vec<(String, String)>;

/// One histogram point.
struct Point {
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
    min: f64,
    max: f64,
}

/// A histogram's points by attribute set.
#[derive(Default)]
struct Histogram {
    points: BTreeMap<Key, Point>,
}

impl Histogram {
    fn record(&mut self, bounds: &[f64], key: Key, value: f64) {
        let point = self.points.entry(key).or_insert_with(|| Point {
            count: 0,
            sum: 0.0,
            buckets: vec![0; bounds.len() + 1],
            min: f64::MAX,
            max: f64::MIN,
        });
        point.count += 1;
        point.sum += value;
        let bucket = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        point.buckets[bucket] += 1;
        point.min = point.min.min(value);
        point.max = point.max.max(value);
    }

    fn json(&self, bounds: &[f64], start: &str, end: &str) -> Value {
        let points: Vec<Value> = self
            .points
            .iter()
            .map(|(key, point)| {
                json!({
                    "attributes": attributes(key.iter().map(|(k, v)| (k.as_str(), json!(v))).collect()),
                    "startTimeUnixNano": start,
                    "timeUnixNano": end,
                    "count": point.count.to_string(),
                    "sum": point.sum,
                    "bucketCounts": point.buckets.iter().map(u64::to_string).collect::<Vec<_>>(),
                    "explicitBounds": bounds,
                    "min": point.min,
                    "max": point.max,
                })
            })
            .collect();
        json!({ "aggregationTemporality": CUMULATIVE, "dataPoints": points })
    }
}

/// The metrics of the sessions: an `ExportMetricsServiceRequest`.
pub fn metrics(sessions: &[(LedgerFile, Vec<Line>)]) -> Value {
    let mut tokens = Histogram::default();
    let mut durations = Histogram::default();
    let mut cost: BTreeMap<Key, f64> = BTreeMap::new();
    let mut lines_added: BTreeMap<Key, f64> = BTreeMap::new();
    let mut decisions: BTreeMap<Key, f64> = BTreeMap::new();
    let (mut first, mut last) = (u64::MAX, 0);
    for (_, lines) in sessions {
        let mut model_key = Vec::new();
        for line in lines {
            first = first.min(line.header.ts);
            last = last.max(line.header.ts);
            match line.kind() {
                "session_started" => {
                    model_key = vec![
                        (
                            "gen_ai.provider.name".to_owned(),
                            line.str("provider").unwrap_or("").to_owned(),
                        ),
                        (
                            "gen_ai.request.model".to_owned(),
                            line.str("model").unwrap_or("").to_owned(),
                        ),
                    ];
                }
                "model_call" => {
                    let mut key = vec![
                        ("gen_ai.operation.name".to_owned(), "chat".to_owned()),
                        (
                            "gen_ai.provider.name".to_owned(),
                            line.str("provider").unwrap_or("").to_owned(),
                        ),
                        (
                            "gen_ai.request.model".to_owned(),
                            line.str("model").unwrap_or("").to_owned(),
                        ),
                    ];
                    if line.str("error").is_some() {
                        key.push(("error.type".to_owned(), "_OTHER".to_owned()));
                    }
                    let seconds = line.u64("duration").unwrap_or(0) as f64 / 1000.0;
                    durations.record(DURATION_BOUNDS, key.clone(), seconds);
                    key.retain(|(k, _)| k != "error.type");
                    let usage = line.get("usage");
                    if !usage.is_null() {
                        for (kind, count) in [
                            ("input", input_tokens(usage).as_u64().unwrap_or(0)),
                            ("output", usage["output"].as_u64().unwrap_or(0)),
                        ] {
                            let mut key = key.clone();
                            key.push(("gen_ai.token.type".to_owned(), kind.to_owned()));
                            tokens.record(TOKEN_BOUNDS, key, count as f64);
                        }
                    }
                    if let Some(usd) = line.get("cost")["usd"].as_f64() {
                        *cost.entry(key[1..].to_vec()).or_default() += usd;
                    }
                }
                "decision" => {
                    let key = vec![
                        (
                            "tack.decision.source".to_owned(),
                            line.str("source").unwrap_or("").to_owned(),
                        ),
                        (
                            "tack.decision.allowed".to_owned(),
                            (line.get("allowed") == true).to_string(),
                        ),
                        (
                            "gen_ai.tool.name".to_owned(),
                            line.detail("tool").as_str().unwrap_or("?").to_owned(),
                        ),
                    ];
                    *decisions.entry(key).or_default() += 1.0;
                }
                "edit_applied" | "proposal_decided" => {
                    *lines_added.entry(model_key.clone()).or_default() += added_lines(line) as f64;
                }
                _ => {}
            }
        }
    }
    let (start, end) = (nanos(first.min(last)), nanos(last));
    let sum = |name: &str, unit: &str, description: &str, points: &BTreeMap<Key, f64>| {
        json!({
            "name": name,
            "unit": unit,
            "description": description,
            "sum": {
                "aggregationTemporality": CUMULATIVE,
                "isMonotonic": true,
                "dataPoints": points.iter().map(|(key, value)| json!({
                    "attributes": attributes(key.iter().map(|(k, v)| (k.as_str(), json!(v))).collect()),
                    "startTimeUnixNano": start,
                    "timeUnixNano": end,
                    "asDouble": value,
                })).collect::<Vec<_>>(),
            },
        })
    };
    json!({ "resourceMetrics": [{
        "resource": resource(),
        "scopeMetrics": [{ "scope": scope(), "metrics": [
            {
                "name": "gen_ai.client.token.usage",
                "unit": "{token}",
                "description": "Number of input and output tokens used.",
                "histogram": tokens.json(TOKEN_BOUNDS, &start, &end),
            },
            {
                "name": "gen_ai.client.operation.duration",
                "unit": "s",
                "description": "GenAI operation duration.",
                "histogram": durations.json(DURATION_BOUNDS, &start, &end),
            },
            sum("tack.cost", "USD", "Cost of model calls, from the catalog's prices.", &cost),
            sum("tack.lines.added", "{line}", "Lines added by applied agent changes.", &lines_added),
            sum("tack.decisions", "{decision}", "Permission decisions, by source and outcome.", &decisions),
        ]}],
    }] })
}

/// Sends the traces and metrics; returns what was sent, for the user.
pub async fn send(
    target: &OtlpTarget,
    sessions: &[(LedgerFile, Vec<Line>)],
) -> Result<String, LedgerError> {
    crate::providers::install_crypto();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| LedgerError::Export(e.to_string()))?;
    let mut spans = 0usize;
    // A request per batch of sessions keeps each body within collectors' usual limits.
    for batch in sessions.chunks(200) {
        let body = traces(batch);
        spans += body["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .map_or(0, Vec::len);
        post(&client, target, &target.traces_url, &body).await?;
    }
    post(&client, target, &target.metrics_url, &metrics(sessions)).await?;
    Ok(format!(
        "sent {spans} span(s) of {} session(s) to {} and their metrics to {}\n",
        sessions.len(),
        target.traces_url,
        target.metrics_url
    ))
}

async fn post(
    client: &reqwest::Client,
    target: &OtlpTarget,
    url: &str,
    body: &Value,
) -> Result<(), LedgerError> {
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    for (name, value) in &target.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request
        .send()
        .await
        .map_err(|e| LedgerError::Export(format!("{url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        return Err(LedgerError::Export(format!("{url}: HTTP {status}: {text}")));
    }
    Ok(())
}
