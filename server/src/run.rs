//! `tack run "task"`: the agent headless on a folder. Starts the folder's language servers
//! (the same proxy an editor gets), streams the transcript to the terminal (or JSONL events
//! with `--json`), asks approvals on the terminal unless `--yes`, snapshots before every
//! edit, and ends with a summary that names the session for `tack undo`.

use crate::agent::{
    AgentEvent, Permissions, SessionConfig, SessionOutcome, Submission, TurnEnd, run_session,
};
use crate::config::{Config, ConfigSources};
use crate::headless::{HeadlessFeedback, LanguageSession};
use crate::providers::discovery::{discover, probe_targets};
use crate::providers::registry::Registry;
use crate::providers::{ApiKey, ModelClient, ProvidersConfig, ResolvedModel};
use crate::snapshots::SnapshotStore;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// What the command line passes in.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub task: String,
    pub folder: PathBuf,
    pub model: Option<String>,
    pub yes: bool,
    pub json: bool,
    pub max_turns: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot use folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no model to run: none is configured and no local model server answered.\n\
         Do one of these:\n  \
         - pass --model provider/model, or set model = \"provider/model\" in tack.toml \
         (for example anthropic/claude-sonnet-4-5 with ANTHROPIC_API_KEY set, or openai/gpt-5 \
         with OPENAI_API_KEY set);\n  \
         - start a local server: Ollama (127.0.0.1:11434, or OLLAMA_HOST), LM Studio \
         (127.0.0.1:1234) or llama.cpp's server (127.0.0.1:8080); tack finds it by itself.\n\
         `tack models` lists what is configured and reachable."
    )]
    NoModel,
    #[error("{0}")]
    Model(String),
    #[error("invalid [permissions]: {0}")]
    Permissions(String),
    #[error("snapshot store: {0}")]
    Snapshots(String),
    #[error("language servers: {0}")]
    Language(String),
    #[error("session ledger: {0}")]
    Ledger(String),
}

/// Runs the task; returns the process exit code (0 when the turn completed).
pub async fn run(options: RunOptions) -> Result<u8, RunError> {
    let started = Instant::now();
    let root = options
        .folder
        .canonicalize()
        .map_err(|source| RunError::Folder {
            path: options.folder.clone(),
            source,
        })?;
    let loaded = Config::load(&ConfigSources::from_env(Some(root.clone()), None));
    for warning in &loaded.warnings {
        eprintln_line(&format!("tack: {warning}"));
    }
    let config = loaded.config;

    let (model, api_key, client) = resolve_model(&config, options.model.clone(), |warning| {
        eprintln_line(&format!("tack: {warning}"))
    })
    .await?;

    let mut permissions = Permissions::from_config(config.section("permissions"))
        .map_err(|e| RunError::Permissions(e.to_string()))?;
    if options.yes {
        permissions = permissions.assume_yes();
    }
    let data_dir =
        crate::snapshots::default_data_dir().map_err(|e| RunError::Snapshots(e.to_string()))?;
    let store =
        SnapshotStore::open(&data_dir, &root).map_err(|e| RunError::Snapshots(e.to_string()))?;
    let session_id = session_id();
    let store = Arc::new(store);
    let mut ledger = crate::ledger::SessionLedger::new(&config, Some(store.clone()))
        .map_err(|e| RunError::Ledger(e.to_string()))?;
    ledger.begin(&session_id);

    // The MCP servers start beside the language servers: both are needed before the first
    // model request. One that fails is reported and left out; the run goes on.
    let mcp = crate::mcp::McpClients::for_workspace(&config, &root);
    let (language, mcp_start) = tokio::join!(LanguageSession::start(&root), mcp.start());
    let language = language.map_err(|e| RunError::Language(e.to_string()))?;
    for problem in mcp_start.problems() {
        eprintln_line(&format!("tack: {problem}"));
    }
    let feedback = Arc::new(HeadlessFeedback::new(language));

    let mut session = SessionConfig::new(
        root.clone(),
        model.clone(),
        api_key,
        store,
        session_id.clone(),
    );
    session.client = client;
    session.front_end = "tack run".to_owned();
    session.permissions = permissions;
    let (context, context_warnings) =
        crate::context::ContextSettings::from_config(config.section("context"));
    for warning in context_warnings {
        eprintln_line(&format!("tack: {warning}"));
    }
    session.context = context;
    for tool in mcp_start.tools {
        session.tools.register(tool);
    }
    if let Some(max_turns) = options.max_turns {
        session.max_turns = max_turns;
    }

    let (submissions_tx, submissions_rx) = mpsc::channel(16);
    let (events_tx, mut events_rx) = mpsc::channel(256);
    let agent = tokio::spawn(run_session(
        session,
        submissions_rx,
        events_tx,
        feedback.clone(),
    ));
    let _ = submissions_tx
        .send(Submission::UserTurn {
            text: options.task.clone(),
            context: Vec::new(),
        })
        .await;
    if !options.json {
        eprintln_line(&format!(
            "tack: {} on {} (session {session_id})",
            model.label(),
            root.display()
        ));
    }

    let mut submissions = Some(submissions_tx);
    let mut printer = Printer::new(options.json);
    loop {
        tokio::select! {
            event = events_rx.recv() => {
                let Some(event) = event else { break };
                ledger.record(&event);
                printer.print(&event);
                match &event {
                    AgentEvent::ApprovalAsked { id, .. } => {
                        let allow = ask_on_terminal();
                        if let Some(tx) = &submissions {
                            let _ = tx.send(Submission::ApprovalAnswer { id: id.clone(), allow, remember: false }).await;
                        }
                    }
                    // One task, one turn: closing the submissions ends the session.
                    AgentEvent::TurnDone { .. } => submissions = None,
                    _ => {}
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln_line("tack: cancelling");
                if let Some(tx) = &submissions {
                    let _ = tx.send(Submission::Cancel).await;
                }
            }
        }
    }
    let outcome = agent.await.unwrap_or_else(|e| SessionOutcome {
        error: Some(format!("the agent stopped: {e}")),
        ..SessionOutcome::default()
    });
    mcp.shutdown().await;
    match Arc::try_unwrap(feedback) {
        Ok(feedback) => feedback.into_session().shutdown().await,
        Err(_) => tracing::debug!("the language session is still shared; not shut down"),
    }
    printer.summary(&outcome, &session_id, started.elapsed());
    Ok(match (&outcome.error, &outcome.last_end) {
        (None, Some(TurnEnd::Completed)) => 0,
        _ => 1,
    })
}

/// The model a session uses: `requested` (`provider/model`), else the configured default,
/// else a local server found running. Warnings about the provider configuration go to `warn`.
pub async fn resolve_model(
    config: &Config,
    requested: Option<String>,
    mut warn: impl FnMut(String),
) -> Result<(ResolvedModel, Option<ApiKey>, ModelClient), RunError> {
    let (providers_config, warnings) = ProvidersConfig::from_toml(
        config.section("model").and_then(toml::Value::as_str),
        config.section("providers").and_then(toml::Value::as_table),
    );
    for warning in warnings {
        warn(warning.to_string());
    }
    let (registry, warnings) = Registry::for_user(providers_config);
    for warning in warnings {
        warn(warning.to_string());
    }
    let client = ModelClient::default();
    // Local servers are probed only when they can matter: no model named, or `local/…`.
    let named = requested.or_else(|| registry.default_model(&[]));
    let local = match &named {
        Some(name)
            if name.split_once('/').map(|(provider, _)| provider)
                != Some(crate::providers::registry::LOCAL_PREFIX) =>
        {
            Vec::new()
        }
        _ => discover(&client, &probe_targets(registry.catalog())).await,
    };
    let model_name = named
        .or_else(|| registry.default_model(&local))
        .ok_or(RunError::NoModel)?;
    let model = registry
        .resolve(&model_name, &local)
        .map_err(|e| RunError::Model(e.to_string()))?;
    let api_key = registry.key_for(&model.provider).map(|(key, _)| key);
    Ok((model, api_key, client))
}

/// A session id that sorts by time: `YYYYMMDD-HHMMSS-<pid>`.
pub fn session_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, secs) = (now / 86_400, now % 86_400);
    let (year, month, day) = crate::providers::cli::civil_date(days as i64);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}-{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        std::process::id()
    )
}

/// Asks y/N on the terminal; anything but a yes (or no terminal to ask on) denies.
fn ask_on_terminal() -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln_line("tack: no terminal to ask on; denied (use --yes or [permissions] to allow)");
        return false;
    }
    eprint_text("allow? [y/N] ");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

fn eprintln_line(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

fn eprint_text(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{text}");
    let _ = stderr.flush();
}

/// Renders events: readable text (colors only on a terminal), or one JSON object per line.
struct Printer {
    json: bool,
    color: bool,
    in_text: bool,
}

impl Printer {
    fn new(json: bool) -> Self {
        Self {
            json,
            color: !json && std::io::stdout().is_terminal(),
            in_text: false,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn out(&mut self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    fn line(&mut self, text: &str) {
        if self.in_text {
            self.out("\n");
            self.in_text = false;
        }
        self.out(&format!("{text}\n"));
    }

    fn print(&mut self, event: &AgentEvent) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                self.out(&format!("{line}\n"));
            }
            return;
        }
        match event {
            AgentEvent::TextDelta { text } => {
                self.in_text = true;
                self.out(text);
            }
            AgentEvent::ToolCallBegun {
                name, arguments, ..
            } => {
                let shown: String = arguments.chars().take(160).collect();
                let text = self.paint("36", &format!("▸ {name} {shown}"));
                self.line(&text);
            }
            AgentEvent::ToolCallEnded {
                summary, is_error, ..
            } => {
                let first: String = summary.lines().take(6).collect::<Vec<_>>().join("\n  ");
                let text = if *is_error {
                    self.paint("31", &format!("  ✗ {first}"))
                } else {
                    self.paint("2", &format!("  {first}"))
                };
                self.line(&text);
            }
            AgentEvent::ApprovalAsked { tool, summary, .. } => {
                let text = self.paint("33", &format!("? {tool} wants to:\n{summary}"));
                self.line(&text);
            }
            AgentEvent::EditApplied { diff, .. } => self.line(diff),
            AgentEvent::DiagnosticsChanged {
                introduced,
                fixed,
                pending_servers,
                ..
            } => {
                let mut text = format!(
                    "  diagnostics: {} introduced, {} fixed",
                    introduced.len(),
                    fixed.len()
                );
                if !pending_servers.is_empty() {
                    text.push_str(&format!(
                        " (still waiting for {})",
                        pending_servers.join(", ")
                    ));
                }
                let text = self.paint("35", &text);
                self.line(&text);
            }
            AgentEvent::Error { message } => {
                let text = self.paint("31", &format!("error: {message}"));
                self.line(&text);
            }
            AgentEvent::TurnDone { end } if !matches!(end, TurnEnd::Completed) => {
                self.line(&format!("turn ended: {end:?}"));
            }
            _ => {}
        }
    }

    fn summary(&mut self, outcome: &SessionOutcome, session: &str, elapsed: std::time::Duration) {
        if self.json {
            return;
        }
        let usage = &outcome.usage;
        let cost = outcome
            .cost_usd
            .map_or_else(|| "unknown".to_owned(), |c| format!("${c:.4}"));
        let mut text = format!(
            "\n— {} file(s) changed{}; {} model call(s); tokens in {} (cached {}) out {}; cost {cost}; {:.1} s",
            outcome.files_changed.len(),
            if outcome.files_changed.is_empty() {
                String::new()
            } else {
                format!(": {}", outcome.files_changed.join(", "))
            },
            outcome.model_calls,
            usage.total_input(),
            usage.cache_read,
            usage.output,
            elapsed.as_secs_f64()
        );
        if !outcome.changes.is_empty() {
            text.push_str(&format!(
                "\n  session {session}: `tack undo` takes the last change back"
            ));
        }
        if let Some(error) = &outcome.error {
            text.push_str(&format!("\n  error: {error}"));
        }
        self.line(&text);
    }
}
