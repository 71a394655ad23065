//! The session ledger through the binary: a `tack run` over the scripted model writes a ledger
//! that `tack sessions`, `tack stats`, `tack log` and `tack export` read; a key in the
//! environment never reaches it; survival over a git history built here; the OTLP export to a
//! local receiver that parses what it gets.

use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, FakeUsage, openai_chat};
use crate::support::{Workspace, fake_lsp_path, tack_path};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn tack_in(workspace: &Workspace, envs: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut command = crate::support::tack_in(workspace, args);
    command.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn ledger_files(workspace: &Workspace) -> Vec<std::path::PathBuf> {
    let dir = workspace.path(".home/tack/ledger");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

pub fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const SECRET: &str = "ledger-secret-0123456789abcdef";

/// A workspace whose `tack.toml` points at the scripted model (with a key the provider sends)
/// and the fake language server.
fn scripted_workspace(model: &FakeModelServer) -> Workspace {
    let workspace = Workspace::new();
    workspace.write(
        "tack.toml",
        &format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\napi_key_env = \"SCRIPTED_KEY\"\n\n\
             [languages.fake]\nextensions = [\"fk\"]\n\n[servers.alpha]\ncommand = {:?}\nargs = [\"--name\", \"alpha\"]\nlanguages = [\"fake\"]\n",
            model.url(),
            fake_lsp_path().display().to_string()
        ),
    );
    workspace.write("main.fk", "value = 1\n");
    workspace.write("AGENTS.md", "Keep values small.\n");
    workspace
}

// Multi-threaded: the blocking `tack` runs must not stall the fake model server's task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_a_ledger_that_sessions_stats_log_and_export_read() {
    let model = FakeModelServer::start().await.unwrap();
    let workspace = scripted_workspace(&model);
    let usage = FakeUsage {
        input_uncached: 100,
        cache_read: 20,
        output: 7,
        ..FakeUsage::default()
    };
    let edit = Answer::default()
        .with_tool_call(FakeToolCall::new(
            "c1",
            "edit",
            &[&json!({ "path": "main.fk", "old": "value = 1", "new": "value = 2" }).to_string()],
        ))
        .with_usage(usage);
    model.push(openai_chat::stream(&edit));
    // The model echoes the key it was given: the ledger must not keep it.
    model.push(openai_chat::stream(
        &Answer::text(&["Done; the key was ", SECRET, "."]).with_usage(usage),
    ));

    let run = tack_in(
        &workspace,
        &[("SCRIPTED_KEY", SECRET)],
        &["run", "--yes", "set the value to 2"],
    );
    stdout_of(&run);
    assert_eq!(workspace.read("main.fk"), "value = 2\n");

    let files = ledger_files(&workspace);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        !text.contains(SECRET),
        "the key reached the ledger:\n{text}"
    );
    assert!(text.contains("[redacted]"), "{text}");
    let lines = lines_of(&files[0]);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"session_started"), "{types:?}");
    assert_eq!(types.last(), Some(&"session_ended"), "{types:?}");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["v"], 1);
        assert_eq!(line["seq"], index as u64 + 1);
        assert!(line["ts"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(line["session"], lines[0]["session"]);
    }
    let started = &lines[0];
    assert_eq!(started["client"], "tack run");
    assert_eq!(started["provider"], "scripted");
    assert!(
        started["system_prompt_hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // The context of the first call: system prompt, AGENTS.md, tools, conversation.
    let context = lines.iter().find(|l| l["type"] == "context_sent").unwrap();
    let kinds: Vec<&str> = context["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["system_prompt", "instructions", "tools", "conversation"]
    );
    assert!(
        context["items"][1]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/AGENTS.md")
    );
    let calls: Vec<&Value> = lines.iter().filter(|l| l["type"] == "model_call").collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["attempts"], 1);
    assert_eq!(calls[0]["stop_reason"], "tool_use");
    assert!(calls[0]["duration"].as_u64().is_some());
    // The applied edit carries blob ids, a hunk and the added line's hash.
    let edit = lines.iter().find(|l| l["type"] == "edit_applied").unwrap();
    let file = &edit["detail"]["files"][0];
    assert_eq!(file["path"], "main.fk");
    assert_eq!(file["before"].as_str().unwrap().len(), 40);
    assert_eq!(file["hunks"][0]["new_lines"], 1);
    assert_eq!(
        file["hunks"][0]["added"][0],
        tack::ledger::line_hash("value = 2")
    );
    let decision = lines.iter().find(|l| l["type"] == "decision").unwrap();
    assert_eq!(decision["source"], "policy");
    assert_eq!(decision["detail"]["tool"], "edit");

    let sessions = stdout_of(&tack_in(&workspace, &[], &["sessions"]));
    let id = lines[0]["session"].as_str().unwrap();
    assert!(sessions.contains(id), "{sessions}");
    assert!(sessions.contains("scripted/m"), "{sessions}");
    assert!(sessions.contains("completed"), "{sessions}");

    let stats: Value =
        serde_json::from_str(&stdout_of(&tack_in(&workspace, &[], &["stats", "--json"]))).unwrap();
    assert_eq!(stats[0]["key"], "total");
    assert_eq!(stats[0]["sessions"], 1);
    assert_eq!(stats[0]["model_calls"], 2);
    assert_eq!(stats[0]["tool_calls"], 1);
    assert_eq!(stats[0]["policy_allowed"], 1);
    assert_eq!(stats[0]["lines_added"], 1);
    let by_tool = stdout_of(&tack_in(&workspace, &[], &["stats", "--by", "tool"]));
    assert!(by_tool.contains("edit"), "{by_tool}");

    let log = stdout_of(&tack_in(&workspace, &[], &["log", "last"]));
    assert!(log.contains("set the value to 2"), "{log}");
    assert!(log.contains("+value = 2"), "{log}");
    assert!(log.contains("allowed by policy"), "{log}");
    assert!(!log.contains(SECRET));

    exports_match_their_documented_shapes(&workspace, &text, id).await;

    // `tack undo` appends what it took back to the session's file, numbering on.
    stdout_of(&tack_in(&workspace, &[], &["undo"]));
    assert_eq!(workspace.read("main.fk"), "value = 1\n");
    let after = lines_of(&files[0]);
    let last = after.last().unwrap();
    assert_eq!(last["type"], "changes_restored", "{last}");
    assert_eq!(last["kind"], "undo");
    assert_eq!(last["changes"], json!([1]));
    assert_eq!(last["files"], json!(["main.fk"]));
    assert_eq!(last["seq"], after.len() as u64);
}

/// Every export format, from the ledger of the run above.
async fn exports_match_their_documented_shapes(workspace: &Workspace, ledger: &str, session: &str) {
    // JSONL: the raw lines.
    let jsonl = stdout_of(&tack_in(workspace, &[], &["export", "--format", "jsonl"]));
    assert_eq!(jsonl, ledger);

    // CSV: a header and one row per model call.
    let csv = stdout_of(&tack_in(workspace, &[], &["export", "--format", "csv"]));
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert_eq!(rows[0][0], "session");
    assert!(rows[0].contains(&"cache_read_tokens"));
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{csv}");
    assert_eq!(rows[1][0], session);
    assert_eq!(rows[1][2], "scripted");

    // ccusage: daily rows and totals with ccusage's field names.
    let report: Value = serde_json::from_str(&stdout_of(&tack_in(
        workspace,
        &[],
        &["export", "--format", "ccusage"],
    )))
    .unwrap();
    let day = &report["daily"][0];
    for key in [
        "date",
        "inputTokens",
        "outputTokens",
        "cacheCreationTokens",
        "cacheReadTokens",
        "totalTokens",
        "totalCost",
        "modelsUsed",
        "modelBreakdowns",
    ] {
        assert!(!day[key].is_null(), "{key} missing: {report:#}");
    }
    let sum = [
        "inputTokens",
        "outputTokens",
        "cacheCreationTokens",
        "cacheReadTokens",
    ]
    .iter()
    .map(|k| day[*k].as_u64().unwrap())
    .sum::<u64>();
    assert_eq!(day["totalTokens"].as_u64().unwrap(), sum);
    assert!(sum > 0, "{report:#}");
    assert_eq!(day["modelsUsed"], json!(["m"]));
    let breakdown = &day["modelBreakdowns"][0];
    assert_eq!(breakdown["modelName"], "m");
    for key in [
        "inputTokens",
        "outputTokens",
        "cacheCreationTokens",
        "cacheReadTokens",
        "cost",
    ] {
        assert!(breakdown[key].is_number(), "{key}: {breakdown}");
    }
    assert_eq!(report["totals"]["totalTokens"], day["totalTokens"]);
    assert!(day["date"].as_str().unwrap().len() == 10);

    // OTLP/HTTP JSON to a local receiver that parses what it gets.
    let receiver = FakeModelServer::start().await.unwrap();
    receiver.push(crate::support::fake_model::Reply::json(200, &json!({})));
    receiver.push(crate::support::fake_model::Reply::json(200, &json!({})));
    let endpoint = receiver.url();
    let sent = stdout_of(&tack_in(
        workspace,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=tack%20test"),
        ],
        &["export", "--format", "otlp"],
    ));
    assert!(sent.contains("span"), "{sent}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/v1/traces");
    assert_eq!(requests[1].path, "/v1/metrics");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(requests[0].header("x-team"), Some("tack test"));
    let traces = requests[0].json();
    let spans = traces["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"invoke_agent tack"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "chat m").count(),
        2,
        "{names:?}"
    );
    assert!(names.contains(&"execute_tool edit"), "{names:?}");
    let attribute = |span: &Value, key: &str| -> Value {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
            .unwrap_or(Value::Null)
    };
    let root = spans
        .iter()
        .find(|s| s["name"] == "invoke_agent tack")
        .unwrap();
    let chat = spans.iter().find(|s| s["name"] == "chat m").unwrap();
    let tool = spans
        .iter()
        .find(|s| s["name"] == "execute_tool edit")
        .unwrap();
    assert_eq!(root["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(chat["spanId"].as_str().unwrap().len(), 16);
    assert_eq!(chat["traceId"], root["traceId"]);
    assert_eq!(chat["parentSpanId"], root["spanId"]);
    assert_eq!(chat["kind"], 3);
    assert_eq!(root["kind"], 1);
    assert!(
        chat["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .is_ok()
    );
    assert_eq!(
        attribute(chat, "gen_ai.operation.name"),
        json!({"stringValue": "chat"})
    );
    assert_eq!(
        attribute(chat, "gen_ai.provider.name"),
        json!({"stringValue": "scripted"})
    );
    assert_eq!(
        attribute(chat, "gen_ai.request.model"),
        json!({"stringValue": "m"})
    );
    assert_eq!(
        attribute(chat, "gen_ai.conversation.id"),
        json!({"stringValue": session})
    );
    assert!(attribute(chat, "gen_ai.usage.input_tokens")["intValue"].is_string());
    assert!(attribute(chat, "gen_ai.usage.output_tokens")["intValue"].is_string());
    assert_eq!(
        attribute(tool, "gen_ai.tool.name"),
        json!({"stringValue": "edit"})
    );
    assert_eq!(
        attribute(tool, "tack.decision.source"),
        json!({"stringValue": "policy"})
    );
    assert_eq!(
        attribute(root, "tack.lines.added"),
        json!({"intValue": "1"})
    );
    let metrics = requests[1].json();
    let metrics = metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap()
        .clone();
    let metric = |name: &str| metrics.iter().find(|m| m["name"] == name).unwrap().clone();
    let tokens = metric("gen_ai.client.token.usage");
    assert_eq!(tokens["unit"], "{token}");
    let points = tokens["histogram"]["dataPoints"].as_array().unwrap();
    assert_eq!(points.len(), 2, "input and output: {tokens:#}");
    for point in points {
        let buckets = point["bucketCounts"].as_array().unwrap();
        assert_eq!(
            buckets.len(),
            point["explicitBounds"].as_array().unwrap().len() + 1
        );
        assert_eq!(point["count"], "2");
    }
    let duration = metric("gen_ai.client.operation.duration");
    assert_eq!(duration["unit"], "s");
    assert_eq!(duration["histogram"]["dataPoints"][0]["count"], "2");
    assert!(metric("tack.decisions")["sum"]["dataPoints"][0]["asDouble"] == 1.0);
    assert!(metric("tack.lines.added")["sum"]["dataPoints"][0]["asDouble"] == 1.0);

    // Without an endpoint, the export says what to set.
    let missing = tack_in(workspace, &[], &["export", "--format", "otlp"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("OTEL_EXPORTER_OTLP_ENDPOINT"));

    // ActivityWatch: the bucket is created as its API documents, then heartbeats.
    let aw = FakeModelServer::start().await.unwrap();
    for _ in 0..64 {
        aw.push(crate::support::fake_model::Reply::json(200, &json!({})));
    }
    let sent = stdout_of(&tack_in(
        workspace,
        &[],
        &[
            "export",
            "--format",
            "activitywatch",
            "--activitywatch-url",
            &aw.url(),
            "--pulsetime",
            "60",
        ],
    ));
    assert!(sent.contains("heartbeat"), "{sent}");
    let requests = aw.requests();
    let bucket = &requests[0];
    assert_eq!(bucket.method, "POST");
    assert!(
        bucket.path.starts_with("/api/0/buckets/tack-agent_"),
        "{}",
        bucket.path
    );
    assert_eq!(bucket.json()["type"], "app.agent.activity");
    assert_eq!(bucket.json()["client"], "tack");
    assert!(bucket.json()["hostname"].is_string());
    let beats = &requests[1..];
    assert!(beats.len() >= 5, "{}", beats.len());
    for beat in beats {
        assert_eq!(beat.path, format!("{}/heartbeat?pulsetime=60", bucket.path));
        let event = beat.json();
        assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(event["duration"], 0);
        assert_eq!(event["data"]["session"], session);
        assert_eq!(event["data"]["model"], "scripted/m");
    }
    let bad = tack_in(workspace, &[], &["export", "--format", "xml"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("jsonl, csv, ccusage, otlp or activitywatch")
    );
}

#[test]
fn a_bad_ledger_setting_stops_the_run_with_its_name() {
    let workspace = Workspace::new();
    workspace.write(
        "tack.toml",
        "model = \"openai/gpt-5\"\n[ledger]\nrecord_prompts = \"no\"\n",
    );
    let run = tack_in(
        &workspace,
        &[("OPENAI_API_KEY", "sk-unused-0123456789")],
        &["run", "hi"],
    );
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("record_prompts"), "{stderr}");
    assert!(stderr.contains("boolean"), "{stderr}");
}

#[test]
fn an_unknown_session_and_a_bad_group_are_named() {
    let workspace = Workspace::new();
    let log = tack_in(&workspace, &[], &["log", "nope"]);
    assert!(!log.status.success());
    assert!(String::from_utf8_lossy(&log.stderr).contains("no session matches \"nope\""));
    let stats = tack_in(&workspace, &[], &["stats", "--by", "week"]);
    assert!(!stats.status.success());
    assert!(String::from_utf8_lossy(&stats.stderr).contains("day, model, session or tool"));
    let empty = stdout_of(&tack_in(&workspace, &[], &["sessions"]));
    assert!(empty.contains("no sessions"), "{empty}");
}

const DAY_MS: u64 = 86_400_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Commits the files (path, text; `None` deletes) at `at_ms`, on top of HEAD.
fn commit_at(repo: &git2::Repository, at_ms: u64, files: &[(&str, Option<&str>)], message: &str) {
    let root = repo.workdir().unwrap().to_path_buf();
    let mut index = repo.index().unwrap();
    for (path, text) in files {
        match text {
            Some(text) => {
                std::fs::write(root.join(path), text).unwrap();
                index.add_path(Path::new(path)).unwrap();
            }
            None => {
                std::fs::remove_file(root.join(path)).unwrap();
                index.remove_path(Path::new(path)).unwrap();
            }
        }
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let time = git2::Time::new((at_ms / 1000) as i64, 0);
    let signature = git2::Signature::new("T", "t@example.com", &time).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )
    .unwrap();
}

/// A ledger session of `workspace` whose one applied change added `lines` to `path` at `ts`.
fn agent_session(
    dir: &Path,
    session: &str,
    workspace: &Path,
    ts: u64,
    path: &str,
    lines: &[&str],
    cost: f64,
) {
    let hashes: Vec<String> = lines.iter().map(|l| tack::ledger::line_hash(l)).collect();
    let records = [
        json!({"v": 1, "type": "session_started", "session": session, "seq": 1, "ts": ts, "turn": 0,
               "workspace": workspace.display().to_string(), "provider": "p", "model": "m"}),
        json!({"v": 1, "type": "model_call", "session": session, "seq": 2, "ts": ts, "turn": 1,
               "provider": "p", "model": "m", "duration": 5, "usage": null,
               "cost": {"usd": cost, "prices_as_of": "2025-09-29"}}),
        json!({"v": 1, "type": "edit_applied", "session": session, "seq": 3, "ts": ts, "turn": 1,
               "paths": [path], "change": 1, "diff": "",
               "detail": {"acceptance": "full", "files": [{"path": path, "before": null, "after": null,
                   "hunks": [{"old_start": 1, "old_lines": 0, "new_start": 1, "new_lines": lines.len(), "added": hashes}]}]}}),
    ];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{session}.jsonl")), text).unwrap();
}

#[test]
fn survival_joins_the_ledger_with_a_git_history_kept_revised_deleted_and_moved() {
    let workspace = Workspace::new();
    let root = workspace.root().canonicalize().unwrap();
    let repo = git2::Repository::init(&root).unwrap();
    let ledger = workspace.path(".home/tack/ledger");
    let now = now_ms();
    let human = "fn human_one() {}\nfn human_two() {}\n";
    commit_at(
        &repo,
        now - 40 * DAY_MS,
        &[("f.rs", Some(human))],
        "human start",
    );

    let agent = [
        "let kept = 1;",
        "let revised = 2;",
        "let deleted = 3;",
        "let moved = 4;",
    ];
    agent_session(
        &ledger,
        "20250101-000000-1",
        &root,
        now - 30 * DAY_MS - 3_600_000,
        "f.rs",
        &agent,
        0.4,
    );
    let landed = format!("{human}{}\nfn human_three() {{}}\n}}\n", agent.join("\n"));
    commit_at(
        &repo,
        now - 30 * DAY_MS,
        &[("f.rs", Some(&landed))],
        "agent lines land",
    );

    // Within 14 days: one revised, one deleted, one moved to another file.
    let churned = format!("{human}let kept = 1;\nlet revised = 20;\nfn human_three() {{}}\n}}\n");
    commit_at(
        &repo,
        now - 25 * DAY_MS,
        &[("f.rs", Some(&churned)), ("g.rs", Some("let moved = 4;\n"))],
        "revise, delete, move",
    );

    // An agent change undone before anything was committed: its line never counts, though
    // a human writes the same line later.
    agent_session(
        &ledger,
        "20250115-000000-3",
        &root,
        now - 30 * DAY_MS - 7_200_000,
        "h.rs",
        &["let undone = 6;"],
        0.0,
    );
    let undo = json!({"v": 1, "type": "changes_restored", "session": "20250115-000000-3", "seq": 4,
        "ts": now - 30 * DAY_MS - 7_000_000, "turn": 1, "kind": "undo", "changes": [1], "files": ["h.rs"]});
    let path = ledger.join("20250115-000000-3.jsonl");
    let text = std::fs::read_to_string(&path).unwrap() + &format!("{undo}\n");
    std::fs::write(&path, text).unwrap();
    commit_at(
        &repo,
        now - 29 * DAY_MS,
        &[("h.rs", Some("let undone = 6;\n"))],
        "human writes it",
    );

    // A young agent line: too young to judge.
    agent_session(
        &ledger,
        "20250201-000000-2",
        &root,
        now - 3 * DAY_MS - 3_600_000,
        "g.rs",
        &["let young = 5;"],
        0.1,
    );
    commit_at(
        &repo,
        now - 3 * DAY_MS,
        &[("g.rs", Some("let moved = 4;\nlet young = 5;\n"))],
        "young",
    );

    let out = tack_in(&workspace, &[], &["survival", "--days", "20", "--json"]);
    let report: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let agent = &report["agent"];
    assert_eq!(agent["landed"], 5, "{report:#}");
    assert_eq!(agent["judged_at_14_days"], 4, "{report:#}");
    assert_eq!(agent["revised_within_14_days"], 1, "{report:#}");
    assert_eq!(agent["deleted_within_14_days"], 1, "{report:#}");
    assert_eq!(agent["moved_within_14_days"], 1, "{report:#}");
    assert_eq!(agent["judged_at_n_days"], 4, "{report:#}");
    assert_eq!(agent["still_in_head"], 2, "kept and moved: {report:#}");
    assert_eq!(agent["too_young"], 1, "{report:#}");
    // Human lines since the first agent edit: human_three, the revision of `revised` and the
    // line of the undone change; the lone brace does not count.
    let human = &report["human"];
    assert_eq!(human["landed"], 3, "{report:#}");
    assert_eq!(human["still_in_head"], 3, "{report:#}");
    assert_eq!(human["revised_within_14_days"], 0, "{report:#}");
    // The judged session cost $0.4 for 2 durable lines.
    assert!((report["cost_per_durable_line_usd"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(report["commits"], 5);
    assert_eq!(report["agent_lines_not_committed"], 0);

    let table = stdout_of(&tack_in(&workspace, &[], &["survival", "--days", "20"]));
    assert!(table.contains("still in HEAD"), "{table}");
    assert!(table.contains("50.0%"), "{table}");

    let outside = tempfile::tempdir().unwrap();
    let out = Command::new(tack_path())
        .args(["survival"])
        .current_dir(outside.path())
        .env("XDG_DATA_HOME", workspace.path(".home"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("git"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Called by `surfaces::in_apply_mode_the_change_is_applied_when_the_run_ends` once its editor
/// session (real clangd, the scripted model) is over: the editor's events and decisions are in
/// the ledger too, with the editor's name and the document version the edit gave.
pub fn the_editor_session_is_in_the_ledger(workspace: &Workspace) {
    let files = ledger_files(workspace);
    assert_eq!(files.len(), 1, "{files:?}");
    let lines = lines_of(&files[0]);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(lines[0]["type"], "session_started", "{types:?}");
    assert_eq!(lines[0]["client"], "tack-test-client 0");
    for kind in [
        "context_sent",
        "model_call",
        "edit_drafted",
        "proposal_shown",
        "proposal_decided",
    ] {
        assert!(types.contains(&kind), "{kind} missing: {types:?}");
    }
    let decided = lines
        .iter()
        .find(|l| l["type"] == "proposal_decided")
        .unwrap();
    assert_eq!(decided["decision"], "applied");
    assert_eq!(decided["detail"]["acceptance"], "full");
    assert_eq!(decided["detail"]["document_versions"]["main.c"], 1);
    let file = &decided["detail"]["files"][0];
    assert_eq!(file["path"], "main.c");
    assert_eq!(
        file["hunks"][0]["added"][0],
        tack::ledger::line_hash("    int x = 1;")
    );
}

/// Called by `acp::a_client_without_file_access_gets_edits_on_disk_after_their_snapshot` once
/// its ACP session (a prompt that edits, then `/undo`) is over: the session is in the ledger
/// under the client's name, with the edit and the undo.
pub fn the_acp_session_is_in_the_ledger(workspace: &Workspace, session: &str) {
    let files = ledger_files(workspace);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().contains(session), "{files:?}");
    let lines = lines_of(&files[0]);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(lines[0]["type"], "session_started", "{types:?}");
    assert_eq!(lines[0]["client"], "tack acp (zed 0.200.0)");
    for kind in [
        "context_sent",
        "model_call",
        "tool_call_begun",
        "edit_applied",
    ] {
        assert!(types.contains(&kind), "{kind} missing: {types:?}");
    }
    let undone = lines
        .iter()
        .find(|l| l["type"] == "changes_restored")
        .unwrap_or_else(|| panic!("no undo in {types:?}"));
    assert_eq!(undone["kind"], "undo");
    assert_eq!(undone["files"], json!(["main.c"]));
}
