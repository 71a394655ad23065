//! The agent protocol as data: [`Submission`]s go into a session, [`AgentEvent`]s come out.
//!
//! The terminal front end, the editor front end and the tests consume the same events; the
//! ledger and `--json` output write them as JSON lines (`{"type": "text_delta", ...}`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::providers::{Cost, StopReason, Usage};

/// What a front end sends into a running session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Submission {
    /// A task or follow-up from the user; starts a turn (queued if one is running).
    /// `context`: what the front end assembled into `text` (the editor's selection,
    /// definitions, repository map …), item by item, for the ledger's `context_sent`.
    UserTurn {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        context: Vec<ContextItem>,
    },
    /// The answer to an [`AgentEvent::ApprovalAsked`] with the same `id`. `remember` applies
    /// the answer to the rest of the session (the same command line for `run_command`, the
    /// whole tool otherwise).
    ApprovalAnswer {
        id: String,
        allow: bool,
        remember: bool,
    },
    /// Stops the running turn: the model stream is dropped, commands are killed, and no edit
    /// is left half-applied.
    Cancel,
}

/// Who made a permission decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    /// The configured policy (or `--yes`).
    Policy,
    /// The user, answering this very question.
    User,
    /// An earlier answer the user asked to remember for the session.
    Remembered,
}

/// Why a turn ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnEnd {
    /// The model answered without calling a tool.
    Completed,
    /// The model hit its output limit.
    MaxOutputTokens,
    /// The provider filtered the answer.
    ContentFilter,
    /// `max_turns` model requests were made in this turn.
    MaxTurns,
    /// The same failing tool call was repeated too often.
    DoomLoop,
    /// The user cancelled.
    Cancelled,
    /// The model call failed (the error went out as [`AgentEvent::Error`] first).
    Failed,
}

/// What the user did with a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalDecision {
    Applied,
    Rejected,
    /// Applying failed: the editor refused the edit, or the text changed since.
    Refused,
}

/// Which way a restore moved the undo stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreDirection {
    Undo,
    Redo,
}

/// One diagnostic in an event: where, how bad, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticLine {
    /// Workspace-relative path.
    pub path: String,
    /// 1-based.
    pub line: u32,
    pub severity: super::feedback::Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One piece of what a model call was sent: the ledger's "context items". Items partition
/// the request (the conversation item counts the history without the diagnostics blocks,
/// which are items of their own), so their tokens add up to about the request's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextItem {
    /// What it is: `system_prompt`, `instructions`, `tools`, `diagnostics`, `conversation`;
    /// later sources add their own kinds (`repo_map`, `enclosing_symbol`, …).
    pub kind: String,
    /// The file it came from, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The lines of that file it covers, when not the whole file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<LineRange>,
    /// Why it was sent.
    pub reason: String,
    /// Estimated tokens: bytes / 4, rounded up (no tokenizer is shipped per model).
    pub tokens: u64,
    /// `sha256:` and the hex SHA-256 of the item's text, so equal content is recognizable
    /// without being stored.
    pub hash: String,
}

impl ContextItem {
    /// An item of `kind` for `text`, with its token estimate and hash.
    pub fn new(kind: &str, reason: &str, text: &str) -> ContextItem {
        ContextItem {
            kind: kind.to_owned(),
            uri: None,
            range: None,
            reason: reason.to_owned(),
            tokens: estimate_tokens(text),
            hash: sha256_hex(text.as_bytes()),
        }
    }
}

/// 1-based, inclusive lines of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRange {
    pub start: u32,
    pub end: u32,
}

/// Tokens of a text, estimated at 4 bytes each.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// `sha256:` followed by the lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The state of the workspace's git repository when a session started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    /// The commit HEAD points at (`None` in a repository without commits).
    pub head: Option<String>,
    /// The branch HEAD names (`None` when detached).
    pub branch: Option<String>,
    /// Whether tracked files differ from HEAD or untracked files exist.
    pub dirty: bool,
}

/// What a model call was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPurpose {
    /// A step of a user turn.
    Turn,
    /// The summary that compacts the history.
    Compaction,
}

/// What [`AgentEvent::SessionStarted`] tells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStart {
    /// The session id (the snapshot and ledger session).
    pub session: String,
    /// Who drives the session: `tack run`, or the editor's `clientInfo` name and version.
    pub client: String,
    /// The workspace root.
    pub workspace: String,
    pub provider: String,
    pub model: String,
    /// `None` when the workspace is not in a git repository.
    pub git: Option<GitState>,
    /// [`sha256_hex`] of the system prompt (instructions included) and of the tool
    /// declarations as sent.
    pub system_prompt_hash: String,
    pub tools_hash: String,
    pub tools: Vec<String>,
    pub tack_version: String,
}

/// What [`AgentEvent::ModelCall`] tells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelCallReport {
    pub call: u32,
    pub purpose: CallPurpose,
    pub provider: String,
    pub model: String,
    /// From sending the request to the first streamed event; `None` when none came.
    #[serde(with = "millis_option")]
    pub time_to_first_token: Option<Duration>,
    #[serde(with = "millis")]
    pub duration: Duration,
    /// `None` when the call failed.
    pub stop_reason: Option<StopReason>,
    /// HTTP attempts, retries included (`None` when the call failed).
    pub attempts: Option<u32>,
    /// Normalized usage; `None` when the provider reported none (unknown, not zero).
    pub usage: Option<Usage>,
    /// The provider's own usage object(s), untouched.
    pub raw_usage: serde_json::Value,
    pub cost: Option<Cost>,
    /// Where the price came from: `catalog` (its date is in `cost`), `local` (free), or
    /// `None` when there is no price.
    pub price_source: Option<String>,
    pub error: Option<String>,
}

/// What a session tells its front end, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The session is set up; always its first event.
    SessionStarted(Box<SessionStart>),
    /// What the next model request carries, item by item; `call` numbers the session's
    /// model calls from 1 and matches the [`AgentEvent::ModelCall`] that follows.
    ContextSent {
        call: u32,
        items: Vec<ContextItem>,
    },
    /// One model call ended (answered or failed).
    ModelCall(Box<ModelCallReport>),
    /// The session ended (its submissions closed); always its last event.
    SessionEnded {
        turns: u32,
        model_calls: u32,
        usage: Usage,
        cost_usd: Option<f64>,
        files_changed: Vec<String>,
        last_end: Option<TurnEnd>,
    },
    /// A turn began for this user text.
    TurnStarted {
        text: String,
    },
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        text: String,
    },
    /// The model called a tool; `arguments` is its JSON text as sent.
    ToolCallBegun {
        id: String,
        name: String,
        arguments: String,
    },
    /// A tool call finished. `summary` is the first line(s) of what the model was told.
    ToolCallEnded {
        id: String,
        summary: String,
        is_error: bool,
        #[serde(with = "millis")]
        duration: Duration,
    },
    /// The policy says ask: the front end answers with [`Submission::ApprovalAnswer`].
    ApprovalAsked {
        id: String,
        tool: String,
        summary: String,
    },
    Decision {
        id: String,
        allowed: bool,
        source: DecisionSource,
    },
    /// A mutating tool wrote files; `change` is its snapshot (undo target).
    EditApplied {
        paths: Vec<String>,
        change: u32,
        diff: String,
    },
    /// In the editor: a mutating tool changed the run's working copy; nothing is on disk
    /// or in the editor yet (see [`super::DraftSet`]).
    EditDrafted {
        paths: Vec<String>,
        diff: String,
    },
    /// In the editor: a run's change set is offered for review (mode `propose`).
    ProposalShown {
        proposal: u32,
        summary: String,
        files: Vec<String>,
        hunks: u32,
    },
    /// The user's decision on a proposal, or on one hunk of it (`hunk`: 0-based within
    /// `files[0]`). `change` is the snapshot of what was applied.
    ProposalDecided {
        proposal: u32,
        decision: ProposalDecision,
        files: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hunk: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Snapshot changes undone or redone from the editor.
    ChangesRestored {
        kind: RestoreDirection,
        changes: Vec<u32>,
        files: Vec<String>,
    },
    /// What an edit did to the diagnostics of the files it touched.
    DiagnosticsChanged {
        introduced: Vec<DiagnosticLine>,
        fixed: Vec<DiagnosticLine>,
        /// Servers that had not answered by the deadline (their silence is not "clean").
        pending_servers: Vec<String>,
        failed_servers: Vec<String>,
    },
    /// One model call's usage; `cost` is `None` when the catalog has no price.
    Usage {
        /// `None` when the provider did not report usage (unknown, not zero).
        usage: Option<Usage>,
        cost: Option<Cost>,
    },
    /// The history was replaced by the user's requests and this summary (the context window
    /// was filling up).
    Compacted {
        tokens_before: u64,
        summary: String,
    },
    TurnDone {
        end: TurnEnd,
    },
    Error {
        message: String,
    },
}

/// Durations as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Optional durations as whole milliseconds, or `null`.
mod millis_option {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::millis::serialize(duration, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_json_lines() {
        let event = AgentEvent::ToolCallEnded {
            id: "c1".into(),
            summary: "ok".into(),
            is_error: false,
            duration: Duration::from_millis(1500),
        };
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"type":"tool_call_ended","id":"c1","summary":"ok","is_error":false,"duration":1500}"#
        );
        let done = serde_json::to_value(AgentEvent::TurnDone {
            end: TurnEnd::DoomLoop,
        })
        .unwrap();
        assert_eq!(
            done,
            serde_json::json!({"type": "turn_done", "end": "doom_loop"})
        );
    }

    #[test]
    fn submissions_round_trip() {
        let answer = Submission::ApprovalAnswer {
            id: "c7".into(),
            allow: true,
            remember: false,
        };
        let text = serde_json::to_string(&answer).unwrap();
        assert_eq!(serde_json::from_str::<Submission>(&text).unwrap(), answer);
        assert_eq!(
            serde_json::from_str::<Submission>(r#"{"type":"cancel"}"#).unwrap(),
            Submission::Cancel
        );
    }
}
