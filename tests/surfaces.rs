//! The agent in the editor, through the real binary: tack's code actions on a real clangd
//! diagnostic, a run in the background with `$/progress`, the proposal as code actions with a
//! versioned edit, apply / undo / redo through `workspace/applyEdit`, instruction comments,
//! cancel through progress, and a stale proposal refused. The model is the scripted fake.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_model::{Answer, End, FakeModelServer, FakeToolCall, openai_chat};
use crate::support::{
    TestClient, Workspace, editor_env, file_uri, tack_path, workspace_with_fake_model,
};

const WAIT: Duration = Duration::from_secs(30);
const PUBLISH: &str = "textDocument/publishDiagnostics";
const PROGRESS: &str = "$/progress";
const TRANSCRIPT: &str = "tack/transcript";

/// A C file clangd flags: `int x = 1` lacks its semicolon.
pub(crate) const BROKEN: &str = "int main(void) {\n    int x = 1\n    return x;\n}\n";
const FIXED: &str = "int main(void) {\n    int x = 1;\n    return x;\n}\n";

fn tool_call(id: &str, name: &str, args: Value) -> Answer {
    Answer::default().with_tool_call(FakeToolCall::new(id, name, &[&args.to_string()]))
}

/// A workspace with `tack.toml` pointing at the fake model, `main.c`, and the editor session.
pub(crate) struct Session {
    workspace: Workspace,
    pub(crate) model: FakeModelServer,
    pub(crate) client: TestClient,
    path: PathBuf,
    pub(crate) uri: String,
    /// The client's copy of `main.c`, as an editor's buffer.
    text: String,
}

impl Session {
    async fn start(text: &str) -> Session {
        Session::start_with(text, "").await
    }

    /// With `extra` appended to `tack.toml`.
    async fn start_with(text: &str, extra: &str) -> Session {
        Session::start_custom(text, extra, |_| {}).await
    }

    /// With `extra` in `tack.toml` and the `initialize` params changed by `initialize`.
    pub(crate) async fn start_custom(
        text: &str,
        extra: &str,
        initialize: impl FnOnce(&mut Value),
    ) -> Session {
        let (workspace, model) = workspace_with_fake_model(extra).await;
        let path = workspace.write("main.c", text);
        let env = editor_env(&workspace);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let client = TestClient::spawn(&tack_path(), &["lsp"], &workspace.root(), &env);
        let mut params = TestClient::initialize_params(&workspace.root(), None);
        params["capabilities"]["experimental"] = json!({ "tack": { "transcript": true } });
        initialize(&mut params);
        client.request("initialize", params).await.unwrap();
        client.notify("initialized", json!({}));
        let uri = file_uri(&path);
        client.did_open(&path, "c", text);
        Session {
            workspace,
            model,
            client,
            path,
            uri,
            text: text.to_owned(),
        }
    }

    /// Waits for clangd's diagnostic saying `needle` and returns it.
    async fn diagnostic(&self, needle: &str) -> Value {
        published_diagnostic(&self.client, &self.uri, |d| {
            d["message"].as_str().unwrap().contains(needle)
        })
        .await
    }

    async fn code_actions(&self, range: Value, diagnostics: Vec<Value>) -> Vec<Value> {
        code_actions(&self.client, &self.uri, range, diagnostics).await
    }

    /// The action titled `title` (or starting with it).
    async fn action(&self, range: Value, diagnostics: Vec<Value>, title: &str) -> Value {
        titled(&self.code_actions(range, diagnostics).await, title)
    }

    /// Runs a code action's command the way an editor does.
    async fn run(&self, action: &Value) -> Value {
        self.client
            .request("workspace/executeCommand", action["command"].clone())
            .await
            .unwrap_or_else(|e| panic!("{} failed: {e:?}", action["command"]))
    }

    /// Waits for tack's next `workspace/applyEdit`, applies it to the client's buffer (as an
    /// editor does), and returns the edit.
    async fn apply_next_edit(&mut self, seen: usize) -> Value {
        let request = nth_apply_edit(&self.client, seen).await;
        let edit = request["edit"].clone();
        let change = &edit["documentChanges"][0];
        assert_eq!(change["textDocument"]["uri"], self.uri, "{edit}");
        self.text = apply_edits(&self.text, change["edits"].as_array().unwrap());
        self.client.did_change_full(&self.path, &self.text);
        edit
    }

    async fn transcript_event(&self, kind: &str) -> Value {
        self.client
            .wait_notification(TRANSCRIPT, |p| p["event"]["type"] == kind, WAIT)
            .await["event"]
            .clone()
    }
}

/// The first diagnostic matching `wanted` that tack publishes for `uri`.
pub async fn published_diagnostic(
    client: &TestClient,
    uri: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let published = client
        .wait_notification(
            PUBLISH,
            |p| p["uri"] == uri && p["diagnostics"].as_array().unwrap().iter().any(&wanted),
            WAIT,
        )
        .await;
    published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| wanted(d))
        .cloned()
        .unwrap()
}

/// The first `window/showMessage` whose text contains `needle`.
pub async fn shown_message(client: &TestClient, needle: &str) -> Value {
    client
        .wait_notification(
            "window/showMessage",
            |p| p["message"].as_str().unwrap().contains(needle),
            WAIT,
        )
        .await
}

/// `textDocument/codeAction` on `range` of `uri`, invoked, with these diagnostics.
pub async fn code_actions(
    client: &TestClient,
    uri: &str,
    range: Value,
    diagnostics: Vec<Value>,
) -> Vec<Value> {
    client
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": { "uri": uri },
                "range": range,
                "context": { "diagnostics": diagnostics, "triggerKind": 1 }
            }),
        )
        .await
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The action whose title starts with `title`; the failure lists the titles there are.
pub fn titled(actions: &[Value], title: &str) -> Value {
    actions
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with(title))
        .cloned()
        .unwrap_or_else(|| {
            let titles: Vec<&str> = actions.iter().filter_map(|a| a["title"].as_str()).collect();
            panic!("no code action {title:?} among {titles:?}")
        })
}

/// The `seen`-th `workspace/applyEdit` tack sent (0-based), once it has arrived.
pub async fn nth_apply_edit(client: &TestClient, seen: usize) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let requests = client.server_requests("workspace/applyEdit");
        if requests.len() > seen {
            return requests[seen].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no applyEdit number {seen} from tack"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Applies LSP text edits (line/character, UTF-16 = bytes here: ASCII) to `text`.
pub fn apply_edits(text: &str, edits: &[Value]) -> String {
    let offset = |position: &Value| {
        let line = position["line"].as_u64().unwrap() as usize;
        let character = position["character"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        (start + character).min(text.len())
    };
    let mut spans: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            (
                offset(&e["range"]["start"]),
                offset(&e["range"]["end"]),
                e["newText"].as_str().unwrap(),
            )
        })
        .collect();
    spans.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    let mut out = text.to_owned();
    for (start, end, new) in spans {
        out.replace_range(start..end, new);
    }
    out
}

fn line_range(line: u32) -> Value {
    json!({ "start": { "line": line, "character": 0 }, "end": { "line": line, "character": 0 } })
}

/// The scripted model fixes the missing semicolon, then says so.
fn script_fix(model: &FakeModelServer) {
    model.push(openai_chat::stream(&tool_call(
        "c1",
        "edit",
        json!({ "path": "main.c", "old": "int x = 1\n", "new": "int x = 1;\n" }),
    )));
    model.push(openai_chat::stream(&Answer::text(&[
        "Added the missing semicolon.",
    ])));
}

fn progress_kinds(client: &TestClient, token: &str) -> Vec<String> {
    client
        .notifications(PROGRESS)
        .iter()
        .filter(|p| p["token"] == token)
        .map(|p| p["value"]["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_with_tack_proposes_a_versioned_edit_that_applies_undoes_and_redoes() {
    let mut session = Session::start(BROKEN).await;
    let error = session.diagnostic("Expected ';'").await;
    script_fix(&session.model);

    // Listing the actions calls no model.
    let fix = session
        .action(error["range"].clone(), vec![error.clone()], "Fix with tack")
        .await;
    assert!(session.model.requests().is_empty());
    assert_eq!(fix["kind"], "quickfix");
    assert_eq!(session.run(&fix).await, Value::Null);

    // The run reports progress under a token tack created, and ends with a proposal.
    let created = session
        .client
        .wait_server_request("window/workDoneProgress/create", WAIT)
        .await;
    let token = created["token"].as_str().unwrap().to_owned();
    session
        .client
        .wait_notification(
            PROGRESS,
            |p| p["token"] == token.as_str() && p["value"]["kind"] == "end",
            WAIT,
        )
        .await;
    let kinds = progress_kinds(&session.client, &token);
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("begin"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "report"), "{kinds:?}");
    let shown = session.transcript_event("proposal_shown").await;
    assert_eq!(shown["files"], json!(["main.c"]));
    // The drafted edit was checked by clangd before anything reached the editor: the model's
    // second request carries the fixed diagnostics, the disk and buffer are unchanged.
    let second = session.model.requests()[1].json();
    let tool_result = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .to_string();
    assert!(
        tool_result.contains("0 error(s) introduced, 1 fixed, 0 error(s) remain"),
        "{tool_result}"
    );
    assert_eq!(session.workspace.read("main.c"), BROKEN);
    // An information diagnostic marks where the proposal waits.
    session
        .client
        .wait_notification(
            PUBLISH,
            |p| {
                p["uri"] == session.uri
                    && p["diagnostics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d["source"] == "tack" && d["severity"] == 3)
            },
            WAIT,
        )
        .await;

    // Apply: a versioned edit for the version the editor has.
    let apply = session
        .action(
            line_range(1),
            vec![],
            "Apply tack change: Added the missing semicolon.",
        )
        .await;
    session.run(&apply).await;
    let edit = session.apply_next_edit(0).await;
    assert_eq!(
        edit["documentChanges"][0]["textDocument"]["version"], 1,
        "{edit}"
    );
    assert_eq!(session.text, FIXED);
    let decided = session.transcript_event("proposal_decided").await;
    assert_eq!(decided["decision"], "applied", "{decided}");
    assert!(decided["change"].is_number(), "{decided}");
    // clangd agrees with the applied text.
    session
        .client
        .wait_notification(
            PUBLISH,
            |p| {
                p["uri"] == session.uri
                    && p["version"] == 2
                    && p["diagnostics"].as_array().unwrap().is_empty()
            },
            WAIT,
        )
        .await;

    // Undo through applyEdit, then redo.
    let undo = session
        .action(line_range(1), vec![], "Undo tack change")
        .await;
    session.run(&undo).await;
    session.apply_next_edit(1).await;
    assert_eq!(session.text, BROKEN);
    let undone = session.transcript_event("changes_restored").await;
    assert_eq!(undone["kind"], "undo");
    let redo = session
        .action(line_range(1), vec![], "Redo tack change")
        .await;
    session.run(&redo).await;
    session.apply_next_edit(2).await;
    assert_eq!(session.text, FIXED);
    session
        .client
        .wait_notification(TRANSCRIPT, |p| p["event"]["kind"] == "redo", WAIT)
        .await;
    // The disk was never written by tack: the editor owns its buffers.
    assert_eq!(session.workspace.read("main.c"), BROKEN);
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_proposal_is_not_offered_and_is_refused() {
    let mut session = Session::start(BROKEN).await;
    let error = session.diagnostic("Expected ';'").await;
    script_fix(&session.model);
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    session.transcript_event("proposal_shown").await;

    // The user types before applying: the proposal no longer matches the buffer.
    session.text = format!("// note\n{}", session.text);
    session.client.did_change_full(&session.path, &session.text);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let titles: Vec<String> = session
        .code_actions(line_range(2), vec![])
        .await
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !titles.iter().any(|t| t.starts_with("Apply tack change")),
        "{titles:?}"
    );
    // Asked anyway (an old menu), tack refuses and says why; nothing is sent to apply.
    let apply = json!({ "command": { "command": "tack.apply", "arguments": [{ "proposal": 1 }] } });
    session.run(&apply).await;
    let refused = session.transcript_event("proposal_decided").await;
    assert_eq!(refused["decision"], "refused", "{refused}");
    assert!(
        refused["reason"].as_str().unwrap().contains("out of date"),
        "{refused}"
    );
    let message = shown_message(&session.client, "out of date").await;
    assert_eq!(message["type"], 2);
    assert!(
        session
            .client
            .server_requests("workspace/applyEdit")
            .is_empty()
    );
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instruction_comment_runs_and_its_line_goes_with_the_change() {
    let text =
        "int main(void) {\n    // tack: rename x to count\n    int x = 1;\n    return x;\n}\n";
    let mut session = Session::start(text).await;
    session.model.push(openai_chat::stream(&tool_call(
        "c1",
        "edit",
        json!({ "path": "main.c", "old": "    int x = 1;\n    return x;\n", "new": "    int count = 1;\n    return count;\n" }),
    )));
    session
        .model
        .push(openai_chat::stream(&Answer::text(&["Renamed x to count."])));

    let instruction = session
        .action(
            line_range(1),
            vec![],
            "Run tack instruction: rename x to count",
        )
        .await;
    session.run(&instruction).await;
    session.transcript_event("proposal_shown").await;
    let first_request = session.model.requests()[0].json().to_string();
    assert!(
        first_request.contains("rename x to count"),
        "{first_request}"
    );

    let apply = session
        .action(
            line_range(2),
            vec![],
            "Apply tack change: Renamed x to count.",
        )
        .await;
    session.run(&apply).await;
    session.apply_next_edit(0).await;
    assert_eq!(
        session.text,
        "int main(void) {\n    int count = 1;\n    return count;\n}\n"
    );
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_progress_stops_the_run_without_a_proposal() {
    let session = Session::start(BROKEN).await;
    let error = session.diagnostic("Expected ';'").await;
    // The model starts answering, then stalls.
    session.model.push(
        openai_chat::stream(&Answer::text(&["Looking", " at it", " now"]))
            .cut_after(2)
            .ending(End::Hang),
    );
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    let created = session
        .client
        .wait_server_request("window/workDoneProgress/create", WAIT)
        .await;
    let token = created["token"].clone();
    session
        .client
        .wait_notification(
            PROGRESS,
            |p| p["token"] == token && p["value"]["kind"] == "begin",
            WAIT,
        )
        .await;
    // The turn starts once its context is assembled: cancel while the model streams.
    let asked = tokio::time::Instant::now() + WAIT;
    while session.model.requests().is_empty() && tokio::time::Instant::now() < asked {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    session
        .client
        .notify("window/workDoneProgress/cancel", json!({ "token": token }));
    let end = session
        .client
        .wait_notification(
            PROGRESS,
            |p| p["token"] == token && p["value"]["kind"] == "end",
            WAIT,
        )
        .await;
    assert_eq!(end["value"]["message"], "cancelled", "{end}");
    assert!(
        session.model.wait_for_hangup(WAIT).await,
        "the model stream was not dropped"
    );
    let done = session.transcript_event("turn_done").await;
    assert_eq!(done["end"], "cancelled");
    assert!(
        session
            .client
            .notifications(TRANSCRIPT)
            .iter()
            .all(|p| p["event"]["type"] != "proposal_shown")
    );
    // The next run works.
    script_fix(&session.model);
    let error = session.diagnostic("Expected ';'").await;
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    session.transcript_event("proposal_shown").await;
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_apply_mode_the_change_is_applied_when_the_run_ends() {
    let mut session = Session::start_with(BROKEN, "\n[editor]\nmode = \"apply\"\n").await;
    let error = session.diagnostic("Expected ';'").await;
    script_fix(&session.model);
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    let edit = session.apply_next_edit(0).await;
    assert_eq!(edit["documentChanges"][0]["textDocument"]["version"], 1);
    assert_eq!(session.text, FIXED);
    let decided = session.transcript_event("proposal_decided").await;
    assert_eq!(decided["decision"], "applied");
    // Nothing waits: no proposal action is left.
    let titles: Vec<String> = session
        .code_actions(line_range(1), vec![])
        .await
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect();
    assert!(titles.iter().any(|t| t == "Undo tack change"), "{titles:?}");
    assert!(
        !titles.iter().any(|t| t.starts_with("Apply tack change")),
        "{titles:?}"
    );
    session.client.shutdown_and_exit().await;
    crate::ledger::the_editor_session_is_in_the_ledger(&session.workspace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_editor_mode_is_named_and_propose_is_used() {
    let session = Session::start_with(BROKEN, "\n[editor]\nmode = \"yolo\"\n").await;
    let error = session.diagnostic("Expected ';'").await;
    script_fix(&session.model);
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    let warning = shown_message(&session.client, "[editor] mode").await;
    assert!(
        warning["message"].as_str().unwrap().contains("\"yolo\""),
        "{warning}"
    );
    session.transcript_event("proposal_shown").await;
    assert!(
        session
            .client
            .server_requests("workspace/applyEdit")
            .is_empty()
    );
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hunks_are_applied_and_rejected_one_by_one() {
    let text = "int one(void) { return 1; }\nint two(void) { return 2; }\nint three(void) { return 3; }\nint main(void) { return one(); }\n";
    let mut session = Session::start(text).await;
    session.model.push(openai_chat::stream(&tool_call(
        "c1",
        "edit",
        json!({ "path": "main.c", "old": "return 1;", "new": "return 10;" }),
    )));
    session.model.push(openai_chat::stream(&tool_call(
        "c2",
        "edit",
        json!({ "path": "main.c", "old": "return 3;", "new": "return 30;" }),
    )));
    session.model.push(openai_chat::stream(&Answer::text(&[
        "Scaled the constants.",
    ])));
    let ask = json!({ "command": { "command": "tack.ask", "arguments": [{ "prompt": "scale the constants by ten" }] } });
    session.run(&ask).await;
    let shown = session.transcript_event("proposal_shown").await;
    assert_eq!(shown["hunks"], 2, "{shown}");

    // The first hunk only.
    let first = session
        .action(line_range(0), vec![], "Apply this hunk (tack, line 1)")
        .await;
    session.run(&first).await;
    session.apply_next_edit(0).await;
    assert!(
        session.text.contains("return 10;") && session.text.contains("return 3;"),
        "{}",
        session.text
    );
    let decided = session.transcript_event("proposal_decided").await;
    assert_eq!(
        (decided["decision"].as_str(), decided["hunk"].as_u64()),
        (Some("applied"), Some(0))
    );

    // The rest is still offered, against the new text; rejecting its hunk ends the proposal.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reject = session
        .action(
            line_range(2),
            vec![],
            "Reject tack change: Scaled the constants.",
        )
        .await;
    session.run(&reject).await;
    session
        .client
        .wait_notification(TRANSCRIPT, |p| p["event"]["decision"] == "rejected", WAIT)
        .await;
    let titles: Vec<String> = session
        .code_actions(line_range(2), vec![])
        .await
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !titles.iter().any(|t| t.contains("tack change: Scaled")),
        "{titles:?}"
    );
    assert!(session.text.contains("return 3;"));
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_refuses_when_the_user_changed_the_same_lines_and_names_them() {
    let mut session = Session::start(BROKEN).await;
    let error = session.diagnostic("Expected ';'").await;
    script_fix(&session.model);
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    session.transcript_event("proposal_shown").await;
    let apply = session
        .action(line_range(1), vec![], "Apply tack change")
        .await;
    session.run(&apply).await;
    session.apply_next_edit(0).await;
    session.transcript_event("proposal_decided").await;

    // The user rewrites the line the agent changed, then asks for undo.
    session.text = session.text.replace("int x = 1;", "int x = 2;");
    session.client.did_change_full(&session.path, &session.text);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let undo = json!({ "command": { "command": "tack.undo", "arguments": [] } });
    let refused = session
        .client
        .request("workspace/executeCommand", undo["command"].clone())
        .await
        .unwrap_err();
    assert!(refused.message.contains("refused"), "{refused:?}");
    let message = shown_message(&session.client, "undo refused").await;
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .contains("main.c: you changed the same lines; lines 2"),
        "{message}"
    );
    assert_eq!(
        session.client.server_requests("workspace/applyEdit").len(),
        1
    );
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_without_apply_edit_gets_the_edit_in_the_code_action() {
    let mut session = Session::start_custom(BROKEN, "", |params| {
        params["capabilities"]["workspace"]["applyEdit"] = json!(false);
    })
    .await;
    let error = session.diagnostic("Expected ';'").await;
    script_fix(&session.model);
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    session.transcript_event("proposal_shown").await;
    let apply = session
        .action(line_range(1), vec![], "Apply tack change")
        .await;
    // The editor applies the action's versioned edit, then runs its command.
    let change = &apply["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"]["version"], 1, "{apply}");
    session.text = apply_edits(&session.text, change["edits"].as_array().unwrap());
    session.client.did_change_full(&session.path, &session.text);
    assert_eq!(session.text, FIXED);
    assert_eq!(apply["command"]["command"], "tack.applied");
    session.run(&apply).await;
    let decided = session.transcript_event("proposal_decided").await;
    assert_eq!(decided["decision"], "applied", "{decided}");
    assert!(decided["change"].is_number(), "{decided}");
    assert!(
        session
            .client
            .server_requests("workspace/applyEdit")
            .is_empty()
    );
    // Undo cannot reach this editor's buffer; it says where to go instead.
    let refused = session
        .client
        .request(
            "workspace/executeCommand",
            json!({ "command": "tack.undo", "arguments": [] }),
        )
        .await
        .unwrap_err();
    assert!(refused.message.contains("tack undo"), "{refused:?}");
    session.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigation_reaches_files_the_editor_has_not_opened() {
    let session = Session::start(BROKEN).await;
    session
        .workspace
        .write("util.c", "int helper(void) { return 1; }\n");
    let error = session.diagnostic("Expected ';'").await;
    session.model.push(openai_chat::stream(&tool_call(
        "c0",
        "hover",
        json!({ "path": "util.c", "line": 1, "symbol": "helper" }),
    )));
    script_fix(&session.model);
    let fix = session
        .action(error["range"].clone(), vec![error.clone()], "Fix with tack")
        .await;
    session.run(&fix).await;
    session.transcript_event("proposal_shown").await;
    let second = session.model.requests()[1].json();
    let hover = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .to_string();
    // clangd's hover of a function names it and its type; a document it was never shown
    // would have been refused ("non-added file").
    assert!(hover.contains("helper") && hover.contains("int"), "{hover}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_no_optional_capabilities_still_gets_the_run_and_its_proposal() {
    // No progress, no showDocument, no documentChanges, no transcript notifications: what a
    // minimal LSP client offers.
    let mut session = Session::start_custom(BROKEN, "", |params| {
        params["capabilities"] = json!({
            "workspace": { "applyEdit": true },
            "textDocument": { "publishDiagnostics": {} },
        });
    })
    .await;
    let error = session.diagnostic("Expected ';'").await;
    script_fix(&session.model);
    let fix = session
        .action(error["range"].clone(), vec![error], "Fix with tack")
        .await;
    session.run(&fix).await;
    // The end of the run reaches the user as a message naming the proposal.
    let shown = session
        .client
        .wait_notification(
            "window/showMessage",
            |p| p["message"].as_str().unwrap().starts_with("tack proposes"),
            WAIT,
        )
        .await;
    assert!(
        shown["message"].as_str().unwrap().contains("main.c"),
        "{shown}"
    );
    for method in ["window/workDoneProgress/create", "window/showDocument"] {
        assert!(
            session.client.server_requests(method).is_empty(),
            "{method} was sent to a client that does not support it"
        );
    }
    assert!(session.client.notifications(PROGRESS).is_empty());
    assert!(session.client.notifications(TRANSCRIPT).is_empty());
    // Applying sends a plain `changes` edit, which such a client can apply.
    let apply = session
        .action(line_range(1), vec![], "Apply tack change")
        .await;
    session.run(&apply).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let request = loop {
        if let Some(request) = session.client.server_requests("workspace/applyEdit").pop() {
            break request;
        }
        assert!(tokio::time::Instant::now() < deadline, "no applyEdit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        request["edit"].get("documentChanges").is_none(),
        "{request}"
    );
    let edits = request["edit"]["changes"][session.uri.as_str()]
        .as_array()
        .unwrap()
        .clone();
    session.text = apply_edits(&session.text, &edits);
    assert_eq!(session.text, FIXED);
    session.client.shutdown_and_exit().await;
}
