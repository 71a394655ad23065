//! Real Neovim (headless) drives a C quick fix end to end: clangd's diagnostic arrives, its code
//! action is offered, and applying the edit fixes the buffer. Once with clangd directly (the
//! baseline that proves the script), once through `tack lsp` in front of clangd.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::{run_with_limit, tool};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/nvim/clangd_quickfix.lua"
);
const FIXTURE: &str = include_str!("fixtures/c_quickfix/main.c");
const FIXED: &str = "int main(void) {\n  int x = 1;\n  int *p = &x;\n  return *p;\n}\n";

/// The JSON the Lua script writes.
#[derive(Debug, Deserialize)]
struct QuickFixRun {
    diagnostics: Vec<SeenDiagnostic>,
    actions: Vec<OfferedAction>,
    applied: Option<String>,
    text_after: Option<String>,
    diagnostics_after: Vec<SeenDiagnostic>,
    server_exit: Option<ServerExit>,
    lsp_log: Option<PathBuf>,
    errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct SeenDiagnostic {
    message: String,
    range: Range,
}

#[derive(Debug, Deserialize)]
struct Range {
    start: Position,
}

#[derive(Debug, Deserialize)]
struct Position {
    line: u32,
    character: u32,
}

#[derive(Debug, Deserialize)]
struct OfferedAction {
    title: String,
    has_edit: bool,
}

#[derive(Debug, Deserialize)]
struct ServerExit {
    code: i32,
    signal: i32,
}

/// Runs the Lua script in a fresh headless Neovim on a copy of the fixture, with `server_cmd`
/// as the language server, and returns what it recorded.
fn run_quick_fix_script(server_cmd: &[PathBuf], extra_path: &Path) -> QuickFixRun {
    let nvim = tool("nvim");
    let scratch = tempfile::tempdir().unwrap();
    let workspace = scratch.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    std::fs::write(workspace.join("main.c"), FIXTURE).unwrap();
    let result_path = scratch.path().join("result.json");
    let server_cmd: Vec<String> = server_cmd
        .iter()
        .map(|part| part.display().to_string())
        .collect();

    // The editor, and the servers it starts, see an isolated home: no user configuration,
    // logs and caches inside the scratch folder.
    let path = std::env::join_paths(std::iter::once(extra_path.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut command = Command::new(&nvim);
    command
        .args(["--headless", "--clean", "-u", "NONE", "-c"])
        .arg(format!("luafile {SCRIPT}"))
        .current_dir(&workspace)
        .env("PATH", path)
        .env(
            "E2E_SERVER_CMD",
            serde_json::to_string(&server_cmd).unwrap(),
        )
        .env("E2E_WORKSPACE", &workspace)
        .env("E2E_FILE", "main.c")
        .env("E2E_RESULT", &result_path)
        .env("E2E_TIMEOUT_MS", "30000");
    for (variable, folder) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        command.env(variable, scratch.path().join(folder));
    }
    let finished = run_with_limit(&mut command, Duration::from_secs(100));
    let written = std::fs::read_to_string(&result_path).unwrap_or_else(|error| {
        panic!(
            "the script wrote no result ({error}); nvim exited with {}.\nstderr:\n{}",
            finished.status, finished.stderr
        )
    });
    let run: QuickFixRun = serde_json::from_str(&written)
        .unwrap_or_else(|error| panic!("unreadable result ({error}):\n{written}"));
    if !run.errors.is_empty() || !finished.status.success() {
        let lsp_log = run
            .lsp_log
            .as_deref()
            .and_then(|log| std::fs::read_to_string(log).ok())
            .unwrap_or_default();
        panic!(
            "the script reported errors (nvim exited with {}):\n{written}\nnvim stderr:\n{}\nNeovim's LSP log (server stderr):\n{lsp_log}",
            finished.status, finished.stderr
        );
    }
    run
}

/// What every server command must produce on the fixture: clangd's int-to-pointer diagnostic
/// on line 3, its "insert '&'" quick fix applied, the diagnostic gone, the server shut down.
fn assert_quick_fix_applied(run: &QuickFixRun) {
    let diagnostic = run
        .diagnostics
        .iter()
        .find(|d| d.message.contains("take the address with &"))
        .unwrap_or_else(|| panic!("no int-to-pointer diagnostic among {:#?}", run.diagnostics));
    // clangd puts it on the declared `p` of `  int *p = x;`.
    assert_eq!(
        (
            diagnostic.range.start.line,
            diagnostic.range.start.character
        ),
        (2, 7)
    );
    assert!(
        run.actions
            .iter()
            .any(|action| action.title == "insert '&'" && action.has_edit),
        "no \"insert '&'\" action with an edit among {:#?}",
        run.actions
    );
    assert_eq!(run.applied.as_deref(), Some("insert '&'"));
    assert_eq!(run.text_after.as_deref(), Some(FIXED));
    assert!(
        run.diagnostics_after
            .iter()
            .all(|d| !d.message.contains("take the address")),
        "the fixed diagnostic is still there: {:#?}",
        run.diagnostics_after
    );
    let exit = run
        .server_exit
        .as_ref()
        .expect("the server did not exit after shutdown");
    assert_eq!(
        (exit.code, exit.signal),
        (0, 0),
        "the server did not exit cleanly"
    );
}

#[test]
fn nvim_applies_clangd_quick_fix_talking_to_clangd_directly() {
    let clangd = tool("clangd");
    let clangd_dir = clangd.parent().unwrap().to_path_buf();
    let run = run_quick_fix_script(&[clangd], &clangd_dir);
    assert_quick_fix_applied(&run);
}

#[test]
fn nvim_applies_clangd_quick_fix_through_tack() {
    let clangd = tool("clangd");
    let clangd_dir = clangd.parent().unwrap().to_path_buf();
    let tack = PathBuf::from(env!("CARGO_BIN_EXE_tack"));
    let run = run_quick_fix_script(&[tack, PathBuf::from("lsp")], &clangd_dir);
    assert_quick_fix_applied(&run);
}

/// What `fix_with_tack.lua` records.
#[derive(Debug, Deserialize)]
struct FixWithTackRun {
    text_before: Option<String>,
    diagnostic: Option<String>,
    first_actions: Vec<String>,
    proposal_actions: Vec<String>,
    text_applied: Option<String>,
    text_undone: Option<String>,
    progress: Vec<String>,
    errors: Vec<String>,
}

const FIX_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/nvim/fix_with_tack.lua"
);

/// Real Neovim, tack in front of clangd, the scripted model: "Fix with tack" on clangd's error,
/// the proposal applied by Neovim through `workspace/applyEdit`, then undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nvim_fixes_with_tack_applies_the_proposal_and_undoes_it() {
    use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, openai_chat};
    const BROKEN: &str = "int main(void) {\n    int x = 1\n    return x;\n}\n";
    const REPAIRED: &str = "int main(void) {\n    int x = 1;\n    return x;\n}\n";
    let model = FakeModelServer::start().await.unwrap();
    let edit = serde_json::json!({ "path": "main.c", "old": "int x = 1\n", "new": "int x = 1;\n" });
    model.push(openai_chat::stream(&Answer::default().with_tool_call(
        FakeToolCall::new("c1", "edit", &[&edit.to_string()]),
    )));
    model.push(openai_chat::stream(&Answer::text(&[
        "Added the missing semicolon.",
    ])));

    let nvim = tool("nvim");
    let clangd_dir = tool("clangd").parent().unwrap().to_path_buf();
    let scratch = tempfile::tempdir().unwrap();
    let workspace = scratch.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    std::fs::write(workspace.join("main.c"), BROKEN).unwrap();
    std::fs::write(
        workspace.join("tack.toml"),
        format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n",
            model.url()
        ),
    )
    .unwrap();
    let result_path = scratch.path().join("result.json");
    let tack = PathBuf::from(env!("CARGO_BIN_EXE_tack"))
        .display()
        .to_string();
    let path = std::env::join_paths(std::iter::once(clangd_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut command = Command::new(&nvim);
    command
        .args(["--headless", "--clean", "-u", "NONE", "-c"])
        .arg(format!("luafile {FIX_SCRIPT}"))
        .current_dir(&workspace)
        .env("PATH", path)
        .env(
            "E2E_SERVER_CMD",
            serde_json::to_string(&[tack, "lsp".to_owned()]).unwrap(),
        )
        .env("E2E_WORKSPACE", &workspace)
        .env("E2E_RESULT", &result_path)
        .env("E2E_TIMEOUT_MS", "30000");
    for (variable, folder) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        command.env(variable, scratch.path().join(folder));
    }
    let finished =
        tokio::task::spawn_blocking(move || run_with_limit(&mut command, Duration::from_secs(110)))
            .await
            .unwrap();
    let written = std::fs::read_to_string(&result_path).unwrap_or_else(|error| {
        panic!(
            "the script wrote no result ({error}); nvim exited with {}.\nstderr:\n{}",
            finished.status, finished.stderr
        )
    });
    let run: FixWithTackRun = serde_json::from_str(&written).unwrap();
    assert!(
        run.errors.is_empty() && finished.status.success(),
        "{written}\nnvim stderr:\n{}",
        finished.stderr
    );
    assert_eq!(run.text_before.as_deref(), Some(BROKEN));
    assert!(
        run.diagnostic.as_deref().unwrap().contains("Expected ';'"),
        "{written}"
    );
    assert!(
        run.first_actions.iter().any(|t| t == "Fix with tack"),
        "{written}"
    );
    assert!(
        run.proposal_actions
            .iter()
            .any(|t| t == "Apply tack change: Added the missing semicolon."),
        "{written}"
    );
    assert_eq!(run.text_applied.as_deref(), Some(REPAIRED), "{written}");
    assert_eq!(run.text_undone.as_deref(), Some(BROKEN), "{written}");
    assert!(
        run.progress.first().map(String::as_str) == Some("begin")
            && run.progress.iter().any(|k| k == "end"),
        "{written}"
    );
    // Neovim owns its buffer; the file on disk was not written by tack.
    assert_eq!(
        std::fs::read_to_string(workspace.join("main.c")).unwrap(),
        BROKEN
    );
}

/// What `plugin.lua` records.
#[derive(Debug, Deserialize)]
struct PluginRun {
    text_before: Option<String>,
    text_applied: Option<String>,
    text_undone: Option<String>,
    transcript: Option<String>,
    health: Option<String>,
    status: Option<String>,
    errors: Vec<String>,
}

/// The Neovim plugin as its README sets it up: `require('tack').setup{}`, `:TackFix`,
/// `:TackApply`, `:TackUndo`, the transcript window and `:checkhealth tack`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nvim_plugin_fixes_applies_undoes_and_checks_health() {
    use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, openai_chat};
    const BROKEN: &str = "int main(void) {\n    int x = 1\n    return x;\n}\n";
    const REPAIRED: &str = "int main(void) {\n    int x = 1;\n    return x;\n}\n";
    let model = FakeModelServer::start().await.unwrap();
    let edit = serde_json::json!({ "path": "main.c", "old": "int x = 1\n", "new": "int x = 1;\n" });
    model.push(openai_chat::stream(&Answer::default().with_tool_call(
        FakeToolCall::new("c1", "edit", &[&edit.to_string()]),
    )));
    model.push(openai_chat::stream(&Answer::text(&[
        "Added the missing semicolon.",
    ])));

    let scratch = tempfile::tempdir().unwrap();
    let workspace = scratch.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    std::fs::write(workspace.join("main.c"), BROKEN).unwrap();
    std::fs::write(
        workspace.join("tack.toml"),
        format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n",
            model.url()
        ),
    )
    .unwrap();
    let result_path = scratch.path().join("result.json");
    let path = std::env::join_paths(
        std::iter::once(tool("clangd").parent().unwrap().to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )
    .unwrap();
    let mut command = Command::new(tool("nvim"));
    command
        .args(["--headless", "--clean", "-u", "NONE", "-c"])
        .arg(format!(
            "luafile {}",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/nvim/plugin.lua")
        ))
        .current_dir(&workspace)
        .env("PATH", path)
        .env(
            "E2E_PLUGIN",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../editors/nvim"),
        )
        .env("E2E_TACK", env!("CARGO_BIN_EXE_tack"))
        .env("E2E_WORKSPACE", &workspace)
        .env("E2E_RESULT", &result_path)
        .env("E2E_TIMEOUT_MS", "30000");
    for (variable, folder) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        command.env(variable, scratch.path().join(folder));
    }
    let finished =
        tokio::task::spawn_blocking(move || run_with_limit(&mut command, Duration::from_secs(110)))
            .await
            .unwrap();
    let written = std::fs::read_to_string(&result_path).unwrap_or_else(|error| {
        panic!(
            "the script wrote no result ({error}); nvim exited with {}.\nstderr:\n{}",
            finished.status, finished.stderr
        )
    });
    let run: PluginRun = serde_json::from_str(&written).unwrap();
    assert!(
        run.errors.is_empty() && finished.status.success(),
        "{written}\nnvim stderr:\n{}",
        finished.stderr
    );
    assert_eq!(run.text_before.as_deref(), Some(BROKEN));
    assert_eq!(run.text_applied.as_deref(), Some(REPAIRED));
    assert_eq!(run.text_undone.as_deref(), Some(BROKEN));
    let transcript = run.transcript.unwrap();
    assert!(
        transcript.contains("**Proposal:** Added the missing semicolon.")
            && transcript.contains("_applied main.c_")
            && transcript.contains("_undo: main.c_"),
        "{transcript}"
    );
    assert!(
        run.status.unwrap().starts_with("tack scripted/m"),
        "{written}"
    );
    let health = run.health.unwrap();
    assert!(
        health.contains("tack 0.1.0")
            && health.contains("OK running (root ")
            && health.contains("clangd: "),
        "{health}"
    );
}
