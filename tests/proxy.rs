//! The proxy through the real `tack` binary, in front of the scriptable fake language server:
//! forwarding in both directions, merging, cancellation, crashes, malformed input, lifecycle.

use crate::support::{TestClient, Workspace, fake_lsp_path, file_uri, tack_path};
use serde_json::{Value, json};
use std::time::Duration;
use tack::jsonrpc::error_code;

const WAIT: Duration = Duration::from_secs(30);

/// One fake server entry for the workspace's `tack.toml`.
struct FakeServer<'a> {
    name: &'a str,
    flags: &'a [&'a str],
}

const ALPHA: FakeServer = FakeServer {
    name: "alpha",
    flags: &[],
};

/// A workspace whose `tack.toml` runs the given fake servers for the `fake` language (`*.fk`).
fn workspace_with(servers: &[FakeServer]) -> Workspace {
    let workspace = Workspace::new();
    let mut toml = String::from("[languages.fake]\nextensions = [\"fk\"]\n\n");
    for server in servers {
        let mut args = vec!["--name".to_owned(), server.name.to_owned()];
        args.extend(server.flags.iter().map(|f| (*f).to_owned()));
        toml.push_str(&format!(
            "[servers.{}]\ncommand = {:?}\nargs = {:?}\nlanguages = [\"fake\"]\n\n",
            server.name,
            fake_lsp_path().display().to_string(),
            args
        ));
    }
    workspace.write("tack.toml", &toml);
    workspace.write("main.fk", "hello\n");
    workspace
}

fn spawn_tack(workspace: &Workspace) -> TestClient {
    let xdg = workspace.path(".xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let log = workspace.path(".xdg/tack.log").display().to_string();
    let xdg = xdg.display().to_string();
    TestClient::spawn(
        &tack_path(),
        &["lsp"],
        &workspace.root(),
        &[
            ("XDG_CONFIG_HOME", xdg.as_str()),
            ("XDG_DATA_HOME", xdg.as_str()),
            ("XDG_STATE_HOME", xdg.as_str()),
            ("TACK_LOG_FILE", log.as_str()),
            ("TACK_LOG", "debug"),
        ],
    )
}

async fn started(servers: &[FakeServer<'_>]) -> (Workspace, TestClient, Value) {
    let workspace = workspace_with(servers);
    let client = spawn_tack(&workspace);
    let result = client.initialize(&workspace.root(), None).await;
    (workspace, client, result)
}

fn position(line: u32, character: u32) -> Value {
    json!({ "line": line, "character": character })
}

/// `textDocument/hover` at the start of a file.
async fn hover_at_start(
    client: &TestClient,
    path: &std::path::Path,
) -> Result<Value, tack::jsonrpc::ResponseError> {
    client
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": file_uri(path) }, "position": position(0, 0) }),
        )
        .await
}

fn assert_clean_protocol(client: &TestClient) {
    assert!(
        client.protocol_violations().is_empty(),
        "stdout carried something other than protocol: {:?}",
        client.protocol_violations()
    );
}

#[tokio::test]
async fn forwards_standard_and_custom_requests_unchanged() {
    let (workspace, client, init) = started(&[ALPHA]).await;
    assert_eq!(init["serverInfo"]["name"], "tack");
    assert!(
        init["capabilities"]["hoverProvider"]
            .as_bool()
            .unwrap_or(false)
            || init["capabilities"]["hoverProvider"].is_object()
    );
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "hello world\n");

    let hover = client
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": file_uri(&path) }, "position": position(0, 1) }),
        )
        .await
        .unwrap();
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.starts_with("alpha hover at 0:1"), "{text}");

    // A custom method with odd params comes back exactly as sent.
    let params =
        json!({ "textDocument": { "uri": file_uri(&path) }, "z": [1.5, "é", null], "a": {} });
    let echo = client.request("fake/echo", params.clone()).await.unwrap();
    assert_eq!(echo["params"], params);
    assert_eq!(echo["server"], "alpha");

    // The child's error for an unknown method reaches the editor as the child sent it.
    let error = client
        .request(
            "fake/noSuchMethod",
            json!({ "textDocument": { "uri": file_uri(&path) } }),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, error_code::METHOD_NOT_FOUND);
    assert!(
        error.message.contains("fake/noSuchMethod"),
        "{}",
        error.message
    );

    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
    // Logs went to stderr and to the log file, never to stdout.
    let log = workspace.read(".xdg/tack.log");
    assert!(log.contains("initialized"), "{log}");
}

#[tokio::test]
async fn diagnostics_from_two_servers_are_merged_per_uri_and_replaced_per_server() {
    let beta = FakeServer {
        name: "beta",
        flags: &["--sync", "full"],
    };
    let (workspace, client, _) = started(&[ALPHA, beta]).await;
    let path = workspace.path("main.fk");
    let uri = file_uri(&path);
    client.did_open(&path, "fake", "ok\nERROR: first\n");
    let both =
        |p: &Value| p["uri"] == uri && p["diagnostics"].as_array().is_some_and(|d| d.len() == 2);
    let published = client
        .wait_notification("textDocument/publishDiagnostics", both, WAIT)
        .await;
    let mut sources: Vec<&str> = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"].as_str().unwrap())
        .collect();
    sources.sort();
    assert_eq!(sources, ["alpha", "beta"]);
    // The raw diagnostic survives, `data` included.
    assert_eq!(published["diagnostics"][0]["data"]["line"], 1);
    assert_eq!(published["diagnostics"][0]["message"], "first");

    // Fix the error with an incremental edit: both servers clear their sets (beta through
    // full sync), the editor gets an empty merged set.
    client.clear_notifications();
    client.did_change_incremental(&path, (1, 0), (1, 6), "FIXED:");
    let cleared = client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["uri"] == uri && p["diagnostics"].as_array().is_some_and(|d| d.is_empty()),
            WAIT,
        )
        .await;
    assert_eq!(cleared["version"], 2);

    // beta (full sync) was sent the whole text, equal to tack's copy.
    let docs = client
        .request("fake/documents", json!({ "textDocument": { "uri": uri } }))
        .await
        .unwrap();
    assert_eq!(docs[&uri]["text"], "ok\nFIXED: first\n");
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn completion_and_code_actions_are_merged_and_resolve_finds_the_owner() {
    let beta = FakeServer {
        name: "beta",
        flags: &["--trigger-chars", ":"],
    };
    let alpha = FakeServer {
        name: "alpha",
        flags: &["--trigger-chars", "."],
    };
    let (workspace, client, init) = started(&[alpha, beta]).await;
    let triggers = &init["capabilities"]["completionProvider"]["triggerCharacters"];
    assert!(
        triggers.as_array().unwrap().contains(&json!(".")),
        "{triggers}"
    );
    assert!(
        triggers.as_array().unwrap().contains(&json!(":")),
        "{triggers}"
    );

    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\nERROR: broken\n");
    let doc = json!({ "uri": file_uri(&path) });
    let completion = client
        .request(
            "textDocument/completion",
            json!({ "textDocument": doc, "position": position(0, 1) }),
        )
        .await
        .unwrap();
    let items = completion["items"].as_array().unwrap();
    let labels: Vec<&str> = items.iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["alpha-item", "beta-item"]);

    let resolved = client
        .request("completionItem/resolve", items[1].clone())
        .await
        .unwrap();
    assert_eq!(resolved["detail"], "resolved by beta");
    // The server saw its own data, not tack's tag.
    assert_eq!(resolved["data"], json!({ "server": "beta" }));

    let actions = client
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": doc,
                "range": crate::support::client::range((1, 0), (1, 0)),
                "context": { "diagnostics": [] }
            }),
        )
        .await
        .unwrap();
    let titles: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    // The children's actions in server order, then tack's own (the file has an error).
    assert_eq!(
        titles,
        ["alpha fix", "beta fix", "Fix all errors in file with tack"]
    );
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn execute_command_goes_to_the_server_that_owns_it() {
    let alpha = FakeServer {
        name: "alpha",
        flags: &["--commands", "alpha.run"],
    };
    let beta = FakeServer {
        name: "beta",
        flags: &["--commands", "beta.run,beta.other"],
    };
    let (_workspace, client, init) = started(&[alpha, beta]).await;
    let commands = init["capabilities"]["executeCommandProvider"]["commands"]
        .as_array()
        .unwrap()
        .clone();
    for command in ["alpha.run", "beta.run", "beta.other"] {
        assert!(commands.contains(&json!(command)), "{commands:?}");
    }
    let answer = client
        .request(
            "workspace/executeCommand",
            json!({ "command": "beta.run", "arguments": [1] }),
        )
        .await
        .unwrap();
    assert_eq!(answer["by"], "beta");
    assert_eq!(answer["executed"], "beta.run");
    let error = client
        .request(
            "workspace/executeCommand",
            json!({ "command": "nobody.has" }),
        )
        .await
        .unwrap_err();
    assert!(error.message.contains("nobody.has"), "{}", error.message);
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn server_to_client_requests_reach_the_editor_and_answers_go_back() {
    let (workspace, client, _) = started(&[ALPHA]).await;
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\n");
    let doc = json!({ "uri": file_uri(&path) });
    client.set_response("window/showMessageRequest", json!({ "title": "Yes" }));
    client.set_response("workspace/configuration", json!([{ "from": "editor" }]));
    for (method, params, expected) in [
        // No settings for this server in tack's configuration: the editor is asked.
        (
            "workspace/configuration",
            json!({ "items": [{ "section": "fake" }] }),
            json!([{ "from": "editor" }]),
        ),
        (
            "workspace/applyEdit",
            json!({ "edit": { "changes": {} } }),
            json!({ "applied": true }),
        ),
        (
            "window/showMessageRequest",
            json!({ "type": 3, "message": "ok?", "actions": [{ "title": "Yes" }] }),
            json!({ "title": "Yes" }),
        ),
        (
            "window/showDocument",
            json!({ "uri": file_uri(&path) }),
            json!({ "success": true }),
        ),
        ("workspace/codeLens/refresh", Value::Null, Value::Null),
        ("custom/serverAsks", json!({ "q": 1 }), Value::Null),
    ] {
        let answer = client
            .request(
                "fake/request",
                json!({ "textDocument": doc, "method": method, "params": params }),
            )
            .await
            .unwrap();
        assert_eq!(answer["response"], expected, "{method}");
        assert_eq!(
            client.server_requests(method).last(),
            Some(&params),
            "{method}"
        );
    }

    // Notifications from the server pass through unchanged, custom ones included.
    client
        .request(
            "fake/notify",
            json!({ "textDocument": doc, "method": "custom/status", "params": { "health": "ok" } }),
        )
        .await
        .unwrap();
    let status = client
        .wait_notification("custom/status", |_| true, WAIT)
        .await;
    assert_eq!(status, json!({ "health": "ok" }));
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn configuration_requests_are_answered_from_server_settings() {
    let workspace = workspace_with(&[ALPHA]);
    let mut toml = workspace.read("tack.toml");
    toml.push_str("[servers.alpha.settings.fake]\nstrict = true\n");
    workspace.write("tack.toml", &toml);
    let client = spawn_tack(&workspace);
    client.initialize(&workspace.root(), None).await;
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\n");
    let answer = client
        .request(
            "fake/request",
            json!({
                "textDocument": { "uri": file_uri(&path) },
                "method": "workspace/configuration",
                "params": { "items": [{ "section": "fake" }, { "section": "fake.strict" }, { "section": "other" }] }
            }),
        )
        .await
        .unwrap();
    assert_eq!(answer["response"], json!([{ "strict": true }, true, null]));
    // tack answered itself: the editor was not asked.
    assert!(client.server_requests("workspace/configuration").is_empty());
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn progress_tokens_are_mapped_per_server() {
    let alpha = FakeServer {
        name: "alpha",
        flags: &["--progress"],
    };
    let (_workspace, client, _) = started(&[alpha]).await;
    let create = client
        .wait_server_request("window/workDoneProgress/create", WAIT)
        .await;
    let token = create["token"].as_str().unwrap().to_owned();
    assert_eq!(token, "alpha/fake-progress");
    let end = client
        .wait_notification("$/progress", |p| p["value"]["kind"] == "end", WAIT)
        .await;
    assert_eq!(end["token"], token.as_str());
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn cancellation_reaches_the_child_with_its_own_id() {
    let (workspace, client, _) = started(&[ALPHA]).await;
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\n");
    let doc = json!({ "uri": file_uri(&path) });
    // Use a string id on the editor side: the child sees tack's numeric id instead.
    let id = tack::jsonrpc::RequestId::String("editor-sleep".to_owned());
    client.send_request_with_id(
        id.clone(),
        "fake/sleep",
        json!({ "textDocument": doc, "ms": 20000 }),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.cancel(&id);
    let error = client.wait_response(&id).await.unwrap_err();
    assert_eq!(error.code, error_code::REQUEST_CANCELLED);

    let received = client
        .request("fake/received", json!({ "textDocument": doc }))
        .await
        .unwrap();
    let received = received.as_array().unwrap();
    let sleep_id = received
        .iter()
        .find(|m| m["method"] == "fake/sleep")
        .map(|m| m["id"].clone())
        .unwrap();
    assert!(sleep_id.is_number(), "{sleep_id}");
    let cancel = received
        .iter()
        .find(|m| m["method"] == "$/cancelRequest")
        .unwrap();
    assert_eq!(cancel["params"]["id"], sleep_id);
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn a_crash_mid_request_is_answered_then_the_server_restarts_with_documents_reopened() {
    let (workspace, client, _) = started(&[ALPHA]).await;
    let path = workspace.path("main.fk");
    let uri = file_uri(&path);
    client.did_open(&path, "fake", "one\n");
    client.did_change_full(&path, "two\nERROR: after edit\n");
    let doc = json!({ "uri": uri });

    let error = client
        .request("fake/crash", json!({ "textDocument": doc, "code": 9 }))
        .await
        .unwrap_err();
    assert_eq!(error.code, error_code::REQUEST_FAILED);
    assert!(error.message.contains("alpha"), "{}", error.message);

    // The restarted server got the document with its current text, and publishes again.
    let documents = retry_until(|| async {
        client
            .request("fake/documents", json!({ "textDocument": doc }))
            .await
            .ok()
            .filter(|d| d.get(&uri).is_some())
    })
    .await;
    assert_eq!(documents[&uri]["text"], "two\nERROR: after edit\n");
    assert_eq!(documents[&uri]["version"], 2);
    client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["diagnostics"].as_array().is_some_and(|d| d.len() == 1),
            WAIT,
        )
        .await;
    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
}

/// Calls `attempt` every 100 ms until it yields a value (or 30 s pass).
async fn retry_until<F, Fut, T>(attempt: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_server_that_keeps_crashing_is_given_up_with_a_message() {
    let broken = FakeServer {
        name: "broken",
        flags: &["--crash-on-start", "--stderr", "fatal: cannot load project"],
    };
    let (workspace, client, _) = started(&[broken]).await;
    let message = client
        .wait_notification(
            "window/showMessage",
            |p| p["type"] == 1 && p["message"].as_str().is_some_and(|m| m.contains("broken")),
            Duration::from_secs(60),
        )
        .await;
    let text = message["message"].as_str().unwrap();
    assert!(text.contains("fatal: cannot load project"), "{text}");
    // tack itself keeps serving.
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\n");
    let hover = hover_at_start(&client, &path).await;
    assert_eq!(hover, Ok(Value::Null));
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn malformed_editor_input_gets_errors_and_the_session_goes_on() {
    let (workspace, client, _) = started(&[ALPHA]).await;
    // Invalid JSON in a well-formed frame: a parse error with a null id.
    client.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    let error = client.wait_response_without_id(WAIT).await;
    assert_eq!(error.code, error_code::PARSE_ERROR);
    // A bad Content-Length and a garbage line are skipped.
    client.send_raw(b"Content-Length: many\r\n\r\n{}\ngarbage line\n");
    // A valid JSON body that is not a message, with an id: an invalid-request error.
    let error = client
        .request_with_id(tack::jsonrpc::RequestId::Number(777), "", Value::Null)
        .await;
    assert!(error.is_err());
    // An unknown method with no document and no server prefix goes to a server, which says
    // it does not know it.
    let error = client.request("nobody/knows", json!({})).await.unwrap_err();
    assert_eq!(error.code, error_code::METHOD_NOT_FOUND);
    // And the session still works.
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\n");
    let hover = hover_at_start(&client, &path).await.unwrap();
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("alpha")
    );
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn malformed_child_output_is_skipped_and_answers_still_arrive() {
    let noisy = FakeServer {
        name: "noisy",
        flags: &["--garbage-stdout"],
    };
    let (workspace, client, _) = started(&[noisy]).await;
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\n");
    let doc = json!({ "uri": file_uri(&path) });
    assert_eq!(
        client
            .request("fake/garbage", json!({ "textDocument": doc }))
            .await,
        Ok(json!("ok"))
    );
    assert_eq!(
        client
            .request("fake/invalidJson", json!({ "textDocument": doc }))
            .await,
        Ok(json!("ok"))
    );
    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn pull_only_servers_are_pulled_by_tack_and_pushed_to_the_editor() {
    let puller = FakeServer {
        name: "puller",
        flags: &["--pull-diagnostics"],
    };
    let (workspace, client, init) = started(&[puller]).await;
    // tack pushes merged diagnostics itself, so it does not advertise pull.
    assert!(init["capabilities"].get("diagnosticProvider").is_none());
    let path = workspace.path("main.fk");
    let uri = file_uri(&path);
    client.did_open(&path, "fake", "ERROR: pulled\n");
    let published = client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["uri"] == uri && p["diagnostics"].as_array().is_some_and(|d| d.len() == 1),
            WAIT,
        )
        .await;
    assert_eq!(published["diagnostics"][0]["message"], "pulled");
    client.did_change_full(&path, "fine\n");
    client
        .wait_notification(
            "textDocument/publishDiagnostics",
            |p| p["uri"] == uri && p["diagnostics"].as_array().is_some_and(|d| d.is_empty()),
            WAIT,
        )
        .await;
    client.shutdown_and_exit().await;
}

/// The uri of every `textDocument/diagnostic` request the fake server received, in order.
async fn pulls_received(client: &TestClient, uri: &str) -> Vec<String> {
    let received = client
        .request("fake/received", json!({ "textDocument": { "uri": uri } }))
        .await
        .unwrap();
    received
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["method"] == "textDocument/diagnostic")
        .map(|message| {
            message["params"]["textDocument"]["uri"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_pull_servers_refresh_request_makes_tack_pull_every_open_document_again() {
    // A server whose diagnostics depend on other files (pyright) asks for a refresh when they
    // change. tack is the client that pulls from it, so tack answers and pulls again; the
    // editor, which does not pull from tack, is not asked.
    let puller = FakeServer {
        name: "puller",
        flags: &["--pull-diagnostics"],
    };
    let (workspace, client, _) = started(&[puller]).await;
    let first = workspace.path("main.fk");
    let second = workspace.path("other.fk");
    let (first_uri, second_uri) = (file_uri(&first), file_uri(&second));
    client.did_open(&first, "fake", "ERROR: one\n");
    client.did_open(&second, "fake", "ERROR: two\n");
    for uri in [&first_uri, &second_uri] {
        client
            .wait_notification(
                "textDocument/publishDiagnostics",
                |p| p["uri"] == *uri,
                WAIT,
            )
            .await;
    }
    let before = pulls_received(&client, &first_uri).await;

    let answer = client
        .request(
            "fake/request",
            json!({ "textDocument": { "uri": first_uri }, "method": "workspace/diagnostic/refresh" }),
        )
        .await
        .unwrap();
    assert_eq!(answer["response"], Value::Null);
    assert!(
        client
            .server_requests("workspace/diagnostic/refresh")
            .is_empty()
    );

    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let pulls = pulls_received(&client, &first_uri).await;
        let again = |uri: &String| {
            let count = |list: &[String]| list.iter().filter(|u| *u == uri).count();
            count(&pulls) > count(&before)
        };
        if again(&first_uri) && again(&second_uri) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tack did not pull both documents again after the refresh: {pulls:?} (before: {before:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn exit_without_shutdown_ends_with_status_1_and_children_are_stopped() {
    let (workspace, mut client, _) = started(&[ALPHA]).await;
    let path = workspace.path("main.fk");
    client.did_open(&path, "fake", "x\n");
    let received = client
        .request(
            "fake/received",
            json!({ "textDocument": { "uri": file_uri(&path) } }),
        )
        .await
        .unwrap();
    assert!(!received.as_array().unwrap().is_empty());
    client.notify("exit", Value::Null);
    let status = client.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn requests_before_initialize_are_refused() {
    let workspace = workspace_with(&[ALPHA]);
    let client = spawn_tack(&workspace);
    let error = client
        .request("textDocument/hover", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.code, error_code::SERVER_NOT_INITIALIZED);
    client.initialize(&workspace.root(), None).await;
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn listen_serves_loopback_tcp_sessions_and_refuses_other_addresses() {
    let workspace = workspace_with(&[ALPHA]);
    let refused = std::process::Command::new(tack_path())
        .args(["lsp", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());

    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let xdg = workspace.path(".xdg").display().to_string();
    let mut server = tokio::process::Command::new(tack_path())
        .args(["lsp", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(workspace.root())
        .env("XDG_CONFIG_HOME", &xdg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = format!("127.0.0.1:{port}").parse().unwrap();
    // Two independent sessions on one listener.
    for _ in 0..2 {
        let client = TestClient::connect_tcp(address).await;
        client.initialize(&workspace.root(), None).await;
        let path = workspace.path("main.fk");
        client.did_open(&path, "fake", "x\n");
        let hover = client
            .request(
                "textDocument/hover",
                json!({ "textDocument": { "uri": file_uri(&path) }, "position": position(0, 0) }),
            )
            .await
            .unwrap();
        assert!(
            hover["contents"]["value"]
                .as_str()
                .unwrap()
                .contains("alpha")
        );
        client.shutdown_and_close().await;
    }
    server.kill().await.unwrap();
}

#[tokio::test]
async fn a_server_started_after_initialize_has_its_features_registered_with_the_editor() {
    // No `.fk` file at start: no server runs when the editor is answered, so the answer
    // cannot carry hover or definition.
    let workspace = workspace_with(&[FakeServer {
        name: "alpha",
        flags: &["--commands", "alpha.run"],
    }]);
    std::fs::remove_file(workspace.path("main.fk")).unwrap();
    let client = spawn_tack(&workspace);
    let result = client.initialize(&workspace.root(), None).await;
    assert!(
        result["capabilities"].get("hoverProvider").is_none(),
        "{result}"
    );

    let path = workspace.write("late.fk", "hello\n");
    client.did_open(&path, "fake", "hello\n");
    let request = client
        .wait_server_request("client/registerCapability", WAIT)
        .await;
    let registrations = request["registrations"].as_array().unwrap();
    let methods: Vec<&str> = registrations
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    for method in [
        "textDocument/hover",
        "textDocument/definition",
        "textDocument/completion",
        "workspace/executeCommand",
    ] {
        assert!(methods.contains(&method), "{method} not in {methods:?}");
    }
    let hover = registrations
        .iter()
        .find(|r| r["method"] == "textDocument/hover")
        .unwrap();
    assert_eq!(
        hover["registerOptions"]["documentSelector"],
        json!([{ "language": "fake" }])
    );
    let command = registrations
        .iter()
        .find(|r| r["method"] == "workspace/executeCommand")
        .unwrap();
    assert_eq!(command["registerOptions"]["commands"], json!(["alpha.run"]));
    // And the late server answers what was registered.
    let answer = hover_at_start(&client, &path).await.unwrap();
    assert!(answer.to_string().contains("alpha"), "{answer}");
    assert_clean_protocol(&client);
}
