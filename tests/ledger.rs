//! The session ledger through the binary: a `tack run` over the scripted model writes a ledger
//! that `tack sessions`, `tack stats`, `tack log` and `tack export` read; a key in the
//! environment never reaches it; survival over a git history built here; the OTLP export to a
//! local receiver that parses what it gets.

use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, openai_chat};
use crate::support::{Workspace, fake_lsp_path, tack_path};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn tack_in(workspace: &Workspace, envs: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let home = workspace.path(".home").display().to_string();
    let mut command = Command::new(tack_path());
    command
        .args(args)
        .current_dir(workspace.root())
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_DATA_HOME", &home)
        .env("XDG_STATE_HOME", &home)
        .env("TACK_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
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

fn ledger_files(workspace: &Workspace) -> Vec<std::path::PathBuf> {
    let dir = workspace.path(".home/tack/ledger");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn lines_of(path: &Path) -> Vec<Value> {
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
    let edit = Answer::default().with_tool_call(FakeToolCall::new(
        "c1",
        "edit",
        &[&json!({ "path": "main.fk", "old": "value = 1", "new": "value = 2" }).to_string()],
    ));
    model.push(openai_chat::stream(&edit));
    // The model echoes the key it was given: the ledger must not keep it.
    model.push(openai_chat::stream(&Answer::text(&[
        "Done; the key was ",
        SECRET,
        ".",
    ])));

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
