//! Companion mode through the real binary: the editor declares the languages it serves itself
//! (tack starts no server for them) and reports its diagnostics with `tack/editorDiagnostics`;
//! they land in tack's store under the source `editor`, the agent reads them (the fix prompt,
//! the `diagnostics` tool's fresh wait), and the editor is never sent them back. The model is
//! the scripted fake; clangd is on PATH so that starting it would be possible.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e::tool;
use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, openai_chat};
use crate::support::{TestClient, Workspace, file_uri, tack_path};

const WAIT: Duration = Duration::from_secs(30);
const BROKEN: &str = "int main(void) {\n    int x = 1\n    return x;\n}\n";
/// What the editor's own C extension reports (worded unlike clangd, so it cannot be clangd's).
const EDITOR_MESSAGE: &str = "expected a ';' (editor's own C server)";

struct Session {
    _workspace: Workspace,
    model: FakeModelServer,
    client: TestClient,
    uri: String,
}

impl Session {
    async fn start(initialization_options: Option<Value>) -> Session {
        let model = FakeModelServer::start().await.unwrap();
        let workspace = Workspace::new();
        workspace.write(
            "tack.toml",
            &format!(
                "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n",
                model.url()
            ),
        );
        let path = workspace.write("main.c", BROKEN);
        let clangd_dir = tool("clangd").parent().unwrap().to_path_buf();
        let search_path = std::env::join_paths(std::iter::once(clangd_dir).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap()
        .into_string()
        .unwrap();
        let home = workspace.path(".home").display().to_string();
        let env = [
            ("PATH", search_path.as_str()),
            ("XDG_CONFIG_HOME", home.as_str()),
            ("XDG_DATA_HOME", home.as_str()),
            ("XDG_STATE_HOME", home.as_str()),
            ("XDG_CACHE_HOME", home.as_str()),
        ];
        let client = TestClient::spawn(&tack_path(), &["lsp"], &workspace.root(), &env);
        let mut params = TestClient::initialize_params(&workspace.root(), initialization_options);
        params["capabilities"]["experimental"] = json!({ "tack": { "transcript": true } });
        client.request("initialize", params).await.unwrap();
        client.notify("initialized", json!({}));
        client.did_open(&path, "c", BROKEN);
        Session {
            uri: file_uri(&path),
            _workspace: workspace,
            model,
            client,
        }
    }

    /// The names of tack's child processes, once the editor's messages so far are handled
    /// (a request round trip orders after them).
    async fn child_processes(&self) -> Vec<String> {
        self.code_action_titles().await;
        child_process_names(self.client.pid().unwrap())
    }

    async fn code_action_titles(&self) -> Vec<String> {
        let actions = self
            .client
            .request(
                "textDocument/codeAction",
                json!({
                    "textDocument": { "uri": self.uri },
                    "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } },
                    "context": { "diagnostics": [], "triggerKind": 1 }
                }),
            )
            .await
            .unwrap();
        actions
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["title"].as_str().map(str::to_owned))
            .collect()
    }

    fn report(&self, version: i32, diagnostics: Value) {
        self.client.notify(
            "tack/editorDiagnostics",
            json!({ "uri": self.uri, "version": version, "diagnostics": diagnostics }),
        );
    }
}

fn editor_diagnostic() -> Value {
    json!({
        "range": { "start": { "line": 1, "character": 13 }, "end": { "line": 1, "character": 13 } },
        "severity": 1,
        "source": "cpptools",
        "message": EDITOR_MESSAGE,
    })
}

/// The command names of the processes whose parent is `pid`.
fn child_process_names(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let folder: PathBuf = entry.path();
        let Ok(status) = std::fs::read_to_string(folder.join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_owned())
        };
        if field("PPid:").as_deref() == Some(pid.to_string().as_str()) {
            names.extend(field("Name:"));
        }
    }
    names
}

fn request_text(model: &FakeModelServer, index: usize) -> String {
    model.requests()[index].json().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companion_mode_starts_no_server_for_the_editors_languages_and_the_agent_sees_its_diagnostics()
 {
    // Baseline: without the declaration, the same workspace gets clangd from tack, so the
    // process check below can see a started server.
    let baseline = Session::start(None).await;
    let children = baseline.child_processes().await;
    assert!(
        children.iter().any(|name| name.starts_with("clangd")),
        "{children:?}"
    );
    baseline.client.shutdown_and_close().await;

    let session = Session::start(Some(
        json!({ "editor": { "companion": { "languages": ["c"] } } }),
    ))
    .await;
    let children = session.child_processes().await;
    assert!(children.is_empty(), "tack started {children:?}");
    let titles = session.code_action_titles().await;
    assert!(
        !titles
            .iter()
            .any(|t| t == "Fix all errors in file with tack"),
        "{titles:?}"
    );

    // The editor reports what its own C server says (and a tack marker, which is not its).
    let marker = json!({
        "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } },
        "severity": 3, "source": "tack", "message": "tack proposal: …",
    });
    session.report(1, json!([editor_diagnostic(), marker]));
    let titles = session.code_action_titles().await;
    assert!(
        titles
            .iter()
            .any(|t| t == "Fix all errors in file with tack"),
        "the editor's error did not reach tack's store: {titles:?}"
    );

    // The agent: the fix prompt lists the editor's error, and the `diagnostics` tool's fresh
    // wait is answered by the editor's report for the open, undrafted file.
    session
        .model
        .push(openai_chat::stream(&Answer::default().with_tool_call(
            FakeToolCall::new("c1", "diagnostics", &[r#"{"paths":["main.c"]}"#]),
        )));
    session
        .model
        .push(openai_chat::stream(&Answer::text(&["Seen."])));
    session
        .client
        .request(
            "workspace/executeCommand",
            json!({ "command": "tack.fixFile", "arguments": [{ "uri": session.uri }] }),
        )
        .await
        .unwrap();
    session
        .client
        .wait_notification(
            "tack/transcript",
            |p| p["event"]["type"] == "turn_done",
            WAIT,
        )
        .await;
    assert!(
        request_text(&session.model, 0)
            .contains("main.c:2: expected a ';' (editor's own C server)"),
        "{}",
        request_text(&session.model, 0)
    );
    let tool_result = request_text(&session.model, 1);
    assert!(
        tool_result.contains("main.c:2: error: expected a ';' (editor's own C server) [cpptools]"),
        "{tool_result}"
    );
    assert!(
        !tool_result.contains("Not yet answered")
            && !tool_result.contains("No language server covers")
            && !tool_result.contains("tack proposal"),
        "{tool_result}"
    );

    // An empty report replaces the editor's set.
    session.report(2, json!([]));
    let titles = session.code_action_titles().await;
    assert!(
        !titles
            .iter()
            .any(|t| t == "Fix all errors in file with tack"),
        "{titles:?}"
    );

    // The editor was never sent its own diagnostics back.
    let echoed: Vec<Value> = session
        .client
        .notifications("textDocument/publishDiagnostics")
        .into_iter()
        .filter(|p| p.to_string().contains(EDITOR_MESSAGE))
        .collect();
    assert!(echoed.is_empty(), "{echoed:?}");
    assert!(session.client.protocol_violations().is_empty());
    session.client.shutdown_and_close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_companion_input_is_named_and_the_session_goes_on() {
    // A declaration that is not a list: tack says so and serves every language itself.
    let session = Session::start(Some(
        json!({ "editor": { "companion": { "languages": "c" } } }),
    ))
    .await;
    let shown = session
        .client
        .wait_notification(
            "window/showMessage",
            |p| {
                p["message"]
                    .as_str()
                    .unwrap()
                    .contains("initializationOptions.editor.companion.languages must be an array")
            },
            WAIT,
        )
        .await;
    assert_eq!(shown["type"], 2);
    let children = session.child_processes().await;
    assert!(
        children.iter().any(|name| name.starts_with("clangd")),
        "{children:?}"
    );

    session.client.shutdown_and_close().await;

    // In companion mode: a report without a uri is named in the client's log and changes
    // nothing; a malformed diagnostic inside a good report is skipped, the rest lands.
    let session = Session::start(Some(
        json!({ "editor": { "companion": { "languages": ["c"] } } }),
    ))
    .await;
    session.client.notify(
        "tack/editorDiagnostics",
        json!({ "diagnostics": [editor_diagnostic()] }),
    );
    let logged = session
        .client
        .wait_notification(
            "window/logMessage",
            |p| {
                p["message"]
                    .as_str()
                    .unwrap()
                    .contains("tack/editorDiagnostics ignored")
            },
            WAIT,
        )
        .await;
    assert!(
        logged["message"]
            .as_str()
            .unwrap()
            .contains("missing field `uri`"),
        "{logged}"
    );
    let titles = session.code_action_titles().await;
    assert!(
        !titles
            .iter()
            .any(|t| t == "Fix all errors in file with tack"),
        "{titles:?}"
    );
    session.report(1, json!([{ "message": "no range" }, editor_diagnostic()]));
    let titles = session.code_action_titles().await;
    assert!(
        titles
            .iter()
            .any(|t| t == "Fix all errors in file with tack"),
        "{titles:?}"
    );
    assert!(session.client.protocol_violations().is_empty());
    session.client.shutdown_and_close().await;
}
