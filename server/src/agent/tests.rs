//! The turn loop end to end against the fake model server (OpenAI chat wire format), with a
//! scripted [`LanguageFeedback`] whose diagnostics follow the files' content, and a real
//! snapshot store. Every captured request is checked: each tool result answers a tool call
//! of the assistant message just before it, and every call is answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::providers::fake_model::{
    self, Answer, End, FakeModelServer, FakeToolCall, FakeUsage, Reply,
};
use crate::providers::tests::{resolved as model_for, stream_reply as stream_for};
use crate::providers::{
    ApiKey, Catalog, ClientSettings, ModelClient, ProviderTuning, ResolvedModel, RetryPolicy,
    WireApi,
};
use crate::snapshots::{SnapshotStore, no_overlay};

const BROKEN: &str = "undeclared_thing";
const SERVER: &str = "fakecc";

/// Diagnostics that follow the text: in a `.c` file, every line naming [`BROKEN`] is an
/// error. `answering: false` makes the server never answer (pending).
struct ScriptedFeedback {
    answering: bool,
    changed: Mutex<Vec<(PathBuf, String)>>,
    /// What `known_diagnostics` reports on (the workspace summary).
    watched: Vec<PathBuf>,
}

impl ScriptedFeedback {
    fn new(answering: bool) -> ScriptedFeedback {
        ScriptedFeedback {
            answering,
            changed: Mutex::new(Vec::new()),
            watched: Vec::new(),
        }
    }

    fn report(&self, paths: &[PathBuf]) -> FeedbackReport {
        FeedbackReport {
            files: paths
                .iter()
                .map(|path| {
                    let covered = path.extension().is_some_and(|ext| ext == "c");
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    let diagnostics = if covered && self.answering {
                        text.lines()
                            .enumerate()
                            .filter(|(_, line)| line.contains(BROKEN))
                            .map(|(index, _)| FeedbackDiagnostic {
                                severity: Severity::Error,
                                line: index as u32 + 1,
                                message: format!("use of undeclared identifier '{BROKEN}'"),
                                source: Some(SERVER.into()),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let state = if self.answering {
                        ServerState::Answered
                    } else {
                        ServerState::Pending
                    };
                    FileDiagnostics {
                        path: path.clone(),
                        diagnostics,
                        servers: if covered {
                            vec![(SERVER.into(), state)]
                        } else {
                            Vec::new()
                        },
                    }
                })
                .collect(),
        }
    }
}

impl LanguageFeedback for ScriptedFeedback {
    fn buffer_text(&self, _path: &Path) -> Option<String> {
        None
    }

    fn file_changed<'a>(&'a self, path: &'a Path, text: &'a str) -> BoxFuture<'a, ()> {
        self.changed
            .lock()
            .unwrap()
            .push((path.to_path_buf(), text.to_owned()));
        Box::pin(async {})
    }

    fn fresh_diagnostics<'a>(
        &'a self,
        paths: &'a [PathBuf],
        _deadline: Instant,
    ) -> BoxFuture<'a, FeedbackReport> {
        let report = self.report(paths);
        Box::pin(async move { report })
    }

    fn known_diagnostics(&self) -> FeedbackReport {
        self.report(&self.watched)
    }

    fn request<'a>(
        &'a self,
        method: &'a str,
        _params: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move { Err(format!("{method} is not scripted")) })
    }
}

struct Harness {
    server: FakeModelServer,
    workspace: Arc<tempfile::TempDir>,
    data: Arc<tempfile::TempDir>,
    store: Arc<SnapshotStore>,
    submissions: Option<mpsc::Sender<Submission>>,
    events: mpsc::Receiver<AgentEvent>,
    session: tokio::task::JoinHandle<SessionOutcome>,
}

const SESSION: &str = "s1";

async fn start(
    files: &[(&str, &str)],
    feedback: Arc<dyn LanguageFeedback>,
    tweak: impl FnOnce(&mut SessionConfig, &FakeModelServer),
) -> Harness {
    start_in(tempfile::tempdir().unwrap(), files, feedback, tweak).await
}

async fn start_in(
    workspace: tempfile::TempDir,
    files: &[(&str, &str)],
    feedback: Arc<dyn LanguageFeedback>,
    tweak: impl FnOnce(&mut SessionConfig, &FakeModelServer),
) -> Harness {
    let server = FakeModelServer::start().await.unwrap();
    for (path, text) in files {
        let full = workspace.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(SnapshotStore::open(data.path(), workspace.path()).unwrap());
    let mut provider = Catalog::builtin().get("openai").cloned().unwrap();
    provider.base_url = format!("{}/v1", server.url());
    let model = ResolvedModel {
        info: provider.model(fake_model::openai_chat::MODEL).cloned(),
        provider,
        model: fake_model::openai_chat::MODEL.to_owned(),
        tuning: ProviderTuning::default(),
    };
    let mut config = SessionConfig::new(
        workspace.path().to_path_buf(),
        model,
        Some(ApiKey::new("sk-test-0123456789")),
        store.clone(),
        SESSION.to_owned(),
    );
    config.client = ModelClient::new(ClientSettings {
        retry: RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        },
        ..ClientSettings::default()
    });
    tweak(&mut config, &server);
    let (submit, submissions) = mpsc::channel(16);
    let (events_out, events) = mpsc::channel(1024);
    let session = tokio::spawn(run_session(config, submissions, events_out, feedback));
    Harness {
        server,
        workspace: Arc::new(workspace),
        data: Arc::new(data),
        store,
        submissions: Some(submit),
        events,
        session,
    }
}

fn tool(id: &str, name: &str, args: Value) -> FakeToolCall {
    FakeToolCall::new(id, name, &[&args.to_string()])
}

fn calls(list: Vec<FakeToolCall>) -> Reply {
    let mut answer = Answer::default();
    for call in list {
        answer = answer.with_tool_call(call);
    }
    fake_model::openai_chat::stream(&answer)
}

fn says(text: &str) -> Reply {
    fake_model::openai_chat::stream(&Answer::text(&[text]))
}

impl Harness {
    fn path(&self, relative: &str) -> PathBuf {
        self.workspace.path().join(relative)
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    async fn submit(&self, submission: Submission) {
        self.submissions
            .as_ref()
            .unwrap()
            .send(submission)
            .await
            .unwrap();
    }

    async fn next_event(&mut self) -> AgentEvent {
        tokio::time::timeout(Duration::from_secs(20), self.events.recv())
            .await
            .expect("an event within 20 s")
            .expect("the session is running")
    }

    /// Events until (and with) the next `TurnDone`.
    async fn until_done(&mut self) -> Vec<AgentEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self.next_event().await;
            let done = matches!(event, AgentEvent::TurnDone { .. });
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    async fn turn(&mut self, text: &str) -> Vec<AgentEvent> {
        self.submit(Submission::UserTurn {
            text: text.into(),
            context: Vec::new(),
        })
        .await;
        self.until_done().await
    }

    /// Closes the submissions and returns the outcome; checks every captured request.
    async fn finish(mut self) -> (SessionOutcome, Vec<Value>) {
        self.submissions = None;
        let outcome = tokio::time::timeout(Duration::from_secs(20), self.session)
            .await
            .unwrap()
            .unwrap();
        let requests: Vec<Value> = self.server.requests().iter().map(|r| r.json()).collect();
        for (index, request) in requests.iter().enumerate() {
            check_tool_results_answer_calls(index, request);
        }
        (outcome, requests)
    }
}

/// Every `tool` message answers a call of the assistant message right before it, once, and
/// no call is left unanswered when another message follows or the request ends.
fn check_tool_results_answer_calls(index: usize, request: &Value) {
    let mut open: Vec<String> = Vec::new();
    for message in request["messages"].as_array().unwrap() {
        match message["role"].as_str().unwrap() {
            "tool" => {
                let id = message["tool_call_id"].as_str().unwrap();
                let at = open.iter().position(|open_id| open_id == id);
                assert!(
                    at.is_some(),
                    "request {index}: result {id} answers no open call"
                );
                open.remove(at.unwrap());
            }
            role => {
                assert!(
                    open.is_empty(),
                    "request {index}: calls {open:?} unanswered before a {role} message"
                );
                if role == "assistant"
                    && let Some(calls) = message["tool_calls"].as_array()
                {
                    open = calls
                        .iter()
                        .map(|call| call["id"].as_str().unwrap().to_owned())
                        .collect();
                }
            }
        }
    }
    assert!(
        open.is_empty(),
        "request {index}: calls {open:?} unanswered at the end"
    );
}

/// The `tool` message answering `id` in a request.
fn tool_result(request: &Value, id: &str) -> String {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
        .and_then(|m| m["content"].as_str())
        .unwrap_or_else(|| panic!("no result for {id} in {request}"))
        .to_owned()
}

fn ends(events: &[AgentEvent]) -> TurnEnd {
    match events.last() {
        Some(AgentEvent::TurnDone { end }) => end.clone(),
        other => panic!("no TurnDone: {other:?}"),
    }
}

const MAIN_C: &str =
    "int add(int a, int b) { return a + b; }\n\nint main(void) {\n    return add(1, 2);\n}\n";

#[tokio::test]
async fn read_edit_diagnostics_fix_loop_is_snapshotted_and_undoable() {
    let feedback = Arc::new(ScriptedFeedback::new(true));
    let mut h = start(
        &[
            ("main.c", MAIN_C),
            ("AGENTS.md", "Use tabs, never spaces.\n"),
        ],
        feedback.clone(),
        |c, _| {
            c.permissions = Permissions::default().assume_yes();
        },
    )
    .await;
    h.server
        .push(calls(vec![tool("c1", "read", json!({"path": "main.c"}))]));
    h.server.push(calls(vec![tool(
        "c2",
        "edit",
        json!({"path": "main.c", "old": "add(1, 2)", "new": format!("add(1, {BROKEN})")}),
    )]));
    h.server.push(calls(vec![tool(
        "c3",
        "edit",
        json!({"path": "main.c", "old": BROKEN, "new": "2 + 0"}),
    )]));
    h.server.push(says("Done: main returns add(1, 2 + 0)."));

    let events = h.turn("make main add 2 + 0").await;
    assert_eq!(ends(&events), TurnEnd::Completed);
    assert_eq!(
        h.read("main.c"),
        MAIN_C.replace("add(1, 2)", "add(1, 2 + 0)")
    );

    let applied: Vec<(u32, String)> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::EditApplied {
                change,
                diff,
                paths,
            } => {
                assert_eq!(paths, &vec!["main.c".to_owned()]);
                Some((*change, diff.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(applied.len(), 2);
    assert_eq!(applied[0].0, 1);
    assert!(
        applied[0]
            .1
            .contains(&format!("+    return add(1, {BROKEN});")),
        "{}",
        applied[0].1
    );
    let changes: Vec<(usize, usize)> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::DiagnosticsChanged {
                introduced,
                fixed,
                pending_servers,
                ..
            } => {
                assert!(pending_servers.is_empty());
                Some((introduced.len(), fixed.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![(1, 0), (0, 1)]);
    // Every decision is an event; --yes decisions come from the policy.
    let decisions = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                AgentEvent::Decision {
                    allowed: true,
                    source: DecisionSource::Policy,
                    ..
                }
            )
        })
        .count();
    assert_eq!(decisions, 3);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::TextDelta { text } if text.starts_with("Done")))
    );
    assert_eq!(
        feedback.changed.lock().unwrap().len(),
        2,
        "the servers heard of both edits"
    );

    let store = h.store.clone();
    let _folders = (h.workspace.clone(), h.data.clone());
    let (outcome, requests) = h.finish().await;
    assert_eq!(requests.len(), 4);
    // The system prompt carries the project's instructions; the first request stays small.
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Project instructions (AGENTS.md):\nUse tabs, never spaces."));
    let first_request_bytes = serde_json::to_string(&requests[0]).unwrap().len();
    assert!(
        first_request_bytes < 9000,
        "first request is {first_request_bytes} bytes"
    );
    // The read result, then the error the edit caused, then its fix, each in the next request.
    assert!(tool_result(&requests[1], "c1").contains("    4|     return add(1, 2);"));
    let after_break = tool_result(&requests[2], "c2");
    assert!(
        after_break.starts_with(
            "Edited main.c (1 replacement).\nDiagnostics: 1 error(s) introduced, 0 fixed"
        ),
        "{after_break}"
    );
    assert!(
        after_break.contains(&format!(
            "+ main.c:4: error: use of undeclared identifier '{BROKEN}' [{SERVER}]"
        )),
        "{after_break}"
    );
    let after_fix = tool_result(&requests[3], "c3");
    assert!(
        after_fix.contains("0 error(s) introduced, 1 fixed, 0 error(s) remain"),
        "{after_fix}"
    );

    assert_eq!(outcome.turns, 1);
    assert_eq!(outcome.model_calls, 4);
    assert_eq!(outcome.files_changed, vec!["main.c".to_owned()]);
    assert_eq!(outcome.changes.len(), 2);
    assert_eq!(outcome.last_end, Some(TurnEnd::Completed));
    // Both changes are on the snapshot stack: undoing them restores the original.
    let recorded = store.changes(SESSION).unwrap();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|c| c.committed && c.files.len() == 1));
    for _ in 0..2 {
        let plan = store.undo(SESSION, &no_overlay).unwrap();
        store.apply(&plan).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(store.workspace_root().join("main.c")).unwrap(),
        MAIN_C
    );
}

#[tokio::test]
async fn a_pending_server_is_reported_as_pending_not_clean() {
    let feedback = Arc::new(ScriptedFeedback::new(false));
    let mut h = start(&[("main.c", MAIN_C)], feedback, |c, _| {
        c.permissions = Permissions::default().assume_yes();
    })
    .await;
    h.server.push(calls(vec![tool(
        "c1",
        "write",
        json!({"path": "lib.c", "content": "int x;\n"}),
    )]));
    h.server.push(says("ok"));
    let events = h.turn("add lib.c").await;
    assert!(events.iter().any(|e| matches!(e,
        AgentEvent::DiagnosticsChanged { pending_servers, .. } if pending_servers == &vec![SERVER.to_owned()])));
    let (_, requests) = h.finish().await;
    let result = tool_result(&requests[1], "c1");
    assert!(
        result.contains("Not yet answered (results incomplete, not clean): fakecc"),
        "{result}"
    );
}

#[tokio::test]
async fn the_workspace_diagnostics_summary_goes_with_the_user_turn() {
    let workspace = tempfile::tempdir().unwrap();
    let mut feedback = ScriptedFeedback::new(true);
    feedback.watched = vec![workspace.path().canonicalize().unwrap().join("bad.c")];
    let bad = format!("int y = {BROKEN};\n");
    let mut h = start_in(workspace, &[("bad.c", &bad)], Arc::new(feedback), |_, _| {}).await;
    h.server.push(says("I see the error."));
    let events = h.turn("fix it").await;
    assert_eq!(ends(&events), TurnEnd::Completed);
    let (_, requests) = h.finish().await;
    let user = requests[0]["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.starts_with(
            "fix it\n\n<workspace diagnostics>\nbad.c:1: error: use of undeclared identifier"
        ),
        "{user}"
    );
}

#[tokio::test]
async fn asks_are_answered_through_submissions_and_denials_reach_the_model() {
    let mut h = start(&[("a.txt", "one\n")], Arc::new(NoFeedback), |_, _| {}).await;
    h.server.push(calls(vec![tool(
        "c1",
        "edit",
        json!({"path": "a.txt", "old": "one", "new": "two"}),
    )]));
    h.server.push(calls(vec![tool(
        "c2",
        "edit",
        json!({"path": "a.txt", "old": "two", "new": "three"}),
    )]));
    h.server.push(calls(vec![tool(
        "c3",
        "run_command",
        json!({"command": "echo hi"}),
    )]));
    h.server.push(calls(vec![tool(
        "c4",
        "run_command",
        json!({"command": "echo hi"}),
    )]));
    h.server.push(says("done"));
    h.submit(Submission::UserTurn {
        text: "go".into(),
        context: Vec::new(),
    })
    .await;

    // 1: allowed once; the question carries the diff.
    let asked = loop {
        if let AgentEvent::ApprovalAsked { id, tool, summary } = h.next_event().await {
            break (id, tool, summary);
        }
    };
    assert_eq!((asked.0.as_str(), asked.1.as_str()), ("c1", "edit"));
    assert!(asked.2.contains("-one\n+two"), "{}", asked.2);
    // A stale answer to another id is ignored.
    h.submit(Submission::ApprovalAnswer {
        id: "other".into(),
        allow: false,
        remember: false,
    })
    .await;
    h.submit(Submission::ApprovalAnswer {
        id: "c1".into(),
        allow: true,
        remember: false,
    })
    .await;
    // 2: denied by the user.
    loop {
        match h.next_event().await {
            AgentEvent::Decision {
                id,
                allowed,
                source,
            } if id == "c1" => {
                assert!(allowed);
                assert_eq!(source, DecisionSource::User);
            }
            AgentEvent::ApprovalAsked { id, .. } => {
                assert_eq!(id, "c2");
                break;
            }
            _ => {}
        }
    }
    h.submit(Submission::ApprovalAnswer {
        id: "c2".into(),
        allow: false,
        remember: false,
    })
    .await;
    // 3: allowed and remembered; 4: not asked again.
    loop {
        if let AgentEvent::ApprovalAsked { id, summary, .. } = h.next_event().await {
            assert_eq!(id, "c3");
            assert_eq!(summary, "run_command echo hi");
            break;
        }
    }
    h.submit(Submission::ApprovalAnswer {
        id: "c3".into(),
        allow: true,
        remember: true,
    })
    .await;
    let events = h.until_done().await;
    assert_eq!(ends(&events), TurnEnd::Completed);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AgentEvent::ApprovalAsked { .. }))
    );
    assert!(events.iter().any(|e| matches!(e,
        AgentEvent::Decision { id, allowed: true, source: DecisionSource::Remembered } if id == "c4")));
    assert_eq!(h.read("a.txt"), "two\n");
    let h_store = h.store.clone();
    let _folders = (h.workspace.clone(), h.data.clone());
    let (outcome, requests) = h.finish().await;
    assert_eq!(tool_result(&requests[2], "c2"), "The user denied edit.");
    assert!(tool_result(&requests[4], "c4").starts_with("hi\n[exit 0"));
    assert_eq!(outcome.changes.len(), 1);
    // Each command ran after a whole-worktree checkpoint.
    assert_eq!(h_store.checkpoints(SESSION).unwrap().len(), 2);
}

#[tokio::test]
async fn policy_denials_are_decisions_without_questions() {
    let permissions: toml::Value =
        toml::from_str("edit = \"deny\"\nrun_command = { \"echo *\" = \"allow\" }\n").unwrap();
    let mut h = start(&[("a.txt", "one\n")], Arc::new(NoFeedback), |c, _| {
        c.permissions = Permissions::from_config(Some(&permissions)).unwrap();
    })
    .await;
    h.server.push(calls(vec![
        tool(
            "c1",
            "edit",
            json!({"path": "a.txt", "old": "one", "new": "two"}),
        ),
        tool("c2", "run_command", json!({"command": "echo ok"})),
    ]));
    h.server.push(says("done"));
    let events = h.turn("go").await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AgentEvent::ApprovalAsked { .. }))
    );
    let decisions: Vec<(String, bool, DecisionSource)> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Decision {
                id,
                allowed,
                source,
            } => Some((id.clone(), *allowed, *source)),
            _ => None,
        })
        .collect();
    assert_eq!(
        decisions,
        vec![
            ("c1".into(), false, DecisionSource::Policy),
            ("c2".into(), true, DecisionSource::Policy)
        ]
    );
    assert_eq!(h.read("a.txt"), "one\n");
    let (_, requests) = h.finish().await;
    assert_eq!(
        tool_result(&requests[1], "c1"),
        "edit is denied by the permission policy."
    );
}

#[tokio::test]
async fn paths_leaving_the_workspace_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "key").unwrap();
    let mut h = start(&[("a.txt", "x\n")], Arc::new(NoFeedback), |c, _| {
        c.permissions = Permissions::default().assume_yes();
    })
    .await;
    std::os::unix::fs::symlink(outside.path(), h.path("out")).unwrap();
    let target = outside.path().join("planted");
    h.server.push(calls(vec![
        tool("c1", "read", json!({"path": "../secret"})),
        tool(
            "c2",
            "write",
            json!({"path": target.to_str().unwrap(), "content": "x"}),
        ),
        tool("c3", "read", json!({"path": "out/secret"})),
        tool(
            "c4",
            "edit",
            json!({"path": "out/secret", "old": "key", "new": "stolen"}),
        ),
    ]));
    h.server.push(says("ok"));
    let events = h.turn("look around").await;
    let errors = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolCallEnded { is_error: true, .. }))
        .count();
    assert_eq!(errors, 4);
    assert!(!target.exists());
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret")).unwrap(),
        "key"
    );
    let (_, requests) = h.finish().await;
    assert!(tool_result(&requests[1], "c1").starts_with("../secret: outside the workspace"));
    assert!(tool_result(&requests[1], "c2").contains("outside the workspace"));
    assert!(
        tool_result(&requests[1], "c3").starts_with("out/secret: leads through a symbolic link")
    );
    assert!(
        tool_result(&requests[1], "c4").starts_with("out/secret: leads through a symbolic link")
    );
}

#[tokio::test]
async fn cancelling_mid_stream_drops_the_connection_and_the_session_goes_on() {
    let mut h = start(&[], Arc::new(NoFeedback), |_, _| {}).await;
    h.server.push(
        fake_model::openai_chat::stream(&Answer::text(&["Thinking about it", " and more"]))
            .cut_after(2)
            .ending(End::Hang),
    );
    h.server.push(says("second answer"));
    h.submit(Submission::UserTurn {
        text: "first".into(),
        context: Vec::new(),
    })
    .await;
    loop {
        if let AgentEvent::TextDelta { .. } = h.next_event().await {
            break;
        }
    }
    let cancelled_at = Instant::now();
    h.submit(Submission::Cancel).await;
    let events = h.until_done().await;
    assert_eq!(ends(&events), TurnEnd::Cancelled);
    assert!(cancelled_at.elapsed() < Duration::from_secs(2));
    assert!(
        h.server.wait_for_hangup(Duration::from_secs(5)).await,
        "the stream was dropped"
    );
    let events = h.turn("second").await;
    assert_eq!(ends(&events), TurnEnd::Completed);
    let (outcome, requests) = h.finish().await;
    assert_eq!(outcome.turns, 2);
    // The cancelled answer left nothing behind; both user texts are in one user message.
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["content"], "first\n\nsecond");
}

#[tokio::test]
async fn cancelling_mid_command_kills_it_and_answers_the_call() {
    let mut h = start(&[], Arc::new(NoFeedback), |c, _| {
        c.permissions = Permissions::default().assume_yes();
    })
    .await;
    let marker = h.path("marker");
    h.server.push(calls(vec![tool(
        "c1",
        "run_command",
        json!({"command": format!("sleep 2 && touch {}", marker.display())}),
    )]));
    h.server.push(says("next"));
    h.submit(Submission::UserTurn {
        text: "run it".into(),
        context: Vec::new(),
    })
    .await;
    loop {
        if let AgentEvent::ToolCallBegun { .. } = h.next_event().await {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    h.submit(Submission::Cancel).await;
    let events = h.until_done().await;
    assert_eq!(ends(&events), TurnEnd::Cancelled);
    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!marker.exists(), "the command was killed");
    let events = h.turn("and now?").await;
    assert_eq!(ends(&events), TurnEnd::Completed);
    let (_, requests) = h.finish().await;
    assert_eq!(tool_result(&requests[1], "c1"), "Cancelled by the user.");
}

#[tokio::test]
async fn the_same_failing_call_three_times_stops_the_run() {
    let source = "x = 1\ny = 2\nx = 1\n";
    let mut h = start(&[("a.py", source)], Arc::new(NoFeedback), |c, _| {
        c.permissions = Permissions::default().assume_yes();
    })
    .await;
    let failing = json!({"path": "a.py", "old": "x = 1", "new": "x = 3"});
    for n in 1..=3 {
        h.server
            .push(calls(vec![tool(&format!("c{n}"), "edit", failing.clone())]));
    }
    h.server.push(says("never asked"));
    let events = h.turn("set x to 3").await;
    assert_eq!(ends(&events), TurnEnd::DoomLoop);
    let stopped = events.iter().find_map(|e| match e {
        AgentEvent::Error { message } => Some(message.clone()),
        _ => None,
    });
    assert_eq!(
        stopped.as_deref(),
        Some(
            "Stopped: edit failed 3 times with the same arguments: a.py: old matches 2 times (lines 1, 3); include more surrounding text so it matches once. Nothing was changed."
        )
    );
    assert_eq!(h.read("a.py"), source);
    let (_, requests) = h.finish().await;
    assert_eq!(requests.len(), 3, "the fourth answer was never asked for");
    assert!(tool_result(&requests[1], "c1").contains("old matches 2 times (lines 1, 3)"));
}

#[tokio::test]
async fn a_successful_change_between_failures_resets_the_doom_loop_count() {
    let mut h = start(&[("a.txt", "a\n")], Arc::new(NoFeedback), |c, _| {
        c.permissions = Permissions::default().assume_yes();
        c.max_turns = 6;
    })
    .await;
    let failing = json!({"path": "a.txt", "old": "zzz", "new": "y"});
    h.server
        .push(calls(vec![tool("c1", "edit", failing.clone())]));
    h.server
        .push(calls(vec![tool("c2", "edit", failing.clone())]));
    h.server.push(calls(vec![tool(
        "c3",
        "write",
        json!({"path": "b.txt", "content": "b"}),
    )]));
    h.server
        .push(calls(vec![tool("c4", "edit", failing.clone())]));
    h.server.push(calls(vec![tool("c5", "edit", failing)]));
    h.server
        .push(calls(vec![tool("c6", "unknown_tool", json!({}))]));
    let events = h.turn("go").await;
    assert_eq!(ends(&events), TurnEnd::MaxTurns);
    let (_, requests) = h.finish().await;
    assert_eq!(requests.len(), 6);
    assert!(tool_result(&requests[5], "c5").contains("old was not found"));
}

#[tokio::test]
async fn a_failed_model_call_ends_the_turn_with_an_error() {
    let mut h = start(&[], Arc::new(NoFeedback), |_, _| {}).await;
    h.server.push(fake_model::openai_chat::error(
        400,
        "context too long",
        "invalid_request_error",
        None,
    ));
    let events = h.turn("hi").await;
    assert_eq!(ends(&events), TurnEnd::Failed);
    assert!(events.iter().any(
        |e| matches!(e, AgentEvent::Error { message } if message.contains("context too long"))
    ));
    let (outcome, _) = h.finish().await;
    assert_eq!(outcome.last_end, Some(TurnEnd::Failed));
}

#[tokio::test]
async fn a_tool_round_trip_works_over_every_wire_protocol() {
    for api in WireApi::ALL {
        let mut h = start(
            &[("a.txt", "hello tack\n")],
            Arc::new(NoFeedback),
            |c, server| {
                c.model = model_for(api, server);
            },
        )
        .await;
        let read = Answer::text(&["Reading."]).with_tool_call(tool(
            "c1",
            "read",
            json!({"path": "a.txt"}),
        ));
        h.server.push(stream_for(api, &read));
        h.server
            .push(stream_for(api, &Answer::text(&["It says hello."])));
        let events = h.turn("what does a.txt say?").await;
        assert_eq!(ends(&events), TurnEnd::Completed, "{api:?}: {events:?}");
        let requests = h.server.requests();
        assert_eq!(requests.len(), 2, "{api:?}");
        let second = String::from_utf8_lossy(&requests[1].body).into_owned();
        assert!(
            second.contains("1| hello tack"),
            "{api:?}: the result went back: {second}"
        );
        assert!(
            second.contains("Reading."),
            "{api:?}: the assistant text went back"
        );
        h.submissions = None;
        let outcome = h.session.await.unwrap();
        assert_eq!(outcome.model_calls, 2, "{api:?}");
    }
}

#[tokio::test]
async fn a_filling_context_window_is_compacted_keeping_the_user_requests_verbatim() {
    let mut h = start(
        &[("a.txt", "hello tack\n")],
        Arc::new(NoFeedback),
        |c, _| {
            c.model.info.as_mut().unwrap().context = Some(1000);
        },
    )
    .await;
    let full = FakeUsage {
        input_uncached: 900,
        output: 20,
        ..FakeUsage::default()
    };
    h.server.push(fake_model::openai_chat::stream(
        &Answer::default()
            .with_tool_call(tool("c1", "read", json!({"path": "a.txt"})))
            .with_usage(full),
    ));
    h.server
        .push(says("SUMMARY: a.txt says hello tack; nothing changed."));
    h.server.push(says("It says hello tack."));
    let events = h.turn("what does a.txt say?").await;
    assert_eq!(ends(&events), TurnEnd::Completed);
    let compacted = events.iter().find_map(|e| match e {
        AgentEvent::Compacted {
            tokens_before,
            summary,
        } => Some((*tokens_before, summary.clone())),
        _ => None,
    });
    assert_eq!(
        compacted,
        Some((
            920,
            "SUMMARY: a.txt says hello tack; nothing changed.".to_owned()
        ))
    );
    let shown: String = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        shown, "It says hello tack.",
        "the summary is not part of the transcript"
    );
    let (outcome, requests) = h.finish().await;
    assert_eq!(outcome.model_calls, 3);
    // The summary request carries the whole history and the question.
    let asked = requests[1]["messages"].as_array().unwrap();
    assert_eq!(asked.last().unwrap()["role"], "user");
    assert!(
        asked.last().unwrap()["content"]
            .as_str()
            .unwrap()
            .contains("Write a brief summary")
    );
    assert!(asked.iter().any(|m| m["role"] == "tool"));
    // After it: the system prompt and one user message.
    let after = requests[2]["messages"].as_array().unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    let user = after[1]["content"].as_str().unwrap();
    assert!(
        user.starts_with("<user requests, verbatim>\nwhat does a.txt say?\n</user requests>"),
        "{user}"
    );
    assert!(user.contains("SUMMARY: a.txt says hello tack"), "{user}");
}

/// Answers `textDocument/rename` with the edit a C server gives for renaming `load` (declared
/// in `lib.h`, called in `main.c` and `vendor/use.c`), as `documentChanges`.
struct RenameFeedback {
    root: PathBuf,
}

impl LanguageFeedback for RenameFeedback {
    fn buffer_text(&self, _path: &Path) -> Option<String> {
        None
    }
    fn file_changed<'a>(&'a self, _path: &'a Path, _text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    fn fresh_diagnostics<'a>(
        &'a self,
        paths: &'a [PathBuf],
        _deadline: Instant,
    ) -> BoxFuture<'a, FeedbackReport> {
        let report = ScriptedFeedback::new(true).report(paths);
        Box::pin(async move { report })
    }
    fn known_diagnostics(&self) -> FeedbackReport {
        FeedbackReport::default()
    }
    fn request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        let uri = |path: &str| {
            url::Url::from_file_path(self.root.join(path))
                .unwrap()
                .to_string()
        };
        let at = |line: u32, character: u32, text: &str| {
            json!({"range": {"start": {"line": line, "character": character},
                             "end": {"line": line, "character": character + 4}}, "newText": text})
        };
        let new_name = params["newName"].as_str().unwrap_or_default().to_owned();
        let answer = (method == "textDocument/rename").then(|| {
            json!({"documentChanges": [
                {"textDocument": {"uri": uri("lib.h"), "version": null}, "edits": [at(0, 4, &new_name)]},
                {"textDocument": {"uri": uri("main.c"), "version": null},
                 "edits": [at(1, 24, &new_name), at(1, 33, &new_name)]},
                {"textDocument": {"uri": uri("vendor/use.c"), "version": null}, "edits": [at(0, 24, &new_name)]},
            ]})
        });
        Box::pin(async move { answer.ok_or_else(|| format!("{method} is not scripted")) })
    }
}

#[tokio::test]
async fn rename_edits_every_file_the_server_names_and_the_policy_judges_each_of_them() {
    const LIB_H: &str = "int load(void);\n";
    const MAIN_C: &str = "#include \"lib.h\"\nint main(void) { return load() + load(); }\n";
    const USE_C: &str = "int used(void) { return load(); }\n";
    let files = [
        ("lib.h", LIB_H),
        ("main.c", MAIN_C),
        ("vendor/use.c", USE_C),
    ];
    let rename = json!({"path": "main.c", "line": 2, "symbol": "load", "new_name": "from_path"});

    // A policy that keeps the agent out of vendor/: the rename reaches it, so it is denied.
    let permissions: toml::Value =
        toml::from_str("rename = { \"vendor/**\" = \"deny\", \"*\" = \"allow\" }\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let feedback = Arc::new(RenameFeedback {
        root: dir.path().canonicalize().unwrap(),
    });
    let mut h = start_in(dir, &files, feedback, |c, _| {
        c.permissions = Permissions::from_config(Some(&permissions)).unwrap();
    })
    .await;
    h.server
        .push(calls(vec![tool("c1", "rename", rename.clone())]));
    h.server.push(says("could not"));
    h.turn("rename load").await;
    assert_eq!(h.read("vendor/use.c"), USE_C);
    assert_eq!(h.read("main.c"), MAIN_C);
    let (_, requests) = h.finish().await;
    assert_eq!(
        tool_result(&requests[1], "c1"),
        "rename is denied by the permission policy."
    );

    // Allowed: every file changes in one snapshotted step, which one undo takes back.
    let dir = tempfile::tempdir().unwrap();
    let feedback = Arc::new(RenameFeedback {
        root: dir.path().canonicalize().unwrap(),
    });
    let mut h = start_in(dir, &files, feedback, |c, _| {
        c.permissions = Permissions::default().assume_yes();
    })
    .await;
    h.server.push(calls(vec![tool("c1", "rename", rename)]));
    h.server.push(says("renamed"));
    let events = h.turn("rename load").await;
    assert_eq!(h.read("lib.h"), "int from_path(void);\n");
    assert_eq!(
        h.read("main.c"),
        "#include \"lib.h\"\nint main(void) { return from_path() + from_path(); }\n"
    );
    assert_eq!(
        h.read("vendor/use.c"),
        "int used(void) { return from_path(); }\n"
    );
    let applied: Vec<&Vec<String>> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::EditApplied { paths, .. } => Some(paths),
            _ => None,
        })
        .collect();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].len(), 3, "{applied:?}");
    let store = h.store.clone();
    let _folders = (h.workspace.clone(), h.data.clone());
    let (_, requests) = h.finish().await;
    assert!(
        tool_result(&requests[1], "c1")
            .starts_with("Renamed \"load\" to \"from_path\": 4 occurrence(s) in 3 file(s)."),
        "{}",
        tool_result(&requests[1], "c1")
    );
    let plan = store.undo(SESSION, &no_overlay).unwrap();
    store.apply(&plan).unwrap();
    for (path, text) in files {
        assert_eq!(
            std::fs::read_to_string(store.workspace_root().join(path)).unwrap(),
            text
        );
    }
}

#[tokio::test]
async fn an_edit_after_the_file_changed_behind_the_agent_compares_with_its_text_now() {
    let feedback = Arc::new(ScriptedFeedback::new(true));
    let mut h = start(&[("main.c", MAIN_C)], feedback, |c, _| {
        c.permissions = Permissions::default().assume_yes();
    })
    .await;
    h.server.push(calls(vec![tool(
        "c1",
        "edit",
        json!({"path": "main.c", "old": "add(1, 2)", "new": format!("add(1, {BROKEN})")}),
    )]));
    h.server.push(says("broke it"));
    h.turn("first").await;
    // Undone behind the agent's back (`tack undo`, or the user): the error is gone.
    std::fs::write(h.path("main.c"), MAIN_C).unwrap();
    h.server.push(calls(vec![tool(
        "c2",
        "edit",
        json!({"path": "main.c", "old": "return a + b;", "new": "return b + a;"}),
    )]));
    h.server.push(says("done"));
    h.turn("second").await;
    let _folders = (h.workspace.clone(), h.data.clone());
    let (_, requests) = h.finish().await;
    let second = tool_result(&requests[3], "c2");
    assert!(
        second.contains("0 error(s) introduced, 0 fixed"),
        "the edit was credited with fixing an error it never saw:\n{second}"
    );
}
