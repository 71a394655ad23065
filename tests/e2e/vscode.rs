//! The VS Code extension (`editors/vscode`) in the real workbench: code-server in headless
//! Chromium, driven by a Playwright script (`vscode/fix_with_tack.js`), with real clangd behind
//! tack and the scripted model. The steps are the README's: package the extension with vsce,
//! install the `.vsix`, point `tack.path` at tack, open the folder. Screenshots are kept in
//! `$CARGO_TARGET_TMPDIR/vscode-e2e/` (the path is printed) to look at.
//!
//! Also the extension's own unit tests (binary lookup, companion languages, settings →
//! `initializationOptions`) under Node's test runner.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{run_with_limit, tool, tools_dir};

const EXTENSION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../editors/vscode");
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/vscode/fix_with_tack.js"
);
const BROKEN: &str = "int main(void) {\n    int x = 1\n    return x;\n}\n";
const REPAIRED: &str = "int main(void) {\n    int x = 1;\n    return x;\n}\n";
/// Each step of the workbench waits at most this long.
const STEP_TIMEOUT_MS: &str = "30000";

/// Node 24 (code-server's, and what vsce needs): the folder of the real binary, to lead `PATH`
/// so that `npm` and `npx` run on it.
fn node24_dir() -> PathBuf {
    let node = tool("node24").canonicalize().unwrap();
    node.parent().unwrap().to_path_buf()
}

fn path_with(first: &Path) -> std::ffi::OsString {
    std::env::join_paths(
        std::iter::once(first.to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap()
}

fn extension_dependencies() -> PathBuf {
    let modules = Path::new(EXTENSION).join("node_modules");
    assert!(
        modules.join("vscode-languageclient").is_dir() && modules.join(".bin/vsce").exists(),
        "{} lacks the extension's dependencies: run tests/e2e/setup.sh",
        modules.display()
    );
    modules
}

fn playwright_core() -> PathBuf {
    let path = tools_dir()
        .unwrap()
        .join("npm/playwright/node_modules/playwright-core");
    assert!(
        path.join("package.json").is_file(),
        "playwright-core is not installed at {}: run tests/e2e/setup.sh",
        path.display()
    );
    path
}

/// Runs a command, panicking with its output when it fails.
fn run_ok(command: &mut Command, what: &str, limit: Duration) -> String {
    let finished = run_with_limit(command, limit);
    assert!(
        finished.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        finished.status,
        finished.stdout,
        finished.stderr
    );
    finished.stdout
}

#[test]
fn vscode_extension_unit_tests_pass() {
    let modules = extension_dependencies();
    let out = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(tool("node24"))
            .arg(modules.join("typescript/bin/tsc"))
            .args(["-p", EXTENSION, "--outDir"])
            .arg(out.path()),
        "compiling the extension",
        Duration::from_secs(120),
    );
    let tests: Vec<PathBuf> = std::fs::read_dir(out.path().join("test"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".test.js"))
        .collect();
    assert!(tests.len() >= 3, "{tests:?}");
    let report = run_ok(
        Command::new(tool("node24"))
            .args(["--test", "--test-reporter=tap"])
            .args(&tests),
        "the extension's unit tests",
        Duration::from_secs(60),
    );
    assert!(report.contains("# fail 0"), "{report}");
}

/// What the Playwright script records.
#[derive(Debug, Deserialize)]
struct WorkbenchRun {
    steps: Vec<Step>,
    screenshots: Vec<PathBuf>,
    errors: Vec<String>,
    status_before: Option<String>,
    text_before: Option<String>,
    quick_fixes: Option<Vec<String>>,
    chat_after_fix: Option<String>,
    proposal_fixes: Option<Vec<String>>,
    text_applied: Option<String>,
    text_undone: Option<String>,
    text_chat_applied: Option<String>,
    companion_fixes: Option<Vec<String>>,
    chat_final: Option<String>,
    status_after: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Step {
    name: String,
    ms: u64,
}

/// Whether a recorded quick-fix menu listed `title`.
fn offers(menu: &Option<Vec<String>>, title: &str) -> bool {
    menu.iter().flatten().any(|offered| offered == title)
}

/// code-server and every process it started; all are killed, by pid, when dropped.
struct CodeServer {
    child: Child,
    log: PathBuf,
}

impl CodeServer {
    /// Waits for the line that says where it listens; returns the port.
    fn wait_for_port(&mut self, limit: Duration) -> u16 {
        const MARK: &str = "HTTP server listening on http://127.0.0.1:";
        let deadline = Instant::now() + limit;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(port) = log.lines().find_map(|line| {
                let rest = &line[line.find(MARK)? + MARK.len()..];
                rest.trim_end_matches('/').parse::<u16>().ok()
            }) {
                return port;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("code-server exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "code-server did not listen within {limit:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The pids of `pid`'s descendants, children after their own descendants.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let parent = status
            .lines()
            .find_map(|line| line.strip_prefix("PPid:"))
            .and_then(|value| value.trim().parse::<u32>().ok());
        if parent == Some(pid) {
            found.extend(descendants(child));
            found.push(child);
        }
    }
    found
}

impl Drop for CodeServer {
    fn drop(&mut self) {
        // The whole tree is listed before anything dies: a killed parent's children would be
        // handed to init and could no longer be found by their parent.
        let mut pids = descendants(self.child.id());
        pids.push(self.child.id());
        for signal in ["-TERM", "-KILL"] {
            let alive: Vec<String> = pids
                .iter()
                .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
                .map(u32::to_string)
                .collect();
            if alive.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg(signal)
                .args(&alive)
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vscode_fixes_with_tack_from_the_quick_fix_menu_streams_the_chat_applies_and_undoes() {
    use crate::support::fake_model::{
        Answer, FakeModelServer, FakeToolCall, FakeUsage, openai_chat,
    };
    let model = FakeModelServer::start().await.unwrap();
    let edit = serde_json::json!({ "path": "main.c", "old": "int x = 1\n", "new": "int x = 1;\n" });
    // Each model call reports 600 tokens, so the status bar has a session total to show.
    let usage = FakeUsage {
        input_uncached: 500,
        output: 100,
        ..FakeUsage::default()
    };
    for answer in ["Added the missing semicolon.", "Semicolon added again."] {
        if answer.ends_with("again.") {
            // The second request first asks for the diagnostics, which tack.toml says to ask
            // about: the approval is answered with the chat's button.
            model.push(openai_chat::stream(
                &Answer::default()
                    .with_tool_call(FakeToolCall::new(
                        "c0",
                        "diagnostics",
                        &[r#"{"paths":["main.c"]}"#],
                    ))
                    .with_usage(usage),
            ));
        }
        model.push(openai_chat::stream(
            &Answer::default()
                .with_tool_call(FakeToolCall::new("c1", "edit", &[&edit.to_string()]))
                .with_usage(usage),
        ));
        model.push(openai_chat::stream(
            &Answer::text(&[answer]).with_usage(usage),
        ));
    }

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vscode-e2e");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    eprintln!("VS Code screenshots: {}", artifacts.display());

    let run = tokio::task::spawn_blocking(move || {
        drive_workbench(&artifacts, &format!("{}/v1", model.url()))
    })
    .await
    .unwrap();

    let summary = format!("{run:#?}");
    assert!(run.errors.is_empty(), "{summary}");
    assert!(
        run.status_before
            .as_deref()
            .is_some_and(|s| s.contains("tack")),
        "{summary}"
    );
    assert_eq!(run.text_before.as_deref(), Some(BROKEN), "{summary}");
    assert!(offers(&run.quick_fixes, "Fix with tack"), "{summary}");
    let chat = run.chat_after_fix.as_deref().unwrap_or_default();
    assert!(
        chat.contains("Added the missing semicolon.")
            && chat.contains("Proposal: Added the missing semicolon.")
            && chat.contains("+    int x = 1;"),
        "{summary}"
    );
    assert!(
        offers(
            &run.proposal_fixes,
            "Apply tack change: Added the missing semicolon."
        ),
        "{summary}"
    );
    assert_eq!(run.text_applied.as_deref(), Some(REPAIRED), "{summary}");
    assert_eq!(run.text_undone.as_deref(), Some(BROKEN), "{summary}");
    assert_eq!(
        run.text_chat_applied.as_deref(),
        Some(REPAIRED),
        "{summary}"
    );
    let chat = run.chat_final.as_deref().unwrap_or_default();
    assert!(
        chat.contains("Add the missing semicolon in main.c")
            && chat.contains("Undone: main.c")
            && chat.contains("applied: main.c")
            && chat.contains("tack wants to use diagnostics")
            && chat.contains("Allowed (user)"),
        "{summary}"
    );
    assert!(
        run.status_after
            .as_deref()
            .is_some_and(|s| s.contains("tack scripted/m · 3.0k tok")),
        "{summary}"
    );
    // Companion mode: VS Code's JSON error (no tack server reports on JSON) is in tack's store.
    assert!(
        offers(&run.companion_fixes, "Fix all errors in file with tack"),
        "{summary}"
    );
    assert_eq!(run.screenshots.len(), 9, "{summary}");
    for screenshot in &run.screenshots {
        let bytes = std::fs::read(screenshot).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", screenshot.display());
    }
    let timings: Vec<String> = run
        .steps
        .iter()
        .map(|s| format!("{} {} ms", s.name, s.ms))
        .collect();
    eprintln!("workbench steps: {}", timings.join(", "));
}

/// Packages and installs the extension, starts code-server on a workspace with the broken
/// `main.c`, runs the Playwright script, and returns what it recorded.
fn drive_workbench(artifacts: &Path, model_url: &str) -> WorkbenchRun {
    extension_dependencies();
    let playwright = playwright_core();
    let node24 = tool("node24");
    let code_server = tool("code-server");
    let chromium = tool("chromium");
    let clangd = tool("clangd");

    // The README's steps: `npm run package` (tsc, vsce), then install the .vsix.
    run_ok(
        Command::new("npm")
            .args(["run", "package"])
            .current_dir(EXTENSION)
            .env("PATH", path_with(&node24_dir())),
        "npm run package",
        Duration::from_secs(180),
    );
    let vsix = Path::new(EXTENSION).join("tack.vsix");

    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().canonicalize().unwrap();
    let workspace = root.join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    std::fs::write(workspace.join("main.c"), BROKEN).unwrap();
    // VS Code's built-in JSON support flags the missing comma; tack has no JSON server.
    std::fs::write(
        workspace.join("data.json"),
        "{\n  \"a\": 1\n  \"b\": 2\n}\n",
    )
    .unwrap();
    std::fs::write(
        workspace.join("tack.toml"),
        format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{model_url}\"\n\n[permissions]\ndiagnostics = \"ask\"\n\n[servers.clangd]\ncommand = \"{}\"\n",
            clangd.display()
        ),
    )
    .unwrap();
    let config = root.join("code-server.yaml");
    std::fs::write(&config, "bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n").unwrap();
    let user_data = root.join("user-data");
    let extensions = root.join("extensions");
    let home = root.join("home");
    let settings = serde_json::json!({
        "tack.path": env!("CARGO_BIN_EXE_tack"),
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": false,
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "chat.disableAIFeatures": true,
        "security.workspace.trust.enabled": false,
        "extensions.ignoreRecommendations": true,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "editor.minimap.enabled": false,
        // The web workbench saves after a second by default; off, the file on disk shows
        // that tack itself writes nothing (the editor owns the buffer).
        "files.autoSave": "off",
    });
    std::fs::create_dir_all(user_data.join("User")).unwrap();
    std::fs::write(
        user_data.join("User/settings.json"),
        serde_json::to_string_pretty(&settings).unwrap(),
    )
    .unwrap();
    let isolate = |command: &mut Command| {
        for variable in [
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
        ] {
            command.env(variable, &home);
        }
    };

    // Every code-server command: this configuration, these folders, the isolated XDG folders.
    let code_server_command = || {
        let mut command = Command::new(&code_server);
        command
            .arg("--config")
            .arg(&config)
            .arg("--user-data-dir")
            .arg(&user_data)
            .arg("--extensions-dir")
            .arg(&extensions);
        isolate(&mut command);
        command
    };
    let installed = run_ok(
        code_server_command().arg("--install-extension").arg(&vsix),
        "installing the .vsix",
        Duration::from_secs(120),
    );
    assert!(installed.contains("successfully installed"), "{installed}");

    let log = root.join("code-server.log");
    let mut serve = code_server_command();
    serve
        .args([
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
        ])
        .arg(&workspace)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(root.join("code-server.err")).unwrap());
    let mut server = CodeServer {
        child: serve.spawn().unwrap(),
        log: log.clone(),
    };
    let port = server.wait_for_port(Duration::from_secs(60));

    let result_path = root.join("result.json");
    let url = format!(
        "http://127.0.0.1:{port}/?folder={}",
        url::form_urlencoded::byte_serialize(workspace.to_string_lossy().as_bytes())
            .collect::<String>()
    );
    let mut script = Command::new(&node24);
    script
        .arg(SCRIPT)
        .env("E2E_PLAYWRIGHT", &playwright)
        .env("E2E_CHROMIUM", &chromium)
        .env("E2E_URL", &url)
        .env("E2E_ARTIFACTS", artifacts)
        .env("E2E_RESULT", &result_path)
        .env("E2E_TIMEOUT_MS", STEP_TIMEOUT_MS)
        .env("E2E_BROKEN", BROKEN)
        .env("E2E_REPAIRED", REPAIRED);
    let finished = run_with_limit(&mut script, Duration::from_secs(240));
    // Keep what the workbench and tack logged next to the screenshots.
    let _ = std::fs::copy(&log, artifacts.join("code-server.log"));
    copy_tack_logs(&user_data, artifacts);
    drop(server);

    let written = std::fs::read_to_string(&result_path).unwrap_or_else(|error| {
        panic!(
            "the script wrote no result ({error}); it exited with {}.\nstdout:\n{}\nstderr:\n{}",
            finished.status, finished.stdout, finished.stderr
        )
    });
    let run: WorkbenchRun = serde_json::from_str(&written)
        .unwrap_or_else(|error| panic!("unreadable result ({error}):\n{written}"));
    assert!(
        finished.status.success(),
        "the script exited with {}:\n{written}\nstderr:\n{}",
        finished.status,
        finished.stderr
    );
    // The editor owns the buffer: tack wrote nothing to disk.
    assert_eq!(
        std::fs::read_to_string(workspace.join("main.c")).unwrap(),
        BROKEN
    );
    run
}

/// The extension's output channel (tack's stderr and the LSP client's log), for a failure's
/// post-mortem.
fn copy_tack_logs(user_data: &Path, artifacts: &Path) {
    let logs = user_data.join("logs");
    let mut stack = vec![logs];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().contains("tack"))
            {
                let _ = std::fs::copy(&path, artifacts.join("output-tack.log"));
            }
        }
    }
}
