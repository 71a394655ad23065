//! `tack acp` driven as Zed's agent panel drives it: a hand-written ACP client speaking the
//! documented wire format (newline-delimited JSON-RPC 2.0 on stdio) to the real binary, with
//! real clangd behind it and the fake model. The client keeps buffers of its own, answers
//! `fs/read_text_file` from them and takes `fs/write_text_file` into them (as an editor does
//! for review), and answers `session/request_permission` as a user would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

use crate::support::fake_model::{Answer, End, FakeModelServer, FakeToolCall, openai_chat};
use crate::support::{Workspace, editor_env, tack_path, workspace_with_fake_model};

const WAIT: Duration = Duration::from_secs(30);

/// On disk; the client's buffer holds an unsaved version of it (without the first line).
const ON_DISK: &str = "// saved\nint main(void) {\n    int x = 1\n    return x;\n}\n";
const IN_BUFFER: &str = "int main(void) {\n    int x = 1\n    return x;\n}\n";
const FIXED: &str = "int main(void) {\n    int x = 1;\n    return x;\n}\n";

/// How the client answers `session/request_permission`.
#[derive(Clone)]
enum PermissionAnswer {
    Select(&'static str),
    /// Held until the test cancels the prompt; then answered `cancelled`, as the protocol says.
    Hold,
}

#[derive(Default)]
struct Seen {
    /// Responses to the client's requests, by id (the whole message).
    responses: HashMap<i64, Value>,
    /// Responses with a null id (errors for messages that had none, such as unparsable lines).
    responses_without_id: Vec<Value>,
    /// `session/update` params, in order.
    updates: Vec<Value>,
    /// Requests from the agent: (method, params).
    requests: Vec<(String, Value)>,
    /// Lines on stdout that were not JSON-RPC.
    garbage: Vec<String>,
    closed: bool,
}

struct AcpClient {
    child: Child,
    outgoing: mpsc::UnboundedSender<String>,
    seen: Arc<Mutex<Seen>>,
    changed: watch::Receiver<u64>,
    /// The client's buffers by absolute path.
    buffers: Arc<Mutex<HashMap<PathBuf, String>>>,
    permission: Arc<Mutex<PermissionAnswer>>,
    held_permissions: Arc<Mutex<Vec<Value>>>,
    next_id: AtomicI64,
}

impl AcpClient {
    fn spawn(workspace: &Workspace) -> AcpClient {
        let env = editor_env(workspace);
        let mut child = Command::new(tack_path())
            .arg("acp")
            .current_dir(workspace.root())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (outgoing, mut lines) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err()
                    || stdin.write_all(b"\n").await.is_err()
                    || stdin.flush().await.is_err()
                {
                    break;
                }
            }
        });
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (bump, changed) = watch::channel(0u64);
        let buffers = Arc::new(Mutex::new(HashMap::new()));
        let permission = Arc::new(Mutex::new(PermissionAnswer::Select("allow_once")));
        let held_permissions = Arc::new(Mutex::new(Vec::new()));
        let reader = Reader {
            seen: seen.clone(),
            bump,
            buffers: buffers.clone(),
            permission: permission.clone(),
            held: held_permissions.clone(),
            outgoing: outgoing.downgrade(),
        };
        tokio::spawn(reader.run(stdout));
        AcpClient {
            child,
            outgoing,
            seen,
            changed,
            buffers,
            permission,
            held_permissions,
            next_id: AtomicI64::new(1),
        }
    }

    fn send(&self, message: Value) {
        self.outgoing.send(message.to_string()).unwrap();
    }

    fn send_request(&self, method: &str, params: Value) -> i64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Waits until `check` finds something in what the client has seen.
    async fn wait_for<T>(&self, what: &str, check: impl Fn(&Seen) -> Option<T>) -> T {
        let mut changed = self.changed.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if let Some(found) = check(&seen) {
                    return found;
                }
                assert!(
                    !seen.closed,
                    "tack acp closed stdout while waiting for {what}"
                );
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                let seen = self.seen.lock().unwrap();
                panic!(
                    "no {what} within {WAIT:?}; updates: {:#?}; requests: {:#?}",
                    seen.updates, seen.requests
                );
            }
        }
    }

    /// The whole response message to request `id`.
    async fn response(&self, id: i64) -> Value {
        self.wait_for(&format!("response to request {id}"), |seen| {
            seen.responses.get(&id).cloned()
        })
        .await
    }

    async fn request(&self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        let response = self.response(id).await;
        assert!(response["error"].is_null(), "{method} failed: {response}");
        response["result"].clone()
    }

    /// The first `session/update` whose update matches.
    async fn update(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(what, |seen| {
            seen.updates
                .iter()
                .map(|params| &params["update"])
                .find(|update| wanted(update))
                .cloned()
        })
        .await
    }

    /// The first request from the agent for `method`.
    async fn agent_request(&self, method: &str) -> Value {
        self.wait_for(method, |seen| {
            seen.requests
                .iter()
                .find(|(m, _)| m == method)
                .map(|(_, params)| params.clone())
        })
        .await
    }

    fn agent_requests(&self, method: &str) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        seen.requests
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, params)| params.clone())
            .collect()
    }

    /// `initialize` as Zed sends it: file system access, no terminal.
    async fn initialize(&self) -> Value {
        self.initialize_with_files(true).await
    }

    /// `initialize`, offering `fs/read_text_file` and `fs/write_text_file` or not.
    async fn initialize_with_files(&self, files: bool) -> Value {
        self.request(
            "initialize",
            json!({
                "protocolVersion": 1,
                "clientCapabilities": { "fs": { "readTextFile": files, "writeTextFile": files }, "terminal": false },
                "clientInfo": { "name": "zed", "title": "Zed", "version": "0.200.0" }
            }),
        )
        .await
    }

    async fn new_session(&self, root: &Path) -> String {
        let result = self
            .request("session/new", json!({ "cwd": root, "mcpServers": [] }))
            .await;
        result["sessionId"].as_str().unwrap().to_owned()
    }

    fn prompt(&self, session: &str, text: &str) -> i64 {
        self.send_request(
            "session/prompt",
            json!({ "sessionId": session, "prompt": [{ "type": "text", "text": text }] }),
        )
    }

    /// Closes stdin and waits for the process to exit by itself.
    async fn close(mut self) {
        drop(self.outgoing);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("tack acp exits when its client closes stdin")
            .unwrap();
        assert!(status.success(), "tack acp exited with {status}");
        assert!(
            self.seen.lock().unwrap().garbage.is_empty(),
            "stdout carried more than JSON-RPC"
        );
    }
}

/// The client's reading side: records everything and answers the agent's requests.
struct Reader {
    seen: Arc<Mutex<Seen>>,
    bump: watch::Sender<u64>,
    buffers: Arc<Mutex<HashMap<PathBuf, String>>>,
    permission: Arc<Mutex<PermissionAnswer>>,
    held: Arc<Mutex<Vec<Value>>>,
    /// Weak, so closing the client's own sender closes tack's stdin.
    outgoing: mpsc::WeakUnboundedSender<String>,
}

impl Reader {
    async fn run(self, stdout: tokio::process::ChildStdout) {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                self.seen.lock().unwrap().garbage.push(line);
                continue;
            };
            let method = message["method"].as_str().map(str::to_owned);
            match (method, message.get("id")) {
                (Some(method), Some(id)) => {
                    let answer = self.answer(&method, &message["params"], id);
                    self.seen
                        .lock()
                        .unwrap()
                        .requests
                        .push((method, message["params"].clone()));
                    if let Some(answer) = answer
                        && let Some(outgoing) = self.outgoing.upgrade()
                    {
                        let _ = outgoing.send(answer.to_string());
                    }
                }
                (Some(method), None) => {
                    assert_eq!(method, "session/update", "{message}");
                    self.seen
                        .lock()
                        .unwrap()
                        .updates
                        .push(message["params"].clone());
                }
                (None, Some(Value::Number(id))) => {
                    let id = id.as_i64().unwrap();
                    self.seen.lock().unwrap().responses.insert(id, message);
                }
                (None, _) => self.seen.lock().unwrap().responses_without_id.push(message),
            }
            self.bump.send_modify(|n| *n += 1);
        }
        self.seen.lock().unwrap().closed = true;
        self.bump.send_modify(|n| *n += 1);
    }

    /// The answer to an agent request (`None`: held for later).
    fn answer(&self, method: &str, params: &Value, id: &Value) -> Option<Value> {
        let ok = |result: Value| Some(json!({ "jsonrpc": "2.0", "id": id, "result": result }));
        let path = PathBuf::from(params["path"].as_str().unwrap_or_default());
        match method {
            "fs/read_text_file" => {
                let text = self
                    .buffers
                    .lock()
                    .unwrap()
                    .get(&path)
                    .cloned()
                    .or_else(|| std::fs::read_to_string(&path).ok());
                match text {
                    Some(text) => ok(json!({ "content": text })),
                    None => Some(json!({
                        "jsonrpc": "2.0", "id": id,
                        "error": { "code": -32002, "message": format!("{} not found", path.display()) }
                    })),
                }
            }
            "fs/write_text_file" => {
                let content = params["content"].as_str().unwrap().to_owned();
                self.buffers.lock().unwrap().insert(path, content);
                ok(json!({}))
            }
            "session/request_permission" => match self.permission.lock().unwrap().clone() {
                PermissionAnswer::Select(option) => {
                    ok(json!({ "outcome": { "outcome": "selected", "optionId": option } }))
                }
                PermissionAnswer::Hold => {
                    self.held.lock().unwrap().push(id.clone());
                    None
                }
            },
            other => Some(json!({
                "jsonrpc": "2.0", "id": id,
                "error": { "code": -32601, "message": format!("{other} is not handled") }
            })),
        }
    }
}

/// A workspace whose `tack.toml` points at the fake model (then `extra`), with `main.c` on
/// disk.
async fn workspace(extra: &str) -> (Workspace, FakeModelServer, PathBuf) {
    let (workspace, model) = workspace_with_fake_model(extra).await;
    let path = workspace.write("main.c", ON_DISK);
    (workspace, model, path)
}

fn script_fix(model: &FakeModelServer) {
    let edit = json!({ "path": "main.c", "old": "int x = 1\n", "new": "int x = 1;\n" });
    model.push(openai_chat::stream(&Answer::default().with_tool_call(
        FakeToolCall::new("c1", "edit", &[&edit.to_string()]),
    )));
    model.push(openai_chat::stream(&Answer::text(&[
        "Added the missing semicolon.",
    ])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_reports_tool_calls_asks_with_the_diff_and_writes_through_the_client() {
    let (workspace, model, path) = workspace("").await;
    let client = AcpClient::spawn(&workspace);
    client
        .buffers
        .lock()
        .unwrap()
        .insert(path.clone(), IN_BUFFER.to_owned());
    let initialized = client.initialize().await;
    assert_eq!(initialized["protocolVersion"], 1, "{initialized}");
    assert_eq!(initialized["agentInfo"]["name"], "tack", "{initialized}");
    let session = client.new_session(&workspace.root()).await;
    let commands = client
        .update("available commands", |u| {
            u["sessionUpdate"] == "available_commands_update"
        })
        .await;
    let names: Vec<&str> = commands["availableCommands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["undo", "redo"]);

    script_fix(&model);
    let prompt = client.prompt(&session, "fix the build");

    // The tool call is reported with its kind and the file it touches.
    let call = client
        .update("the edit's tool call", |u| {
            u["sessionUpdate"] == "tool_call"
        })
        .await;
    assert_eq!(call["toolCallId"], "c1", "{call}");
    assert_eq!(call["kind"], "edit", "{call}");
    assert_eq!(call["title"], "edit main.c", "{call}");
    assert_eq!(call["locations"][0]["path"], json!(path), "{call}");

    // The permission request carries the diff of the buffer (not the disk).
    let permission = client.agent_request("session/request_permission").await;
    assert_eq!(permission["sessionId"], session.as_str());
    assert_eq!(permission["toolCall"]["toolCallId"], "c1");
    let diff = &permission["toolCall"]["content"][0];
    assert_eq!(diff["type"], "diff", "{permission}");
    assert_eq!(diff["path"], json!(path));
    assert_eq!(diff["oldText"], IN_BUFFER);
    assert_eq!(diff["newText"], FIXED);
    let options: Vec<&str> = permission["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["optionId"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["allow_once", "allow_always", "reject_once"]);

    // Allowed, the edit goes to the client's buffer, and the prompt ends with its reason.
    let response = client.response(prompt).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    let writes = client.agent_requests("fs/write_text_file");
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["path"], json!(path));
    assert_eq!(writes[0]["content"], FIXED);
    assert_eq!(
        workspace.read("main.c"),
        ON_DISK,
        "tack did not write the disk itself"
    );

    // The tool call completed with what clangd said about the edit, and the model heard it.
    let done = client
        .update("the completed edit", |u| {
            u["sessionUpdate"] == "tool_call_update" && u["status"] == "completed"
        })
        .await;
    let shown = done["content"].to_string();
    assert!(shown.contains("1 fixed"), "{shown}");
    assert_eq!(done["content"][0]["type"], "diff", "{done}");
    let second = model.requests()[1].json().to_string();
    assert!(second.contains("1 fixed, 0 error(s) remain"), "{second}");
    client
        .update("the model's answer", |u| {
            u["sessionUpdate"] == "agent_message_chunk"
                && u["content"]["text"] == "Added the missing semicolon."
        })
        .await;

    // The change was snapshotted: `/undo` puts the buffer back through the client.
    let undo = client.prompt(&session, "/undo");
    let response = client.response(undo).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    let writes = client.agent_requests("fs/write_text_file");
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[1]["content"], IN_BUFFER);
    client
        .update("the undo report", |u| {
            u["content"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("undo of change 1 done: main.c"))
        })
        .await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_the_prompt_and_bad_messages_get_clear_errors() {
    let (workspace, model, _path) = workspace("").await;
    let client = AcpClient::spawn(&workspace);
    client.initialize().await;
    let session = client.new_session(&workspace.root()).await;

    // Cancel while the model streams.
    model.push(
        openai_chat::stream(&Answer::text(&["Looking", " at it", " now"]))
            .cut_after(2)
            .ending(End::Hang),
    );
    let prompt = client.prompt(&session, "fix the build");
    client
        .update("streamed text", |u| {
            u["sessionUpdate"] == "agent_message_chunk"
        })
        .await;
    client.send(json!({
        "jsonrpc": "2.0", "method": "session/cancel", "params": { "sessionId": session }
    }));
    let response = client.response(prompt).await;
    assert_eq!(response["result"]["stopReason"], "cancelled", "{response}");
    assert!(
        model.wait_for_hangup(WAIT).await,
        "the model stream was not dropped"
    );

    // Cancel while a permission request waits: the client answers it `cancelled`.
    script_fix(&model);
    *client.permission.lock().unwrap() = PermissionAnswer::Hold;
    let prompt = client.prompt(&session, "fix the build");
    client.agent_request("session/request_permission").await;
    client.send(json!({
        "jsonrpc": "2.0", "method": "session/cancel", "params": { "sessionId": session }
    }));
    for id in client.held_permissions.lock().unwrap().drain(..) {
        client.send(json!({
            "jsonrpc": "2.0", "id": id, "result": { "outcome": { "outcome": "cancelled" } }
        }));
    }
    let response = client.response(prompt).await;
    assert_eq!(response["result"]["stopReason"], "cancelled", "{response}");
    assert!(client.agent_requests("fs/write_text_file").is_empty());
    assert_eq!(workspace.read("main.c"), ON_DISK);

    // A line that is not JSON gets a parse error; the connection goes on.
    client.outgoing.send("this is not json".to_owned()).unwrap();
    let parse_error = client
        .wait_for("a parse error", |seen| {
            seen.responses_without_id.first().cloned()
        })
        .await;
    assert_eq!(parse_error["error"]["code"], -32700, "{parse_error}");
    assert_eq!(parse_error["error"]["data"]["line"], "this is not json");
    // A prompt for a session that does not exist is refused by name.
    let id = client.prompt("no-such-session", "hello");
    let refused = client.response(id).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no session \"no-such-session\""),
        "{message}"
    );
    // A session in a folder that does not exist is refused with the folder named.
    let id = client.send_request(
        "session/new",
        json!({ "cwd": workspace.path("missing"), "mcpServers": [] }),
    );
    let refused = client.response(id).await;
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("cannot use cwd"), "{refused}");
    // The session still answers.
    model.push(openai_chat::stream(&Answer::text(&["Still here."])));
    let prompt = client.prompt(&session, "are you there?");
    let response = client.response(prompt).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_file_access_gets_edits_on_disk_after_their_snapshot() {
    // Edits allowed by the policy: no permission request, the diff shows with the call.
    let (workspace, model, path) = workspace("\n[permissions]\nedit = \"allow\"\n").await;
    let client = AcpClient::spawn(&workspace);
    client.initialize_with_files(false).await;
    let session = client.new_session(&workspace.root()).await;
    script_fix(&model);
    let prompt = client.prompt(&session, "fix the build");
    let response = client.response(prompt).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    assert!(client.agent_requests("fs/read_text_file").is_empty());
    assert!(client.agent_requests("fs/write_text_file").is_empty());
    assert!(
        client
            .agent_requests("session/request_permission")
            .is_empty()
    );
    let done = client
        .update("the completed edit", |u| {
            u["sessionUpdate"] == "tool_call_update" && u["status"] == "completed"
        })
        .await;
    assert_eq!(done["content"][0]["type"], "diff", "{done}");
    assert_eq!(done["content"][0]["path"], json!(path));
    assert_eq!(done["content"][0]["oldText"], ON_DISK);
    let fixed_on_disk = ON_DISK.replace("int x = 1\n", "int x = 1;\n");
    assert_eq!(workspace.read("main.c"), fixed_on_disk);
    // The snapshot is in the store, under the ACP session, for `tack snapshots` too.
    let env = editor_env(&workspace);
    let listed = std::process::Command::new(tack_path())
        .args(["snapshots", "list"])
        .current_dir(workspace.root())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&session), "{listed}");
    assert!(listed.contains("main.c"), "{listed}");
    let undo = client.prompt(&session, "/undo");
    client.response(undo).await;
    assert_eq!(workspace.read("main.c"), ON_DISK);
    client.close().await;
    crate::ledger::the_acp_session_is_in_the_ledger(&workspace, &session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_before_initialize_is_refused_with_the_reason() {
    let workspace = Workspace::new();
    let client = AcpClient::spawn(&workspace);
    let id = client.prompt("any", "hello");
    let refused = client.response(id).await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let reason = refused["error"]["data"].as_str().unwrap();
    assert!(reason.contains("initialization must complete"), "{reason}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folders_mcp_servers_give_the_agent_their_tools_and_a_broken_one_is_told() {
    let fs_server = crate::e2e::tool("mcp-server-filesystem");
    let (workspace, model, _) = workspace("").await;
    workspace.write(
        ".mcp.json",
        &json!({ "mcpServers": {
            "fs": { "command": fs_server, "args": ["."] },
            "ghost": { "command": "/nonexistent/mcp-server" },
        } })
        .to_string(),
    );
    let notes = workspace.write("notes.txt", "the secret word is swordfish\n");
    let args = json!({ "path": notes.display().to_string() });
    model.push(openai_chat::stream(&Answer::default().with_tool_call(
        FakeToolCall::new("m1", "fs__read_text_file", &[&args.to_string()]),
    )));
    model.push(openai_chat::stream(&Answer::text(&["It is swordfish."])));
    let client = AcpClient::spawn(&workspace);
    client.initialize().await;
    let session = client.new_session(&workspace.root()).await;
    let told = client
        .update("the broken server's report", |u| {
            u["sessionUpdate"] == "agent_message_chunk"
                && u["content"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("ghost"))
        })
        .await;
    assert!(told.to_string().contains("tack:"), "{told}");
    let prompt = client.prompt(&session, "what is the word?");
    let response = client.response(prompt).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    let second = model.requests()[1].json().to_string();
    assert!(second.contains("the secret word is swordfish"), "{second}");
    client.close().await;
}
