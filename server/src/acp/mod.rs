//! `tack acp`: tack as an external agent over the Agent Client Protocol (newline-delimited
//! JSON-RPC on stdio), so an ACP client — Zed's agent panel — drives tack's agent.
//!
//! Each `session/new` starts the same session `tack run` uses: the folder's configuration and
//! model, its language servers behind the headless proxy (live diagnostics after every edit),
//! the snapshot store (every edit snapshotted first; `/undo` and `/redo`), and the permission
//! policy. What differs is the front end:
//! - `feedback`: [`AcpFeedback`] reads through the client's `fs/read_text_file` (unsaved
//!   buffers win) and writes agent edits through `fs/write_text_file` when the client offers
//!   them, so the editor reviews each hunk; otherwise the disk.
//! - `session`: one ACP session: prompts become user turns, agent events become
//!   `session/update` notifications (message and thought chunks, context use and cost, tool
//!   calls with their kind and locations, diffs), approvals become
//!   `session/request_permission` carrying the diff, `session/cancel` cancels, the turn's end
//!   answers the prompt with its stop reason.
//! - `updates`: the pure conversions between tack's agent protocol and ACP's types.
//!
//! The dispatch loop of the connection never waits on the agent: every handler answers or
//! hands its work to a task at once, so `session/cancel` and the answers to tack's own
//! requests (file reads, permission) always get through.

mod feedback;
mod session;
mod updates;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, CancelNotification, ClientCapabilities, Implementation, InitializeRequest,
    InitializeResponse, NewSessionRequest, NewSessionResponse, PromptCapabilities, PromptRequest,
};
use agent_client_protocol::{Agent, ByteStreams, ErrorCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

pub use feedback::AcpFeedback;
use session::AcpSession;

#[derive(Debug, thiserror::Error)]
pub enum AcpError {
    #[error("the ACP connection failed: {0}")]
    Connection(String),
}

/// The connection's sessions and what the client said it can do.
#[derive(Default)]
struct Connection {
    client: Mutex<Option<ClientCapabilities>>,
    /// Who the client said it is (`initialize`'s `clientInfo`), for the session ledger.
    client_name: Mutex<Option<String>>,
    sessions: Mutex<HashMap<String, Arc<AcpSession>>>,
}

impl Connection {
    fn capabilities(&self) -> ClientCapabilities {
        self.client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }

    fn session(&self, id: &str) -> Option<Arc<AcpSession>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }
}

/// Serves ACP on stdin/stdout until the client closes stdin.
pub async fn serve_stdio() -> Result<(), AcpError> {
    serve(tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one ACP client over a byte stream until it closes.
pub async fn serve<R, W>(reader: R, writer: W) -> Result<(), AcpError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let transport = ByteStreams::new(writer.compat_write(), reader.compat());
    let state = Arc::new(Connection::default());
    let on_initialize = state.clone();
    let on_new = state.clone();
    let on_prompt = state.clone();
    let on_cancel = state.clone();
    let result = Agent
        .v1()
        .name("tack")
        .on_receive_request(
            async move |request: InitializeRequest, responder, _connection| {
                let version = if request.protocol_version < ProtocolVersion::V1 {
                    request.protocol_version
                } else {
                    ProtocolVersion::V1
                };
                *on_initialize
                    .client
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(request.client_capabilities);
                *on_initialize
                    .client_name
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = request
                    .client_info
                    .map(|info| format!("{} {}", info.name, info.version));
                responder.respond(
                    InitializeResponse::new(version)
                        .agent_capabilities(
                            AgentCapabilities::new().prompt_capabilities(
                                PromptCapabilities::new().embedded_context(true),
                            ),
                        )
                        .agent_info(Implementation::new("tack", env!("CARGO_PKG_VERSION"))),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: NewSessionRequest, responder, connection| {
                let state = on_new.clone();
                let capabilities = state.capabilities();
                let front_end = match state
                    .client_name
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_deref()
                {
                    Some(client) => format!("tack acp ({client})"),
                    None => "tack acp".to_owned(),
                };
                if !request.mcp_servers.is_empty() {
                    tracing::warn!(
                        count = request.mcp_servers.len(),
                        "session/new named MCP servers; tack acp does not start them"
                    );
                }
                tokio::spawn(async move {
                    match AcpSession::start(
                        request.cwd.clone(),
                        connection,
                        &capabilities,
                        front_end,
                    )
                    .await
                    {
                        Ok(session) => {
                            let id = session.id().to_owned();
                            state
                                .sessions
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .insert(id.clone(), session.clone());
                            if responder.respond(NewSessionResponse::new(id)).is_ok() {
                                session.announce_commands();
                            }
                        }
                        Err(message) => {
                            tracing::warn!(%message, "session/new refused");
                            let _ = responder.respond_with_error(error(message));
                        }
                    }
                });
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: PromptRequest, responder, _connection| {
                let id = request.session_id.0.to_string();
                match on_prompt.session(&id) {
                    Some(session) => session.prompt(&request.prompt, responder),
                    None => responder.respond_with_error(unknown_session(&id)),
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |notification: CancelNotification, _connection| {
                let id = notification.session_id.0.to_string();
                match on_cancel.session(&id) {
                    Some(session) => session.cancel(),
                    None => tracing::warn!(id, "session/cancel for an unknown session"),
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(transport)
        .await;
    let sessions: Vec<Arc<AcpSession>> = state
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain()
        .map(|(_, session)| session)
        .collect();
    for session in sessions {
        session.close().await;
    }
    result.map_err(|error| AcpError::Connection(error.to_string()))
}

/// An `invalid params` error carrying tack's message.
fn error(message: String) -> agent_client_protocol::Error {
    agent_client_protocol::Error::new(ErrorCode::INVALID_PARAMS, message)
}

fn unknown_session(id: &str) -> agent_client_protocol::Error {
    error(format!(
        "no session {id:?} in this connection; start one with session/new"
    ))
}

/// The workspace folder of a `session/new`: it must be an existing absolute folder.
fn workspace_root(cwd: &std::path::Path) -> Result<PathBuf, String> {
    if !cwd.is_absolute() {
        return Err(format!(
            "cwd must be an absolute path, got {}",
            cwd.display()
        ));
    }
    match cwd.canonicalize() {
        Ok(root) if root.is_dir() => Ok(root),
        Ok(_) => Err(format!("cwd {} is not a folder", cwd.display())),
        Err(source) => Err(format!("cannot use cwd {}: {source}", cwd.display())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_folder_must_be_an_existing_absolute_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(workspace_root(dir.path()).is_ok());
        let relative = workspace_root(std::path::Path::new("src")).unwrap_err();
        assert!(relative.contains("absolute"), "{relative}");
        let missing = workspace_root(&dir.path().join("nope")).unwrap_err();
        assert!(missing.starts_with("cannot use cwd"), "{missing}");
        std::fs::write(dir.path().join("f"), "").unwrap();
        let file = workspace_root(&dir.path().join("f")).unwrap_err();
        assert!(file.ends_with("is not a folder"), "{file}");
    }
}
