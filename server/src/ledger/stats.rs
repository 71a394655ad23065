//! `tack stats`: tokens (input uncached, cache read, cache write, output, reasoning), cost,
//! time, tool calls and approval figures, in total or grouped by day, model, session or tool,
//! from the sessions' summaries. User decisions (answered now, or remembered from an earlier
//! answer) are counted apart from the policy's.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::summary::{SessionSummary, add_usage};
use super::time;
use crate::providers::Usage;

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Total,
    Day,
    Model,
    Session,
    Tool,
}

impl GroupBy {
    pub fn parse(text: &str) -> Option<GroupBy> {
        Some(match text {
            "day" => GroupBy::Day,
            "model" => GroupBy::Model,
            "session" => GroupBy::Session,
            "tool" => GroupBy::Tool,
            _ => return None,
        })
    }
}

/// The figures of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub sessions: u64,
    pub model_calls: u64,
    pub failed_calls: u64,
    pub input_uncached_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Calls whose provider reported no usage (not counted as zero tokens, just unknown).
    pub calls_without_usage: u64,
    pub cost_usd: f64,
    /// Calls without a price: `cost_usd` leaves them out.
    pub calls_without_price: u64,
    pub model_time_ms: u64,
    pub session_time_ms: u64,
    pub tool_calls: u64,
    pub tool_errors: u64,
    pub tool_time_ms: u64,
    pub user_decisions: u64,
    pub user_approved: u64,
    pub user_rejected: u64,
    /// Time users took to answer approvals.
    pub approval_wait_ms: u64,
    pub policy_decisions: u64,
    pub policy_allowed: u64,
    pub policy_denied: u64,
    pub edits: u64,
    pub lines_added: u64,
}

impl Figures {
    pub fn usage(&self) -> Usage {
        Usage {
            input_uncached: self.input_uncached_tokens,
            cache_read: self.cache_read_tokens,
            cache_write: self.cache_write_tokens,
            output: self.output_tokens,
            reasoning: self.reasoning_tokens,
        }
    }

    fn add_usage(&mut self, usage: &Usage) {
        let mut total = self.usage();
        add_usage(&mut total, usage);
        self.input_uncached_tokens = total.input_uncached;
        self.cache_read_tokens = total.cache_read;
        self.cache_write_tokens = total.cache_write;
        self.output_tokens = total.output;
        self.reasoning_tokens = total.reasoning;
    }

    /// Share of user decisions that allowed; `None` without any.
    pub fn user_approval_rate(&self) -> Option<f64> {
        rate(self.user_approved, self.user_decisions)
    }

    pub fn user_rejection_rate(&self) -> Option<f64> {
        rate(self.user_rejected, self.user_decisions)
    }

    pub fn policy_denial_rate(&self) -> Option<f64> {
        rate(self.policy_denied, self.policy_decisions)
    }
}

/// `part / whole`; `None` when `whole` is 0.
pub fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// One row of `tack stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The group: a date, `provider/model`, a session id, a tool name, or `total`.
    pub key: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub user_approval_rate: Option<f64>,
    pub user_rejection_rate: Option<f64>,
    pub policy_denial_rate: Option<f64>,
}

/// The rows for `by`, over the events at or after `since_ms`.
pub fn compute(sessions: &[SessionSummary], by: GroupBy, since_ms: u64) -> Vec<Row> {
    let mut groups: BTreeMap<String, (Figures, BTreeSet<&str>)> = BTreeMap::new();
    let session_key = |s: &SessionSummary| -> String {
        match (&s.provider, &s.model) {
            (Some(p), Some(m)) => format!("{p}/{m}"),
            _ => "unknown".to_owned(),
        }
    };
    for session in sessions {
        let key_at = |ts: u64, model: Option<String>, tool: Option<&str>| -> Option<String> {
            Some(match by {
                GroupBy::Total => "total".to_owned(),
                GroupBy::Day => time::date(ts),
                GroupBy::Model => model.unwrap_or_else(|| session_key(session)),
                GroupBy::Session => session.session.clone(),
                GroupBy::Tool => tool?.to_owned(),
            })
        };
        if session.started_ms >= since_ms
            && let Some((figures, seen)) =
                entry(&mut groups, key_at(session.started_ms, None, None))
        {
            seen.insert(&session.session);
            figures.session_time_ms += session.ended_ms.saturating_sub(session.started_ms);
            figures.edits += u64::from(session.edits);
            figures.lines_added += session.lines_added;
        }
        for call in session.calls.iter().filter(|c| c.ts >= since_ms) {
            let model = format!("{}/{}", call.provider, call.model);
            let Some((figures, seen)) = entry(&mut groups, key_at(call.ts, Some(model), None))
            else {
                continue;
            };
            seen.insert(&session.session);
            figures.model_calls += 1;
            figures.failed_calls += u64::from(call.failed);
            if call.usage_known {
                figures.add_usage(&call.usage);
            } else if !call.failed {
                figures.calls_without_usage += 1;
            }
            match call.cost_usd {
                Some(cost) => figures.cost_usd += cost,
                None if !call.failed => figures.calls_without_price += 1,
                None => {}
            }
            figures.model_time_ms += call.duration_ms;
        }
        for tool in session.tools.iter().filter(|t| t.ts >= since_ms) {
            let Some((figures, seen)) = entry(&mut groups, key_at(tool.ts, None, Some(&tool.tool)))
            else {
                continue;
            };
            seen.insert(&session.session);
            figures.tool_calls += 1;
            figures.tool_errors += u64::from(tool.is_error);
            figures.tool_time_ms += tool.duration_ms;
        }
        for decision in session.decisions.iter().filter(|d| d.ts >= since_ms) {
            let tool = decision.tool.as_deref().unwrap_or("?");
            let Some((figures, seen)) = entry(&mut groups, key_at(decision.ts, None, Some(tool)))
            else {
                continue;
            };
            seen.insert(&session.session);
            if decision.source == "policy" {
                figures.policy_decisions += 1;
                figures.policy_allowed += u64::from(decision.allowed);
                figures.policy_denied += u64::from(!decision.allowed);
            } else {
                figures.user_decisions += 1;
                figures.user_approved += u64::from(decision.allowed);
                figures.user_rejected += u64::from(!decision.allowed);
                figures.approval_wait_ms += decision.wait_ms.unwrap_or(0);
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, (mut figures, seen))| {
            figures.sessions = seen.len() as u64;
            Row {
                key,
                user_approval_rate: figures.user_approval_rate(),
                user_rejection_rate: figures.user_rejection_rate(),
                policy_denial_rate: figures.policy_denial_rate(),
                figures,
            }
        })
        .collect()
}

/// The group under `key`, created empty; `None` when the event has no key in this grouping.
fn entry<'g, 's>(
    groups: &'g mut BTreeMap<String, (Figures, BTreeSet<&'s str>)>,
    key: Option<String>,
) -> Option<&'g mut (Figures, BTreeSet<&'s str>)> {
    Some(groups.entry(key?).or_default())
}

/// The rows as a table.
pub fn render(rows: &[Row], by: GroupBy) -> String {
    if rows.is_empty() {
        return "no sessions in the ledger for this period\n".to_owned();
    }
    let title = match by {
        GroupBy::Total => "",
        GroupBy::Day => "day",
        GroupBy::Model => "model",
        GroupBy::Session => "session",
        GroupBy::Tool => "tool",
    };
    let mut out = String::new();
    let pct =
        |rate: Option<f64>| rate.map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0));
    if by == GroupBy::Tool {
        out.push_str(&format!(
            "{title:<24} {:>7} {:>7} {:>9}  {:>9} {:>9} {:>9}  {:>8} {:>8}\n",
            "calls", "errors", "time s", "user ok", "user no", "wait s", "policy ok", "policy no"
        ));
        for row in rows {
            let f = &row.figures;
            out.push_str(&format!(
                "{:<24} {:>7} {:>7} {:>9.1}  {:>9} {:>9} {:>9.1}  {:>8} {:>8}\n",
                row.key,
                f.tool_calls,
                f.tool_errors,
                f.tool_time_ms as f64 / 1000.0,
                f.user_approved,
                f.user_rejected,
                f.approval_wait_ms as f64 / 1000.0,
                f.policy_allowed,
                f.policy_denied,
            ));
        }
        return out;
    }
    out.push_str(&format!(
        "{title:<32} {:>5} {:>6} {:>10} {:>10} {:>10} {:>9} {:>9} {:>10} {:>8} {:>6} {:>11}\n",
        "sess",
        "calls",
        "in",
        "cache rd",
        "cache wr",
        "out",
        "reason",
        "cost $",
        "model s",
        "tools",
        "user ok/no"
    ));
    for row in rows {
        let f = &row.figures;
        let unpriced = if f.calls_without_price > 0 { "+?" } else { "" };
        out.push_str(&format!(
            "{:<32} {:>5} {:>6} {:>10} {:>10} {:>10} {:>9} {:>9} {:>10} {:>8.1} {:>6} {:>11}\n",
            row.key,
            f.sessions,
            f.model_calls,
            f.input_uncached_tokens,
            f.cache_read_tokens,
            f.cache_write_tokens,
            f.output_tokens,
            f.reasoning_tokens,
            format!("{:.4}{unpriced}", f.cost_usd),
            f.model_time_ms as f64 / 1000.0,
            f.tool_calls,
            format!("{}/{}", f.user_approved, f.user_rejected),
        ));
    }
    let total: u64 = rows.iter().map(|r| r.figures.user_decisions).sum();
    if total > 0 && by == GroupBy::Total {
        let f = &rows[0].figures;
        out.push_str(&format!(
            "user decisions: {} ({} approved, {} rejected); policy decisions: {} ({} denied)\n",
            f.user_decisions,
            pct(f.user_approval_rate()),
            pct(f.user_rejection_rate()),
            f.policy_decisions,
            pct(f.policy_denial_rate()),
        ));
    }
    if rows.iter().any(|r| r.figures.calls_without_price > 0) {
        out.push_str("+? : some calls had no price in the catalog; their cost is not included\n");
    }
    out
}
