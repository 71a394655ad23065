//! Syntax and context on the fixture repositories (`tests/fixtures/context/`): outlines,
//! repository maps ranked toward a file, definitions and references by name, assembled
//! context for a request, the index kept current after a change, and `tack context`
//! through the binary.

use std::path::{Path, PathBuf};

use tack::context::{
    ContextKind, ContextRequest, DocumentView, Intent, ResolvedDefinition, Sources, assemble,
    render_for_model, render_for_user,
};
use tack::documents::{Position, Range};
use tack::syntax::repo_map::Focus;
use tack::syntax::{Language, MapOptions, RepoIndex, symbols, tags};

use crate::support::{Workspace, tack_path};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/context")
        .join(name)
        .canonicalize()
        .unwrap()
}

fn index_of(name: &str) -> RepoIndex {
    RepoIndex::build(&fixture(name), MapOptions::in_memory())
}

fn focus(files: &[&str], mentioned: &[&str]) -> Focus {
    Focus {
        files: files.iter().map(|f| f.to_string()).collect(),
        mentioned: mentioned.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn outlines_of_each_fixture_language() {
    let mut out = String::new();
    for (repo, file) in [
        ("rust_app", "src/model.rs"),
        ("python_app", "shop/checkout.py"),
        ("ts_app", "src/tasks.ts"),
        ("mixed", "go/queue.go"),
        ("mixed", "cpp/shape.cpp"),
        ("mixed", "java/Shop.java"),
    ] {
        let index = index_of(repo);
        let indexed = index.file(file).unwrap();
        out.push_str(&format!("{repo}/{file}\n"));
        out.push_str(&symbols::render_outline(&indexed.tags));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn repo_maps_rank_what_the_focus_file_uses() {
    let rust = index_of("rust_app");
    assert_eq!(rust.last_stats().files, 3);
    let toward_main = rust.render(&focus(&["src/main.rs"], &[]), 200);
    assert!(toward_main.tokens <= 200);
    assert!(!toward_main.files.contains(&"src/main.rs".to_owned()));
    insta::assert_snapshot!("rust_map_toward_main", toward_main.text);

    let python = index_of("python_app");
    let map = python.render(&focus(&["shop/checkout.py"], &["total_cents"]), 150);
    insta::assert_snapshot!("python_map_toward_checkout", map.text);

    let ts = index_of("ts_app");
    let map = ts.render(&focus(&["src/view.tsx"], &[]), 150);
    insta::assert_snapshot!("ts_map_toward_view", map.text);

    // Without focus: the whole repository, most used first; a small budget shows less.
    let mixed = index_of("mixed");
    let whole = mixed.render(&Focus::default(), 400);
    insta::assert_snapshot!("mixed_map", whole.text);
    let small = mixed.render(&Focus::default(), 40);
    assert!(small.tokens <= 40 && small.symbols < whole.symbols);
    assert_eq!(mixed.render(&Focus::default(), 0).text, "");
}

#[test]
fn definitions_and_references_by_name_across_the_repo() {
    let index = index_of("rust_app");
    let definitions: Vec<String> = index
        .definitions("Quantity")
        .iter()
        .map(|(file, i)| format!("{}:{}", file.path, file.tags.symbols[*i].start_line + 1))
        .collect();
    assert_eq!(definitions, ["src/model.rs:5"]);
    let references: Vec<String> = index
        .references("Quantity")
        .iter()
        .map(|(file, line)| format!("{}:{}", file.path, line + 1))
        .collect();
    assert_eq!(
        references,
        [
            "src/main.rs:11",
            "src/model.rs:11",
            "src/model.rs:15",
            "src/store.rs:32",
            "src/store.rs:35"
        ]
    );
    assert!(index.definitions("no_such_name").is_empty());
}

#[test]
fn the_index_follows_a_changed_added_and_removed_file() {
    let workspace = Workspace::new();
    workspace.write("a.py", "def alpha():\n    return beta()\n");
    workspace.write("b.py", "def beta():\n    return 1\n");
    workspace.write("ignored/c.py", "def gamma():\n    pass\n");
    workspace.write(".gitignore", "ignored/\n");
    workspace.write("__pycache__/e.py", "def epsilon():\n    pass\n");
    workspace.write("big.py", &"x = 1\n".repeat(10));
    let root = workspace.root().canonicalize().unwrap();
    let mut options = MapOptions::in_memory();
    options.max_file_bytes = 50;
    let mut index = RepoIndex::build(&root, options);
    let stats = index.last_stats();
    assert_eq!(
        (stats.files, stats.parsed, stats.too_large),
        (3, 2, 1),
        "{stats:?}"
    );
    assert!(
        index.file("ignored/c.py").is_none(),
        ".gitignore is honoured"
    );
    assert!(index.file("big.py").unwrap().tags.symbols.is_empty());

    workspace.write("b.py", "def beta_renamed():\n    return 1\n");
    index.update_file("b.py").unwrap();
    assert!(index.definitions("beta").is_empty());
    assert_eq!(index.definitions("beta_renamed").len(), 1);

    workspace.write("d.py", "def delta():\n    alpha()\n");
    index.update_file("d.py").unwrap();
    assert_eq!(index.references("alpha").len(), 1);
    std::fs::remove_file(workspace.path("d.py")).unwrap();
    index.update_file("d.py").unwrap();
    assert!(index.file("d.py").is_none());
    assert!(index.references("alpha").is_empty());

    // A refresh finds what changed without reparsing the rest.
    workspace.write("a.py", "def alpha_two():\n    pass\n");
    let stats = index.refresh();
    assert_eq!((stats.parsed, stats.from_cache), (1, 1), "{stats:?}");
}

#[test]
fn a_warm_build_reads_the_disk_cache_instead_of_parsing() {
    let workspace = Workspace::new();
    workspace.write("m.rs", "pub fn one() {}\npub fn two() { one(); }\n");
    let root = workspace.root().canonicalize().unwrap();
    let mut options = MapOptions::in_memory();
    options.cache_file = Some(workspace.path(".cache/tags.bin"));
    let mut cold = RepoIndex::build(&root, options.clone());
    assert_eq!(cold.last_stats().parsed, 1);
    cold.save_cache().unwrap();
    let warm = RepoIndex::build(&root, options);
    assert_eq!(
        (warm.last_stats().parsed, warm.last_stats().from_cache),
        (0, 1)
    );
    assert_eq!(warm.definitions("two").len(), 1);
}

/// The request "explain" on `Store::insert` in the Rust fixture.
fn rust_request(budget: usize) -> (PathBuf, String, ContextRequest) {
    let root = fixture("rust_app");
    let path = root.join("src/store.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("!item.is_empty()"))
        .unwrap() as u32;
    let request = ContextRequest {
        uri: tack::headless::file_uri(&path).unwrap(),
        range: Range {
            start: Position { line, character: 0 },
            end: Position {
                line: line + 2,
                character: 0,
            },
        },
        intent: Intent::Explain,
        instruction: "Explain what this code does, briefly.".to_owned(),
        budget,
        repo_map_tokens: 300,
        quote_selection: true,
    };
    (root, text, request)
}

fn assembled(budget: usize, resolved: &[ResolvedDefinition]) -> Vec<tack::context::ContextItem> {
    let (root, text, request) = rust_request(budget);
    let tags = tags::tag_text(Language::Rust, text.as_bytes()).unwrap();
    let index = RepoIndex::build(&root, MapOptions::in_memory());
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let diagnostics = [tack::agent::FeedbackDiagnostic {
        severity: tack::agent::Severity::Warning,
        line: 3,
        message: "field `path` is never read".to_owned(),
        source: Some("rustc".to_owned()),
    }];
    assemble(
        &request,
        &Sources {
            root: &root,
            document: DocumentView {
                uri: &request.uri,
                relative: "src/store.rs",
                text: &text,
                tags: Some(&tags),
            },
            resolved,
            diagnostics: &diagnostics,
            index: Some(&index),
            read: &read,
        },
    )
}

#[test]
fn assembled_context_for_a_selection_in_rust() {
    let items = assembled(3000, &[]);
    let kinds: Vec<ContextKind> = items.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [
            ContextKind::Instructions,
            ContextKind::Selection,
            ContextKind::EnclosingSymbol,
            ContextKind::Definition,
            ContextKind::Diagnostics,
            ContextKind::RepoMap,
        ]
    );
    for item in &items {
        assert_eq!(
            item.tokens,
            tack::context::tokens::estimate_tokens(&item.text)
        );
        assert_eq!(item.content_hash.len(), 16);
    }
    assert!(items.iter().map(|i| i.tokens).sum::<usize>() <= 3000);
    insta::assert_snapshot!(render_for_user(&items));
    let for_model = render_for_model(&items);
    assert!(for_model.starts_with("Explain what this code does, briefly."));
    assert!(
        for_model.contains(
            "<enclosing_symbol reason=\"the method `insert` that encloses the selection\">"
        )
    );
}

#[test]
fn a_small_budget_keeps_the_instructions_and_selection_and_drops_the_rest_in_order() {
    let items = assembled(60, &[]);
    let kinds: Vec<ContextKind> = items.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds[..2],
        [ContextKind::Instructions, ContextKind::Selection]
    );
    assert!(!kinds.contains(&ContextKind::RepoMap), "{kinds:?}");
    assert!(items.iter().map(|i| i.tokens).sum::<usize>() <= 60 || kinds.len() == 2);
}

#[test]
fn a_definition_from_the_language_server_is_preferred_to_the_tags() {
    let root = fixture("rust_app");
    let model = root.join("src/model.rs");
    let resolved = [ResolvedDefinition {
        name: "is_empty".to_owned(),
        uri: tack::headless::file_uri(&model).unwrap(),
        range: Range {
            start: Position {
                line: 21,
                character: 11,
            },
            end: Position {
                line: 21,
                character: 19,
            },
        },
        source: "rust-analyzer".to_owned(),
    }];
    let items = assembled(3000, &resolved);
    let from_server: Vec<&str> = items
        .iter()
        .filter(|i| i.kind == ContextKind::Definition)
        .map(|i| i.reason.as_str())
        .collect();
    assert!(
        from_server
            .iter()
            .any(|r| r.contains("`is_empty`") && r.ends_with("found by rust-analyzer")),
        "{from_server:?}"
    );
}

#[test]
fn assembled_context_for_python_and_typescript() {
    let mut out = String::new();
    for (repo, file, needle) in [
        (
            "python_app",
            "shop/checkout.py",
            "total = cart.total_cents()",
        ),
        ("ts_app", "src/view.tsx", "list.filter(\"open\")"),
    ] {
        let root = fixture(repo);
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.lines().position(|l| l.contains(needle)).unwrap() as u32;
        let language = Language::from_path(&path).unwrap();
        let tags = tags::tag_text(language, text.as_bytes()).unwrap();
        let index = RepoIndex::build(&root, MapOptions::in_memory());
        let uri = tack::headless::file_uri(&path).unwrap();
        let request = ContextRequest {
            uri: uri.clone(),
            range: Range {
                start: Position { line, character: 0 },
                end: Position { line, character: 0 },
            },
            intent: Intent::Fix,
            instruction: format!("Fix {file}:{}", line + 1),
            budget: 2000,
            repo_map_tokens: 200,
            quote_selection: true,
        };
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let items = assemble(
            &request,
            &Sources {
                root: &root,
                document: DocumentView {
                    uri: &uri,
                    relative: file,
                    text: &text,
                    tags: Some(&tags),
                },
                resolved: &[],
                diagnostics: &[],
                index: Some(&index),
                read: &read,
            },
        );
        out.push_str(&render_for_user(&items));
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

#[test]
fn tack_context_prints_each_item_with_its_reason_and_estimate() {
    let workspace = Workspace::new();
    let home = workspace.path(".home");
    let root = fixture("python_app");
    let run = |args: &[&str]| {
        std::process::Command::new(tack_path())
            .args(args)
            .current_dir(&root)
            .env("XDG_CACHE_HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .output()
            .unwrap()
    };
    let output = run(&[
        "context",
        "shop/checkout.py:11-12",
        "--prompt",
        "Why can this fail?",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("── 1. instructions · ~"), "{text}");
    assert!(text.contains("── 2. selection checkout.py:11-12"), "{text}");
    assert!(text.contains("definition"), "{text}");
    assert!(text.contains("found by tree-sitter tags"), "{text}");
    assert!(text.contains("repo_map"), "{text}");
    assert!(text.contains("── total ~"), "{text}");
    // The tags cache went to tack's cache folder.
    assert!(home.join("tack/tags").is_dir());

    let json = run(&["context", "shop/checkout.py:11", "--json"]);
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&json.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for field in ["kind", "reason", "tokens", "content_hash", "text"] {
        assert!(first.get(field).is_some(), "{first}");
    }

    let raw = run(&[
        "context",
        "shop/checkout.py:11",
        "--raw",
        "--prompt",
        "Why?",
    ]);
    let raw = String::from_utf8(raw.stdout).unwrap();
    assert!(raw.starts_with("Why?\n\n<selection reason="), "{raw}");
    assert!(!raw.contains("── "), "{raw}");

    let bad = run(&["context", "shop/checkout.py:0"]);
    assert!(!bad.status.success());
    let error = String::from_utf8_lossy(&bad.stderr);
    assert!(
        error.contains("is not FILE, FILE:LINE or FILE:FIRST-LAST"),
        "{error}"
    );
    let missing = run(&["context", "shop/nope.py:3"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.py"));
}

fn fake_model_toml(model: &crate::support::fake_model::FakeModelServer, extra: &str) -> String {
    format!(
        "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n{extra}",
        model.url()
    )
}

/// The text of the system message of a recorded chat request.
fn system_text(request: &serde_json::Value) -> String {
    request["messages"][0]["content"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| request["messages"][0]["content"].to_string())
}

// Multi-threaded: the blocking `tack` runs must not stall the fake model server's task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tack_run_puts_the_repo_map_in_the_system_prompt_within_its_budget() {
    use crate::support::fake_model::{Answer, FakeModelServer, openai_chat};
    let model = FakeModelServer::start().await.unwrap();
    let workspace = Workspace::new();
    for (path, text) in [
        (
            "shop/models.py",
            include_str!("fixtures/context/python_app/shop/models.py"),
        ),
        (
            "shop/checkout.py",
            include_str!("fixtures/context/python_app/shop/checkout.py"),
        ),
    ] {
        workspace.write(path, text);
    }
    let home = workspace.path(".home");
    // One `tack run` with these `[context]` lines; the system prompt of its request.
    let runs = std::cell::Cell::new(0);
    let run = |context: &str| -> String {
        workspace.write(
            "tack.toml",
            &fake_model_toml(&model, &format!("\n[context]\n{context}\n")),
        );
        model.push(openai_chat::stream(&Answer::text(&["Nothing to do."])));
        let output = std::process::Command::new(tack_path())
            .args(["run", "--yes", "look around"])
            .current_dir(workspace.root())
            .env("XDG_CONFIG_HOME", &home)
            .env("XDG_DATA_HOME", &home)
            .env("XDG_STATE_HOME", &home)
            .env("XDG_CACHE_HOME", &home)
            .env("TACK_LOG", "warn")
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let request = runs.get();
        runs.set(request + 1);
        system_text(&model.requests()[request].json())
    };
    let system = run("repo_map_tokens = 80");
    let map = system
        .split_once(tack::context::REPO_MAP_HEADING)
        .map(|(_, map)| map)
        .unwrap_or_else(|| panic!("no repository map in the system prompt:\n{system}"));
    assert!(map.contains("shop/models.py:"), "{map}");
    assert!(map.contains("class Cart:"), "{map}");
    assert!(
        tack::context::tokens::estimate_tokens(map.trim()) <= 80,
        "{map}"
    );

    // Turned off: no map.
    let system = run("repo_map_tokens = 0");
    assert!(
        !system.contains(tack::context::REPO_MAP_HEADING),
        "{system}"
    );

    // A map not ready in time is left out of the first request, and the build it waited for
    // goes on to fill the tags cache for the next run.
    let tags = workspace.path(".home/tack/tags");
    let _ = std::fs::remove_dir_all(&tags);
    let system = run("repo_map_wait_ms = 0");
    assert!(
        !system.contains(tack::context::REPO_MAP_HEADING),
        "{system}"
    );
    let saved: Vec<_> = std::fs::read_dir(&tags)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(saved.len(), 1, "the tags cache was not saved: {saved:?}");
}

/// An editor run in real clangd: the first model request carries the context assembled for
/// the selection, with the definition clangd resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_run_sends_the_model_the_assembled_context_with_definitions_from_clangd() {
    use crate::support::fake_model::{Answer, FakeModelServer, openai_chat};
    use crate::support::{TestClient, file_uri};
    use serde_json::json;
    let model = FakeModelServer::start().await.unwrap();
    let workspace = Workspace::new();
    // A loaded machine can make clangd slow to answer its first request.
    workspace.write(
        "tack.toml",
        &fake_model_toml(&model, "\n[context]\nlsp_timeout_ms = 20000\n"),
    );
    workspace.write(
        "util.h",
        "#ifndef UTIL_H\n#define UTIL_H\n/* Doubles a value. */\nint helper(int value);\n#endif\n",
    );
    workspace.write(
        "util.c",
        "#include \"util.h\"\n\nint helper(int value) {\n    return value * 2;\n}\n",
    );
    let main_text = "#include \"util.h\"\n\nint compute(int start) {\n    int doubled = helper(start);\n    return doubled + 1;\n}\n";
    let main = workspace.write("main.c", main_text);
    model.push(openai_chat::stream(&Answer::text(&[
        "It doubles then adds one.",
    ])));

    let env = crate::support::editor_env(&workspace);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let client = TestClient::spawn(&tack_path(), &["lsp"], &workspace.root(), &env);
    let params = TestClient::initialize_params(&workspace.root(), None);
    client.request("initialize", params).await.unwrap();
    client.notify("initialized", json!({}));
    client.did_open(&main, "c", main_text);
    let uri = file_uri(&main);
    client
        .request(
            "workspace/executeCommand",
            json!({ "command": "tack.explain", "arguments": [{
                "uri": uri,
                "range": { "start": { "line": 3, "character": 0 }, "end": { "line": 3, "character": 30 } },
            }] }),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while model.requests().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let request = model.requests()[0].json();
    let user = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "user")
        .unwrap()["content"]
        .to_string();
    assert!(user.contains("Explain what this code does"), "{user}");
    assert!(
        user.contains(
            "<enclosing_symbol reason=\\\"the function `compute` that encloses the selection\\\">"
        ),
        "{user}"
    );
    assert!(
        user.contains("`helper` is used in the selection")
            && user.contains("found by the language server"),
        "{user}"
    );
    assert!(user.contains("int helper(int value)"), "{user}");
    assert!(user.contains("<repo_map reason="), "{user}");
    client.shutdown_and_exit().await;
    // The ledger records what was assembled, item by item, with the first model call.
    let ledger = crate::ledger::ledger_files(&workspace);
    let lines = crate::ledger::lines_of(&ledger[0]);
    let sent = lines.iter().find(|l| l["type"] == "context_sent").unwrap();
    let kinds: Vec<&str> = sent["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["kind"].as_str().unwrap())
        .collect();
    for kind in ["request", "enclosing_symbol", "definition", "repo_map"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let enclosing = sent["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["kind"] == "enclosing_symbol")
        .unwrap();
    assert!(
        enclosing["uri"].as_str().unwrap().ends_with("main.c"),
        "{enclosing}"
    );
    assert!(
        enclosing["range"]["start"].as_u64().unwrap() >= 1,
        "{enclosing}"
    );
    assert!(enclosing["tokens"].as_u64().unwrap() > 0, "{enclosing}");
}

/// A cancel while the context is still being assembled (the language server is slow to
/// give a definition) cancels the run, and the model is never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_the_context_is_assembled_cancels_the_run_before_the_model_is_asked() {
    use crate::support::fake_model::FakeModelServer;
    use crate::support::{TestClient, fake_lsp_path, file_uri};
    use serde_json::json;
    let model = FakeModelServer::start().await.unwrap();
    let workspace = Workspace::new();
    let servers = format!(
        "\n[context]\nlsp_timeout_ms = 60000\n\n[servers.pyright]\nenabled = false\n\n[servers.pylsp]\nenabled = false\n\n\
         [servers.slow]\ncommand = {:?}\nargs = [\"--name\", \"slow\", \"--definition-delay-ms\", \"60000\"]\nlanguages = [\"python\"]\n",
        fake_lsp_path().display().to_string()
    );
    workspace.write("tack.toml", &fake_model_toml(&model, &servers));
    workspace.write("util.py", "def helper(value):\n    return value * 2\n");
    let main_text =
        "from util import helper\n\n\ndef compute(start):\n    return helper(start) + 1\n";
    let main = workspace.write("main.py", main_text);
    let home = workspace.path(".home").display().to_string();
    let env = [
        ("XDG_CONFIG_HOME", home.as_str()),
        ("XDG_DATA_HOME", home.as_str()),
        ("XDG_STATE_HOME", home.as_str()),
        ("XDG_CACHE_HOME", home.as_str()),
    ];
    let client = TestClient::spawn(&tack_path(), &["lsp"], &workspace.root(), &env);
    let mut params = TestClient::initialize_params(&workspace.root(), None);
    params["capabilities"]["experimental"] = json!({ "tack": { "transcript": true } });
    client.request("initialize", params).await.unwrap();
    client.notify("initialized", json!({}));
    client.did_open(&main, "python", main_text);
    let uri = file_uri(&main);
    client
        .request(
            "workspace/executeCommand",
            json!({ "command": "tack.explain", "arguments": [{
                "uri": uri,
                "range": { "start": { "line": 4, "character": 0 }, "end": { "line": 4, "character": 10 } },
            }] }),
        )
        .await
        .unwrap();
    // The definition request is out; the run waits for it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    client
        .request(
            "workspace/executeCommand",
            json!({ "command": "tack.cancel", "arguments": [{}] }),
        )
        .await
        .unwrap();
    let done = client
        .wait_notification(
            "tack/transcript",
            |p| p["event"]["type"] == "turn_done",
            std::time::Duration::from_secs(30),
        )
        .await;
    assert_eq!(done["event"]["end"], "cancelled", "{done}");
    assert!(model.requests().is_empty(), "the model was asked");
    client.shutdown_and_exit().await;
}
