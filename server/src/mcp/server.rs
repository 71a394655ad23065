//! `tack mcp`: tack's language intelligence for a folder, served over MCP on stdio to any
//! agent (Claude Code, Codex, OpenCode …).
//!
//! The language servers of the folder run behind tack's proxy in a headless session
//! ([`LanguageSession`], as for `tack run`), started in the background when the server starts,
//! so `initialize` is answered at once. The tools:
//! - `diagnostics`: merged diagnostics of every server, per file with the document version
//!   and each server's state; a server that has not answered is named as pending and the
//!   result is marked incomplete, never clean.
//! - `definition`, `references`, `hover`, `symbols`: the agent's own navigation tools,
//!   rendered as short `path:line: code` text.
//! - `edit`, `write`: the agent's own edit tools; the change is snapshotted before it is
//!   written (the same `write_with_snapshot` as the agent), and the answer says which errors
//!   it introduced or fixed. `undo`, `redo`: the snapshot store's, on this server's session.
//!
//! Other agents edit files themselves: before every call, the files it names that the servers
//! have open are compared with the disk and re-sent when they differ, so answers are never
//! about stale text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};

use crate::agent::feedback::{
    DiagnosticsDelta, FeedbackDiagnostic, FeedbackReport, LanguageFeedback, ServerState, Severity,
    render_line,
};
use crate::agent::protocol::DiagnosticLine;
use crate::agent::tools::{FileEdit, ToolContext, ToolOutput, ToolRegistry, ToolSettings};
use crate::agent::workspace::Workspace;
use crate::headless::{HeadlessFeedback, LanguageSession};
use crate::snapshots::SnapshotStore;

/// The tools, in the order clients list them. The agent's own tools are reused by name;
/// `context` is tack's context assembly (what tack's own agent would be given).
const TOOLS: [&str; 10] = [
    "context",
    "diagnostics",
    "definition",
    "references",
    "hover",
    "symbols",
    "edit",
    "write",
    "undo",
    "redo",
];
/// Diagnostic lines listed at most.
const MAX_LINES: usize = 100;
/// The longest a `diagnostics` call may be asked to wait.
const MAX_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum McpServeError {
    #[error("cannot use folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot store: {0}")]
    Snapshots(String),
    #[error("MCP: {0}")]
    Protocol(String),
}

/// Serves `folder` on stdin/stdout until the client disconnects, then shuts the language
/// servers down.
pub async fn serve_stdio(folder: &Path) -> Result<(), McpServeError> {
    let server = McpLanguageServer::open(folder)?;
    let language = server.language.clone();
    server.start_language_in_background();
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| McpServeError::Protocol(error.to_string()))?;
    let end = running.waiting().await;
    tracing::info!(?end, "MCP client gone");
    // The server (and its clone of the language) is gone with the service: shut down in order.
    if let Ok(cell) = Arc::try_unwrap(language)
        && let Some(Ok(Language {
            feedback,
            workspace,
        })) = cell.into_inner()
    {
        drop(workspace);
        if let Ok(feedback) = Arc::try_unwrap(feedback) {
            feedback.into_session().shutdown().await;
        }
    }
    Ok(())
}

/// The language side once started.
struct Language {
    feedback: Arc<HeadlessFeedback>,
    workspace: Workspace,
}

/// What the edit tools remember between calls.
#[derive(Default)]
struct EditState {
    /// Mutating steps so far (the snapshot store's step number).
    step: u32,
    /// The diagnostics last seen for edited files (the "before" of the next edit).
    known: BTreeMap<PathBuf, Vec<FeedbackDiagnostic>>,
}

/// The MCP server of one folder.
pub struct McpLanguageServer {
    root: PathBuf,
    language: Arc<OnceCell<Result<Language, String>>>,
    store: Arc<SnapshotStore>,
    session: String,
    registry: ToolRegistry,
    settings: ToolSettings,
    edits: Mutex<EditState>,
    /// The repository's tags index for `context`, built at its first call and kept.
    index: Arc<std::sync::Mutex<Option<crate::syntax::RepoIndex>>>,
}

/// A tool's answer: text for the model, and data for clients that read it.
struct Reply {
    text: String,
    structured: Option<Value>,
}

impl From<String> for Reply {
    fn from(text: String) -> Reply {
        Reply {
            text,
            structured: None,
        }
    }
}

impl McpLanguageServer {
    /// The server of `folder`, with its snapshot store open; the language servers are not
    /// started yet.
    pub fn open(folder: &Path) -> Result<McpLanguageServer, McpServeError> {
        let root = folder
            .canonicalize()
            .map_err(|source| McpServeError::Folder {
                path: folder.to_path_buf(),
                source,
            })?;
        let data_dir = crate::snapshots::default_data_dir()
            .map_err(|error| McpServeError::Snapshots(error.to_string()))?;
        let store = SnapshotStore::open(&data_dir, &root)
            .map_err(|error| McpServeError::Snapshots(error.to_string()))?;
        Ok(McpLanguageServer {
            root,
            language: Arc::new(OnceCell::new()),
            store: Arc::new(store),
            session: crate::run::session_id(),
            registry: ToolRegistry::default(),
            settings: ToolSettings::default(),
            edits: Mutex::new(EditState::default()),
            index: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    fn start_language_in_background(&self) {
        let cell = self.language.clone();
        let root = self.root.clone();
        tokio::spawn(async move {
            cell.get_or_init(|| start_language(root)).await;
        });
    }

    async fn language(&self) -> Result<&Language, String> {
        self.language
            .get_or_init(|| start_language(self.root.clone()))
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn call(&self, name: &str, args: Value) -> Result<Reply, String> {
        let language = self.language().await?;
        let workspace = &language.workspace;
        match name {
            "diagnostics" => self.diagnostics(language, args).await,
            "context" => self.context(language, args).await.map(Reply::from),
            "undo" | "redo" => self.restore(language, name, args).await.map(Reply::from),
            _ => {
                let tool = self
                    .registry
                    .get(name)
                    .filter(|_| TOOLS.contains(&name))
                    .ok_or_else(|| {
                        format!("unknown tool {name:?}; the tools are: {}", TOOLS.join(", "))
                    })?
                    .clone();
                let subjects = tool
                    .subjects(&args, workspace)
                    .map_err(|error| error.to_string())?;
                let paths: Vec<PathBuf> =
                    subjects.iter().map(|s| workspace.root().join(s)).collect();
                sync_from_disk(language, &paths).await;
                let context = ToolContext {
                    workspace: workspace.clone(),
                    settings: self.settings,
                };
                match tool.run(args, context).await.map_err(|e| e.to_string())? {
                    ToolOutput::Text(text) => Ok(text.into()),
                    ToolOutput::Edits { edits, message } => self
                        .apply(language, name, edits, message)
                        .await
                        .map(Reply::from),
                }
            }
        }
    }

    async fn diagnostics(&self, language: &Language, args: Value) -> Result<Reply, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            #[serde(default)]
            paths: Vec<String>,
            #[serde(default)]
            wait_secs: Option<f64>,
        }
        let args = Args::deserialize(&args).map_err(|e| format!("invalid arguments: {e}"))?;
        let workspace = &language.workspace;
        let named = !args.paths.is_empty();
        let paths = if named {
            args.paths
                .iter()
                .map(|path| workspace.resolve(path))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?
        } else {
            language.feedback.session().open_paths()
        };
        sync_from_disk(language, &paths).await;
        let wait = args
            .wait_secs
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(self.settings.diagnostics_deadline)
            .min(MAX_WAIT);
        let mut report = language
            .feedback
            .fresh_diagnostics(&paths, Instant::now() + wait)
            .await;
        if !named {
            // Files the servers published for without being asked (whole-project servers).
            let known = language.feedback.known_diagnostics();
            for file in known.files {
                if !report.files.iter().any(|f| f.path == file.path) {
                    report.files.push(file);
                }
            }
        }
        Ok(render_diagnostics(language, &report, named))
    }

    /// What tack's agent would be given for a task at a place: the enclosing symbol, the
    /// definitions used there (from the language servers, else tree-sitter), diagnostics and
    /// the ranked repository map, within a token budget; each item with its reason.
    async fn context(&self, language: &Language, args: Value) -> Result<String, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            path: String,
            #[serde(default)]
            start_line: Option<u32>,
            #[serde(default)]
            end_line: Option<u32>,
            #[serde(default)]
            task: Option<String>,
            #[serde(default)]
            budget: Option<usize>,
        }
        let args = Args::deserialize(&args).map_err(|e| format!("invalid arguments: {e}"))?;
        let workspace = &language.workspace;
        let path = workspace.resolve(&args.path).map_err(|e| e.to_string())?;
        let text = workspace
            .read_text(&path)
            .map_err(|e| format!("{}: {e}", workspace.relative(&path)))?;
        let uri = crate::headless::file_uri(&path).map_err(|e| e.to_string())?;
        let last_line = u32::try_from(text.lines().count().max(1)).unwrap_or(u32::MAX);
        let start = args.start_line.unwrap_or(1).clamp(1, last_line);
        let end = args.end_line.unwrap_or(start).clamp(start, last_line);
        let range = crate::documents::Range {
            start: crate::documents::Position {
                line: start - 1,
                character: 0,
            },
            end: crate::documents::Position {
                line: end - 1,
                character: u32::MAX,
            },
        };
        let loaded = crate::config::Config::load(&crate::config::ConfigSources::from_env(
            Some(self.root.clone()),
            None,
        ));
        let (mut settings, _) =
            crate::context::ContextSettings::from_config(loaded.config.section("context"));
        if let Some(budget) = args.budget {
            settings.budget = budget;
        }
        let report = language
            .feedback
            .fresh_diagnostics(
                std::slice::from_ref(&path),
                Instant::now() + settings.lsp_timeout,
            )
            .await;
        let diagnostics = report
            .files
            .into_iter()
            .flat_map(|file| file.diagnostics)
            .collect();
        let turn = crate::context::EditorTurn {
            root: self.root.clone(),
            uri,
            range,
            intent: crate::context::Intent::Ask,
            prompt: args.task.unwrap_or_else(|| "Work on this code.".to_owned()),
            text: Some(text),
            tags: None,
            diagnostics,
            settings,
            index: self.index.clone(),
        };
        let (text, items) = crate::context::editor_turn(turn, &*language.feedback).await;
        let listed: Vec<String> = items
            .iter()
            .map(|item| format!("- {} ({} tokens): {}", item.kind, item.tokens, item.reason))
            .collect();
        Ok(format!("{text}\n\nItems:\n{}", listed.join("\n")))
    }

    /// Snapshots, writes and records the edits (all or nothing), tells the servers, and
    /// returns what the change did to their diagnostics.
    async fn apply(
        &self,
        language: &Language,
        tool: &str,
        edits: Vec<FileEdit>,
        message: String,
    ) -> Result<String, String> {
        let workspace = &language.workspace;
        let feedback = language.feedback.clone();
        let mut state = self.edits.lock().await;
        for edit in &edits {
            let now = std::fs::read_to_string(&edit.path).ok();
            if now != edit.before {
                return Err(format!(
                    "{} changed while the edit was computed; nothing was changed",
                    workspace.relative(&edit.path)
                ));
            }
        }
        let paths: Vec<PathBuf> = edits.iter().map(|edit| edit.path.clone()).collect();
        let unseen: Vec<PathBuf> = paths
            .iter()
            .filter(|path| !state.known.contains_key(*path) && path.exists())
            .cloned()
            .collect();
        if !unseen.is_empty() {
            let deadline = Instant::now() + self.settings.diagnostics_deadline;
            for file in feedback.fresh_diagnostics(&unseen, deadline).await.files {
                state.known.insert(file.path, file.diagnostics);
            }
        }
        state.step += 1;
        let shown: Vec<String> = paths.iter().map(|p| workspace.relative(p)).collect();
        let label = format!("{tool} {} (tack mcp)", shown.join(", "));
        let (store, session, step) = (self.store.clone(), self.session.clone(), state.step);
        let writes = edits.clone();
        let overlay = feedback.clone();
        let change = tokio::task::spawn_blocking(move || {
            crate::agent::session::write_with_snapshot(
                &store, &session, step, &label, &writes, &*overlay,
            )
        })
        .await
        .map_err(|error| format!("the edit stopped: {error}"))??;
        for edit in &edits {
            feedback.file_changed(&edit.path, &edit.after).await;
        }
        let deadline = Instant::now() + self.settings.diagnostics_deadline;
        let after = feedback.fresh_diagnostics(&paths, deadline).await;
        let delta = DiagnosticsDelta::between(&state.known, &after, |p| workspace.relative(p));
        for file in after.files {
            state.known.insert(file.path, file.diagnostics);
        }
        Ok(format!(
            "{message}\nChange {change} (`undo` takes it back).\n{}",
            delta.render()
        ))
    }

    /// `undo` (the last change, or change N and every later one) or `redo`, then the
    /// diagnostics of the files it changed.
    async fn restore(
        &self,
        language: &Language,
        verb: &str,
        args: Value,
    ) -> Result<String, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            #[serde(default)]
            change: Option<u32>,
        }
        let args = Args::deserialize(&args).map_err(|e| format!("invalid arguments: {e}"))?;
        if verb == "redo" && args.change.is_some() {
            return Err("redo takes no change number: it redoes the last undone change".into());
        }
        let _state = self.edits.lock().await;
        let (store, session, verb_owned) =
            (self.store.clone(), self.session.clone(), verb.to_owned());
        let text = tokio::task::spawn_blocking(move || match verb_owned.as_str() {
            "undo" => crate::snapshots::cli::undo_in(&store, &session, args.change),
            _ => crate::snapshots::cli::redo_in(&store, &session),
        })
        .await
        .map_err(|error| format!("the {verb} stopped: {error}"))?
        .map_err(|error| error.to_string())?;
        let open = language.feedback.session().open_paths();
        let changed = sync_from_disk(language, &open).await;
        if changed.is_empty() {
            return Ok(text);
        }
        let deadline = Instant::now() + self.settings.diagnostics_deadline;
        let report = language
            .feedback
            .fresh_diagnostics(&changed, deadline)
            .await;
        Ok(format!(
            "{}\n{}",
            text.trim_end(),
            render_diagnostics(language, &report, true).text
        ))
    }
}

async fn start_language(root: PathBuf) -> Result<Language, String> {
    let session = LanguageSession::start(&root)
        .await
        .map_err(|error| format!("the language servers did not start: {error}"))?;
    let feedback = Arc::new(HeadlessFeedback::new(session));
    let workspace = Workspace::new(&root, feedback.clone())
        .map_err(|error| format!("{}: {error}", root.display()))?;
    Ok(Language {
        feedback,
        workspace,
    })
}

/// Re-sends the disk text of every open file among `paths` that differs from what the
/// servers have (another agent edited it); returns those files.
async fn sync_from_disk(language: &Language, paths: &[PathBuf]) -> Vec<PathBuf> {
    let session = language.feedback.session();
    let mut changed = Vec::new();
    for path in paths {
        let Some(open) = session.open_text(path) else {
            continue;
        };
        if let Ok(disk) = std::fs::read_to_string(path)
            && disk != open
        {
            language.feedback.file_changed(path, &disk).await;
            changed.push(path.clone());
        }
    }
    changed
}

/// Per file: its version, each server's state, then its errors and warnings; the last line
/// says whether the result is complete.
fn render_diagnostics(language: &Language, report: &FeedbackReport, named: bool) -> Reply {
    let workspace = &language.workspace;
    let session = language.feedback.session();
    let mut lines = Vec::new();
    let mut files = Vec::new();
    let mut listed = 0;
    let mut total = 0;
    for file in &report.files {
        let path = workspace.relative(&file.path);
        let version = session.version_of(&file.path);
        let states: Vec<String> = file
            .servers
            .iter()
            .map(|(server, state)| match state {
                ServerState::Answered => format!("{server} answered"),
                ServerState::Pending => format!("{server} pending"),
                ServerState::Failed { reason } => format!("{server} failed ({reason})"),
            })
            .collect();
        let count = |severity| {
            file.diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .count()
        };
        let servers = if states.is_empty() {
            "no language server covers it".to_owned()
        } else {
            states.join(", ")
        };
        let version_text = version.map_or_else(String::new, |v| format!("version {v}; "));
        lines.push(format!(
            "{path} ({version_text}{servers}): {} error(s), {} warning(s)",
            count(Severity::Error),
            count(Severity::Warning)
        ));
        let mut diagnostics: Vec<&FeedbackDiagnostic> = file.diagnostics.iter().collect();
        diagnostics.sort_by_key(|d| (d.severity, d.line));
        for d in &diagnostics {
            total += 1;
            if listed < MAX_LINES {
                listed += 1;
                lines.push(format!(
                    "  {}",
                    render_line(&DiagnosticLine {
                        path: path.clone(),
                        line: d.line,
                        severity: d.severity,
                        message: d.message.clone(),
                        source: d.source.clone(),
                    })
                ));
            }
        }
        files.push(json!({
            "path": path,
            "version": version,
            "servers": file.servers.iter().map(|(server, state)| json!({"server": server, "state": state})).collect::<Vec<_>>(),
            "diagnostics": file.diagnostics,
        }));
    }
    if total > listed {
        lines.push(format!("  … {} more", total - listed));
    }
    let pending = report.pending_servers();
    let failed = report.failed_servers();
    let complete = pending.is_empty() && failed.is_empty();
    if report.files.is_empty() {
        lines.push(if named {
            "No diagnostics.".to_owned()
        } else {
            "No file has been checked yet: name paths to check them.".to_owned()
        });
    }
    if !pending.is_empty() {
        lines.push(format!(
            "Incomplete, not clean: not yet answered by {}.",
            pending.join(", ")
        ));
    }
    if !failed.is_empty() {
        lines.push(format!("Incomplete: failed servers {}.", failed.join(", ")));
    }
    Reply {
        text: lines.join("\n"),
        structured: Some(json!({ "complete": complete, "files": files })),
    }
}

/// The MCP descriptions of the tools.
fn tool_list(registry: &ToolRegistry) -> Vec<rmcp::model::Tool> {
    let schema = |value: Value| Arc::new(value.as_object().cloned().unwrap_or_default());
    TOOLS
        .iter()
        .filter_map(|name| {
            let read_only = matches!(
                *name,
                "context" | "diagnostics" | "definition" | "references" | "hover" | "symbols"
            );
            let (description, parameters) = match *name {
                "diagnostics" => (
                    "Errors and warnings of every language server for paths (fresh for their \
                     current text; waits up to wait_secs, default 10), or for the files checked \
                     so far. Names servers that have not answered: then the result is incomplete, \
                     not clean."
                        .to_owned(),
                    json!({"type": "object", "properties": {
                        "paths": {"type": "array", "items": {"type": "string"}},
                        "wait_secs": {"type": "number", "minimum": 0, "maximum": 120},
                    }}),
                ),
                "context" => (
                    "The context tack would give a model for a task at path (lines start_line to \
                     end_line, 1-based): the enclosing function, the definitions used there (from \
                     the language servers), diagnostics and a ranked map of the repository's most \
                     referenced definitions, within budget tokens; each item says why it is there."
                        .to_owned(),
                    json!({"type": "object", "properties": {
                        "path": {"type": "string"},
                        "start_line": {"type": "integer", "minimum": 1},
                        "end_line": {"type": "integer", "minimum": 1},
                        "task": {"type": "string"},
                        "budget": {"type": "integer", "minimum": 100},
                    }, "required": ["path"]}),
                ),
                "undo" => (
                    "Undo the last change made through this server (or change N and every later \
                     one). Refuses, naming the lines, when the same lines were edited since."
                        .to_owned(),
                    json!({"type": "object", "properties": {"change": {"type": "integer", "minimum": 1}}}),
                ),
                "redo" => (
                    "Redo the last undone change.".to_owned(),
                    json!({"type": "object", "properties": {}}),
                ),
                _ => {
                    let tool = registry.get(name)?;
                    let mut description = tool.description().to_owned();
                    if matches!(*name, "edit" | "write") {
                        description.push_str(
                            " Snapshotted first (`undo` takes it back); the answer lists the errors it introduced or fixed.",
                        );
                    }
                    (description, tool.parameters())
                }
            };
            Some(
                rmcp::model::Tool::new(*name, description, schema(parameters))
                    .with_annotations(ToolAnnotations::new().read_only(read_only)),
            )
        })
        .collect()
}

impl ServerHandler for McpLanguageServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tack", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "tack's language intelligence for {}: merged, versioned diagnostics of every \
                 language server (pending servers are named, never reported clean), navigation, \
                 and edits that are snapshotted so undo/redo can take them back. Paths are \
                 relative to that folder or absolute inside it.",
                self.root.display()
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tool_list(&self.registry)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.map(Value::Object).unwrap_or(json!({}));
        let result = match self.call(&request.name, args).await {
            Ok(reply) => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(reply.text)]);
                result.structured_content = reply.structured;
                result
            }
            Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        };
        Ok(result.into())
    }
}
