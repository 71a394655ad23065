//! `tack export`: the ledger in other shapes. `jsonl` is the raw lines; `csv` is one row per
//! model call; `ccusage` is the daily JSON report of ccusage (`daily` rows with
//! `inputTokens`, `outputTokens`, `cacheCreationTokens`, `cacheReadTokens`, `totalTokens`,
//! `totalCost`, `modelsUsed`, `modelBreakdowns`, and `totals`), so tools made for it read
//! tack's sessions; `otlp` and `activitywatch` send to a collector or an ActivityWatch server
//! (see those modules).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::reader::{LedgerFile, find_session, for_each_line, session_files, skipped};
use super::record::Line;
use super::summary::{SessionSummary, summarize};
use super::{LedgerError, LedgerSettings, time};

/// Which sessions and events an export takes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only events at or after this time.
    pub since_ms: u64,
    /// Only this session (an id or a unique prefix, or `last`).
    pub session: Option<String>,
}

impl Selection {
    /// The session files selected.
    pub fn files(&self, settings: &LedgerSettings) -> Result<Vec<LedgerFile>, LedgerError> {
        match &self.session {
            Some(id) => Ok(vec![find_session(&settings.dir, id)?]),
            None => session_files(&settings.dir),
        }
    }

    /// The selected sessions' readable lines, file by file.
    pub fn lines(
        &self,
        settings: &LedgerSettings,
    ) -> Result<Vec<(LedgerFile, Vec<Line>)>, LedgerError> {
        let mut out = Vec::new();
        for file in self.files(settings)? {
            let mut lines = super::reader::read_lines(&file.path)?;
            lines.retain(|line| line.header.ts >= self.since_ms);
            if !lines.is_empty() {
                out.push((file, lines));
            }
        }
        Ok(out)
    }

    fn summaries(&self, settings: &LedgerSettings) -> Result<Vec<SessionSummary>, LedgerError> {
        self.files(settings)?.iter().map(summarize).collect()
    }
}

/// The raw lines of the selected sessions, as they are in the files (unreadable lines left
/// out with a warning).
pub fn jsonl(settings: &LedgerSettings, selection: &Selection) -> Result<String, LedgerError> {
    let mut out = String::new();
    for file in selection.files(settings)? {
        for_each_line(&file.path, |number, bytes| match Line::parse(bytes) {
            Ok(line) if line.header.ts >= selection.since_ms => {
                out.push_str(&String::from_utf8_lossy(bytes));
                out.push('\n');
            }
            Ok(_) => {}
            Err(error) => skipped(&file.path, number, &error),
        })?;
    }
    Ok(out)
}

/// The columns of the CSV export, one row per model call.
pub const CSV_COLUMNS: &[&str] = &[
    "session",
    "timestamp",
    "provider",
    "model",
    "input_uncached_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "usage_known",
    "cost_usd",
    "duration_ms",
    "time_to_first_token_ms",
    "failed",
];

/// One row per model call, RFC 4180 quoting.
pub fn csv(settings: &LedgerSettings, selection: &Selection) -> Result<String, LedgerError> {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for session in selection.summaries(settings)? {
        for call in session.calls.iter().filter(|c| c.ts >= selection.since_ms) {
            let cells = [
                session.session.clone(),
                time::iso8601(call.ts),
                call.provider.clone(),
                call.model.clone(),
                call.usage.input_uncached.to_string(),
                call.usage.cache_read.to_string(),
                call.usage.cache_write.to_string(),
                call.usage.output.to_string(),
                call.usage.reasoning.to_string(),
                call.usage_known.to_string(),
                call.cost_usd.map(|c| c.to_string()).unwrap_or_default(),
                call.duration_ms.to_string(),
                call.time_to_first_token_ms
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                call.failed.to_string(),
            ];
            let row: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
            let _ = write!(out, "{}\r\n", row.join(","));
        }
    }
    Ok(out)
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

#[derive(Default)]
struct Tokens {
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
    cost: f64,
}

impl Tokens {
    fn total(&self) -> u64 {
        self.input + self.output + self.cache_creation + self.cache_read
    }

    fn json(&self) -> Value {
        json!({
            "inputTokens": self.input,
            "outputTokens": self.output,
            "cacheCreationTokens": self.cache_creation,
            "cacheReadTokens": self.cache_read,
            "totalTokens": self.total(),
            "totalCost": self.cost,
        })
    }
}

/// ccusage's `daily --json` shape: per UTC day the token buckets (input = uncached input,
/// as ccusage counts it), cost, models and a per-model breakdown; then the totals.
pub fn ccusage(settings: &LedgerSettings, selection: &Selection) -> Result<String, LedgerError> {
    let mut days: BTreeMap<String, BTreeMap<String, Tokens>> = BTreeMap::new();
    for session in selection.summaries(settings)? {
        for call in session.calls.iter().filter(|c| c.ts >= selection.since_ms) {
            let tokens = days
                .entry(time::date(call.ts))
                .or_default()
                .entry(call.model.clone())
                .or_default();
            tokens.input += call.usage.input_uncached;
            tokens.output += call.usage.output;
            tokens.cache_creation += call.usage.cache_write;
            tokens.cache_read += call.usage.cache_read;
            tokens.cost += call.cost_usd.unwrap_or(0.0);
        }
    }
    let mut totals = Tokens::default();
    let mut daily = Vec::new();
    for (date, models) in days {
        let mut day = Tokens::default();
        let mut breakdowns = Vec::new();
        for (model, tokens) in &models {
            day.input += tokens.input;
            day.output += tokens.output;
            day.cache_creation += tokens.cache_creation;
            day.cache_read += tokens.cache_read;
            day.cost += tokens.cost;
            breakdowns.push(json!({
                "modelName": model,
                "inputTokens": tokens.input,
                "outputTokens": tokens.output,
                "cacheCreationTokens": tokens.cache_creation,
                "cacheReadTokens": tokens.cache_read,
                "cost": tokens.cost,
            }));
        }
        totals.input += day.input;
        totals.output += day.output;
        totals.cache_creation += day.cache_creation;
        totals.cache_read += day.cache_read;
        totals.cost += day.cost;
        let mut row = day.json();
        row["date"] = json!(date);
        row["modelsUsed"] = json!(models.keys().collect::<Vec<_>>());
        row["modelBreakdowns"] = Value::Array(breakdowns);
        daily.push(row);
    }
    let report = json!({ "daily": daily, "totals": totals.json() });
    Ok(serde_json::to_string_pretty(&report).unwrap_or_default())
}
