//! MCP both ways, through the real binary.
//!
//! Client: tack's agent (driven by the scripted fake model) calls the tools of real MCP
//! reference servers from npm (`@modelcontextprotocol/server-filesystem` over stdio,
//! `@modelcontextprotocol/server-everything` over stdio and streamable HTTP), installed by
//! `tests/e2e/setup.sh`; permissions ask and deny them; servers that crash, hang or die
//! mid-call are reported and the run goes on; `tack doctor` and the editor report failures.
//!
//! Server: `tack mcp` driven by rmcp's client: its tools, diagnostics of a C file from real
//! clangd (pending named, never clean), navigation, edit, undo and redo.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::e2e::tool;
use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, Reply, openai_chat};
use crate::support::{TestClient, Workspace, tack_in, tack_path};

const WAIT: Duration = Duration::from_secs(30);

fn call(id: &str, name: &str, args: Value) -> Reply {
    openai_chat::stream(&Answer::default().with_tool_call(FakeToolCall::new(
        id,
        name,
        &[&args.to_string()],
    )))
}

fn model_config(model: &FakeModelServer) -> String {
    format!(
        "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n",
        model.url()
    )
}

/// Runs `tack` in the workspace (see [`tack_in`]) with `env` added.
fn tack(workspace: &Workspace, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tack_in(workspace, args);
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `--json` events of a run.
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn event<'a>(events: &'a [Value], kind: &str, matches: impl Fn(&Value) -> bool) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind && matches(e))
        .unwrap_or_else(|| panic!("no {kind} event matching in {events:#?}"))
}

/// The names of the tools offered in a model request.
fn offered_tools(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// A workspace whose `tack.toml` names the fake model and the filesystem server as `fs`
/// (serving the workspace), then `extra`.
fn with_fs_server(model: &FakeModelServer, extra: &str) -> Workspace {
    let workspace = Workspace::new();
    workspace.write(
        "tack.toml",
        &format!(
            "{}\n[mcp.fs]\ncommand = {}\nargs = [\".\"]\n{extra}",
            model_config(model),
            toml_path(&tool("mcp-server-filesystem"))
        ),
    );
    workspace
}

/// The JSON text of the model request number `n`.
fn request_text(model: &FakeModelServer, n: usize) -> String {
    model.requests()[n].json().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_calls_a_real_filesystem_server_configured_in_mcp_json() {
    let fs_server = tool("mcp-server-filesystem");
    let model = FakeModelServer::start().await.unwrap();
    let workspace = Workspace::new();
    workspace.write("tack.toml", &model_config(&model));
    workspace.write(
        ".mcp.json",
        &json!({ "mcpServers": { "fs": { "command": fs_server, "args": ["."] } } }).to_string(),
    );
    let notes = workspace.write("notes.txt", "the secret word is swordfish\n");
    model.push(call(
        "c1",
        "fs__read_text_file",
        json!({ "path": notes.display().to_string() }),
    ));
    model.push(openai_chat::stream(&Answer::text(&["It is swordfish."])));

    let run = tack(&workspace, &["run", "--json", "what is the word?"], &[]);
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let requests = model.requests();
    assert_eq!(requests.len(), 2, "{stderr}");
    let tools = offered_tools(&requests[0].json());
    for name in [
        "read",
        "edit",
        "diagnostics",
        "fs__read_text_file",
        "fs__write_file",
    ] {
        assert!(tools.iter().any(|t| t == name), "{name} not in {tools:?}");
    }
    // The server's answer is the tool result of the next request.
    let second = request_text(&model, 1);
    assert!(second.contains("the secret word is swordfish"), "{second}");
    // Logged like every tool call: begun, decided by the policy (read-only: allowed), ended.
    let events = events(&stdout);
    let begun = event(&events, "tool_call_begun", |e| {
        e["name"] == "fs__read_text_file"
    });
    let id = begun["id"].clone();
    let ended = event(&events, "tool_call_ended", |e| e["id"] == id);
    assert_eq!(ended["is_error"], false, "{ended}");
    let decision = event(&events, "decision", |e| e["id"] == id);
    assert_eq!(decision["allowed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_ask_and_deny_apply_to_mcp_tools() {
    let model = FakeModelServer::start().await.unwrap();
    let workspace = with_fs_server(&model, "[permissions]\nfs__create_directory = \"deny\"\n");
    let new_file = workspace.path("new.txt").display().to_string();
    let new_dir = workspace.path("made").display().to_string();
    let script = |model: &FakeModelServer| {
        model.push(call(
            "w1",
            "fs__write_file",
            json!({ "path": new_file, "content": "written by the agent\n" }),
        ));
        model.push(call(
            "d1",
            "fs__create_directory",
            json!({ "path": new_dir }),
        ));
        model.push(openai_chat::stream(&Answer::text(&["Tried."])));
    };

    // Without --yes: the write is asked (no terminal: denied), the directory is denied.
    script(&model);
    let run = tack(&workspace, &["run", "--json", "make things"], &[]);
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let events = events(&stdout);
    let asked = event(&events, "approval_asked", |e| e["tool"] == "fs__write_file");
    assert!(
        asked["summary"]
            .as_str()
            .unwrap()
            .contains("written by the agent"),
        "the approval shows the arguments: {asked}"
    );
    let write = event(&events, "decision", |e| e["id"] == "w1");
    assert_eq!(
        (write["allowed"].as_bool(), write["source"].as_str()),
        (Some(false), Some("user"))
    );
    let mkdir = event(&events, "decision", |e| e["id"] == "d1");
    assert_eq!(
        (mkdir["allowed"].as_bool(), mkdir["source"].as_str()),
        (Some(false), Some("policy"))
    );
    assert!(!workspace.path("new.txt").exists());
    assert!(!workspace.path("made").exists());
    let second = request_text(&model, 1);
    assert!(
        second.contains("The user denied fs__write_file"),
        "{second}"
    );
    let third = request_text(&model, 2);
    assert!(
        third.contains("fs__create_directory is denied by the permission policy"),
        "{third}"
    );

    // With --yes the asked write runs (after a checkpoint); the explicit deny stays.
    script(&model);
    let run = tack(&workspace, &["run", "--json", "--yes", "make things"], &[]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(workspace.read("new.txt"), "written by the agent\n");
    assert!(!workspace.path("made").exists());
}

/// A stdio MCP server that starts and lists one tool, then dies when the tool is called.
const DIES_ON_CALL: &str = r#"
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    method = message.get("method")
    if method == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"],
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "dies", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [{"name": "boom", "description": "Dies instead of answering.",
                             "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        sys.stderr.write("dies: crashing on purpose\n")
        sys.stderr.flush()
        sys.exit(5)
    else:
        result = {}
    if "id" in message:
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_crash_hang_or_die_mid_call_are_reported_and_the_run_goes_on() {
    let everything = tool("mcp-server-everything");
    let model = FakeModelServer::start().await.unwrap();
    let workspace = Workspace::new();
    let script = workspace.write("dies.py", DIES_ON_CALL);
    workspace.write(
        "tack.toml",
        &format!(
            "{}\n[mcp.crashes]\ncommand = \"sh\"\nargs = [\"-c\", \"echo cannot open the database >&2; exit 3\"]\n\
             [mcp.hangs]\ncommand = \"sleep\"\nargs = [\"600\"]\nstartup_timeout_secs = 2\n\
             [mcp.dies]\ncommand = \"python3\"\nargs = [{}]\n\
             [mcp.slow]\ncommand = {}\ntool_timeout_secs = 2\n\
             [permissions]\n\"dies__*\" = \"allow\"\n",
            model_config(&model),
            toml_path(&script),
            toml_path(&everything)
        ),
    );
    model.push(call("b1", "dies__boom", json!({})));
    model.push(call(
        "s1",
        "slow__trigger-long-running-operation",
        json!({ "duration": 30, "steps": 3 }),
    ));
    model.push(call("e1", "slow__echo", json!({ "message": "still here" })));
    model.push(openai_chat::stream(&Answer::text(&["Survived."])));

    let started = Instant::now();
    let run = tack(&workspace, &["run", "--json", "go"], &[]);
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    // The two that never came up are reported, with the crashed one's own words.
    let crashed = stderr
        .lines()
        .find(|l| l.contains("MCP server crashes: failed"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(crashed.contains("cannot open the database"), "{crashed}");
    assert!(
        stderr.contains("MCP server hangs: failed: did not answer within 2 s"),
        "{stderr}"
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 4, "{stderr}");
    let tools = offered_tools(&requests[0].json());
    assert!(
        !tools
            .iter()
            .any(|t| t.starts_with("crashes__") || t.starts_with("hangs__"))
    );
    // A server that dies mid-call is an error result naming it; a call that hangs times out.
    let second = request_text(&model, 1);
    assert!(second.contains("MCP server dies has stopped"), "{second}");
    assert!(second.contains("crashing on purpose"), "{second}");
    let third = request_text(&model, 2);
    assert!(
        third.contains("MCP server slow did not answer trigger-long-running-operation within 2 s"),
        "{third}"
    );
    // The server that timed out a call still answers the next one.
    let fourth = request_text(&model, 3);
    assert!(fourth.contains("Echo: still here"), "{fourth}");
}

/// Node's `http.Server#listen` on a bare port binds every interface; tests bind loopback only.
const LOOPBACK_ONLY: &str = r#"
const http = require('http');
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || typeof args[0] === 'string') {
    const port = args.shift();
    return listen.call(this, Number(port), '127.0.0.1', ...args);
  }
  return listen.apply(this, args);
};
"#;

/// A server process killed when dropped.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_servers_work_and_get_their_headers_without_leaking_them() {
    let everything = tool("mcp-server-everything");
    let workspace = Workspace::new();
    let shim = workspace.write("loopback.cjs", LOOPBACK_ONLY);
    let port = free_port();
    let server = Background(
        Command::new(&everything)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .env("NODE_OPTIONS", format!("--require {}", shim.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTP server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A second endpoint that refuses, to see what tack sent it.
    let guarded = FakeModelServer::start().await.unwrap();
    guarded.route(
        "POST",
        "/mcp",
        Reply::json(401, &json!({ "error": "bad token" })),
    );
    let model = FakeModelServer::start().await.unwrap();
    workspace.write(
        "tack.toml",
        &format!(
            "{}\n[mcp.web]\nurl = \"http://127.0.0.1:{port}/mcp\"\n\
             [mcp.guarded]\nurl = \"{}/mcp\"\nheaders = {{ Authorization = \"Bearer ${{GUARD_TOKEN}}\", X-Client = \"tack-test\" }}\n",
            model_config(&model),
            guarded.url()
        ),
    );
    model.push(call(
        "e1",
        "web__echo",
        json!({ "message": "ping over http" }),
    ));
    model.push(openai_chat::stream(&Answer::text(&["Pong."])));

    let run = tack(
        &workspace,
        &["run", "go"],
        &[("GUARD_TOKEN", "tok-do-not-print")],
    );
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let requests = model.requests();
    assert_eq!(requests.len(), 2, "{stderr}");
    let second = request_text(&model, 1);
    assert!(second.contains("Echo: ping over http"), "{second}");
    // The refusing server got the configured headers, expanded; nothing printed the token.
    let sent = guarded.requests();
    assert!(!sent.is_empty());
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer tok-do-not-print")
    );
    assert_eq!(sent[0].header("x-client"), Some("tack-test"));
    assert!(stderr.contains("MCP server guarded: failed"), "{stderr}");
    assert!(!stdout.contains("tok-do-not-print") && !stderr.contains("tok-do-not-print"));
    drop(server);
}

#[test]
fn doctor_starts_each_server_and_shows_its_tools_or_why_it_failed() {
    let fs_server = tool("mcp-server-filesystem");
    let workspace = Workspace::new();
    workspace.write(
        "tack.toml",
        &format!(
            "[mcp.fs]\ncommand = {}\nargs = [\".\"]\n[mcp.broken]\ncommand = \"sh\"\nargs = [\"-c\", \"echo missing config >&2; exit 2\"]\n\
             [mcp.typo]\ncomand = \"x\"\nargs = []\n",
            toml_path(&fs_server)
        ),
    );
    workspace.write(
        ".mcp.json",
        "{\"mcpServers\": {\"off\": {\"command\": \"x\", \"disabled\": true}}}",
    );
    let out = tack(&workspace, &["doctor"], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let section = stdout
        .split("mcp servers:")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    let line = |name: &str| {
        section
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {section}"))
            .to_owned()
    };
    assert!(line("fs").contains("tool(s) (tack.toml)"), "{section}");
    let broken = line("broken");
    assert!(
        broken.contains("failed: it exited (or closed its output) before answering initialize")
            && broken.contains("stderr: missing config"),
        "{broken}"
    );
    assert_eq!(line("off").trim(), "off: disabled (.mcp.json)");
    assert!(line("typo").contains("neither command"), "{section}");
    assert!(
        stdout.contains("mcp.typo.comand"),
        "the did-you-mean warning: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_editor_mcp_tools_run_and_a_failing_server_is_shown_as_a_warning() {
    let model = FakeModelServer::start().await.unwrap();
    let workspace = with_fs_server(
        &model,
        "[mcp.broken]\ncommand = \"sh\"\nargs = [\"-c\", \"exit 7\"]\n",
    );
    let notes = workspace.write("notes.txt", "editor sessions see this\n");
    model.push(call(
        "c1",
        "fs__read_text_file",
        json!({ "path": notes.display().to_string() }),
    ));
    model.push(openai_chat::stream(&Answer::text(&["Read it."])));
    let home = workspace.path(".home").display().to_string();
    let env = [
        ("XDG_CONFIG_HOME", home.as_str()),
        ("XDG_DATA_HOME", home.as_str()),
        ("XDG_STATE_HOME", home.as_str()),
    ];
    let client = TestClient::spawn(&tack_path(), &["lsp"], &workspace.root(), &env);
    client
        .request(
            "initialize",
            TestClient::initialize_params(&workspace.root(), None),
        )
        .await
        .unwrap();
    client.notify("initialized", json!({}));
    client
        .request(
            "workspace/executeCommand",
            json!({ "command": "tack.ask", "arguments": [{ "prompt": "read the notes" }] }),
        )
        .await
        .unwrap();
    let shown = client
        .wait_notification(
            "window/showMessage",
            |p| {
                p["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("MCP server broken")
            },
            WAIT,
        )
        .await;
    assert_eq!(shown["type"], 2, "a warning: {shown}");
    let deadline = Instant::now() + WAIT;
    while model.requests().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the run did not call the model twice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = request_text(&model, 1);
    assert!(second.contains("editor sessions see this"), "{second}");
    client.shutdown_and_exit().await;
}

// ---------------------------------------------------------------- tack mcp

const BROKEN_C: &str =
    "int add(int a, int b) { return a + c; }\nint main(void) { return add(1, 2); }\n";

/// `tack mcp` on a workspace with `main.c` and clangd, and rmcp's client talking to it.
struct TackMcp {
    workspace: Workspace,
    client: rmcp::service::RunningService<rmcp::RoleClient, ()>,
}

impl TackMcp {
    async fn start() -> TackMcp {
        let clangd = tool("clangd");
        let workspace = Workspace::new();
        workspace.write(
            "tack.toml",
            &format!("[servers.clangd]\ncommand = {}\n", toml_path(&clangd)),
        );
        workspace.write("main.c", BROKEN_C);
        let home = workspace.path(".home").display().to_string();
        let mut command = tokio::process::Command::new(tack_path());
        command
            .args(["mcp", "-C"])
            .arg(workspace.root())
            .env("XDG_CONFIG_HOME", &home)
            .env("XDG_DATA_HOME", &home)
            .env("XDG_STATE_HOME", &home)
            .env("TACK_LOG", "warn");
        let transport = TokioChildProcess::new(command).unwrap();
        let client = tokio::time::timeout(WAIT, ().serve(transport))
            .await
            .expect("tack mcp answers initialize")
            .unwrap();
        TackMcp { workspace, client }
    }

    async fn call(&self, name: &str, args: Value) -> CallToolResult {
        let params = CallToolRequestParams::new(name.to_owned())
            .with_arguments(args.as_object().cloned().unwrap());
        tokio::time::timeout(Duration::from_secs(60), self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{name} timed out"))
            .unwrap()
    }

    /// The text of a successful call.
    async fn ok(&self, name: &str, args: Value) -> String {
        let result = self.call(name, args).await;
        let text = result_text(&result);
        assert_ne!(result.is_error, Some(true), "{name} failed: {text}");
        text
    }
}

fn result_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tack_mcp_serves_clangd_diagnostics_navigation_and_undoable_edits() {
    let mcp = TackMcp::start().await;
    let names: Vec<String> = mcp
        .client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        names.join(" "),
        "context diagnostics definition references hover symbols edit write undo redo"
    );

    // Asked not to wait, clangd has not answered yet: incomplete, never clean.
    let early = mcp
        .call(
            "diagnostics",
            json!({ "paths": ["main.c"], "wait_secs": 0 }),
        )
        .await;
    let early_text = result_text(&early);
    assert!(
        early_text.contains("clangd pending")
            && early_text.contains("Incomplete, not clean: not yet answered by clangd"),
        "{early_text}"
    );
    assert_eq!(
        early.structured_content.as_ref().unwrap()["complete"],
        false
    );

    // Waiting: clangd's own words, for the version it checked.
    let checked = mcp
        .call("diagnostics", json!({ "paths": ["main.c"] }))
        .await;
    let checked_text = result_text(&checked);
    assert!(
        checked_text.contains("main.c (version 1; clangd answered): 1 error(s)"),
        "{checked_text}"
    );
    assert!(
        checked_text.contains("main.c:1: error: Use of undeclared identifier 'c'"),
        "{checked_text}"
    );
    let structured = checked.structured_content.unwrap();
    assert_eq!(structured["complete"], true, "{structured}");
    assert_eq!(structured["files"][0]["version"], 1);
    assert_eq!(structured["files"][0]["servers"][0]["state"], "answered");

    let definition = mcp
        .ok(
            "definition",
            json!({ "path": "main.c", "line": 2, "symbol": "add" }),
        )
        .await;
    assert!(definition.starts_with("main.c:1: int add"), "{definition}");
    let hover = mcp
        .ok(
            "hover",
            json!({ "path": "main.c", "line": 2, "symbol": "add" }),
        )
        .await;
    assert!(
        hover.contains("int add(int a, int b)") || hover.contains("int (int, int)"),
        "{hover}"
    );

    let references = mcp
        .ok(
            "references",
            json!({ "path": "main.c", "line": 1, "symbol": "add" }),
        )
        .await;
    assert!(
        references.contains("main.c:1:") && references.contains("main.c:2:"),
        "{references}"
    );
    // The context tack's own agent would get for line 2: the definition it uses (found by
    // clangd), and each item's reason.
    let context = mcp
        .ok(
            "context",
            json!({ "path": "main.c", "start_line": 2, "task": "explain main" }),
        )
        .await;
    assert!(context.contains("explain main"), "{context}");
    assert!(context.contains("- definition ("), "{context}");
    assert!(
        context.contains("found by the language server"),
        "{context}"
    );
    assert!(context.contains("int add(int a, int b)"), "{context}");
    let outside = mcp
        .call("context", json!({ "path": "../elsewhere.c" }))
        .await;
    assert_eq!(outside.is_error, Some(true), "{outside:?}");
    let symbols = mcp.ok("symbols", json!({ "path": "main.c" })).await;
    assert!(
        symbols.contains("main.c:1: function add") && symbols.contains("main.c:2: function main"),
        "{symbols}"
    );

    // The edit fixes the error; the answer says so.
    let edited = mcp
        .ok(
            "edit",
            json!({ "path": "main.c", "old": "a + c", "new": "a + b" }),
        )
        .await;
    assert!(edited.contains("Change 1"), "{edited}");
    assert!(
        edited.contains("0 error(s) introduced, 1 fixed"),
        "{edited}"
    );
    let fixed = mcp.workspace.read("main.c");
    assert!(fixed.contains("return a + b;"), "{fixed}");

    // Undo restores the file, and the error is back; redo applies the fix again.
    let undone = mcp.ok("undo", json!({})).await;
    assert!(undone.contains("undo of change(s) 1 done"), "{undone}");
    assert!(
        undone.contains("Use of undeclared identifier 'c'"),
        "{undone}"
    );
    assert_eq!(mcp.workspace.read("main.c"), BROKEN_C);
    let redone = mcp.ok("redo", json!({})).await;
    assert!(redone.contains("redo of change(s) 1 done"), "{redone}");
    assert!(redone.contains("0 error(s)"), "{redone}");
    assert_eq!(mcp.workspace.read("main.c"), fixed);
    mcp.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tack_mcp_follows_edits_other_agents_make_and_refuses_bad_input_clearly() {
    let mcp = TackMcp::start().await;
    // Navigation first: the file is given to clangd before it is asked about.
    let hover = mcp
        .ok(
            "hover",
            json!({ "path": "main.c", "line": 2, "symbol": "add" }),
        )
        .await;
    assert!(hover.contains("add"), "{hover}");
    let first = mcp.ok("diagnostics", json!({ "paths": ["main.c"] })).await;
    assert!(first.contains("1 error(s)"), "{first}");

    // Another agent fixes the file on disk: the next answer is about the new text.
    mcp.workspace
        .write("main.c", &BROKEN_C.replace("a + c", "a + b"));
    let second = mcp.ok("diagnostics", json!({ "paths": ["main.c"] })).await;
    assert!(
        second.contains("main.c (version 2; clangd answered): 0 error(s)"),
        "{second}"
    );

    // An edit whose text is not there, a path outside the folder, an unknown tool: errors
    // that say what is wrong, and nothing changes.
    let before = mcp.workspace.read("main.c");
    let missing = mcp
        .call(
            "edit",
            json!({ "path": "main.c", "old": "no such text", "new": "x" }),
        )
        .await;
    assert_eq!(missing.is_error, Some(true));
    assert!(
        result_text(&missing).contains("main.c"),
        "{}",
        result_text(&missing)
    );
    let outside = mcp
        .call("diagnostics", json!({ "paths": ["/etc/passwd"] }))
        .await;
    assert_eq!(outside.is_error, Some(true));
    assert!(
        result_text(&outside).contains("outside"),
        "{}",
        result_text(&outside)
    );
    let unknown = mcp.call("run_command", json!({ "command": "ls" })).await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(
        result_text(&unknown).contains("unknown tool"),
        "{}",
        result_text(&unknown)
    );
    let nothing = mcp.call("undo", json!({})).await;
    assert_eq!(nothing.is_error, Some(true), "{}", result_text(&nothing));
    assert_eq!(mcp.workspace.read("main.c"), before);
    mcp.client.cancel().await.unwrap();
}
