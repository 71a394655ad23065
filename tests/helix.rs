//! tack in Helix, replayed: the steps of `editors/helix/README.md` through the real binary,
//! real clangd and the fake model, with the messages Helix itself sends (its `initialize`
//! from helix-lsp's `Client::initialize`, documents from version 0, code actions on the
//! cursor's one-character selection with the overlapping diagnostics, `codeAction/resolve`
//! when the server offers it, then `workspace/executeCommand`, and `{applied: true}` for every
//! `workspace/applyEdit`). Helix cannot prompt for text, so the run starts from an instruction
//! comment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_model::{Answer, FakeModelServer, FakeToolCall, openai_chat};
use crate::support::{
    TestClient, Workspace, editor_env, file_uri, tack_path, workspace_with_fake_model,
};
use crate::surfaces::{
    apply_edits, code_actions, nth_apply_edit, published_diagnostic, shown_message, titled,
};

const WAIT: Duration = Duration::from_secs(30);
const PUBLISH: &str = "textDocument/publishDiagnostics";

const SOURCE: &str =
    "int main(void) {\n    // tack: rename x to count\n    int x = 1;\n    return x;\n}\n";
const RENAMED: &str = "int main(void) {\n    int count = 1;\n    return count;\n}\n";

/// `initialize` as Helix sends it (helix-lsp/src/client.rs, `Client::initialize`, snippets on,
/// no `config` for the server so no `initializationOptions`).
fn helix_initialize_params(root: &Path) -> Value {
    let uri = file_uri(root);
    let name = root.file_name().unwrap().to_string_lossy().into_owned();
    json!({
        "processId": std::process::id(),
        "workspaceFolders": [{ "uri": uri, "name": name }],
        "rootPath": root,
        "rootUri": uri,
        "capabilities": {
            "workspace": {
                "configuration": true,
                "didChangeConfiguration": { "dynamicRegistration": false },
                "workspaceFolders": true,
                "applyEdit": true,
                "symbol": { "dynamicRegistration": false },
                "executeCommand": { "dynamicRegistration": false },
                "inlayHint": { "refreshSupport": false },
                "workspaceEdit": {
                    "documentChanges": true,
                    "resourceOperations": ["create", "rename", "delete"],
                    "failureHandling": "abort",
                    "normalizesLineEndings": false
                },
                "didChangeWatchedFiles": { "dynamicRegistration": true, "relativePatternSupport": false },
                "fileOperations": { "willRename": true, "didRename": true }
            },
            "textDocument": {
                "completion": {
                    "completionItem": {
                        "snippetSupport": true,
                        "resolveSupport": { "properties": ["documentation", "detail", "additionalTextEdits"] },
                        "insertReplaceSupport": true,
                        "deprecatedSupport": true,
                        "tagSupport": { "valueSet": [1] }
                    },
                    "completionItemKind": {}
                },
                "hover": { "contentFormat": ["markdown"] },
                "signatureHelp": {
                    "signatureInformation": {
                        "documentationFormat": ["markdown"],
                        "parameterInformation": { "labelOffsetSupport": true },
                        "activeParameterSupport": true
                    }
                },
                "rename": { "dynamicRegistration": false, "prepareSupport": true, "honorsChangeAnnotations": false },
                "formatting": { "dynamicRegistration": false },
                "codeAction": {
                    "codeActionLiteralSupport": {
                        "codeActionKind": {
                            "valueSet": ["", "quickfix", "refactor", "refactor.extract", "refactor.inline",
                                         "refactor.rewrite", "source", "source.organizeImports"]
                        }
                    },
                    "isPreferredSupport": true,
                    "disabledSupport": true,
                    "dataSupport": true,
                    "resolveSupport": { "properties": ["edit", "command"] }
                },
                "publishDiagnostics": { "versionSupport": true, "tagSupport": { "valueSet": [1, 2] } },
                "inlayHint": { "dynamicRegistration": false }
            },
            "window": { "workDoneProgress": true },
            "general": { "positionEncodings": ["utf-8", "utf-32", "utf-16"] }
        },
        "clientInfo": { "name": "helix", "version": "25.07.1" }
    })
}

/// One Helix document: its text and version, kept as Helix keeps them.
struct HelixDocument {
    uri: String,
    text: String,
    version: i32,
}

/// A Helix session with tack started from the `languages.toml` that `tack helix-config` wrote.
struct Helix {
    workspace: Workspace,
    model: FakeModelServer,
    client: TestClient,
    document: HelixDocument,
    /// Whether tack's answer to `initialize` offered `codeAction/resolve`.
    resolves_code_actions: bool,
}

impl Helix {
    /// With `extra` appended to `tack.toml`.
    async fn start(text: &str, extra: &str) -> Helix {
        let (workspace, model) = workspace_with_fake_model(extra).await;
        let path = workspace.write("main.c", text);
        let env = editor_env(&workspace);
        let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

        // Step 1 of the README: `tack helix-config >> languages.toml`.
        let generated = Command::new(tack_path())
            .arg("helix-config")
            .current_dir(workspace.root())
            .envs(env_refs.iter().copied())
            .output()
            .unwrap();
        assert!(generated.status.success(), "{generated:?}");
        let languages: toml::Table =
            toml::from_str(&String::from_utf8(generated.stdout).unwrap()).unwrap();
        let server = languages["language-server"]["tack"].as_table().unwrap();
        let c = languages["language"]
            .as_array()
            .unwrap()
            .iter()
            .find(|language| language["name"].as_str() == Some("c"))
            .expect("a [[language]] entry for c");
        assert_eq!(
            c["language-servers"],
            toml::Value::Array(vec!["tack".into()])
        );
        // Helix starts `command` with `args` in the workspace root.
        let command = PathBuf::from(server["command"].as_str().unwrap());
        assert_eq!(command, tack_path(), "the generated command is this binary");
        let args: Vec<&str> = server["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arg| arg.as_str().unwrap())
            .collect();
        let client = TestClient::spawn(&command, &args, &workspace.root(), &env_refs);
        let result = client
            .request("initialize", helix_initialize_params(&workspace.root()))
            .await
            .unwrap();
        // Helix offered utf-8 first; tack speaks utf-16 (said, or left to the default).
        let encoding = &result["capabilities"]["positionEncoding"];
        assert!(encoding.is_null() || encoding == "utf-16", "{encoding}");
        let resolves_code_actions =
            result["capabilities"]["codeActionProvider"]["resolveProvider"] == true;
        client.notify("initialized", json!({}));
        let uri = file_uri(&path);
        // Documents start at version 0 in Helix; languageId is the language's name.
        client.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "c", "version": 0, "text": text } }),
        );
        Helix {
            workspace,
            model,
            client,
            document: HelixDocument {
                uri,
                text: text.to_owned(),
                version: 0,
            },
            resolves_code_actions,
        }
    }

    /// The diagnostics tack last published for the document.
    fn published(&self) -> Vec<Value> {
        self.client
            .notifications(PUBLISH)
            .iter()
            .rev()
            .find(|p| p["uri"] == self.document.uri)
            .and_then(|p| p["diagnostics"].as_array().cloned())
            .unwrap_or_default()
    }

    /// `space a` with the cursor at (line, character): the one-character selection, and the
    /// published diagnostics it overlaps.
    async fn code_actions(&self, line: u32, character: u32) -> Vec<Value> {
        let (start, end) = ((line, character), (line, character + 1));
        let overlapping: Vec<Value> = self
            .published()
            .into_iter()
            .filter(|d| {
                let from = position(&d["range"]["start"]);
                let to = position(&d["range"]["end"]);
                from <= end && start <= to
            })
            .collect();
        let range = json!({
            "start": { "line": start.0, "character": start.1 },
            "end": { "line": end.0, "character": end.1 }
        });
        code_actions(&self.client, &self.document.uri, range, overlapping).await
    }

    /// Picks the action whose title starts with `title` from the menu and runs it as Helix
    /// does: resolve when the server offers it and the action lacks an edit or a command,
    /// apply the edit, then `workspace/executeCommand` with the action's own command.
    async fn pick(&mut self, line: u32, character: u32, title: &str) {
        let actions = self.code_actions(line, character).await;
        let action = titled(&actions, title);
        let mut edit = action["edit"].clone();
        if self.resolves_code_actions
            && (action["edit"].is_null() || action["command"].is_null())
            && let Ok(resolved) = self
                .client
                .request("codeAction/resolve", action.clone())
                .await
        {
            edit = resolved["edit"].clone();
        }
        if !edit.is_null() {
            self.apply(&edit);
        }
        let command = &action["command"];
        assert!(command.is_object(), "{action}");
        self.client
            .request(
                "workspace/executeCommand",
                json!({ "command": command["command"], "arguments": command["arguments"] }),
            )
            .await
            .unwrap_or_else(|e| panic!("{command} failed: {e:?}"));
    }

    /// Applies a workspace edit to the document and tells tack, as Helix does after its
    /// `{applied: true}`: one incremental change per edit.
    fn apply(&mut self, edit: &Value) {
        let change = &edit["documentChanges"][0];
        assert_eq!(change["textDocument"]["uri"], self.document.uri, "{edit}");
        let version = &change["textDocument"]["version"];
        assert!(
            version.is_null() || *version == self.document.version,
            "the edit is for version {version}, Helix has {}",
            self.document.version
        );
        let edits = change["edits"].as_array().unwrap();
        // The edits are simultaneous, the changes sequential: the last edit goes first.
        let mut content_changes: Vec<Value> = edits
            .iter()
            .map(|e| json!({ "range": e["range"], "text": e["newText"] }))
            .collect();
        content_changes.sort_by_key(|c| std::cmp::Reverse(position(&c["range"]["start"])));
        self.document.text = apply_edits(&self.document.text, edits);
        self.document.version += 1;
        self.client.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": self.document.uri, "version": self.document.version },
                "contentChanges": content_changes,
            }),
        );
    }

    /// Waits for tack's `seen`-th `workspace/applyEdit` (Helix answered it `{applied: true}`)
    /// and applies it to the document.
    async fn apply_next_edit(&mut self, seen: usize) {
        let request = nth_apply_edit(&self.client, seen).await;
        self.apply(&request["edit"]);
    }

    /// Waits until tack publishes, for the document, a diagnostic matching `wanted`.
    async fn wait_diagnostic(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        published_diagnostic(&self.client, &self.document.uri, wanted).await
    }
}

fn position(value: &Value) -> (u32, u32) {
    (
        value["line"].as_u64().unwrap() as u32,
        value["character"].as_u64().unwrap() as u32,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_runs_an_instruction_comment_applies_undoes_and_redoes_it() {
    let mut helix = Helix::start(SOURCE, "").await;
    helix.model.push(openai_chat::stream(
        &Answer::default().with_tool_call(FakeToolCall::new(
            "c1",
            "edit",
            &[&json!({
                "path": "main.c",
                "old": "    int x = 1;\n    return x;\n",
                "new": "    int count = 1;\n    return count;\n"
            })
            .to_string()],
        )),
    ));
    helix
        .model
        .push(openai_chat::stream(&Answer::text(&["Renamed x to count."])));

    // Step 2: the cursor on the comment, `space a`, "Run tack instruction".
    helix
        .pick(1, 8, "Run tack instruction: rename x to count")
        .await;
    // The run reports progress (Helix shows it in the status line) and ends with a proposal,
    // marked by an information diagnostic from tack on its hunk.
    helix
        .client
        .wait_server_request("window/workDoneProgress/create", WAIT)
        .await;
    let marker = helix
        .wait_diagnostic(|d| d["source"] == "tack" && d["severity"] == 3)
        .await;
    let first_request = helix.model.requests()[0].json().to_string();
    assert!(
        first_request.contains("rename x to count"),
        "{first_request}"
    );
    assert_eq!(
        helix.document.text, SOURCE,
        "nothing is applied before the user says so"
    );
    assert_eq!(helix.workspace.read("main.c"), SOURCE);

    // Step 3: on the marked hunk, `space a`, "Apply tack change".
    let (line, character) = position(&marker["range"]["start"]);
    let published_before = helix.client.notifications(PUBLISH).len();
    helix
        .pick(line, character, "Apply tack change: Renamed x to count.")
        .await;
    helix.apply_next_edit(0).await;
    assert_eq!(
        helix.document.text, RENAMED,
        "the instruction line went with the change"
    );
    // clangd agrees with the applied text: the marker is gone and nothing is flagged.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !helix.client.notifications(PUBLISH)[published_before..]
        .iter()
        .any(|p| p["uri"] == helix.document.uri && p["diagnostics"] == json!([]))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no clean diagnostics after applying"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Step 4: "Undo tack change", then "Redo tack change".
    helix.pick(1, 4, "Undo tack change").await;
    helix.apply_next_edit(1).await;
    assert_eq!(helix.document.text, SOURCE);
    helix.pick(1, 4, "Redo tack change").await;
    helix.apply_next_edit(2).await;
    assert_eq!(helix.document.text, RENAMED);

    // Helix never answers `window/showMessageRequest` and declared no `showDocument`: tack
    // sent neither. The disk was not written: the buffer is Helix's until it saves.
    for method in ["window/showMessageRequest", "window/showDocument"] {
        assert!(helix.client.server_requests(method).is_empty(), "{method}");
    }
    assert_eq!(helix.workspace.read("main.c"), SOURCE);
    helix.client.shutdown_and_exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_helix_cannot_ask_for_is_denied_and_the_user_told_how_to_allow_it() {
    let mut helix = Helix::start(SOURCE, "\n[permissions]\nread = \"ask\"\n").await;
    helix
        .model
        .push(openai_chat::stream(&Answer::default().with_tool_call(
            FakeToolCall::new("c1", "read", &[&json!({ "path": "main.c" }).to_string()]),
        )));
    helix
        .model
        .push(openai_chat::stream(&Answer::text(&["Could not read it."])));
    helix
        .pick(1, 8, "Run tack instruction: rename x to count")
        .await;
    let told = shown_message(&helix.client, "cannot ask").await;
    let message = told["message"].as_str().unwrap();
    assert!(message.contains("read = \"allow\""), "{message}");
    // The run went on: the model heard of the denial and answered.
    let deadline = tokio::time::Instant::now() + WAIT;
    while helix.model.requests().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run stopped at the approval"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = helix.model.requests()[1].json().to_string();
    assert!(second.contains("The user denied read."), "{second}");
    assert!(
        helix
            .client
            .server_requests("window/showMessageRequest")
            .is_empty()
    );
    helix.client.shutdown_and_exit().await;
}
