//! What the ledger commands print: `tack sessions`, `tack log`, `tack stats`,
//! `tack survival` and `tack export`. Each returns its text; `main.rs` writes it.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::reader::{find_session, read_lines};
use super::record::Line;
use super::stats::{self, GroupBy};
use super::summary::{SessionSummary, summarize_all};
use super::{LedgerError, LedgerSettings, now_ms, time};

/// `tack sessions`: the newest `limit` sessions (all with `None`), newest last.
pub fn sessions(
    settings: &LedgerSettings,
    limit: Option<usize>,
    json: bool,
) -> Result<String, LedgerError> {
    let mut all = summarize_all(&settings.dir)?;
    all.sort_by_key(|s| s.started_ms);
    let shown = &all[all.len().saturating_sub(limit.unwrap_or(usize::MAX))..];
    if json {
        let rows: Vec<Value> = shown.iter().map(session_json).collect();
        return Ok(serde_json::to_string_pretty(&rows).unwrap_or_default());
    }
    if shown.is_empty() {
        return Ok(format!(
            "no sessions in {} yet (`tack run` and editor runs write them)\n",
            settings.dir.display()
        ));
    }
    let mut out = format!(
        "{:<26} {:<16} {:<28} {:<30} {:>5} {:>10} {:>9}  {}\n",
        "session", "started (UTC)", "where", "model", "turns", "tokens", "cost $", "outcome"
    );
    for session in shown {
        let usage = session.usage();
        let cost = session
            .cost_usd()
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.4}"));
        let model = match (&session.provider, &session.model) {
            (Some(p), Some(m)) => format!("{p}/{m}"),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<26} {:<16} {:<28} {:<30} {:>5} {:>10} {:>9}  {}",
            session.session,
            time::minute(session.started_ms),
            shorten_left(session.workspace.as_deref().unwrap_or("-"), 28),
            shorten_left(&model, 30),
            session.turns,
            usage.total_input() + usage.output,
            cost,
            session.outcome()
        );
    }
    if all.len() > shown.len() {
        let _ = writeln!(
            out,
            "({} older sessions; --all lists them)",
            all.len() - shown.len()
        );
    }
    Ok(out)
}

fn session_json(session: &SessionSummary) -> Value {
    let usage = session.usage();
    json!({
        "session": session.session,
        "started": time::iso8601(session.started_ms),
        "ended": time::iso8601(session.ended_ms),
        "workspace": session.workspace,
        "client": session.client,
        "provider": session.provider,
        "model": session.model,
        "turns": session.turns,
        "model_calls": session.calls.len(),
        "usage": usage,
        "cost_usd": session.cost_usd(),
        "tool_calls": session.tools.len(),
        "edits": session.edits,
        "lines_added": session.lines_added,
        "outcome": session.outcome(),
    })
}

fn shorten_left(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(count - (width - 1)).collect();
    format!("…{tail}")
}

/// `tack stats`.
pub fn stats(
    settings: &LedgerSettings,
    by: Option<&str>,
    since: Option<&str>,
    json: bool,
) -> Result<String, LedgerError> {
    let by = match by {
        None => GroupBy::Total,
        Some(text) => GroupBy::parse(text).ok_or_else(|| {
            LedgerError::Usage(format!("--by {text:?}: use day, model, session or tool"))
        })?,
    };
    let since = since
        .map(|text| time::parse_since(text, now_ms()))
        .transpose()?
        .unwrap_or(0);
    let sessions = summarize_all(&settings.dir)?;
    let rows = stats::compute(&sessions, by, since);
    if json {
        return Ok(serde_json::to_string_pretty(&rows).unwrap_or_default());
    }
    Ok(stats::render(&rows, by))
}

/// `tack log <id>`: a session replayed as readable text.
pub fn log(settings: &LedgerSettings, id: &str) -> Result<String, LedgerError> {
    let file = find_session(&settings.dir, id)?;
    let lines = read_lines(&file.path)?;
    let mut out = String::new();
    for line in &lines {
        render_line(&mut out, line);
    }
    Ok(out)
}

fn render_line(out: &mut String, line: &Line) {
    let at = time::iso8601(line.header.ts);
    let s = |key: &str| line.str(key).unwrap_or("").to_owned();
    match line.kind() {
        "session_started" => {
            let git = line.get("git");
            let git = if git.is_null() {
                "not a git repository".to_owned()
            } else {
                format!(
                    "git {} {}{}",
                    git["branch"].as_str().unwrap_or("(detached)"),
                    git["head"]
                        .as_str()
                        .map_or("(no commit)", |h| &h[..h.len().min(12)]),
                    if git["dirty"] == true { ", dirty" } else { "" }
                )
            };
            let _ = writeln!(
                out,
                "── session {} · {} · {} · {}/{} · {git} · started {at}",
                line.header.session,
                s("client"),
                s("workspace"),
                s("provider"),
                s("model")
            );
        }
        "turn_started" => {
            let _ = writeln!(out, "\n## prompt ({at})\n{}\n", s("text"));
        }
        "context_sent" => {
            let items: Vec<String> = line
                .get("items")
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| {
                    let name = item["uri"]
                        .as_str()
                        .and_then(|u| u.rsplit('/').next())
                        .map(|n| format!(" {n}"))
                        .unwrap_or_default();
                    format!(
                        "{}{name} {}",
                        item["kind"].as_str().unwrap_or("?"),
                        item["tokens"].as_u64().unwrap_or(0)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  → call {} context (tokens): {}",
                line.u64("call").unwrap_or(0),
                items.join(", ")
            );
        }
        "model_call" => {
            let usage = line.get("usage");
            let cost = &line.get("cost");
            let figures = if usage.is_null() {
                "usage not reported".to_owned()
            } else {
                format!(
                    "in {} (cache read {}, write {}) out {} (reasoning {})",
                    usage["input_uncached"],
                    usage["cache_read"],
                    usage["cache_write"],
                    usage["output"],
                    usage["reasoning"]
                )
            };
            let price = if cost.is_null() {
                "no price".to_owned()
            } else {
                format!(
                    "${:.4} ({} {})",
                    cost["usd"].as_f64().unwrap_or(0.0),
                    s("price_source"),
                    cost["prices_as_of"].as_str().unwrap_or("")
                )
            };
            let ttft = line
                .u64("time_to_first_token")
                .map(|t| format!(", first token {:.2} s", t as f64 / 1000.0))
                .unwrap_or_default();
            let outcome = match line.str("error") {
                Some(error) => format!("failed: {error}"),
                None => match line.get("stop_reason") {
                    Value::String(reason) => format!("stop {reason}"),
                    other => format!("stop {other}"),
                },
            };
            let _ = writeln!(
                out,
                "  ← call {} {}/{} ({}): {:.2} s{ttft}, {} attempt(s), {outcome}; {figures}; {price}",
                line.u64("call").unwrap_or(0),
                s("provider"),
                s("model"),
                s("purpose"),
                line.u64("duration").unwrap_or(0) as f64 / 1000.0,
                line.u64("attempts").unwrap_or(0),
            );
        }
        "text_delta" => {
            let _ = writeln!(out, "{}", s("text").trim_end());
        }
        "thinking_delta" => {
            let _ = writeln!(
                out,
                "  (thinking) {}",
                s("text").trim_end().replace('\n', "\n  ")
            );
        }
        "tool_call_begun" => {
            let _ = writeln!(out, "▸ {} {}", s("name"), s("arguments"));
        }
        "approval_asked" => {
            let _ = writeln!(out, "? approval asked for {}:\n{}", s("tool"), s("summary"));
        }
        "decision" => {
            let wait = line
                .detail("wait_ms")
                .as_u64()
                .map(|w| format!(" after {:.1} s", w as f64 / 1000.0))
                .unwrap_or_default();
            let verdict = if line.get("allowed") == true {
                "allowed"
            } else {
                "denied"
            };
            let _ = writeln!(out, "  {verdict} by {}{wait}", s("source"));
        }
        "tool_call_ended" => {
            let mark = if line.get("is_error") == true {
                "✗"
            } else {
                "→"
            };
            let _ = writeln!(out, "  {mark} {}", s("summary").replace('\n', "\n    "));
        }
        "edit_applied" | "edit_drafted" => {
            let _ = writeln!(out, "{}", s("diff").trim_end());
            if let Some(change) = line.u64("change") {
                let _ = writeln!(out, "  (snapshot change {change}; {})", added_lines(line));
            }
        }
        "proposal_shown" => {
            let _ = writeln!(
                out,
                "  proposal {}: {} ({} hunk(s) in {})",
                line.get("proposal"),
                s("summary"),
                line.get("hunks"),
                join(line.get("files"))
            );
        }
        "proposal_decided" => {
            let hunk = line
                .u64("hunk")
                .map(|h| format!(" hunk {}", h + 1))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  proposal {}{hunk} {} in {} ({}; {})",
                line.get("proposal"),
                s("decision"),
                join(line.get("files")),
                line.detail("acceptance").as_str().unwrap_or("?"),
                added_lines(line)
            );
        }
        "changes_restored" => {
            let _ = writeln!(
                out,
                "↶ {} of change(s) {} in {}",
                s("kind"),
                join(line.get("changes")),
                join(line.get("files"))
            );
        }
        "diagnostics_changed" => {
            let count = |key: &str| line.get(key).as_array().map_or(0, Vec::len);
            let _ = writeln!(
                out,
                "  diagnostics: {} introduced, {} fixed",
                count("introduced"),
                count("fixed")
            );
        }
        "compacted" => {
            let _ = writeln!(
                out,
                "  (history compacted at {} tokens)",
                line.get("tokens_before")
            );
        }
        "error" => {
            let _ = writeln!(out, "error: {}", s("message"));
        }
        "turn_done" => {
            let _ = writeln!(out, "  turn ended: {}", s("end"));
        }
        "session_ended" => {
            let _ = writeln!(
                out,
                "── session ended {at}: {} turn(s), {} model call(s), cost {}",
                line.get("turns"),
                line.get("model_calls"),
                line.get("cost_usd")
                    .as_f64()
                    .map_or_else(|| "unknown".to_owned(), |c| format!("${c:.4}"))
            );
        }
        "usage" => {}
        other => {
            let mut fields = line.fields.clone();
            for key in ["v", "type", "session", "seq", "ts", "turn"] {
                fields.remove(key);
            }
            let _ = writeln!(out, "  [{other}] {}", Value::Object(fields));
        }
    }
}

fn join(value: &Value) -> String {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect::<Vec<_>>()
        .join(", ")
}

fn added_lines(line: &Line) -> String {
    let added: u64 = line
        .detail("files")
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["hunks"].as_array().into_iter().flatten())
        .map(|h| h["new_lines"].as_u64().unwrap_or(0))
        .sum();
    format!("{added} line(s) added")
}

/// `tack survival`.
pub fn survival(
    settings: &LedgerSettings,
    folder: &std::path::Path,
    days: u64,
    json: bool,
) -> Result<String, LedgerError> {
    let report = super::survival::survival(settings, folder, days, now_ms())?;
    if json {
        return Ok(serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    Ok(super::survival::render(&report))
}

/// `tack export`: `jsonl`, `csv`, `ccusage` print; `otlp` and `activitywatch` send.
pub async fn export(
    settings: &LedgerSettings,
    format: &str,
    since: Option<&str>,
    session: Option<&str>,
    activitywatch_url: &str,
    pulsetime_secs: u64,
) -> Result<String, LedgerError> {
    let selection = super::export::Selection {
        since_ms: since
            .map(|text| time::parse_since(text, now_ms()))
            .transpose()?
            .unwrap_or(0),
        session: session.map(str::to_owned),
    };
    match format {
        "jsonl" => super::export::jsonl(settings, &selection),
        "csv" => super::export::csv(settings, &selection),
        "ccusage" => super::export::ccusage(settings, &selection),
        "otlp" => {
            let target = super::otlp::OtlpTarget::from_env(|name| std::env::var(name).ok())?;
            super::otlp::send(&target, &selection.lines(settings)?).await
        }
        "activitywatch" => {
            super::activitywatch::send(
                activitywatch_url,
                pulsetime_secs,
                &selection.lines(settings)?,
            )
            .await
        }
        other => Err(LedgerError::Usage(format!(
            "--format {other:?}: use jsonl, csv, ccusage, otlp or activitywatch"
        ))),
    }
}
