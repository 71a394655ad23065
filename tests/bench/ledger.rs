//! Ledger benchmark: `tack stats` over a generated ledger of `TACK_BENCH_SESSIONS` sessions
//! (default 10,000) of 100 events each (1M events), next to a plain read of the same bytes;
//! and `tack survival` on a generated repository of `TACK_BENCH_COMMITS` commits (default
//! 10,000) with agent sessions whose lines landed in it, next to `git log --numstat
//! --first-parent` over the same repository (the same diffs, computed by git).
//!
//! Both commands run as the release binary, as a user runs them, each three times (the first
//! run reads from disk if the page cache was cold; the figures are min / median).
//!
//! Run: `cargo bench --bench ledger` (from `server/`). It prints figures; it asserts none.
//! `TACK_BENCH_KEEP=DIR` generates into DIR and leaves it there, for profiling.

#![allow(clippy::print_stdout)]

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tack::agent::AgentEvent;
use tack::agent::protocol::{CallPurpose, ContextItem, ModelCallReport, SessionStart};
use tack::ledger::{LedgerSettings, LedgerWriter};
use tack::providers::{Cost, Redactor, StopReason, Usage};

type BenchResult<T> = Result<T, Box<dyn Error>>;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> BenchResult<()> {
    let sessions = env_number("TACK_BENCH_SESSIONS", 10_000);
    let commits = env_number("TACK_BENCH_COMMITS", 10_000);
    let scratch = tempfile::tempdir()?;
    // TACK_BENCH_KEEP=DIR: generate there and keep it (for profiling one command).
    let base = std::env::var_os("TACK_BENCH_KEEP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| scratch.path().to_path_buf());
    let home = base.join("home");

    let started = Instant::now();
    let (events, bytes) = generate_ledger(&home.join("tack/ledger"), sessions)?;
    println!(
        "ledger: {sessions} sessions, {events} events, {:.1} MB, generated in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let dir = home.join("tack/ledger");
    let read = time_runs(3, || {
        let mut total = 0usize;
        for entry in std::fs::read_dir(&dir)? {
            total += std::fs::read(entry?.path())?.len();
        }
        assert_eq!(total as u64, bytes);
        Ok(())
    })?;
    let stats = time_runs(3, || run_tack(&home, scratch.path(), &["stats", "--json"]))?;
    let by_day = time_runs(3, || {
        run_tack(&home, scratch.path(), &["stats", "--by", "day"])
    })?;
    let sessions_list = time_runs(3, || run_tack(&home, scratch.path(), &["sessions"]))?;
    println!();
    println!(
        "{:<52} {:>10} {:>10}",
        "ledger, 1 process per run", "min", "median"
    );
    row("baseline: read every file (no parsing)", &read);
    row("tack stats --json", &stats);
    row("tack stats --by day", &by_day);
    row("tack sessions", &sessions_list);
    println!("target: tack stats ≤ 1 s over 10,000 sessions / 1M events");

    let repo = base.join("repo");
    let started = Instant::now();
    let landed = generate_repository(&repo, commits, &home.join("tack/ledger"))?;
    println!();
    println!(
        "repository: {commits} commits, {landed} agent lines in 1 session per 10 commits, generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let numstat = time_runs(3, || {
        let status = Command::new("git")
            .args(["log", "--numstat", "--first-parent", "--format=%H"])
            .current_dir(&repo)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err("git log failed".into());
        }
        Ok(())
    })?;
    let survival = time_runs(3, || run_tack(&home, &repo, &["survival", "--json"]))?;
    println!(
        "{:<52} {:>10} {:>10}",
        "survival, 1 process per run", "min", "median"
    );
    row("baseline: git log --numstat --first-parent", &numstat);
    row("tack survival --json", &survival);
    let report = Command::new(env!("CARGO_BIN_EXE_tack"))
        .args(["survival"])
        .current_dir(&repo)
        .env("XDG_DATA_HOME", &home)
        .output()?;
    println!("{}", String::from_utf8_lossy(&report.stdout));
    Ok(())
}

fn row(name: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    println!(
        "{name:<52} {:>8.3} s {:>8.3} s",
        sorted[0].as_secs_f64(),
        sorted[sorted.len() / 2].as_secs_f64()
    );
}

fn time_runs(runs: usize, mut work: impl FnMut() -> BenchResult<()>) -> BenchResult<Vec<Duration>> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        work()?;
        times.push(started.elapsed());
    }
    Ok(times)
}

fn run_tack(home: &Path, folder: &Path, args: &[&str]) -> BenchResult<()> {
    let output = Command::new(env!("CARGO_BIN_EXE_tack"))
        .args(args)
        .current_dir(folder)
        .env("XDG_DATA_HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("TACK_LOG", "error")
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "tack {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

/// One session's 100 events as the agent emits them: start, a turn of 12 steps (context,
/// text, model call, usage, tool call, decision, result, diagnostics), end.
fn session_events(session: &str) -> Vec<AgentEvent> {
    let usage = Usage {
        input_uncached: 1200,
        cache_read: 30_000,
        cache_write: 800,
        output: 350,
        reasoning: 120,
    };
    let cost = Cost {
        usd: 0.0123,
        prices_as_of: "2025-09-29".into(),
    };
    let mut events = vec![
        AgentEvent::SessionStarted(Box::new(SessionStart {
            session: session.into(),
            client: "tack run".into(),
            workspace: "/home/user/project".into(),
            provider: "anthropic".into(),
            model: if session.ends_with('0') {
                "claude-haiku-4-5"
            } else {
                "claude-sonnet-4-5"
            }
            .into(),
            git: None,
            system_prompt_hash:
                "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef".into(),
            tools_hash: "sha256:a3c1b3e4d1f2a3c1b3e4d1f2a3c1b3e4d1f2a3c1b3e4d1f2a3c1b3e4d1f2a3c1"
                .into(),
            tools: ["read", "edit", "write", "grep", "run_command"]
                .map(String::from)
                .to_vec(),
            tack_version: "0.1.0".into(),
        })),
        AgentEvent::TurnStarted {
            text: "fix the failing test in parser.rs and make sure the build is clean".into(),
        },
    ];
    for step in 1..=12u32 {
        events.push(AgentEvent::ContextSent {
            call: step,
            items: vec![
                ContextItem::new(
                    "system_prompt",
                    "tack's instructions to the model",
                    "You are tack…",
                ),
                ContextItem::new("tools", "the tools the model may call", "[…]"),
                ContextItem::new(
                    "conversation",
                    &format!("{} message(s) of history", step * 2),
                    "…",
                ),
            ],
        });
        events.push(AgentEvent::TextDelta {
            text: "Let me look at the parser and the failing assertion first.".into(),
        });
        events.push(AgentEvent::ModelCall(Box::new(ModelCallReport {
            call: step,
            purpose: CallPurpose::Turn,
            provider: "anthropic".into(),
            model: "claude-sonnet-4-5".into(),
            time_to_first_token: Some(Duration::from_millis(420)),
            duration: Duration::from_millis(2300),
            stop_reason: Some(StopReason::ToolUse),
            attempts: Some(1),
            usage: Some(usage),
            raw_usage: serde_json::json!({"input_tokens": 1200, "cache_read_input_tokens": 30000,
                "cache_creation_input_tokens": 800, "output_tokens": 350}),
            cost: Some(cost.clone()),
            price_source: Some("catalog".into()),
            error: None,
        })));
        events.push(AgentEvent::Usage {
            usage: Some(usage),
            cost: Some(cost.clone()),
        });
        let id = format!("toolu_{step:04}");
        let tool = ["read", "edit", "grep", "run_command"][step as usize % 4];
        events.push(AgentEvent::ToolCallBegun {
            id: id.clone(),
            name: tool.into(),
            arguments: r#"{"path":"src/parser.rs","old":"let x = 1;","new":"let x = 2;"}"#.into(),
        });
        events.push(AgentEvent::Decision {
            id: id.clone(),
            allowed: step % 7 != 0,
            source: if step % 3 == 0 {
                tack::agent::DecisionSource::User
            } else {
                tack::agent::DecisionSource::Policy
            },
        });
        events.push(AgentEvent::ToolCallEnded {
            id,
            summary: "src/parser.rs: edited 1 line\nno new diagnostics".into(),
            is_error: step % 5 == 0,
            duration: Duration::from_millis(35),
        });
        events.push(AgentEvent::DiagnosticsChanged {
            introduced: vec![],
            fixed: vec![],
            pending_servers: vec![],
            failed_servers: vec![],
        });
    }
    events.push(AgentEvent::TurnDone {
        end: tack::agent::TurnEnd::Completed,
    });
    events.push(AgentEvent::SessionEnded {
        turns: 1,
        model_calls: 12,
        usage,
        cost_usd: Some(0.1476),
        files_changed: vec!["src/parser.rs".into()],
        last_end: Some(tack::agent::TurnEnd::Completed),
    });
    events
}

/// Writes one session through the real writer, then copies it (ids renamed) to the rest.
fn generate_ledger(dir: &Path, sessions: usize) -> BenchResult<(u64, u64)> {
    let settings = LedgerSettings {
        dir: dir.to_path_buf(),
        ..LedgerSettings::defaults(dir)
    };
    let template_id = "TEMPLATE-SESSION-ID";
    {
        let mut writer = LedgerWriter::open(&settings, template_id, Redactor::new(), None)?;
        for event in session_events(template_id) {
            writer.record(&event);
        }
    }
    let template_path = dir.join(format!("{template_id}.jsonl"));
    let template = std::fs::read_to_string(&template_path)?;
    std::fs::remove_file(&template_path)?;
    let events = template.lines().count() as u64;
    let mut bytes = 0u64;
    for index in 0..sessions {
        let id = format!("2025{:04}-{:06}-{index}", 101 + index % 28, index % 240_000);
        let text = template.replace(template_id, &id);
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("{id}.jsonl")), text)?;
    }
    Ok((events * sessions as u64, bytes))
}

/// A repository of `commits` commits on 20 files made with `git fast-import`; every 10th
/// commit's new lines were written by an agent session recorded in the ledger just before.
fn generate_repository(repo: &Path, commits: usize, ledger: &Path) -> BenchResult<u64> {
    std::fs::create_dir_all(repo)?;
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(repo).status();
    git(&["init", "-q"])?;
    let workspace = repo.canonicalize()?;
    let start_s: u64 = 1_600_000_000;
    let mut files: Vec<Vec<String>> = (0..20).map(|f| vec![format!("// file {f}")]).collect();
    let mut stream = String::new();
    let mut landed = 0u64;
    let settings = LedgerSettings {
        dir: ledger.to_path_buf(),
        ..LedgerSettings::defaults(ledger)
    };
    let store: Option<Arc<tack::snapshots::SnapshotStore>> = None;
    for commit in 0..commits {
        let file = commit % 20;
        let lines = &mut files[file];
        // Change a line now and then, add three.
        if commit % 3 == 0 && lines.len() > 4 {
            let at = commit % (lines.len() - 1) + 1;
            lines[at] = format!("let revised_{commit} = {at};");
        }
        if commit % 11 == 0 && lines.len() > 6 {
            lines.remove(commit % (lines.len() - 1) + 1);
        }
        let added: Vec<String> = (0..3)
            .map(|i| format!("let value_{commit}_{i} = {i};"))
            .collect();
        lines.extend(added.iter().cloned());
        let at_s = start_s + commit as u64 * 3600;
        if commit % 10 == 0 {
            let session = format!("bench-{commit:06}");
            let mut writer =
                LedgerWriter::open(&settings, &session, Redactor::new(), store.clone())?;
            let mut record = |event: AgentEvent| writer.record(&event);
            record(AgentEvent::SessionStarted(Box::new(SessionStart {
                session: session.clone(),
                client: "tack run".into(),
                workspace: workspace.display().to_string(),
                provider: "anthropic".into(),
                model: "claude-sonnet-4-5".into(),
                git: None,
                system_prompt_hash: String::new(),
                tools_hash: String::new(),
                tools: vec![],
                tack_version: "0.1.0".into(),
            })));
            record(AgentEvent::ModelCall(Box::new(ModelCallReport {
                call: 1,
                purpose: CallPurpose::Turn,
                provider: "anthropic".into(),
                model: "claude-sonnet-4-5".into(),
                time_to_first_token: None,
                duration: Duration::from_millis(2000),
                stop_reason: Some(StopReason::EndTurn),
                attempts: Some(1),
                usage: None,
                raw_usage: serde_json::Value::Null,
                cost: Some(Cost {
                    usd: 0.02,
                    prices_as_of: "2025-09-29".into(),
                }),
                price_source: Some("catalog".into()),
                error: None,
            })));
            drop(writer);
            // The edit line, with the detail the writer derives from a snapshot change.
            let hashes: Vec<String> = added.iter().map(|l| tack::ledger::line_hash(l)).collect();
            let line = serde_json::json!({
                "v": 1, "type": "edit_applied", "session": session, "seq": 3,
                "ts": (at_s - 60) * 1000, "turn": 1,
                "paths": [format!("f{file}.rs")], "change": 1, "diff": "",
                "detail": {"acceptance": "full", "files": [{"path": format!("f{file}.rs"),
                    "before": null, "after": null,
                    "hunks": [{"old_start": 1, "old_lines": 0, "new_start": 1, "new_lines": 3, "added": hashes}]}]},
            });
            let mut out = std::fs::OpenOptions::new()
                .append(true)
                .open(ledger.join(format!("{session}.jsonl")))?;
            writeln!(out, "{line}")?;
            landed += 3;
        }
        let content = lines.join("\n") + "\n";
        let _ = writeln!(
            stream,
            "commit refs/heads/main\ncommitter T <t@example.com> {at_s} +0000\ndata 8\ncommit {}\nM 100644 inline f{file}.rs\ndata {}\n{content}",
            commit % 10,
            content.len()
        );
    }
    let mut import = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .spawn()?;
    import
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(stream.as_bytes())?;
    if !import.wait()?.success() {
        return Err("git fast-import failed".into());
    }
    git(&["checkout", "-q", "main"])?;
    Ok(landed)
}
