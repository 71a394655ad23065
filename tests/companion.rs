//! Companion mode through the real binary: the editor declares the languages it serves itself
//! (tack starts no server for them) and reports its diagnostics with `tack/editorDiagnostics`;
//! they land in tack's store under the source `editor`, the agent reads them (the fix prompt,
//! the `diagnostics` tool's fresh wait), and the editor is never sent them back. The model is
//! the scripted fake; clangd is on PATH so that starting it would be possible.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, openai_chat};
use crate::surfaces::{BROKEN, Session};

const WAIT: Duration = Duration::from_secs(30);
/// What the editor's own C extension reports (worded unlike clangd, so it cannot be clangd's).
const EDITOR_MESSAGE: &str = "expected a ';' (editor's own C server)";

/// The editor session of `surfaces` (tack in front of clangd, the scripted model, `main.c`
/// open), with these `initializationOptions`.
async fn start(initialization_options: Option<Value>) -> Session {
    Session::start_custom(BROKEN, "", |params| {
        if let Some(options) = initialization_options {
            params["initializationOptions"] = options;
        }
    })
    .await
}

/// The names of tack's child processes, once the editor's messages so far are handled
/// (a request round trip orders after them).
async fn child_processes(session: &Session) -> Vec<String> {
    code_action_titles(session).await;
    child_process_names(session.client.pid().unwrap())
}

async fn code_action_titles(session: &Session) -> Vec<String> {
    let actions = session
        .client
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": { "uri": session.uri },
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

fn report(session: &Session, version: i32, diagnostics: Value) {
    session.client.notify(
        "tack/editorDiagnostics",
        json!({ "uri": session.uri, "version": version, "diagnostics": diagnostics }),
    );
}

/// Asserts whether tack offers "Fix all errors in file with tack", which it does exactly when
/// its diagnostics store holds an error for the file.
async fn assert_fix_all_offered(session: &Session, offered: bool, why: &str) {
    let titles = code_action_titles(session).await;
    assert_eq!(
        titles
            .iter()
            .any(|t| t == "Fix all errors in file with tack"),
        offered,
        "{why} {titles:?}"
    );
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
    let baseline = start(None).await;
    let children = child_processes(&baseline).await;
    assert!(
        children.iter().any(|name| name.starts_with("clangd")),
        "{children:?}"
    );
    baseline.client.shutdown_and_close().await;

    let session = start(Some(
        json!({ "editor": { "companion": { "languages": ["c"] } } }),
    ))
    .await;
    let children = child_processes(&session).await;
    assert!(children.is_empty(), "tack started {children:?}");
    assert_fix_all_offered(&session, false, "no report yet:").await;

    // The editor reports what its own C server says (and a tack marker, which is not its).
    let marker = json!({
        "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } },
        "severity": 3, "source": "tack", "message": "tack proposal: …",
    });
    report(&session, 1, json!([editor_diagnostic(), marker]));
    assert_fix_all_offered(&session, true, "the editor's error reaches tack's store:").await;

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
    report(&session, 2, json!([]));
    assert_fix_all_offered(&session, false, "an empty report clears the editor's set:").await;

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
    let session = start(Some(
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
    let children = child_processes(&session).await;
    assert!(
        children.iter().any(|name| name.starts_with("clangd")),
        "{children:?}"
    );

    session.client.shutdown_and_close().await;

    // In companion mode: a report without a uri is named in the client's log and changes
    // nothing; a malformed diagnostic inside a good report is skipped, the rest lands.
    let session = start(Some(
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
    assert_fix_all_offered(&session, false, "a report without a uri lands nowhere:").await;
    report(
        &session,
        1,
        json!([{ "message": "no range" }, editor_diagnostic()]),
    );
    assert_fix_all_offered(&session, true, "the good diagnostic of the report lands:").await;
    assert!(session.client.protocol_violations().is_empty());
    session.client.shutdown_and_close().await;
}
