//! Real language servers through the real `tack` binary, driven by the LSP test client the way
//! an editor drives them: clangd (compared answer for answer with clangd driven directly),
//! pyright and its alternative pylsp, the TypeScript 7 native `tsc --lsp` (pull diagnostics
//! only, pushed by tack), a custom clangd method, recovery from a killed clangd, and
//! diagnostics of one file that a change in another file fixes (pyright asks for a refresh,
//! tsc declares `interFileDependencies`; either way tack must pull again).
//!
//! Every test runs in its own temporary workspace with the XDG folders inside it, and finds
//! its servers on a `PATH` that starts with the folders `e2e::tool` found them in, so tack
//! runs exactly the binaries a direct comparison runs.

use super::tool;
use crate::support::{TestClient, Workspace, file_uri, tack_path};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest wait for a real server at each step (they are slow on a loaded machine).
const WAIT: Duration = Duration::from_secs(30);

const PUBLISH: &str = "textDocument/publishDiagnostics";

/// A temporary workspace and the environment the servers run in: `PATH` led by the folders
/// of the tools the test needs, and every XDG folder inside the workspace (in a hidden
/// folder, which language detection and the servers' project scans skip).
struct ServerWorkspace {
    workspace: Workspace,
    env: Vec<(String, String)>,
}

impl ServerWorkspace {
    /// `tools` are looked up with `e2e::tool`, which fails with the setup hint when one is
    /// missing.
    fn new(tools: &[&str]) -> Self {
        let workspace = Workspace::new();
        let tool_dirs: Vec<PathBuf> = tools
            .iter()
            .map(|name| tool(name).parent().unwrap().to_path_buf())
            .collect();
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            tool_dirs
                .into_iter()
                .chain(std::env::split_paths(&inherited)),
        )
        .unwrap();
        let mut env = vec![
            ("PATH".to_owned(), path.into_string().unwrap()),
            ("TACK_LOG".to_owned(), "debug".to_owned()),
        ];
        for (variable, folder) in [
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_STATE_HOME", "state"),
            ("XDG_CACHE_HOME", "cache"),
        ] {
            let dir = workspace.path(".xdg").join(folder);
            std::fs::create_dir_all(&dir).unwrap();
            env.push((variable.to_owned(), dir.display().to_string()));
        }
        Self { workspace, env }
    }

    fn spawn(&self, program: &Path, args: &[&str]) -> TestClient {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        TestClient::spawn(program, args, &self.workspace.root(), &env)
    }

    fn spawn_tack(&self) -> TestClient {
        self.spawn(&tack_path(), &["lsp"])
    }
}

/// Waits for a `publishDiagnostics` for `uri` that `accept` takes.
async fn wait_publish(client: &TestClient, uri: &str, accept: impl Fn(&Value) -> bool) -> Value {
    client
        .wait_notification(PUBLISH, |p| p["uri"] == uri && accept(p), WAIT)
        .await
}

fn has_diagnostic(params: &Value, needle: &str) -> bool {
    diagnostics(params)
        .iter()
        .any(|d| d["message"].as_str().is_some_and(|m| m.contains(needle)))
}

fn diagnostics(params: &Value) -> Vec<Value> {
    params["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The first diagnostic whose message contains `needle`.
fn find_diagnostic(params: &Value, needle: &str) -> Value {
    diagnostics(params)
        .into_iter()
        .find(|d| d["message"].as_str().is_some_and(|m| m.contains(needle)))
        .unwrap_or_else(|| panic!("no diagnostic saying {needle:?} in {params}"))
}

fn assert_clean_protocol(client: &TestClient) {
    assert!(
        client.protocol_violations().is_empty(),
        "stdout carried something other than protocol: {:?}",
        client.protocol_violations()
    );
}

fn text_document_position(uri: &str, line: u32, character: u32) -> Value {
    json!({
        "textDocument": { "uri": uri },
        "position": { "line": line, "character": character }
    })
}

// ---- clangd ----------------------------------------------------------------------------------

/// Two type errors: a double assigned to a pointer (an error in C), and an int assigned to a
/// pointer (a warning in C, with clangd's "insert '&'" quick fix).
const C_TYPE_ERROR: &str =
    "int main(void) {\n  int x = 1;\n  int *p = x;\n  char *s = 1.5;\n  return *p + *s;\n}\n";
const C_ERROR_MESSAGE: &str = "incompatible type 'double'";
const C_FIXABLE_MESSAGE: &str = "take the address with &";
/// The `x` in `int *p = x;`.
const C_HOVER_AT: (u32, u32) = (2, 11);

/// What clangd answered about the C file with the type error.
#[derive(Debug)]
struct ClangdAnswers {
    /// The first `publishDiagnostics` params that carry both diagnostics.
    published: Value,
    hover: Value,
    code_actions: Value,
    /// The `publishDiagnostics` params for version 2: the quick fix applied as an incremental
    /// change.
    published_after_fix: Value,
}

/// Opens `main.c` and collects clangd's diagnostics, a hover on `x`, the code actions for the
/// fixable warning, and the diagnostics once the quick fix is applied, whoever `client` talks
/// to.
async fn clangd_answers(client: &TestClient, workspace: &ServerWorkspace) -> ClangdAnswers {
    let root = workspace.workspace.root();
    client.initialize(&root, None).await;
    let path = workspace.workspace.path("main.c");
    let uri = file_uri(&path);
    client.did_open(&path, "c", C_TYPE_ERROR);
    let published = wait_publish(client, &uri, |p| {
        has_diagnostic(p, C_ERROR_MESSAGE) && has_diagnostic(p, C_FIXABLE_MESSAGE)
    })
    .await;
    let fixable = find_diagnostic(&published, C_FIXABLE_MESSAGE);
    let hover = client
        .request(
            "textDocument/hover",
            text_document_position(&uri, C_HOVER_AT.0, C_HOVER_AT.1),
        )
        .await
        .unwrap();
    let code_actions = client
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": { "uri": uri },
                "range": fixable["range"],
                "context": { "diagnostics": [fixable], "triggerKind": 1 }
            }),
        )
        .await
        .unwrap();
    // Apply the first action's edit (one insertion) the way an editor does: incrementally.
    let edit = &code_actions[0]["edit"]["changes"][uri.as_str()][0];
    let at = |end: &str| {
        let position = &edit["range"][end];
        (
            u32::try_from(position["line"].as_u64().unwrap()).unwrap(),
            u32::try_from(position["character"].as_u64().unwrap()).unwrap(),
        )
    };
    let version = client.did_change_incremental(
        &path,
        at("start"),
        at("end"),
        edit["newText"].as_str().unwrap(),
    );
    let published_after_fix = wait_publish(client, &uri, |p| p["version"] == version).await;
    ClangdAnswers {
        published,
        hover,
        code_actions,
        published_after_fix,
    }
}

#[tokio::test]
async fn clangd_through_tack_answers_exactly_as_clangd_directly() {
    let clangd = tool("clangd");
    let workspace = ServerWorkspace::new(&["clangd"]);
    workspace.workspace.write("main.c", C_TYPE_ERROR);
    let through_tack = workspace.spawn_tack();
    let direct = workspace.spawn(&clangd, &[]);
    let (proxied, expected) = tokio::join!(
        clangd_answers(&through_tack, &workspace),
        clangd_answers(&direct, &workspace)
    );

    // The answers are real: the error, the warning with its fix, a hover on `int x`, the
    // quick fix with its edit.
    let error = find_diagnostic(&expected.published, C_ERROR_MESSAGE);
    assert_eq!(error["severity"], 1, "{error}");
    assert_eq!(
        error["range"]["start"],
        json!({ "line": 3, "character": 8 })
    );
    let fixable = find_diagnostic(&expected.published, C_FIXABLE_MESSAGE);
    assert_eq!(fixable["severity"], 2, "{fixable}");
    assert_eq!(fixable["code"], "-Wint-conversion", "{fixable}");
    assert_eq!(
        fixable["range"]["start"],
        json!({ "line": 2, "character": 7 })
    );
    assert_eq!(expected.published["version"], 1);
    let hover_text = expected.hover["contents"]["value"].as_str().unwrap();
    assert!(hover_text.contains("int x"), "{hover_text}");
    let quick_fix = expected
        .code_actions
        .as_array()
        .unwrap()
        .iter()
        .find(|action| action["title"] == "insert '&'")
        .unwrap_or_else(|| panic!("no \"insert '&'\" action in {}", expected.code_actions));
    assert_eq!(quick_fix["kind"], "quickfix");
    assert!(quick_fix["edit"].is_object(), "{quick_fix}");
    // The fix removed the warning; the error stays.
    assert!(
        !has_diagnostic(&expected.published_after_fix, C_FIXABLE_MESSAGE)
            && has_diagnostic(&expected.published_after_fix, C_ERROR_MESSAGE),
        "{}",
        expected.published_after_fix
    );

    // Through tack, every answer is clangd's own: equal as JSON, nothing normalized. tack's
    // own code actions ("Fix with tack" …) come after clangd's.
    assert_eq!(
        proxied.published, expected.published,
        "diagnostics through tack differ from clangd's"
    );
    assert_eq!(
        proxied.hover, expected.hover,
        "hover through tack differs from clangd's"
    );
    let clangd_actions = expected.code_actions.as_array().unwrap();
    let (from_clangd, from_tack) = proxied
        .code_actions
        .as_array()
        .unwrap()
        .split_at(clangd_actions.len());
    assert_eq!(
        from_clangd,
        clangd_actions.as_slice(),
        "code actions through tack differ from clangd's"
    );
    assert!(
        from_tack.iter().any(|a| a["title"] == "Fix with tack")
            && from_tack.iter().all(|a| a["command"]["command"]
                .as_str()
                .unwrap()
                .starts_with("tack.")),
        "{from_tack:?}"
    );
    assert_eq!(
        proxied.published_after_fix, expected.published_after_fix,
        "diagnostics after the incremental fix differ through tack"
    );

    assert_clean_protocol(&through_tack);
    assert_clean_protocol(&direct);
    through_tack.shutdown_and_exit().await;
    direct.shutdown_and_exit().await;
}

/// Asks for the header of `main.c` or the source of `main.h` with clangd's extension.
async fn switch_source_header(client: &TestClient, uri: &str) -> Value {
    client
        .request("textDocument/switchSourceHeader", json!({ "uri": uri }))
        .await
        .unwrap_or_else(|error| panic!("switchSourceHeader for {uri} failed: {error:?}"))
}

#[tokio::test]
async fn clangd_custom_switch_source_header_is_forwarded_unchanged() {
    let clangd = tool("clangd");
    let workspace = ServerWorkspace::new(&["clangd"]);
    let header = "int answer(void);\n";
    let source = "#include \"main.h\"\nint answer(void) { return 42; }\n";
    let header_path = workspace.workspace.write("main.h", header);
    let source_path = workspace.workspace.write("main.c", source);
    let (header_uri, source_uri) = (file_uri(&header_path), file_uri(&source_path));

    let mut answers = Vec::new();
    for client in [workspace.spawn_tack(), workspace.spawn(&clangd, &[])] {
        client.initialize(&workspace.workspace.root(), None).await;
        client.did_open(&source_path, "c", source);
        client.did_open(&header_path, "c", header);
        let to_header = switch_source_header(&client, &source_uri).await;
        let to_source = switch_source_header(&client, &header_uri).await;
        assert_clean_protocol(&client);
        client.shutdown_and_exit().await;
        answers.push((to_header, to_source));
    }
    let expected = answers.pop().unwrap();
    let proxied = answers.pop().unwrap();
    assert_eq!(expected, (json!(header_uri), json!(source_uri)));
    assert_eq!(proxied, expected, "switchSourceHeader through tack differs");
}

/// The pids of the children of `pid` that run the program `name` (by the file name of their
/// `argv[0]`: clangd renames its main thread, so `comm` will not do).
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|child| child.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|child| {
            std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|cmdline| {
                let argv0 = cmdline.split(|byte| *byte == 0).next().unwrap_or_default();
                Path::new(std::str::from_utf8(argv0).unwrap_or_default()).file_name()
                    == Some(name.as_ref())
            })
        })
        .collect()
}

/// Waits for tack (`pid`) to run exactly one clangd other than `not`; returns its pid.
async fn wait_clangd_child(pid: u32, not: Option<u32>) -> u32 {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = children_named(pid, "clangd");
        if let [only] = found[..]
            && Some(only) != not
        {
            return only;
        }
        assert!(
            Instant::now() < deadline,
            "tack (pid {pid}) did not run one new clangd within {WAIT:?}; its clangd children: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tack_restarts_a_killed_clangd_and_its_diagnostics_and_hover_come_back() {
    let workspace = ServerWorkspace::new(&["clangd"]);
    let path = workspace.workspace.write("main.c", C_TYPE_ERROR);
    let uri = file_uri(&path);
    let client = workspace.spawn_tack();
    client.initialize(&workspace.workspace.root(), None).await;
    client.did_open(&path, "c", C_TYPE_ERROR);
    let before = wait_publish(&client, &uri, |p| has_diagnostic(p, C_ERROR_MESSAGE)).await;
    let hover_params = text_document_position(&uri, C_HOVER_AT.0, C_HOVER_AT.1);
    let hover_before = client
        .request("textDocument/hover", hover_params.clone())
        .await
        .unwrap();

    let tack_pid = client.pid().unwrap();
    let killed = wait_clangd_child(tack_pid, None).await;
    client.clear_notifications();
    let kill = std::process::Command::new("kill")
        .args(["-KILL", &killed.to_string()])
        .status()
        .unwrap();
    assert!(kill.success(), "kill -KILL {killed} failed");

    // The dead server's diagnostics are withdrawn, then the restarted one publishes anew for
    // the document tack re-opened with its current text and version.
    wait_publish(&client, &uri, |p| diagnostics(p).is_empty()).await;
    let restarted = wait_clangd_child(tack_pid, Some(killed)).await;
    let after = wait_publish(&client, &uri, |p| has_diagnostic(p, C_ERROR_MESSAGE)).await;
    assert_eq!(
        after, before,
        "the restarted clangd published something else"
    );
    let hover_after = client
        .request("textDocument/hover", hover_params)
        .await
        .unwrap();
    assert_eq!(hover_after, hover_before);
    assert_ne!(restarted, killed);

    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
}

// ---- Python ----------------------------------------------------------------------------------

const PY_UNDEFINED: &str = "def greet():\n    return undefined_name\n";
const PY_OTHER_UNDEFINED: &str = "def greet():\n    return another_missing_name\n";

/// What an editor saw of a Python session through tack.
struct PythonSession {
    /// The publish for the file with `undefined_name`, then for the one with
    /// `another_missing_name`.
    first: Value,
    second: Value,
    /// The methods of every `client/registerCapability` that reached the editor.
    registered_methods: Vec<String>,
}

/// Opens a Python file with an undefined name, then changes it to use another undefined name,
/// and waits through tack for each version's diagnostic.
async fn python_undefined_names(workspace: &ServerWorkspace) -> PythonSession {
    let path = workspace.workspace.write("main.py", PY_UNDEFINED);
    let uri = file_uri(&path);
    let client = workspace.spawn_tack();
    client.initialize(&workspace.workspace.root(), None).await;
    client.did_open(&path, "python", PY_UNDEFINED);
    let first = wait_publish(&client, &uri, |p| has_diagnostic(p, "undefined_name")).await;
    client.did_change_full(&path, PY_OTHER_UNDEFINED);
    let second = wait_publish(&client, &uri, |p| has_diagnostic(p, "another_missing_name")).await;
    assert!(
        !has_diagnostic(&second, "undefined_name"),
        "the replaced name is still reported: {second}"
    );
    let registered_methods = client
        .server_requests("client/registerCapability")
        .iter()
        .flat_map(|params| {
            params["registrations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|registration| registration["method"].as_str().unwrap().to_owned())
        .collect();
    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
    PythonSession {
        first,
        second,
        registered_methods,
    }
}

#[tokio::test]
async fn pyright_reports_an_undefined_name_through_tack_with_its_version() {
    let workspace = ServerWorkspace::new(&["pyright-langserver"]);
    let session = python_undefined_names(&workspace).await;
    // The editor advertises pull diagnostics, so pyright registers `textDocument/diagnostic`
    // and stops pushing: tack keeps that registration, pulls, and pushes to the editor.
    assert!(
        !session
            .registered_methods
            .iter()
            .any(|method| method == "textDocument/diagnostic"),
        "a pull registration reached the editor: {:?}",
        session.registered_methods
    );
    for (published, name, version) in [
        (session.first, "undefined_name", 1),
        (session.second, "another_missing_name", 2),
    ] {
        assert_eq!(published["version"], version, "{published}");
        let diagnostic = find_diagnostic(&published, name);
        assert_eq!(
            diagnostic["message"],
            format!("\"{name}\" is not defined"),
            "{diagnostic}"
        );
        assert_eq!(diagnostic["source"], "Pyright", "{diagnostic}");
        assert_eq!(
            diagnostic["code"], "reportUndefinedVariable",
            "{diagnostic}"
        );
        assert_eq!(diagnostic["range"]["start"]["line"], 1, "{diagnostic}");
    }
}

#[tokio::test]
async fn pylsp_stands_in_for_a_disabled_pyright_and_reports_an_undefined_name() {
    // pyright is found (first on PATH) but disabled: pylsp, its alternative, runs instead.
    let workspace = ServerWorkspace::new(&["pyright-langserver", "pylsp"]);
    workspace
        .workspace
        .write("tack.toml", "[servers.pyright]\nenabled = false\n");
    let session = python_undefined_names(&workspace).await;
    for (published, name) in [
        (session.first, "undefined_name"),
        (session.second, "another_missing_name"),
    ] {
        // pylsp publishes without a version, and tack does not make one up.
        assert!(published.get("version").is_none(), "{published}");
        let diagnostic = find_diagnostic(&published, name);
        assert_eq!(
            diagnostic["message"],
            format!("undefined name '{name}'"),
            "{diagnostic}"
        );
        assert_eq!(diagnostic["source"], "pyflakes", "{diagnostic}");
        assert_eq!(diagnostic["range"]["start"]["line"], 1, "{diagnostic}");
    }
}

#[tokio::test]
async fn pyright_diagnostics_of_a_dependent_file_follow_a_change_in_its_import() {
    // `b.py` assigns what `a.helper` returns to a `str`. Changing `a.py` fixes `b.py` without
    // touching it: pyright asks its client for a diagnostics refresh, and tack (its client)
    // must pull `b.py` again for the editor to see the fix.
    let workspace = ServerWorkspace::new(&["pyright-langserver"]);
    let helper_returns_int = "def helper() -> int:\n    return 1\n";
    let helper_returns_str = "def helper() -> str:\n    return \"one\"\n";
    let dependent = "from a import helper\n\nlabel: str = helper()\n";
    let a_path = workspace.workspace.write("a.py", helper_returns_int);
    let b_path = workspace.workspace.write("b.py", dependent);
    let b_uri = file_uri(&b_path);
    let client = workspace.spawn_tack();
    client.initialize(&workspace.workspace.root(), None).await;
    client.did_open(&a_path, "python", helper_returns_int);
    client.did_open(&b_path, "python", dependent);
    let broken = wait_publish(&client, &b_uri, |p| {
        has_diagnostic(p, "\"int\" is not assignable to declared type \"str\"")
    })
    .await;
    assert_eq!(broken["version"], 1, "{broken}");

    client.did_change_full(&a_path, helper_returns_str);
    let fixed = wait_publish(&client, &b_uri, |p| diagnostics(p).is_empty()).await;
    // `b.py` itself is still at version 1.
    assert_eq!(fixed["version"], 1, "{fixed}");
    assert!(
        client
            .server_requests("workspace/diagnostic/refresh")
            .is_empty(),
        "tack passed pyright's refresh on to the editor, which does not pull from tack"
    );

    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
}

// ---- TypeScript 7 ----------------------------------------------------------------------------

#[tokio::test]
async fn tsc_pull_diagnostics_are_pushed_by_tack_and_cleared_after_a_fix() {
    // typescript-language-server is found (first on PATH) but disabled: the native `tsc
    // --lsp`, its alternative, runs instead. It offers pull diagnostics only.
    let workspace = ServerWorkspace::new(&["typescript-language-server", "tsc"]);
    workspace.workspace.write(
        "tack.toml",
        "[servers.typescript-language-server]\nenabled = false\n",
    );
    let broken = "const count: number = \"three\";\nexport { count };\n";
    let fixed = "const count: number = 3;\nexport { count };\n";
    let path = workspace.workspace.write("main.ts", broken);
    let uri = file_uri(&path);
    let client = workspace.spawn_tack();
    let init = client.initialize(&workspace.workspace.root(), None).await;
    // tack pushes; it does not ask the editor to pull.
    assert!(
        init["capabilities"]["diagnosticProvider"].is_null(),
        "{}",
        init["capabilities"]
    );

    client.did_open(&path, "typescript", broken);
    let published = wait_publish(&client, &uri, |p| {
        has_diagnostic(p, "is not assignable to type 'number'")
    })
    .await;
    assert_eq!(published["version"], 1, "{published}");
    let error = &diagnostics(&published)[0];
    assert_eq!(error["code"], 2322, "{error}");
    assert_eq!(error["severity"], 1, "{error}");
    assert_eq!(
        error["range"]["start"],
        json!({ "line": 0, "character": 6 }),
        "{error}"
    );

    let version = client.did_change_full(&path, fixed);
    let cleared = wait_publish(&client, &uri, |p| p["version"] == version).await;
    assert_eq!(diagnostics(&cleared), Vec::<Value>::new(), "{cleared}");

    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
}

#[tokio::test]
async fn tsc_diagnostics_of_a_dependent_file_follow_a_change_in_its_import() {
    // `b.ts` assigns what `a.helper` returns to a `string`. Changing `a.ts` fixes `b.ts`
    // without touching it. `tsc --lsp` says its diagnostics reach across files
    // (`interFileDependencies`) and sends no refresh: its client, tack, must pull the other
    // open documents again after a change.
    let workspace = ServerWorkspace::new(&["typescript-language-server", "tsc"]);
    workspace.workspace.write(
        "tack.toml",
        "[servers.typescript-language-server]\nenabled = false\n",
    );
    let helper_returns_number = "export function helper(): number { return 1; }\n";
    let helper_returns_string = "export function helper(): string { return \"one\"; }\n";
    let dependent = "import { helper } from \"./a\";\nexport const label: string = helper();\n";
    let a_path = workspace.workspace.write("a.ts", helper_returns_number);
    let b_path = workspace.workspace.write("b.ts", dependent);
    let b_uri = file_uri(&b_path);
    let client = workspace.spawn_tack();
    client.initialize(&workspace.workspace.root(), None).await;
    client.did_open(&a_path, "typescript", helper_returns_number);
    client.did_open(&b_path, "typescript", dependent);
    let broken = wait_publish(&client, &b_uri, |p| {
        has_diagnostic(p, "Type 'number' is not assignable to type 'string'")
    })
    .await;
    assert_eq!(broken["version"], 1, "{broken}");

    client.did_change_full(&a_path, helper_returns_string);
    let fixed = wait_publish(&client, &b_uri, |p| diagnostics(p).is_empty()).await;
    assert_eq!(fixed["version"], 1, "{fixed}");

    assert_clean_protocol(&client);
    client.shutdown_and_exit().await;
}
