//! One pass over a session file gives its figures: when and where, the model calls (usage,
//! cost, time), tool calls, decisions, edits and how it ended. `tack sessions`, `tack stats`
//! and the exports are built on these.
//!
//! Speed: only the lines that carry figures are parsed, into borrowed typed views; the type is
//! read from a line's first bytes ([`fast_kind`]) and every other line (text, context items,
//! diagnostics …) is skipped without parsing. Only the first and last lines are read whole,
//! for the session's time span.

use std::borrow::Cow;
use std::path::Path;

use serde::Deserialize;

use super::LedgerError;
use super::reader::{LedgerFile, for_each_line, skipped};
use super::record::{Line, fast_kind};
use crate::providers::Usage;

/// A session's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSummary {
    pub session: String,
    pub started_ms: u64,
    /// The time of the last line.
    pub ended_ms: u64,
    pub workspace: Option<String>,
    pub client: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub turns: u32,
    /// How the last turn ended (`completed`, `cancelled`, …); `None` before any ended.
    pub last_end: Option<String>,
    /// A `session_ended` line was written (else the process stopped without one).
    pub finished: bool,
    pub calls: Vec<ModelCallFigures>,
    pub tools: Vec<ToolFigures>,
    pub decisions: Vec<DecisionFigures>,
    pub errors: u32,
    /// Applied changes (edits on disk, or proposals applied in the editor).
    pub edits: u32,
    /// Lines added by those changes.
    pub lines_added: u64,
    /// Lines that could not be read (a torn last line, damage).
    pub unreadable_lines: u32,
}

impl SessionSummary {
    pub fn usage(&self) -> Usage {
        let mut total = Usage::default();
        for call in &self.calls {
            add_usage(&mut total, &call.usage);
        }
        total
    }

    /// Summed cost; `None` when no call had a price.
    pub fn cost_usd(&self) -> Option<f64> {
        self.calls
            .iter()
            .filter_map(|c| c.cost_usd)
            .fold(None, |sum, cost| Some(sum.unwrap_or(0.0) + cost))
    }

    /// `completed`, `cancelled`, …, or `unfinished` when the process stopped mid-session.
    pub fn outcome(&self) -> String {
        match (&self.last_end, self.finished) {
            (Some(end), _) => end.clone(),
            (None, true) => "no turn".to_owned(),
            (None, false) => "unfinished".to_owned(),
        }
    }
}

pub fn add_usage(total: &mut Usage, usage: &Usage) {
    total.input_uncached += usage.input_uncached;
    total.cache_read += usage.cache_read;
    total.cache_write += usage.cache_write;
    total.output += usage.output;
    total.reasoning += usage.reasoning;
}

/// One model call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelCallFigures {
    pub ts: u64,
    pub provider: String,
    pub model: String,
    /// Zero where the provider reported no usage (see `usage_known`).
    pub usage: Usage,
    pub usage_known: bool,
    pub cost_usd: Option<f64>,
    pub duration_ms: u64,
    pub time_to_first_token_ms: Option<u64>,
    pub failed: bool,
}

/// One tool call's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolFigures {
    pub ts: u64,
    pub tool: String,
    pub is_error: bool,
    pub duration_ms: u64,
}

/// One permission decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecisionFigures {
    pub ts: u64,
    pub tool: Option<String>,
    pub allowed: bool,
    /// `policy`, `user` or `remembered`.
    pub source: String,
    pub wait_ms: Option<u64>,
}

#[derive(Deserialize)]
struct StartedView<'a> {
    #[serde(borrow)]
    workspace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client: Option<Cow<'a, str>>,
    #[serde(borrow)]
    provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CostView {
    usd: f64,
}

#[derive(Deserialize)]
struct ModelCallView<'a> {
    ts: u64,
    #[serde(borrow)]
    provider: Cow<'a, str>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    usage: Option<Usage>,
    cost: Option<CostView>,
    #[serde(default)]
    duration: u64,
    time_to_first_token: Option<u64>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct DetailView<'a> {
    #[serde(borrow)]
    tool: Option<Cow<'a, str>>,
    wait_ms: Option<u64>,
    #[serde(default)]
    files: Vec<FileView>,
}

#[derive(Deserialize)]
struct FileView {
    #[serde(default)]
    hunks: Vec<HunkView>,
}

#[derive(Deserialize)]
struct HunkView {
    #[serde(default)]
    new_lines: u64,
}

#[derive(Deserialize)]
struct ToolEndedView<'a> {
    ts: u64,
    #[serde(default)]
    is_error: bool,
    #[serde(default)]
    duration: u64,
    #[serde(borrow, default)]
    detail: DetailView<'a>,
}

#[derive(Deserialize)]
struct DecisionView<'a> {
    ts: u64,
    allowed: bool,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow, default)]
    detail: DetailView<'a>,
}

#[derive(Deserialize)]
struct TurnDoneView<'a> {
    #[serde(borrow)]
    end: Cow<'a, str>,
}

#[derive(Deserialize)]
struct EditView<'a> {
    #[serde(borrow)]
    decision: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    detail: DetailView<'a>,
}

#[derive(Deserialize)]
struct TimeView {
    ts: u64,
}

/// The figures of one session file.
pub fn summarize(file: &LedgerFile) -> Result<SessionSummary, LedgerError> {
    let mut summary = SessionSummary {
        session: file.session.clone(),
        ..SessionSummary::default()
    };
    let mut first = true;
    let mut last: Vec<u8> = Vec::new();
    let path = file.path.as_path();
    for_each_line(path, |number, line| {
        if first {
            first = false;
            if let Ok(view) = serde_json::from_slice::<TimeView>(line) {
                summary.started_ms = view.ts;
            }
        }
        last.clear();
        last.extend_from_slice(line);
        let kind: Cow<'_, [u8]> = match fast_kind(line) {
            Some(kind) => Cow::Borrowed(kind),
            None => match Line::parse(line) {
                Ok(parsed) => Cow::Owned(parsed.header.kind.into_bytes()),
                Err(error) => {
                    summary.unreadable_lines += 1;
                    return skipped(path, number, &error);
                }
            },
        };
        if let Err(error) = absorb(&mut summary, &kind, line) {
            summary.unreadable_lines += 1;
            skipped(path, number, &error);
        }
    })?;
    if let Ok(view) = serde_json::from_slice::<TimeView>(&last) {
        summary.ended_ms = view.ts;
    }
    Ok(summary)
}

fn absorb(summary: &mut SessionSummary, kind: &[u8], line: &[u8]) -> Result<(), serde_json::Error> {
    match kind {
        b"session_started" => {
            let view: StartedView = serde_json::from_slice(line)?;
            summary.workspace = view.workspace.map(Cow::into_owned);
            summary.client = view.client.map(Cow::into_owned);
            summary.provider = view.provider.map(Cow::into_owned);
            summary.model = view.model.map(Cow::into_owned);
        }
        b"turn_started" => summary.turns += 1,
        b"turn_done" => {
            let view: TurnDoneView = serde_json::from_slice(line)?;
            summary.last_end = Some(view.end.into_owned());
        }
        b"session_ended" => summary.finished = true,
        b"error" => summary.errors += 1,
        b"model_call" => {
            let view: ModelCallView = serde_json::from_slice(line)?;
            summary.calls.push(ModelCallFigures {
                ts: view.ts,
                provider: view.provider.into_owned(),
                model: view.model.into_owned(),
                usage_known: view.usage.is_some(),
                usage: view.usage.unwrap_or_default(),
                cost_usd: view.cost.map(|c| c.usd),
                duration_ms: view.duration,
                time_to_first_token_ms: view.time_to_first_token,
                failed: view.error.is_some(),
            });
        }
        b"tool_call_ended" => {
            let view: ToolEndedView = serde_json::from_slice(line)?;
            summary.tools.push(ToolFigures {
                ts: view.ts,
                tool: view
                    .detail
                    .tool
                    .map_or_else(|| "?".to_owned(), Cow::into_owned),
                is_error: view.is_error,
                duration_ms: view.duration,
            });
        }
        b"decision" => {
            let view: DecisionView = serde_json::from_slice(line)?;
            summary.decisions.push(DecisionFigures {
                ts: view.ts,
                tool: view.detail.tool.map(Cow::into_owned),
                allowed: view.allowed,
                source: view.source.into_owned(),
                wait_ms: view.detail.wait_ms,
            });
        }
        b"edit_applied" | b"proposal_decided" => {
            let view: EditView = serde_json::from_slice(line)?;
            if view.decision.as_deref().is_none_or(|d| d == "applied") {
                summary.edits += 1;
                summary.lines_added += view
                    .detail
                    .files
                    .iter()
                    .flat_map(|f| &f.hunks)
                    .map(|h| h.new_lines)
                    .sum::<u64>();
            }
        }
        _ => {}
    }
    Ok(())
}

/// The figures of every session in `dir`, oldest first, read on all cores.
pub fn summarize_all(dir: &Path) -> Result<Vec<SessionSummary>, LedgerError> {
    let files = super::reader::session_files(dir)?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(workers).max(1);
    let results: Vec<Result<Vec<SessionSummary>, LedgerError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(summarize).collect()))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(LedgerError::Usage("a reader thread panicked".into())))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(files.len());
    for part in results {
        all.extend(part?);
    }
    Ok(all)
}
