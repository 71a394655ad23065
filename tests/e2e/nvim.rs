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
