//! [`LedgerWriter`]: appends a session's events to its ledger file as they happen.
//!
//! It consumes the same [`AgentEvent`]s as the front end beside it, serialized generically, so
//! an event variant added to the protocol later is logged without a change here. What it adds
//! goes into `detail`: the tool a decision or result belongs to, how long an approval waited,
//! and for every applied change the files' blob ids before and after, the hunks, a hash per
//! added line and whether the proposal was accepted fully, partly or rejected.
//!
//! Each line is written with one `write` on a file opened for append (no buffering in tack),
//! so a process killed at any moment leaves every completed line on disk. A torn line left by
//! a crash mid-write is sealed with a newline before the next append, as the snapshot log
//! does. Streamed text deltas are joined into one line per run of deltas (written when the
//! next other event arrives, or on drop): a line per token would make the file mostly
//! framing.
//!
//! Secrets are always redacted (every string passes the providers' [`Redactor`]); prompts and
//! file content are replaced by their length and hash when `[ledger]` says so. A failing
//! write is logged once and never stops the session.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::record::{Header, SCHEMA_VERSION, format_line, line_hash};
use super::{LedgerError, LedgerSettings, now_ms};
use crate::agent::AgentEvent;
use crate::agent::protocol::sha256_hex;
use crate::providers::Redactor;
use crate::snapshots::{ChangeId, SnapshotStore};

/// Fields holding what the user asked or the model said, per event type.
const PROMPT_FIELDS: &[(&str, &str)] = &[
    ("turn_started", "text"),
    ("text_delta", "text"),
    ("thinking_delta", "text"),
    ("compacted", "summary"),
    ("proposal_shown", "summary"),
];

/// Fields holding file content (diffs, arguments that carry text, results), per event type.
const CONTENT_FIELDS: &[(&str, &str)] = &[
    ("tool_call_begun", "arguments"),
    ("tool_call_ended", "summary"),
    ("approval_asked", "summary"),
    ("edit_applied", "diff"),
    ("edit_drafted", "diff"),
];

/// One session's ledger file, open for appending.
pub struct LedgerWriter {
    path: PathBuf,
    file: Option<File>,
    session: String,
    seq: u64,
    turn: u32,
    settings: LedgerSettings,
    redactor: Redactor,
    store: Option<Arc<SnapshotStore>>,
    /// A run of text (or thinking) deltas not written yet: (type, text, time of the first).
    deltas: Option<(&'static str, String, u64)>,
    /// Tool call id → tool name.
    tools: HashMap<String, String>,
    /// Tool call id → when its approval was asked.
    asked: HashMap<String, u64>,
    /// Proposal → (hunks offered, hunks applied, hunks rejected).
    proposals: HashMap<u32, (u32, u32, u32)>,
    warned: bool,
}

impl LedgerWriter {
    /// Opens (creating the folder and file) `<settings.dir>/<session>.jsonl` for appending.
    /// An existing file is continued: its sequence numbers go on. `store` is the session's
    /// snapshot store, where applied changes' contents are read for their hunks.
    pub fn open(
        settings: &LedgerSettings,
        session: &str,
        redactor: Redactor,
        store: Option<Arc<SnapshotStore>>,
    ) -> Result<LedgerWriter, LedgerError> {
        std::fs::create_dir_all(&settings.dir).map_err(|e| LedgerError::io(&settings.dir, e))?;
        let path = session_path(&settings.dir, session);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| LedgerError::io(&path, e))?;
        let (seq, turn) = last_position(&path);
        Ok(LedgerWriter {
            path,
            file: Some(file),
            session: session.to_owned(),
            seq,
            turn,
            settings: settings.clone(),
            redactor,
            store,
            deltas: None,
            tools: HashMap::new(),
            asked: HashMap::new(),
            proposals: HashMap::new(),
            warned: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event.
    pub fn record(&mut self, event: &AgentEvent) {
        self.record_with(event, Map::new());
    }

    /// Appends one event with what the front end knows beside it (`detail` fields, such as
    /// the editor's document versions).
    pub fn record_with(&mut self, event: &AgentEvent, mut detail: Map<String, Value>) {
        let Ok(Value::Object(mut fields)) = serde_json::to_value(event) else {
            return;
        };
        let Some(kind) = fields
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return;
        };
        if let AgentEvent::TextDelta { text } | AgentEvent::ThinkingDelta { text } = event {
            let kind = if matches!(event, AgentEvent::TextDelta { .. }) {
                "text_delta"
            } else {
                "thinking_delta"
            };
            match &mut self.deltas {
                Some((pending, joined, _)) if *pending == kind => joined.push_str(text),
                _ => {
                    self.flush_deltas();
                    self.deltas = Some((kind, text.clone(), now_ms()));
                }
            }
            return;
        }
        self.flush_deltas();
        if matches!(event, AgentEvent::TurnStarted { .. }) {
            self.turn += 1;
        }
        self.enrich(event, &mut detail);
        self.write(&kind, &mut fields, detail, now_ms());
    }

    /// Writes the pending run of deltas, if any.
    pub fn flush_deltas(&mut self) {
        if let Some((kind, text, ts)) = self.deltas.take() {
            let mut fields = Map::new();
            fields.insert("text".to_owned(), Value::String(text));
            self.write(kind, &mut fields, Map::new(), ts);
        }
    }

    fn write(
        &mut self,
        kind: &str,
        fields: &mut Map<String, Value>,
        detail: Map<String, Value>,
        ts: u64,
    ) {
        self.redact(kind, fields);
        self.seq += 1;
        let header = Header {
            v: SCHEMA_VERSION,
            kind: kind.to_owned(),
            session: self.session.clone(),
            seq: self.seq,
            ts,
            turn: self.turn,
        };
        let mut detail = Value::Object(detail);
        redact_secrets(&self.redactor, &mut detail);
        let Value::Object(detail) = detail else {
            return;
        };
        let mut line = format_line(&header, fields, &detail).into_bytes();
        line.push(b'\n');
        if let Err(error) = self.append(line)
            && !self.warned
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot write the session ledger");
            self.warned = true;
        }
    }

    fn append(&mut self, mut line: Vec<u8>) -> std::io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            file.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                line.insert(0, b'\n');
            }
        }
        file.write_all(&line)
    }

    /// Secrets always; prompts and file content as configured.
    fn redact(&self, kind: &str, fields: &mut Map<String, Value>) {
        let hide = |list: &[(&str, &str)], fields: &mut Map<String, Value>| {
            for (event, field) in list {
                if *event == kind
                    && let Some(Value::String(text)) = fields.get_mut(*field)
                {
                    *text = redacted_text(text);
                }
            }
        };
        if !self.settings.record_prompts {
            hide(PROMPT_FIELDS, fields);
        }
        if !self.settings.record_file_content {
            hide(CONTENT_FIELDS, fields);
        }
        for value in fields.values_mut() {
            redact_secrets(&self.redactor, value);
        }
    }

    /// What the ledger adds to an event.
    fn enrich(&mut self, event: &AgentEvent, detail: &mut Map<String, Value>) {
        match event {
            AgentEvent::ToolCallBegun { id, name, .. } => {
                self.tools.insert(id.clone(), name.clone());
            }
            AgentEvent::ApprovalAsked { id, tool, .. } => {
                self.tools.entry(id.clone()).or_insert_with(|| tool.clone());
                self.asked.insert(id.clone(), now_ms());
            }
            AgentEvent::Decision { id, .. } => {
                if let Some(tool) = self.tools.get(id) {
                    detail.insert("tool".to_owned(), json!(tool));
                }
                if let Some(asked) = self.asked.remove(id) {
                    detail.insert("wait_ms".to_owned(), json!(now_ms().saturating_sub(asked)));
                }
            }
            AgentEvent::ToolCallEnded { id, .. } => {
                if let Some(tool) = self.tools.get(id) {
                    detail.insert("tool".to_owned(), json!(tool));
                }
            }
            AgentEvent::EditApplied { change, .. } => {
                detail.insert("acceptance".to_owned(), json!("full"));
                self.change_files(ChangeId(*change), detail);
            }
            AgentEvent::ProposalShown {
                proposal, hunks, ..
            } => {
                self.proposals.insert(*proposal, (*hunks, 0, 0));
            }
            AgentEvent::ProposalDecided {
                proposal,
                decision,
                hunk,
                change,
                ..
            } => {
                let tally = self.proposals.entry(*proposal).or_insert((0, 0, 0));
                let (offered, applied, rejected) = tally;
                let remaining = offered.saturating_sub(*applied + *rejected).max(1);
                let count = if hunk.is_some() { 1 } else { remaining };
                match decision {
                    crate::agent::ProposalDecision::Applied => *applied += count,
                    crate::agent::ProposalDecision::Rejected => *rejected += count,
                    crate::agent::ProposalDecision::Refused => {}
                }
                let (offered, applied, rejected) = *tally;
                let acceptance = if applied + rejected < offered {
                    "pending"
                } else if rejected == 0 {
                    "full"
                } else if applied == 0 {
                    "rejected"
                } else {
                    "partial"
                };
                detail.insert(
                    "hunks".to_owned(),
                    json!({ "offered": offered, "applied": applied, "rejected": rejected }),
                );
                detail.insert("acceptance".to_owned(), json!(acceptance));
                if let Some(change) = change {
                    self.change_files(ChangeId(*change), detail);
                }
            }
            _ => {}
        }
    }

    /// `detail.files` for a snapshot change: per file the blob ids before and after, the
    /// hunks, and a hash per added line (see [`line_hash`]).
    fn change_files(&self, change: ChangeId, detail: &mut Map<String, Value>) {
        let Some(store) = &self.store else { return };
        let record = match store.changes(&self.session) {
            Ok(changes) => changes.into_iter().find(|c| c.id == change),
            Err(error) => {
                tracing::debug!(%error, "no snapshot record for the ledger");
                None
            }
        };
        let Some(record) = record else { return };
        let text = |version: Option<&crate::snapshots::FileVersion>| -> Option<String> {
            let bytes = store.version_bytes(version?).ok()??;
            String::from_utf8(bytes).ok()
        };
        let mut files = Vec::new();
        for file in &record.files {
            let before = text(file.before.as_ref());
            let after = text(file.after.as_ref());
            let mut entry = json!({
                "path": file.path,
                "before": file.before.as_ref().map(|v| &v.blob),
                "after": file.after.as_ref().map(|v| &v.blob),
            });
            if file.after.is_some() && after.is_none() || file.before.is_some() && before.is_none()
            {
                entry["content"] = json!("not stored (binary or large)");
            } else {
                entry["hunks"] = Value::Array(hunks(
                    before.as_deref().unwrap_or(""),
                    after.as_deref().unwrap_or(""),
                ));
            }
            files.push(entry);
        }
        detail.insert("files".to_owned(), Value::Array(files));
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        self.flush_deltas();
    }
}

/// The hunks between two texts: 1-based starts, line counts, and the hash of every added line
/// in order (`added[i]` is line `new_start + i`).
pub fn hunks(before: &str, after: &str) -> Vec<Value> {
    let diff = similar::TextDiff::from_lines(before, after);
    let new_lines: Vec<&str> = after.split_inclusive('\n').collect();
    let mut out = Vec::new();
    for group in diff.grouped_ops(0) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old = first.old_range().start..last.old_range().end;
        let new = first.new_range().start..last.new_range().end;
        let added: Vec<String> = new_lines
            .get(new.clone())
            .unwrap_or_default()
            .iter()
            .map(|line| line_hash(line))
            .collect();
        out.push(json!({
            "old_start": old.start + 1,
            "old_lines": old.len(),
            "new_start": new.start + 1,
            "new_lines": new.len(),
            "added": added,
        }));
    }
    out
}

/// What stands in for a redacted text: its length and hash.
fn redacted_text(text: &str) -> String {
    format!(
        "[redacted: {} bytes, {}]",
        text.len(),
        sha256_hex(text.as_bytes())
    )
}

/// Every string in `value`, through the redactor.
fn redact_secrets(redactor: &Redactor, value: &mut Value) {
    match value {
        Value::String(text) => {
            let redacted = redactor.redact(text);
            if redacted != *text {
                *text = redacted;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| redact_secrets(redactor, item)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| redact_secrets(redactor, item)),
        _ => {}
    }
}

/// The file of a session in a ledger folder.
pub fn session_path(dir: &Path, session: &str) -> PathBuf {
    dir.join(format!("{session}.jsonl"))
}

/// The last sequence number and turn in an existing file (0, 0 for a new one).
fn last_position(path: &Path) -> (u64, u32) {
    let mut text = Vec::new();
    if File::open(path)
        .and_then(|mut file| file.read_to_end(&mut text))
        .is_err()
    {
        return (0, 0);
    }
    text.split(|&b| b == b'\n')
        .rev()
        .find_map(|line| super::record::Line::parse(line).ok())
        .map_or((0, 0), |line| (line.header.seq, line.header.turn))
}
