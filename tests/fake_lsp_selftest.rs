//! The fake language server driven directly by the test client: its flags, its diagnostics,
//! its scripting methods, and a clean shutdown. Everything here also exercises the client.

use crate::support::{TestClient, Workspace, fake_lsp_path, file_uri};
use serde_json::{Value, json};
use std::time::Duration;
use tack::jsonrpc::{RequestId, error_code};

const WAIT: Duration = Duration::from_secs(10);

fn spawn_fake(ws: &Workspace, args: &[&str]) -> TestClient {
    TestClient::spawn(&fake_lsp_path(), args, &ws.root(), &[])
}

/// A workspace and an initialized fake; returns the initialize result too.
async fn started(args: &[&str]) -> (Workspace, TestClient, Value) {
    let ws = Workspace::new();
    let client = spawn_fake(&ws, args);
    let result = client.initialize(&ws.root(), None).await;
    (ws, client, result)
}

async fn documents(client: &TestClient) -> Value {
    client.request("fake/documents", Value::Null).await.unwrap()
}

fn position(line: u32, character: u32) -> Value {
    json!({ "line": line, "character": character })
}

#[tokio::test]
async fn default_capabilities() {
    let (_ws, client, result) = started(&[]).await;
    let caps = &result["capabilities"];
    assert_eq!(result["serverInfo"]["name"], "fake");
    assert_eq!(
        caps["textDocumentSync"],
        json!({ "openClose": true, "change": 2, "save": { "includeText": false } })
    );
    assert_eq!(caps["hoverProvider"], true);
    assert_eq!(
        caps["completionProvider"],
        json!({ "resolveProvider": true, "triggerCharacters": ["."] })
    );
    assert_eq!(caps["definitionProvider"], true);
    assert_eq!(caps["documentSymbolProvider"], true);
    assert!(caps["codeActionProvider"].is_object());
    assert_eq!(caps["executeCommandProvider"]["commands"], json!([]));
    assert!(caps.get("diagnosticProvider").is_none());
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn capabilities_follow_the_flags() {
    let args = [
        "--name",
        "alpha",
        "--sync",
        "full",
        "--pull-diagnostics",
        "--commands",
        "a,b",
        "--trigger-chars",
        ".,:",
        "--no-hover",
    ];
    let (_ws, client, result) = started(&args).await;
    let caps = &result["capabilities"];
    assert_eq!(result["serverInfo"]["name"], "alpha");
    assert_eq!(caps["textDocumentSync"]["change"], 1);
    assert!(caps.get("hoverProvider").is_none(), "{caps}");
    assert_eq!(
        caps["completionProvider"]["triggerCharacters"],
        json!([".", ",", ":"])
    );
    assert_eq!(
        caps["executeCommandProvider"]["commands"],
        json!(["a", "b"])
    );
    assert_eq!(caps["diagnosticProvider"]["identifier"], "alpha");
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn push_diagnostics_follow_versions_through_incremental_edits() {
    let (ws, client, _) = started(&[]).await;
    // "// 😀 " is 6 UTF-16 units, 5 chars, 8 bytes: a wrong unit count shows.
    let path = ws.write("main.rs", "");
    let uri = file_uri(&path);
    client.did_open(
        &path,
        "rust",
        "fn main() {}\n// 😀 ERROR: first problem\nlet x = 1;\n",
    );
    let published = client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["version"] == 1,
            WAIT,
        )
        .await;
    assert_eq!(published["uri"], uri.as_str());
    assert_eq!(
        published["diagnostics"],
        json!([{
            "range": { "start": position(1, 6), "end": position(1, 12) },
            "severity": 1,
            "source": "fake",
            "message": "first problem",
            "data": { "line": 1 }
        }])
    );

    // Insert a multi-byte character right after the emoji (UTF-16 column 5).
    let version = client.did_change_incremental(&path, (1, 5), (1, 5), "é");
    assert_eq!(version, 2);
    let published = client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["version"] == 2,
            WAIT,
        )
        .await;
    assert_eq!(
        published["diagnostics"][0]["range"],
        json!({ "start": position(1, 7), "end": position(1, 13) })
    );
    assert_eq!(
        documents(&client).await[uri.as_str()]["text"],
        "fn main() {}\n// 😀é ERROR: first problem\nlet x = 1;\n"
    );

    client.did_change_incremental(&path, (2, 0), (2, 0), "ERROR:   second  \n");
    let published = client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["version"] == 3,
            WAIT,
        )
        .await;
    let messages: Vec<&Value> = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["message"])
        .collect();
    assert_eq!(messages, [&json!("first problem"), &json!("second")]);

    // Delete both error lines at once (a range across lines).
    client.did_change_incremental(&path, (1, 0), (3, 0), "");
    let published = client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["version"] == 4,
            WAIT,
        )
        .await;
    assert_eq!(published["diagnostics"], json!([]));
    assert_eq!(
        documents(&client).await[uri.as_str()],
        json!({ "version": 4, "text": "fn main() {}\nlet x = 1;\n" })
    );

    client.did_close(&path);
    let cleared = client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p.get("version").is_none(),
            WAIT,
        )
        .await;
    assert_eq!(cleared, json!({ "uri": uri, "diagnostics": [] }));
    assert_eq!(documents(&client).await, json!({}));
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn edits_count_utf16_units_and_every_line_ending() {
    let (ws, client, _) = started(&[]).await;
    let path = ws.path("t.txt");
    let uri = file_uri(&path);
    client.did_open(&path, "plaintext", "a😀b\r\nc\rd\n");
    client.did_change(
        &path,
        vec![
            // Replace the emoji (units 1..3) on a CRLF line.
            json!({ "range": crate::support::client::range((0, 1), (0, 3)), "text": "X" }),
            // After a lone CR, line 2 starts at "d".
            json!({ "range": crate::support::client::range((1, 1), (1, 1)), "text": "Y" }),
            // A character past the end of its line means the end of that line.
            json!({ "range": crate::support::client::range((2, 99), (2, 99)), "text": "Z" }),
            // A line past the last means the end of the text.
            json!({ "range": crate::support::client::range((9, 0), (9, 0)), "text": "END" }),
        ],
    );
    assert_eq!(
        documents(&client).await[uri.as_str()]["text"],
        "aXb\r\ncY\rdZ\nEND"
    );
    let version = client.did_change_full(&path, "whole ✓\n");
    assert_eq!(version, 3);
    assert_eq!(
        documents(&client).await[uri.as_str()],
        json!({ "version": 3, "text": "whole ✓\n" })
    );
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn pull_mode_answers_diagnostic_requests_and_publishes_nothing() {
    let (ws, client, _) = started(&["--pull-diagnostics", "--name", "puller"]).await;
    let path = ws.path("a.py");
    client.did_open(&path, "python", "ok\nx = 1  # ERROR: bad x\n");
    let report = client
        .request(
            "textDocument/diagnostic",
            json!({ "textDocument": { "uri": file_uri(&path) } }),
        )
        .await
        .unwrap();
    assert_eq!(report["kind"], "full");
    assert_eq!(
        report["items"],
        json!([{
            "range": { "start": position(1, 9), "end": position(1, 15) },
            "severity": 1,
            "source": "puller",
            "message": "bad x",
            "data": { "line": 1 }
        }])
    );
    // Messages are handled in order: had didOpen published, it would have arrived by now.
    assert!(
        client
            .notifications("textDocument/publishDiagnostics")
            .is_empty()
    );
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn push_mode_does_not_answer_diagnostic_requests() {
    let (ws, client, _) = started(&[]).await;
    let answer = client
        .request(
            "textDocument/diagnostic",
            json!({ "textDocument": { "uri": ws.uri("a.rs") } }),
        )
        .await;
    assert_eq!(answer.unwrap_err().code, error_code::METHOD_NOT_FOUND);
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn fake_request_is_answered_by_the_client() {
    let (_ws, client, _) = started(&[]).await;
    let configuration = json!({
        "method": "workspace/configuration",
        "params": { "items": [{ "section": "a" }, { "section": "b" }] }
    });
    // The editor-like default: one null per item.
    let answer = client
        .request("fake/request", configuration.clone())
        .await
        .unwrap();
    assert_eq!(answer, json!({ "response": [null, null] }));
    assert_eq!(
        client.server_requests("workspace/configuration"),
        [json!({ "items": [{ "section": "a" }, { "section": "b" }] })]
    );

    client.set_response("workspace/configuration", json!([{ "x": 1 }, 2]));
    let answer = client.request("fake/request", configuration).await.unwrap();
    assert_eq!(answer, json!({ "response": [{ "x": 1 }, 2] }));

    client.set_responder(|method, params| match method {
        "custom/ask" => Err((-32000, format!("no to {}", params["q"]))),
        _ => Ok(TestClient::default_response(method, params)),
    });
    let answer = client
        .request(
            "fake/request",
            json!({ "method": "custom/ask", "params": { "q": "why" } }),
        )
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({ "error": { "code": -32000, "message": "no to \"why\"" } })
    );
    let answer = client
        .request(
            "fake/request",
            json!({ "method": "workspace/applyEdit", "params": { "edit": {} } }),
        )
        .await
        .unwrap();
    assert_eq!(answer, json!({ "response": { "applied": true } }));
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn fake_notify_reaches_the_client_in_order() {
    let (_ws, client, _) = started(&[]).await;
    for n in 0..3 {
        let params = json!({ "method": "custom/event", "params": { "n": n } });
        assert_eq!(client.request("fake/notify", params).await, Ok(Value::Null));
    }
    let last = client
        .wait_notification("custom/event", |p| p["n"] == 2, WAIT)
        .await;
    assert_eq!(last, json!({ "n": 2 }));
    assert_eq!(
        client.notifications("custom/event"),
        [json!({ "n": 0 }), json!({ "n": 1 }), json!({ "n": 2 })]
    );
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn sleep_is_cancelled_while_other_requests_are_answered() {
    let (_ws, client, _) = started(&[]).await;
    let long = client.send_request("fake/sleep", json!({ "ms": 60_000 }));
    let echo = client
        .request("fake/echo", json!({ "while": "sleeping" }))
        .await
        .unwrap();
    assert_eq!(
        echo,
        json!({ "method": "fake/echo", "params": { "while": "sleeping" }, "server": "fake" })
    );
    let short = client
        .request("fake/sleep", json!({ "ms": 20 }))
        .await
        .unwrap();
    assert_eq!(short, json!({ "slept": 20 }));
    client.cancel(&long);
    let cancelled = client.wait_response(&long).await.unwrap_err();
    assert_eq!(cancelled.code, error_code::REQUEST_CANCELLED);

    let received = client.request("fake/received", Value::Null).await.unwrap();
    let cancel = received
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "$/cancelRequest")
        .unwrap();
    assert_eq!(cancel["params"], json!({ "id": long }));
    assert!(client.protocol_violations().is_empty());
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn crash_exits_with_its_code_and_never_answers() {
    let (_ws, mut client, _) = started(&[]).await;
    let crash = client.send_request("fake/crash", json!({ "code": 7 }));
    let status = client.wait_exit(WAIT).await.expect("the fake exits");
    assert_eq!(status.code(), Some(7));
    assert!(
        client
            .try_wait_response(&crash, Duration::from_millis(100))
            .await
            .is_none()
    );
    assert!(client.wait_closed(WAIT).await);
}

#[tokio::test]
async fn crash_on_start_exits_3_before_reading_after_its_stderr_line() {
    let ws = Workspace::new();
    let mut client = spawn_fake(&ws, &["--crash-on-start", "--stderr", "last words"]);
    let status = client.wait_exit(WAIT).await.expect("the fake exits");
    assert_eq!(status.code(), Some(3));
    // Like a real server that dies at start, it says why on stderr first.
    client.wait_stderr("last words", WAIT).await;
}

#[tokio::test]
async fn language_features_name_the_server() {
    let (ws, client, _) = started(&["--name", "beta", "--commands", "beta.run"]).await;
    let path = ws.path("src/lib.rs");
    let uri = file_uri(&path);
    let doc = json!({ "uri": uri });
    client.did_open(&path, "rust", "fn greet_all() {}\nlet y = ERROR: nope\n");

    let hover = client
        .request(
            "textDocument/hover",
            json!({ "textDocument": doc, "position": position(0, 6) }),
        )
        .await
        .unwrap();
    assert_eq!(
        hover,
        json!({ "contents": { "kind": "markdown", "value": "beta hover at 0:6: greet_all" } })
    );

    let completion = client
        .request(
            "textDocument/completion",
            json!({ "textDocument": doc, "position": position(0, 0) }),
        )
        .await
        .unwrap();
    assert_eq!(
        completion,
        json!({ "isIncomplete": false, "items": [{ "label": "beta-item", "data": { "server": "beta" } }] })
    );
    let item = completion["items"][0].clone();
    let resolved = client
        .request("completionItem/resolve", item)
        .await
        .unwrap();
    assert_eq!(resolved["detail"], "resolved by beta");
    assert_eq!(resolved["data"], json!({ "server": "beta" }));

    let definition = client
        .request(
            "textDocument/definition",
            json!({ "textDocument": doc, "position": position(1, 1) }),
        )
        .await
        .unwrap();
    assert_eq!(definition["uri"], uri.as_str());
    assert_eq!(definition["range"]["start"], position(0, 0));

    let code_action_params = json!({
        "textDocument": doc,
        "range": { "start": position(1, 0), "end": position(1, 0) },
        "context": { "diagnostics": [] }
    });
    let actions = client
        .request("textDocument/codeAction", code_action_params.clone())
        .await
        .unwrap();
    assert_eq!(actions[0]["title"], "beta fix");
    assert_eq!(actions[0]["kind"], "quickfix");
    assert_eq!(
        actions[0]["edit"]["changes"][uri.as_str()],
        json!([{ "range": { "start": position(1, 8), "end": position(1, 14) }, "newText": "FIXED:" }])
    );

    let symbols = client
        .request(
            "textDocument/documentSymbol",
            json!({ "textDocument": doc }),
        )
        .await
        .unwrap();
    assert_eq!(symbols.as_array().unwrap().len(), 1);
    assert_eq!(symbols[0]["name"], "greet_all");
    assert_eq!(
        symbols[0]["selectionRange"],
        json!({ "start": position(0, 3), "end": position(0, 12) })
    );

    let executed = client
        .request(
            "workspace/executeCommand",
            json!({ "command": "beta.run", "arguments": [1, "two"] }),
        )
        .await
        .unwrap();
    assert_eq!(
        executed,
        json!({ "executed": "beta.run", "by": "beta", "arguments": [1, "two"] })
    );

    let unknown = client
        .request("custom/unknown", json!({}))
        .await
        .unwrap_err();
    assert_eq!(unknown.code, error_code::METHOD_NOT_FOUND);
    assert!(unknown.message.contains("custom/unknown"), "{unknown:?}");

    // With the error gone there is nothing to fix.
    client.did_change_full(&path, "fn greet_all() {}\n");
    let actions = client
        .request("textDocument/codeAction", code_action_params)
        .await
        .unwrap();
    assert_eq!(actions, json!([]));
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn garbage_on_stdout_is_survived_and_seen() {
    let ws = Workspace::new();
    let client = spawn_fake(&ws, &["--garbage-stdout", "--stderr", "hello on stderr"]);
    client.initialize(&ws.root(), None).await;
    let violations = client.protocol_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].starts_with("skipped bytes"), "{violations:?}");

    assert_eq!(
        client.request("fake/garbage", Value::Null).await,
        Ok(json!("ok"))
    );
    assert_eq!(
        client.request("fake/invalidJson", Value::Null).await,
        Ok(json!("ok"))
    );
    let violations = client.protocol_violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[1].starts_with("skipped bytes"), "{violations:?}");
    assert!(
        violations[2].starts_with("invalid message"),
        "{violations:?}"
    );
    client.wait_stderr("hello on stderr", WAIT).await;
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn malformed_input_gets_a_parse_error_and_the_session_goes_on() {
    let (_ws, client, _) = started(&["--verbose"]).await;
    client.send_raw(b"Content-Length: 5\r\n\r\n{oops");
    let error = client.wait_response_without_id(WAIT).await;
    assert_eq!(error.code, error_code::PARSE_ERROR);
    let echo = client
        .request_with_id(RequestId::String("text-id".into()), "fake/echo", json!(1))
        .await
        .unwrap();
    assert_eq!(echo["params"], 1);
    client
        .wait_stderr("\"id\":\"text-id\",\"method\":\"fake/echo\"", WAIT)
        .await;
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn received_lists_messages_with_ids_and_params() {
    let (ws, client, _) = started(&[]).await;
    let path = ws.path("r.txt");
    client.did_open(&path, "plaintext", "x");
    let received = client.request("fake/received", Value::Null).await.unwrap();
    let received = received.as_array().unwrap();
    let methods: Vec<&str> = received
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "initialized",
            "textDocument/didOpen",
            "fake/received"
        ]
    );
    assert_eq!(received[0]["id"], 1);
    assert_eq!(received[2]["params"]["textDocument"]["text"], "x");
    assert!(received[2].get("id").is_none());
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn progress_flag_creates_a_token_then_reports_begin_and_end() {
    let (_ws, client, _) = started(&["--progress", "--name", "indexer"]).await;
    let create = client
        .wait_server_request("window/workDoneProgress/create", WAIT)
        .await;
    assert_eq!(create, json!({ "token": "fake-progress" }));
    client
        .wait_notification("$/progress", |p| p["value"]["kind"] == "end", WAIT)
        .await;
    let kinds: Vec<Value> = client
        .notifications("$/progress")
        .iter()
        .map(|p| {
            assert_eq!(p["token"], "fake-progress");
            p["value"]["kind"].clone()
        })
        .collect();
    assert_eq!(kinds, [json!("begin"), json!("end")]);
    assert_eq!(
        client.notifications("$/progress")[0]["value"]["title"],
        "indexer indexing"
    );
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn requests_before_initialize_are_refused() {
    let ws = Workspace::new();
    let client = spawn_fake(&ws, &[]);
    let refused = client.request("fake/echo", json!({})).await.unwrap_err();
    assert_eq!(refused.code, error_code::SERVER_NOT_INITIALIZED);
    client.initialize(&ws.root(), None).await;
    assert!(client.request("fake/echo", json!({})).await.is_ok());
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn exit_without_shutdown_is_status_1() {
    let (_ws, mut client, _) = started(&[]).await;
    client.notify("exit", Value::Null);
    let status = client.wait_exit(WAIT).await.expect("the fake exits");
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn requests_after_shutdown_are_invalid() {
    let (_ws, mut client, _) = started(&[]).await;
    assert_eq!(
        client.request("shutdown", Value::Null).await,
        Ok(Value::Null)
    );
    let refused = client.request("fake/echo", json!({})).await.unwrap_err();
    assert_eq!(refused.code, error_code::INVALID_REQUEST);
    client.notify("exit", Value::Null);
    let status = client.wait_exit(WAIT).await.expect("the fake exits");
    assert!(status.success());
}

#[tokio::test]
async fn the_client_also_speaks_over_tcp() {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let ws = Workspace::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fake = tokio::process::Command::new(fake_lsp_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = fake.stdin.take().unwrap();
    let mut stdout = fake.stdout.take().unwrap();
    // A bridge between one TCP connection and the fake's stdio.
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (mut from_client, mut to_client) = socket.into_split();
        let inbound = async move {
            let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
        };
        let outbound = async move {
            let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
            let _ = to_client.shutdown().await;
        };
        tokio::join!(inbound, outbound);
    });
    let client = TestClient::connect_tcp(addr).await;
    client.initialize(&ws.root(), None).await;
    let echo = client.request("fake/echo", json!("tcp")).await.unwrap();
    assert_eq!(echo["params"], "tcp");
    client.shutdown_and_close().await;
    let status = tokio::time::timeout(WAIT, fake.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
