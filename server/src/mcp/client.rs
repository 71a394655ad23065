//! The agent's side of MCP: the configured servers, started when a front end first asks for
//! their tools ([`McpClients::start`]), in parallel, each within its startup timeout; their
//! tools as agent [`Tool`]s named `<server>__<tool>`, so the registry, the permission policy
//! and the session's events treat them like the built-in ones.
//!
//! A server that cannot start (bad entry, missing program, crash, no answer in time) is
//! reported in [`ServerReport`] with its last stderr lines and left out; the others go on. A
//! call that times out or finds its server gone is an error result for the model, naming the
//! server. A stdio server runs in its own process group, killed when the clients are dropped.
//!
//! The effect of an MCP tool: [`Effect::ReadOnly`] when the server marks it `readOnlyHint`,
//! else [`Effect::Anything`] (it may change files: the session checkpoints the workspace first,
//! and the default policy asks). Its permission subject is its arguments as compact JSON.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::OnceCell;

use super::config::{EntryState, McpConfig, McpServerSpec, McpTransport};
use crate::agent::tools::{Effect, Tool, ToolContext, ToolError, ToolFuture, ToolOutput};
use crate::agent::workspace::Workspace;

/// Stderr lines of a server kept for its failure report.
const STDERR_LINES: usize = 8;
/// A tool description is cut to this many characters.
const MAX_DESCRIPTION: usize = 600;
/// Tool names are cut to this length (the providers' limit).
const MAX_TOOL_NAME: usize = 64;
/// How long a closing server gets to exit on its own before its process group is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Where one configured server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStatus {
    /// Started; the agent gets these tools (their `<server>__<tool>` names).
    Running {
        tools: Vec<String>,
    },
    Failed {
        reason: String,
    },
    Disabled,
    Invalid {
        reason: String,
    },
    /// Not started yet (only before [`McpClients::start`]).
    NotStarted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    pub name: String,
    pub origin: &'static str,
    pub status: ServerStatus,
}

impl ServerReport {
    /// One line for a person: `fs: 14 tools` or `broken: failed: …`.
    pub fn line(&self) -> String {
        match &self.status {
            ServerStatus::Running { tools } => {
                format!("{}: {} tool(s) ({})", self.name, tools.len(), self.origin)
            }
            ServerStatus::Failed { reason } => format!("{}: failed: {reason}", self.name),
            ServerStatus::Invalid { reason } => format!("{}: not usable: {reason}", self.name),
            ServerStatus::Disabled => format!("{}: disabled ({})", self.name, self.origin),
            ServerStatus::NotStarted => format!("{}: not started ({})", self.name, self.origin),
        }
    }

    /// Whether the user should be told (a server that was meant to run does not).
    pub fn is_problem(&self) -> bool {
        matches!(
            self.status,
            ServerStatus::Failed { .. } | ServerStatus::Invalid { .. }
        )
    }
}

/// What [`McpClients::start`] found.
#[derive(Default)]
pub struct McpStart {
    /// Every running server's tools, in configuration order.
    pub tools: Vec<Arc<dyn Tool>>,
    pub reports: Vec<ServerReport>,
    /// Problems with the configuration files themselves.
    pub warnings: Vec<String>,
}

impl McpStart {
    /// The lines worth telling the user: configuration warnings and servers that failed.
    pub fn problems(&self) -> Vec<String> {
        self.warnings
            .iter()
            .cloned()
            .chain(
                self.reports
                    .iter()
                    .filter(|report| report.is_problem())
                    .map(|report| format!("MCP server {}", report.line())),
            )
            .collect()
    }
}

/// `tack doctor`'s section: every configured server started (and closed again), with its
/// tool count or why it failed.
pub async fn doctor_report(config: &crate::config::Config, root: &Path) -> String {
    let clients = McpClients::for_workspace(config, root);
    if clients.is_empty() {
        return format!(
            "mcp servers: none configured ([mcp.<name>] in tack.toml, or {})\n",
            super::config::PROJECT_MCP_JSON
        );
    }
    let start = clients.start().await;
    clients.shutdown().await;
    let mut out = "mcp servers:\n".to_owned();
    for warning in &start.warnings {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    for report in &start.reports {
        out.push_str(&format!("  {}\n", report.line()));
    }
    out
}

/// The configured servers of one session, each started at most once.
pub struct McpClients {
    config: McpConfig,
    slots: Vec<Slot>,
}

struct Slot {
    spec: McpServerSpec,
    started: OnceCell<Result<Arc<Connection>, String>>,
}

impl McpClients {
    pub fn new(config: McpConfig) -> McpClients {
        let slots = config
            .ready()
            .map(|spec| Slot {
                spec: spec.clone(),
                started: OnceCell::new(),
            })
            .collect();
        McpClients { config, slots }
    }

    /// The servers of tack's `mcp` section and `root`'s `.mcp.json`.
    pub fn for_workspace(config: &crate::config::Config, root: &Path) -> McpClients {
        McpClients::new(McpConfig::load(config.section("mcp"), root))
    }

    /// Whether any server is configured at all (usable or not).
    pub fn is_empty(&self) -> bool {
        self.config.entries.is_empty() && self.config.warnings.is_empty()
    }

    /// Starts every server not started yet, in parallel, and returns all their tools with a
    /// report per configured server. Calling it again starts nothing new.
    pub async fn start(&self) -> McpStart {
        let started = futures::future::join_all(self.slots.iter().map(|slot| {
            slot.started
                .get_or_init(|| async { connect(&slot.spec).await.map(Arc::new) })
        }))
        .await;
        let mut start = McpStart {
            warnings: self.config.warnings.clone(),
            ..McpStart::default()
        };
        let mut by_name = std::collections::BTreeMap::new();
        for (slot, result) in self.slots.iter().zip(started) {
            let status = match result {
                Ok(connection) => {
                    let tools = connection.agent_tools();
                    let names = tools.iter().map(|tool| tool.name().to_owned()).collect();
                    start.tools.extend(tools);
                    ServerStatus::Running { tools: names }
                }
                Err(reason) => ServerStatus::Failed {
                    reason: reason.clone(),
                },
            };
            by_name.insert(slot.spec.name.clone(), status);
        }
        for entry in &self.config.entries {
            let status = match &entry.state {
                EntryState::Ready(_) => by_name
                    .remove(&entry.name)
                    .unwrap_or(ServerStatus::NotStarted),
                EntryState::Disabled => ServerStatus::Disabled,
                EntryState::Invalid(reason) => ServerStatus::Invalid {
                    reason: reason.clone(),
                },
            };
            start.reports.push(ServerReport {
                name: entry.name.clone(),
                origin: entry.origin,
                status,
            });
        }
        start
    }

    /// Closes every running server: stdin closed, a short grace to exit, then its process
    /// group is killed (when the last tool holding it is dropped).
    pub async fn shutdown(&self) {
        let closing = self
            .slots
            .iter()
            .filter_map(|slot| match slot.started.get() {
                Some(Ok(connection)) => Some(connection.close()),
                _ => None,
            });
        futures::future::join_all(closing).await;
    }
}

/// The last lines a server wrote to stderr.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == STDERR_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    /// `; stderr: …` with the kept lines, or nothing.
    fn suffix(&self) -> String {
        let lines = self.0.lock().map(|l| l.clone()).unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            let joined: Vec<String> = lines.into_iter().collect();
            format!("; stderr: {}", joined.join(" | "))
        }
    }
}

/// One running server.
struct Connection {
    name: String,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, ClientConfig>>>,
    peer: Peer<RoleClient>,
    tools: Vec<rmcp::model::Tool>,
    tool_timeout: Duration,
    stderr: StderrTail,
    /// The stdio server's process group (its pid), killed on drop.
    process_group: Option<rustix::process::Pid>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(group) = self.process_group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("tack", env!("CARGO_PKG_VERSION")),
    )
}

/// Starts one server and lists its tools, all within its startup timeout.
async fn connect(spec: &McpServerSpec) -> Result<Connection, String> {
    let deadline = Instant::now() + spec.startup_timeout;
    let stderr = StderrTail::default();
    let within = |limit: Duration| format!("did not answer within {}", seconds(limit));
    let (service, process_group) = match &spec.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut process = tokio::process::Command::new(command);
            process
                .args(args)
                .envs(env)
                .current_dir(cwd)
                .process_group(0)
                .kill_on_drop(true);
            let (transport, child_stderr) = TokioChildProcess::builder(process)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|error| format!("cannot start {command}: {error}"))?;
            let group = transport
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
            if let Some(child_stderr) = child_stderr {
                let tail = stderr.clone();
                let name = spec.name.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(child_stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::debug!(server = name, "{line}");
                        tail.push(line);
                    }
                });
            }
            let served =
                tokio::time::timeout_at(deadline.into(), client_config().serve(transport)).await;
            let service = match served {
                Ok(Ok(service)) => service,
                Ok(Err(error)) => {
                    // Let the last stderr lines of a server that died arrive.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Some(group) = group {
                        let _ = rustix::process::kill_process_group(
                            group,
                            rustix::process::Signal::KILL,
                        );
                    }
                    let error = match error {
                        rmcp::service::ClientInitializeError::ConnectionClosed(_)
                        | rmcp::service::ClientInitializeError::TransportError { .. } => {
                            "it exited (or closed its output) before answering initialize"
                                .to_owned()
                        }
                        other => other.to_string(),
                    };
                    return Err(format!("{error}{}", stderr.suffix()));
                }
                Err(_) => {
                    if let Some(group) = group {
                        let _ = rustix::process::kill_process_group(
                            group,
                            rustix::process::Signal::KILL,
                        );
                    }
                    return Err(format!(
                        "{}{}",
                        within(spec.startup_timeout),
                        stderr.suffix()
                    ));
                }
            };
            (service, group)
        }
        McpTransport::Http { url, headers } => {
            crate::providers::install_crypto();
            let mut custom = std::collections::HashMap::new();
            for (name, value) in headers {
                let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?;
                let value = reqwest::header::HeaderValue::from_str(value)
                    .map_err(|_| format!("the value of header {name} is not valid in a header"))?;
                custom.insert(header, value);
            }
            let mut builder = reqwest::Client::builder().connect_timeout(spec.startup_timeout);
            let loopback = url::Url::parse(url).ok().is_some_and(|url| {
                matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                    || url.host_str() == Some("localhost")
            });
            if loopback {
                builder = builder.no_proxy();
            }
            let client = builder
                .build()
                .map_err(|error| format!("cannot make an HTTP client: {error}"))?;
            let transport = StreamableHttpClientTransport::with_client(
                client,
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom),
            );
            match tokio::time::timeout_at(deadline.into(), client_config().serve(transport)).await {
                Ok(Ok(service)) => (service, None),
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err(within(spec.startup_timeout)),
            }
        }
    };
    let listed = tokio::time::timeout_at(deadline.into(), service.list_all_tools()).await;
    let mut tools = match listed {
        Ok(Ok(tools)) => tools,
        Ok(Err(error)) => {
            return Err(format!("cannot list its tools: {error}{}", stderr.suffix()));
        }
        Err(_) => return Err(within(spec.startup_timeout)),
    };
    if let Some(wanted) = &spec.tools {
        tools.retain(|tool| wanted.iter().any(|name| *name == tool.name));
    }
    tracing::info!(
        server = spec.name,
        tools = tools.len(),
        "MCP server started"
    );
    Ok(Connection {
        name: spec.name.clone(),
        peer: service.peer().clone(),
        service: tokio::sync::Mutex::new(Some(service)),
        tools,
        tool_timeout: spec.tool_timeout,
        stderr,
        process_group,
    })
}

impl Connection {
    /// The server's tools as agent tools; names that collide after cleaning are left out.
    fn agent_tools(self: &Arc<Self>) -> Vec<Arc<dyn Tool>> {
        let mut seen = BTreeSet::new();
        let mut out: Vec<Arc<dyn Tool>> = Vec::new();
        for tool in &self.tools {
            let exposed = exposed_name(&self.name, &tool.name);
            if !seen.insert(exposed.clone()) {
                tracing::warn!(server = self.name, tool = %tool.name, "tool name collides; left out");
                continue;
            }
            let read_only = tool
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.read_only_hint)
                == Some(true);
            let mut schema = Value::Object((*tool.input_schema).clone());
            if let Some(object) = schema.as_object_mut() {
                object.remove("$schema");
                object
                    .entry("type")
                    .or_insert_with(|| Value::String("object".into()));
            }
            let description = tool
                .description
                .as_deref()
                .or(tool.title.as_deref())
                .unwrap_or("")
                .trim();
            out.push(Arc::new(McpTool {
                exposed,
                remote: tool.name.to_string(),
                description: format!(
                    "[MCP {}] {}",
                    self.name,
                    cut_chars(description, MAX_DESCRIPTION)
                ),
                schema,
                effect: if read_only {
                    Effect::ReadOnly
                } else {
                    Effect::Anything
                },
                connection: self.clone(),
            }));
        }
        out
    }

    async fn call(&self, tool: &str, args: Value) -> Result<CallToolResult, String> {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        match args {
            Value::Object(map) => params = params.with_arguments(map),
            Value::Null => {}
            _ => return Err("the arguments must be a JSON object".to_owned()),
        }
        match tokio::time::timeout(self.tool_timeout, self.peer.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) if self.peer.is_transport_closed() => Err(format!(
                "MCP server {} has stopped: {error}{}",
                self.name,
                self.stderr.suffix()
            )),
            Ok(Err(error)) => Err(format!("MCP server {}: {error}", self.name)),
            Err(_) => Err(format!(
                "MCP server {} did not answer {tool} within {}; the call was abandoned",
                self.name,
                seconds(self.tool_timeout)
            )),
        }
    }

    async fn close(&self) {
        let service = self.service.lock().await.take();
        if let Some(mut service) = service {
            let _ = tokio::time::timeout(CLOSE_GRACE, service.close()).await;
        }
    }
}

/// `<server>__<tool>`, with characters providers refuse replaced by `_`, at most 64 long.
pub fn exposed_name(server: &str, tool: &str) -> String {
    let name: String = format!("{server}__{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cut_chars(&name, MAX_TOOL_NAME)
}

/// `2 s`, `0.5 s`.
fn seconds(duration: Duration) -> String {
    let value = duration.as_secs_f64();
    if value.fract() == 0.0 {
        format!("{value:.0} s")
    } else {
        format!("{value:.1} s")
    }
}

fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// One tool of one server, as the agent sees it.
struct McpTool {
    exposed: String,
    remote: String,
    description: String,
    schema: Value,
    effect: Effect,
    connection: Arc<Connection>,
}

impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.exposed
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.schema.clone()
    }

    fn effect(&self) -> Effect {
        self.effect
    }

    fn subjects(&self, args: &Value, _workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        if !(args.is_object() || args.is_null()) {
            return Err(ToolError::InvalidArguments(
                "the arguments must be a JSON object".into(),
            ));
        }
        Ok(vec![args.to_string()])
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        let connection = self.connection.clone();
        let remote = self.remote.clone();
        let max = context.settings.max_command_output;
        Box::pin(async move {
            let result = connection
                .call(&remote, args)
                .await
                .map_err(ToolError::Failed)?;
            let text = render_result(&result, max);
            if result.is_error == Some(true) {
                Err(ToolError::Failed(text))
            } else {
                Ok(ToolOutput::Text(text))
            }
        })
    }
}

/// A tool result as text: text blocks as they are, other blocks named, structured content as
/// JSON when there is nothing else; cut to `max` bytes.
fn render_result(result: &CallToolResult, max: usize) -> String {
    let mut parts = Vec::new();
    for block in &result.content {
        let Ok(block) = serde_json::to_value(block) else {
            continue;
        };
        let kind = block["type"].as_str().unwrap_or("");
        let part = match kind {
            "text" => block["text"].as_str().unwrap_or("").to_owned(),
            "image" | "audio" => format!(
                "[{kind} {}, {} bytes base64]",
                block["mimeType"].as_str().unwrap_or("?"),
                block["data"].as_str().map_or(0, str::len)
            ),
            "resource" => match block["resource"]["text"].as_str() {
                Some(text) => text.to_owned(),
                None => format!(
                    "[resource {}]",
                    block["resource"]["uri"].as_str().unwrap_or("?")
                ),
            },
            "resource_link" => format!("[resource link {}]", block["uri"].as_str().unwrap_or("?")),
            other => format!("[{other} content]"),
        };
        parts.push(part);
    }
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let text = if parts.is_empty() {
        "(no content)".to_owned()
    } else {
        parts.join("\n")
    };
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n… {} more bytes left out",
        &text[..cut],
        text.len() - cut
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rmcp::model::ContentBlock;

    #[test]
    fn exposed_names_are_namespaced_and_safe_for_providers() {
        assert_eq!(exposed_name("fs", "read_file"), "fs__read_file");
        assert_eq!(exposed_name("web", "get.page/v2"), "web__get_page_v2");
        let long = exposed_name("server", &"x".repeat(100));
        assert_eq!(
            long.chars().count(),
            MAX_TOOL_NAME + 1,
            "cut, with an ellipsis"
        );
    }

    #[test]
    fn results_render_as_text_with_other_content_named() {
        let result = CallToolResult::success(vec![
            ContentBlock::text("hello"),
            ContentBlock::image("aGVsbG8=", "image/png"),
            ContentBlock::embedded_text("file:///a", "inside"),
        ]);
        assert_eq!(
            render_result(&result, 1000),
            "hello\n[image image/png, 8 bytes base64]\ninside"
        );
        let structured = CallToolResult::structured(serde_json::json!({"sum": 3}));
        assert!(render_result(&structured, 1000).contains("\"sum\":3"));
        let long = CallToolResult::success(vec![ContentBlock::text("é".repeat(100))]);
        let text = render_result(&long, 11);
        assert!(text.ends_with("more bytes left out"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_program_and_a_silent_one_are_reported_and_the_rest_start() {
        let dir = tempfile::tempdir().unwrap();
        let section: toml::Table = r#"
            [mcp.missing]
            command = "surely-no-such-mcp-server"
            [mcp.silent]
            command = "sleep"
            args = ["30"]
            startup_timeout_secs = 0.5
            [mcp.off]
            command = "x"
            enabled = false
        "#
        .parse()
        .unwrap();
        let clients = McpClients::new(McpConfig::load(section.get("mcp"), dir.path()));
        let started = Instant::now();
        let start = clients.start().await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(start.tools.is_empty());
        let lines: Vec<String> = start.reports.iter().map(ServerReport::line).collect();
        assert!(
            lines[0].starts_with("missing: failed: cannot start surely-no-such-mcp-server"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "off: disabled (tack.toml)");
        assert_eq!(
            lines[2], "silent: failed: did not answer within 0.5 s",
            "{lines:?}"
        );
        assert_eq!(start.problems().len(), 2);
        clients.shutdown().await;
    }
}
