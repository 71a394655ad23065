//! The ledger's format and figures: every event round-trips through a line, secrets and
//! configured content are redacted, a torn last line is skipped and sealed, stats over
//! fixture ledgers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::reader::{read_lines, session_files};
use super::stats::{GroupBy, compute};
use super::summary::{summarize, summarize_all};
use super::*;
use crate::agent::protocol::{CallPurpose, ContextItem, GitState, ModelCallReport, SessionStart};
use crate::agent::{AgentEvent, DecisionSource, TurnEnd};
use crate::providers::{Cost, Redactor, StopReason, Usage};

fn settings(dir: &Path) -> LedgerSettings {
    LedgerSettings {
        dir: dir.to_path_buf(),
        ..LedgerSettings::defaults(dir)
    }
}

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input_uncached: input,
        cache_read: 10,
        cache_write: 5,
        output,
        reasoning: 2,
    }
}

/// One of every event variant, as a session would emit them.
fn every_event() -> Vec<AgentEvent> {
    vec![
        AgentEvent::SessionStarted(Box::new(SessionStart {
            session: "s1".into(),
            client: "tack run".into(),
            workspace: "/w".into(),
            provider: "openai".into(),
            model: "gpt-5".into(),
            git: Some(GitState {
                head: Some("abc".into()),
                branch: Some("main".into()),
                dirty: true,
            }),
            system_prompt_hash: "sha256:00".into(),
            tools_hash: "sha256:11".into(),
            tools: vec!["read".into(), "edit".into()],
            tack_version: "0.1.0".into(),
        })),
        AgentEvent::TurnStarted {
            text: "fix it".into(),
        },
        AgentEvent::ContextSent {
            call: 1,
            items: vec![ContextItem::new(
                "system_prompt",
                "tack's instructions",
                "You are tack",
            )],
        },
        AgentEvent::ThinkingDelta { text: "hm".into() },
        AgentEvent::TextDelta { text: "Loo".into() },
        AgentEvent::TextDelta {
            text: "king".into(),
        },
        AgentEvent::Usage {
            usage: Some(usage(100, 20)),
            cost: Some(Cost {
                usd: 0.5,
                prices_as_of: "2025-09-29".into(),
            }),
        },
        AgentEvent::ModelCall(Box::new(ModelCallReport {
            call: 1,
            purpose: CallPurpose::Turn,
            provider: "openai".into(),
            model: "gpt-5".into(),
            time_to_first_token: Some(Duration::from_millis(120)),
            duration: Duration::from_millis(900),
            stop_reason: Some(StopReason::ToolUse),
            attempts: Some(2),
            usage: Some(usage(100, 20)),
            raw_usage: json!({"prompt_tokens": 115}),
            cost: Some(Cost {
                usd: 0.5,
                prices_as_of: "2025-09-29".into(),
            }),
            price_source: Some("catalog".into()),
            error: None,
        })),
        AgentEvent::ToolCallBegun {
            id: "c1".into(),
            name: "edit".into(),
            arguments: r#"{"path":"a.c"}"#.into(),
        },
        AgentEvent::ApprovalAsked {
            id: "c1".into(),
            tool: "edit".into(),
            summary: "--- a/a.c".into(),
        },
        AgentEvent::Decision {
            id: "c1".into(),
            allowed: true,
            source: DecisionSource::User,
        },
        AgentEvent::EditDrafted {
            paths: vec!["a.c".into()],
            diff: "+x".into(),
        },
        AgentEvent::ToolCallEnded {
            id: "c1".into(),
            summary: "edited".into(),
            is_error: false,
            duration: Duration::from_millis(40),
        },
        AgentEvent::DiagnosticsChanged {
            introduced: vec![],
            fixed: vec![],
            pending_servers: vec!["clangd".into()],
            failed_servers: vec![],
        },
        AgentEvent::ProposalShown {
            proposal: 1,
            summary: "done".into(),
            files: vec!["a.c".into()],
            hunks: 2,
        },
        AgentEvent::ProposalDecided {
            proposal: 1,
            decision: crate::agent::ProposalDecision::Rejected,
            files: vec!["a.c".into()],
            hunk: Some(0),
            change: None,
            reason: None,
        },
        AgentEvent::ProposalDecided {
            proposal: 1,
            decision: crate::agent::ProposalDecision::Applied,
            files: vec!["a.c".into()],
            hunk: None,
            change: Some(1),
            reason: None,
        },
        AgentEvent::ChangesRestored {
            kind: crate::agent::RestoreDirection::Undo,
            changes: vec![1],
            files: vec!["a.c".into()],
        },
        AgentEvent::Compacted {
            tokens_before: 9000,
            summary: "so far".into(),
        },
        AgentEvent::Error {
            message: "boom".into(),
        },
        AgentEvent::TurnDone {
            end: TurnEnd::Completed,
        },
        AgentEvent::SessionEnded {
            turns: 1,
            model_calls: 1,
            usage: usage(100, 20),
            cost_usd: Some(0.5),
            files_changed: vec!["a.c".into()],
            last_end: Some(TurnEnd::Completed),
        },
    ]
}

fn write_session(dir: &Path, session: &str, events: &[AgentEvent], redactor: Redactor) {
    let mut writer = LedgerWriter::open(&settings(dir), session, redactor, None).unwrap();
    for event in events {
        writer.record(event);
    }
}

#[test]
fn every_event_round_trips_through_a_line_with_header_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let events = every_event();
    write_session(dir.path(), "s1", &events, Redactor::new());
    let lines = read_lines(&dir.path().join("s1.jsonl")).unwrap();
    // The two text deltas became one line.
    assert_eq!(lines.len(), events.len() - 1);
    let mut expected: Vec<Value> = Vec::new();
    for event in &events {
        let value = serde_json::to_value(event).unwrap();
        match (value["type"].as_str(), expected.last_mut()) {
            (Some("text_delta"), Some(last)) if last["type"] == "text_delta" => {
                let joined = format!(
                    "{}{}",
                    last["text"].as_str().unwrap(),
                    value["text"].as_str().unwrap()
                );
                last["text"] = json!(joined);
            }
            _ => expected.push(value),
        }
    }
    let mut previous_ts = 0;
    for (index, (line, event)) in lines.iter().zip(&expected).enumerate() {
        assert_eq!(line.header.v, SCHEMA_VERSION);
        assert_eq!(line.header.session, "s1");
        assert_eq!(line.header.seq, index as u64 + 1);
        assert!(line.header.ts >= previous_ts);
        previous_ts = line.header.ts;
        assert_eq!(line.kind(), event["type"].as_str().unwrap());
        for (key, value) in event.as_object().unwrap() {
            assert_eq!(line.get(key), value, "{key} of line {index}");
        }
    }
    assert_eq!(lines[4].str("text"), Some("Looking"));
    assert_eq!(lines[1].header.turn, 1);
    assert_eq!(lines[0].header.turn, 0);
    // What the ledger adds: the tool and the user's wait on the decision, the proposal's fate.
    let decision = lines.iter().find(|l| l.kind() == "decision").unwrap();
    assert_eq!(decision.detail("tool"), "edit");
    assert!(decision.detail("wait_ms").as_u64().is_some());
    let decided: Vec<&Line> = lines
        .iter()
        .filter(|l| l.kind() == "proposal_decided")
        .collect();
    assert_eq!(decided[0].detail("acceptance"), "pending");
    assert_eq!(decided[1].detail("acceptance"), "partial");
    assert_eq!(decided[1].detail("hunks")["applied"], 1);
    // Every line's type is readable from its first bytes.
    let text = std::fs::read_to_string(dir.path().join("s1.jsonl")).unwrap();
    for (raw, line) in text.lines().zip(&lines) {
        assert_eq!(
            record::fast_kind(raw.as_bytes()),
            Some(line.kind().as_bytes())
        );
    }
    // A file continued later goes on numbering.
    write_session(
        dir.path(),
        "s1",
        &[AgentEvent::Error {
            message: "later".into(),
        }],
        Redactor::new(),
    );
    let lines = read_lines(&dir.path().join("s1.jsonl")).unwrap();
    assert_eq!(lines.last().unwrap().header.seq, lines.len() as u64);
}

#[test]
fn secrets_are_always_redacted_and_prompts_and_content_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut redactor = Redactor::new();
    redactor.add_secret("hunter2-very-secret");
    let leaky = vec![
        AgentEvent::TurnStarted {
            text: "use key hunter2-very-secret and sk-proj-abcdefghijklmnop".into(),
        },
        AgentEvent::ToolCallBegun {
            id: "c1".into(),
            name: "run_command".into(),
            arguments: r#"{"command":"curl -H 'Authorization: Bearer abcdefghijklmnopqrstu'"}"#
                .into(),
        },
        AgentEvent::Error {
            message: "HTTP 401 for hunter2-very-secret".into(),
        },
    ];
    write_session(dir.path(), "open", &leaky, redactor.clone());
    let text = std::fs::read_to_string(dir.path().join("open.jsonl")).unwrap();
    for secret in [
        "hunter2-very-secret",
        "sk-proj-abcdefghijklmnop",
        "abcdefghijklmnopqrstu",
    ] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
    assert!(text.contains("use key [redacted]"), "{text}");

    let config: toml::Value =
        toml::from_str("record_prompts = false\nrecord_file_content = false").unwrap();
    let closed = LedgerSettings::from_config(Some(&config), dir.path()).unwrap();
    assert!(!closed.record_prompts && !closed.record_file_content);
    let mut writer = LedgerWriter::open(&closed, "closed", redactor, None).unwrap();
    for event in &every_event() {
        writer.record(event);
    }
    drop(writer);
    let lines = read_lines(&dir.path().join("ledger/closed.jsonl")).unwrap();
    let field = |kind: &str, key: &str| {
        lines
            .iter()
            .find(|l| l.kind() == kind)
            .and_then(|l| l.str(key))
            .unwrap()
            .to_owned()
    };
    for (kind, key) in [
        ("turn_started", "text"),
        ("text_delta", "text"),
        ("tool_call_begun", "arguments"),
        ("approval_asked", "summary"),
        ("edit_drafted", "diff"),
        ("tool_call_ended", "summary"),
    ] {
        let value = field(kind, key);
        assert!(value.starts_with("[redacted: "), "{kind}.{key}: {value}");
        assert!(value.contains("sha256:"), "{value}");
    }
    // What is not content stays: the tool's name, the figures.
    assert_eq!(field("tool_call_begun", "name"), "edit");
    assert_eq!(field("error", "message"), "boom");
}

#[test]
fn bad_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("record_prompts = \"no\"", "record_prompts"),
        ("enabled = 1", "enabled"),
        ("recrod_prompts = false", "unknown key"),
    ] {
        let value: toml::Value = toml::from_str(text).unwrap();
        let error = LedgerSettings::from_config(Some(&value), dir.path()).unwrap_err();
        assert!(error.to_string().contains(needle), "{text}: {error}");
    }
}

#[test]
fn a_torn_last_line_is_skipped_and_the_next_append_seals_it() {
    let dir = tempfile::tempdir().unwrap();
    let events = every_event();
    write_session(dir.path(), "torn", &events[..8], Redactor::new());
    let path = dir.path().join("torn.jsonl");
    let complete = read_lines(&path).unwrap().len();
    // A crash mid-write leaves half a line.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(br#"{"v":1,"type":"model_call","session":"torn","se"#)
        .unwrap();
    drop(file);
    assert_eq!(read_lines(&path).unwrap().len(), complete);
    let file = session_files(dir.path()).unwrap().remove(0);
    let summary = summarize(&file).unwrap();
    assert_eq!(summary.unreadable_lines, 1);
    assert_eq!(summary.calls.len(), 1);
    assert_eq!(summary.outcome(), "unfinished");
    // The process comes back to the session: the torn line stays one skipped line.
    write_session(dir.path(), "torn", &events[8..], Redactor::new());
    let lines = read_lines(&path).unwrap();
    assert_eq!(lines.len(), events.len() - 1);
    assert_eq!(lines.last().unwrap().kind(), "session_ended");
    assert!(summarize(&file).unwrap().finished);
}

/// A fixture session file, written by hand the way tack writes them.
fn fixture(dir: &Path, session: &str, lines: &[Value]) {
    let mut text = String::new();
    for (index, line) in lines.iter().enumerate() {
        let mut line = line.clone();
        let object = line.as_object_mut().unwrap();
        let header = record::Header {
            v: 1,
            kind: object.remove("type").unwrap().as_str().unwrap().to_owned(),
            session: session.to_owned(),
            seq: index as u64 + 1,
            ts: object.remove("ts").unwrap().as_u64().unwrap(),
            turn: 1,
        };
        let detail = match object.remove("detail") {
            Some(Value::Object(detail)) => detail,
            _ => serde_json::Map::new(),
        };
        text.push_str(&record::format_line(&header, object, &detail));
        text.push('\n');
    }
    std::fs::write(dir.join(format!("{session}.jsonl")), text).unwrap();
}

const DAY1: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

fn call(ts: u64, model: &str, input: u64, output: u64, cost: Option<f64>) -> Value {
    json!({
        "type": "model_call", "ts": ts, "call": 1, "purpose": "turn", "provider": "p",
        "model": model, "duration": 1000, "time_to_first_token": 100, "attempts": 1,
        "stop_reason": "end_turn",
        "usage": {"input_uncached": input, "cache_read": 1, "cache_write": 2, "output": output, "reasoning": 0},
        "raw_usage": null,
        "cost": cost.map(|usd| json!({"usd": usd, "prices_as_of": "2025-09-29"})),
        "price_source": cost.map(|_| "catalog"), "error": null,
    })
}

fn decision(ts: u64, tool: &str, allowed: bool, source: &str) -> Value {
    let mut line =
        json!({"type": "decision", "ts": ts, "id": "x", "allowed": allowed, "source": source});
    line["detail"] = json!({"tool": tool, "wait_ms": 1500});
    line
}

fn tool_ended(ts: u64, tool: &str, is_error: bool) -> Value {
    json!({"type": "tool_call_ended", "ts": ts, "id": "x", "summary": "", "is_error": is_error,
           "duration": 250, "detail": {"tool": tool}})
}

fn fixture_ledger(dir: &Path) {
    fixture(
        dir,
        "20250101-090000-1",
        &[
            json!({"type": "session_started", "ts": DAY1 + 9 * 3_600_000, "provider": "p", "model": "big", "workspace": "/w", "client": "tack run"}),
            json!({"type": "turn_started", "ts": DAY1 + 9 * 3_600_000, "text": "a"}),
            call(DAY1 + 9 * 3_600_000 + 1000, "big", 100, 10, Some(0.25)),
            decision(DAY1 + 9 * 3_600_000 + 2000, "edit", true, "user"),
            tool_ended(DAY1 + 9 * 3_600_000 + 3000, "edit", false),
            call(DAY1 + 9 * 3_600_000 + 4000, "big", 200, 20, Some(0.5)),
            json!({"type": "turn_done", "ts": DAY1 + 9 * 3_600_000 + 5000, "end": "completed"}),
            json!({"type": "session_ended", "ts": DAY1 + 9 * 3_600_000 + 6000}),
        ],
    );
    fixture(
        dir,
        "20250102-100000-2",
        &[
            json!({"type": "session_started", "ts": DAY1 + 86_400_000 + 10 * 3_600_000, "provider": "p", "model": "small"}),
            json!({"type": "turn_started", "ts": DAY1 + 86_400_000 + 10 * 3_600_000, "text": "b"}),
            call(
                DAY1 + 86_400_000 + 10 * 3_600_000 + 1000,
                "small",
                50,
                5,
                None,
            ),
            decision(
                DAY1 + 86_400_000 + 10 * 3_600_000 + 2000,
                "run_command",
                false,
                "user",
            ),
            tool_ended(
                DAY1 + 86_400_000 + 10 * 3_600_000 + 2500,
                "run_command",
                true,
            ),
            decision(
                DAY1 + 86_400_000 + 10 * 3_600_000 + 3000,
                "read",
                true,
                "policy",
            ),
            tool_ended(DAY1 + 86_400_000 + 10 * 3_600_000 + 3500, "read", false),
            decision(
                DAY1 + 86_400_000 + 10 * 3_600_000 + 4000,
                "edit",
                false,
                "policy",
            ),
            json!({"type": "turn_done", "ts": DAY1 + 86_400_000 + 10 * 3_600_000 + 5000, "end": "cancelled"}),
        ],
    );
}

#[test]
fn stats_over_fixture_ledgers_group_by_day_model_session_and_tool() {
    let dir = tempfile::tempdir().unwrap();
    fixture_ledger(dir.path());
    let sessions = summarize_all(dir.path()).unwrap();
    assert_eq!(sessions.len(), 2);

    let total = compute(&sessions, GroupBy::Total, 0);
    assert_eq!(total.len(), 1);
    let f = &total[0].figures;
    assert_eq!((f.sessions, f.model_calls), (2, 3));
    assert_eq!(f.input_uncached_tokens, 350);
    assert_eq!(f.cache_read_tokens, 3);
    assert_eq!(f.cache_write_tokens, 6);
    assert_eq!(f.output_tokens, 35);
    assert!((f.cost_usd - 0.75).abs() < 1e-9);
    assert_eq!(f.calls_without_price, 1);
    assert_eq!(f.model_time_ms, 3000);
    assert_eq!((f.tool_calls, f.tool_errors), (3, 1));
    // User decisions apart from the policy's.
    assert_eq!(
        (f.user_decisions, f.user_approved, f.user_rejected),
        (2, 1, 1)
    );
    assert_eq!(
        (f.policy_decisions, f.policy_allowed, f.policy_denied),
        (2, 1, 1)
    );
    assert_eq!(total[0].user_approval_rate, Some(0.5));
    assert_eq!(f.approval_wait_ms, 3000);
    assert_eq!(f.session_time_ms, 6000 + 5000);

    let days = compute(&sessions, GroupBy::Day, 0);
    let keys: Vec<&str> = days.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["2025-01-01", "2025-01-02"]);
    assert_eq!(days[0].figures.output_tokens, 30);
    assert_eq!(days[1].figures.user_rejected, 1);

    let models = compute(&sessions, GroupBy::Model, 0);
    let keys: Vec<&str> = models.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["p/big", "p/small"]);
    assert_eq!(models[1].figures.calls_without_price, 1);

    let by_session = compute(&sessions, GroupBy::Session, 0);
    assert_eq!(by_session[1].key, "20250102-100000-2");
    assert_eq!(by_session[1].figures.tool_calls, 2);

    let tools = compute(&sessions, GroupBy::Tool, 0);
    let keys: Vec<&str> = tools.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["edit", "read", "run_command"]);
    assert_eq!(tools[0].figures.user_approved, 1);
    assert_eq!(tools[0].figures.policy_denied, 1);
    assert_eq!(tools[2].figures.tool_errors, 1);
    assert_eq!(tools[0].figures.model_calls, 0);

    // --since keeps what happened from then on.
    let since = compute(&sessions, GroupBy::Total, DAY1 + 86_400_000);
    assert_eq!(since[0].figures.model_calls, 1);
    assert_eq!(since[0].figures.sessions, 1);

    assert_eq!(sessions[0].outcome(), "completed");
    assert_eq!(sessions[1].outcome(), "cancelled");
    let table = stats::render(&total, GroupBy::Total);
    assert!(table.contains("0.7500+?"), "{table}");
}
