//! `tack run` through the real binary: the scripted model over the OpenAI chat wire, the fake
//! language server behind the proxy, real snapshots, then `tack undo`.

use crate::support::fake_model::{Answer, End, FakeModelServer, FakeToolCall, openai_chat};
use crate::support::{Workspace, fake_lsp_path, tack_path};
use serde_json::{Value, json};
use std::process::Command;

fn tool(id: &str, name: &str, args: Value) -> Answer {
    Answer::default().with_tool_call(FakeToolCall::new(id, name, &[&args.to_string()]))
}

fn tack(workspace: &Workspace, args: &[&str]) -> std::process::Output {
    crate::support::tack_in(workspace, args).output().unwrap()
}

/// A workspace whose `tack.toml` names the scripted model and the installed clangd.
fn clangd_workspace(model: &FakeModelServer) -> Workspace {
    let workspace = Workspace::new();
    workspace.write(
        "tack.toml",
        &format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n\n\
             [servers.clangd]\ncommand = {:?}\n",
            model.url(),
            crate::e2e::tool("clangd").display().to_string()
        ),
    );
    workspace
}

// Multi-threaded: the blocking `tack` runs must not stall the fake model server's task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sees_the_error_its_edit_caused_fixes_it_and_undo_restores_the_file() {
    let model = FakeModelServer::start().await.unwrap();
    let workspace = Workspace::new();
    workspace.write(
        "tack.toml",
        &format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n\n\
             [languages.fake]\nextensions = [\"fk\"]\n\n[servers.alpha]\ncommand = {:?}\nargs = [\"--name\", \"alpha\"]\nlanguages = [\"fake\"]\n",
            model.url(),
            fake_lsp_path().display().to_string()
        ),
    );
    workspace.write("main.fk", "value = 1\n");
    model.push(openai_chat::stream(&tool(
        "c1",
        "edit",
        json!({ "path": "main.fk", "old": "value = 1", "new": "value = ERROR: missing operand" }),
    )));
    model.push(openai_chat::stream(&tool(
        "c2",
        "edit",
        json!({ "path": "main.fk", "old": "ERROR: missing operand", "new": "2" }),
    )));
    model.push(openai_chat::stream(&Answer::text(&["Fixed."])));

    let run = tack(&workspace, &["run", "--yes", "change the value"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(workspace.read("main.fk"), "value = 2\n");
    assert!(stdout.contains("Fixed."), "{stdout}");

    // The request after the breaking edit carried the language server's error text.
    let requests = model.requests();
    assert_eq!(requests.len(), 3, "{stderr}");
    let second = requests[1].json().to_string();
    assert!(second.contains("missing operand"), "{second}");
    assert!(second.contains("introduced"), "{second}");

    // Undo the fix, then the breaking edit: the file is back as it was.
    let undo = tack(&workspace, &["undo"]);
    assert!(
        undo.status.success(),
        "{}",
        String::from_utf8_lossy(&undo.stderr)
    );
    assert_eq!(
        workspace.read("main.fk"),
        "value = ERROR: missing operand\n"
    );
    let undo = tack(&workspace, &["undo"]);
    assert!(
        undo.status.success(),
        "{}",
        String::from_utf8_lossy(&undo.stderr)
    );
    assert_eq!(workspace.read("main.fk"), "value = 1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_stream_keeps_the_finished_edit_and_names_the_session_to_undo() {
    let model = FakeModelServer::start().await.unwrap();
    let workspace = Workspace::new();
    workspace.write(
        "tack.toml",
        &format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n",
            model.url()
        ),
    );
    workspace.write("notes.txt", "one\n");
    model.push(openai_chat::stream(&tool(
        "c1",
        "edit",
        json!({ "path": "notes.txt", "old": "one", "new": "two" }),
    )));
    // The second answer starts, then goes silent: the user presses Ctrl-C.
    model.push(
        openai_chat::stream(&Answer::text(&["Now the", " rest"]))
            .cut_after(2)
            .ending(End::Hang),
    );
    let home = workspace.path(".home").display().to_string();
    let child = std::process::Command::new(tack_path())
        .args(["run", "--yes", "edit the notes"])
        .current_dir(workspace.root())
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_DATA_HOME", &home)
        .env("XDG_STATE_HOME", &home)
        .env("TACK_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while model.requests().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no second request");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let interrupted = std::time::Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let run = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let waited = interrupted.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        waited < std::time::Duration::from_secs(10),
        "took {waited:?} to stop"
    );
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cancelling"), "{stderr}");
    assert!(
        model
            .wait_for_hangup(std::time::Duration::from_secs(5))
            .await,
        "the stream was dropped"
    );
    // The edit before the interrupt is whole and on the undo stack; the summary names it.
    assert_eq!(workspace.read("notes.txt"), "two\n");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("1 file(s) changed: notes.txt"), "{stdout}");
    assert!(stdout.contains("`tack undo`"), "{stdout}");
    let undo = tack(&workspace, &["undo"]);
    assert!(
        undo.status.success(),
        "{}",
        String::from_utf8_lossy(&undo.stderr)
    );
    assert_eq!(workspace.read("notes.txt"), "one\n");
}

#[test]
fn without_a_model_run_says_exactly_what_to_set() {
    let workspace = Workspace::new();
    workspace.write("main.c", "int main(void) { return 0; }\n");
    let run = tack(&workspace, &["run", "say hi"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    for needle in [
        "--model",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "11434",
        "1234",
        "8080",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
    assert!(run.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_real_clangd_feeds_the_compiler_error_back_and_undo_restores() {
    let model = FakeModelServer::start().await.unwrap();
    let workspace = clangd_workspace(&model);
    let original =
        "int add(int a, int b) { return a + b; }\nint main(void) { return add(1, 2); }\n";
    workspace.write("main.c", original);
    model.push(openai_chat::stream(&tool(
        "c1",
        "edit",
        json!({ "path": "main.c", "old": "return a + b;", "new": "return a + c;" }),
    )));
    model.push(openai_chat::stream(&tool(
        "c2",
        "edit",
        json!({ "path": "main.c", "old": "return a + c;", "new": "return a + b + 0;" }),
    )));
    model.push(openai_chat::stream(&Answer::text(&["Done."])));

    let run = tack(&workspace, &["run", "--yes", "touch add"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let requests = model.requests();
    assert_eq!(requests.len(), 3, "{stdout}\n{stderr}");
    // clangd's own words for the error the first edit caused reached the model.
    let second = requests[1].json().to_string();
    assert!(
        second.contains("undeclared identifier"),
        "the request after the breaking edit lacks clangd's error:\n{second}"
    );
    let third = requests[2].json().to_string();
    assert!(third.contains("fixed"), "{third}");
    assert!(workspace.read("main.c").contains("return a + b + 0;"));

    for _ in 0..2 {
        let undo = tack(&workspace, &["undo"]);
        assert!(
            undo.status.success(),
            "{}",
            String::from_utf8_lossy(&undo.stderr)
        );
    }
    assert_eq!(workspace.read("main.c"), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_through_real_clangd_changes_every_use_and_undo_restores() {
    let model = FakeModelServer::start().await.unwrap();
    let workspace = clangd_workspace(&model);
    let original =
        "static int load(int a) { return a; }\nint main(void) { return load(1) + load(2); }\n";
    workspace.write("main.c", original);
    model.push(openai_chat::stream(&tool(
        "c1",
        "rename",
        json!({ "path": "main.c", "line": 2, "symbol": "load", "new_name": "from_path" }),
    )));
    model.push(openai_chat::stream(&Answer::text(&["Renamed."])));

    let run = tack(&workspace, &["run", "--yes", "rename load to from_path"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let requests = model.requests();
    assert_eq!(requests.len(), 2, "{stdout}\n{stderr}");
    let second = requests[1].json().to_string();
    assert!(
        second.contains("3 occurrence(s) in 1 file(s)"),
        "clangd's rename did not reach the model:\n{second}"
    );
    assert_eq!(
        workspace.read("main.c"),
        original.replace("load", "from_path")
    );
    let undo = tack(&workspace, &["undo"]);
    assert!(
        undo.status.success(),
        "{}",
        String::from_utf8_lossy(&undo.stderr)
    );
    assert_eq!(workspace.read("main.c"), original);
}

#[test]
fn doctor_shows_providers_and_whether_a_key_is_set_but_never_the_key() {
    let workspace = Workspace::new();
    workspace.write("main.c", "int main(void) { return 0; }\n");
    let home = workspace.path(".home").display().to_string();
    let out = Command::new(tack_path())
        .arg("doctor")
        .current_dir(workspace.root())
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_DATA_HOME", &home)
        .env("ANTHROPIC_API_KEY", "sk-ant-do-not-print-me")
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("providers:"), "{stdout}");
    let anthropic = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("anthropic"))
        .unwrap();
    assert!(anthropic.contains("key set"), "{anthropic}");
    let openai = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("openai "))
        .unwrap();
    assert!(openai.contains("key missing"), "{openai}");
    assert!(!stdout.contains("do-not-print-me") && !stderr.contains("do-not-print-me"));
}

#[test]
fn auth_login_on_a_terminal_does_not_echo_the_key() {
    // `script` gives tack a real terminal; what the terminal shows is script's output.
    let script = crate::e2e::tool("script");
    let workspace = Workspace::new();
    let home = workspace.path(".home").display().to_string();
    let command = format!("{} auth login anthropic", tack_path().display());
    let mut child = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_DATA_HOME", &home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Typed once the prompt is up, as a user would.
    std::thread::sleep(std::time::Duration::from_millis(500));
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"sk-ant-typed-secret-42\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("saved the key for anthropic"), "{screen}");
    assert!(
        !screen.contains("typed-secret"),
        "the key was echoed:\n{screen}"
    );
    let stored = std::fs::read_to_string(workspace.path(".home/tack/credentials.toml")).unwrap();
    assert!(stored.contains("sk-ant-typed-secret-42"));
}
