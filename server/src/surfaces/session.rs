//! Starting the agent session of one editor connection: the model (resolved when the first
//! run starts, so a missing provider is reported to the user then, by name), the tools
//! (everything but `run_command`: a run's edits are drafts, which a shell would not see), the
//! permissions, the MCP servers' tools (a server that fails is shown as a warning), and the
//! relay of the session's events into the proxy's main loop.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::feedback::{EditorFeedback, SharedBuffers};
use crate::agent::{AgentEvent, DraftSet, Permissions, SessionConfig, Submission, run_session};
use crate::config::Config;
use crate::proxy::main_loop::Event;
use crate::proxy::{ProxyHandle, SurfaceEvent};
use crate::snapshots::SnapshotStore;

/// What the editor's agent session is made of.
pub struct EditorSessionSetup {
    pub root: PathBuf,
    pub config: Config,
    pub session_id: String,
    pub model: Option<String>,
    pub store: Arc<SnapshotStore>,
    pub drafts: Arc<DraftSet>,
    pub buffers: SharedBuffers,
    pub proxy: ProxyHandle,
    pub events: mpsc::UnboundedSender<Event>,
}

/// Starts the session in a task; submissions go into the returned channel. Every event comes
/// back to the main loop as [`SurfaceEvent::Agent`], and the end as
/// [`SurfaceEvent::SessionEnded`].
pub fn spawn(setup: EditorSessionSetup) -> mpsc::Sender<Submission> {
    let (submissions, receiver) = mpsc::channel(16);
    tokio::spawn(run(setup, receiver));
    submissions
}

async fn run(setup: EditorSessionSetup, submissions: mpsc::Receiver<Submission>) {
    let events = setup.events.clone();
    let error = session(setup, submissions).await.err();
    let _ = events.send(Event::Surface(SurfaceEvent::SessionEnded { error }));
}

async fn session(
    setup: EditorSessionSetup,
    submissions: mpsc::Receiver<Submission>,
) -> Result<(), String> {
    let (model, api_key, client) = crate::run::resolve_model(
        &setup.config,
        setup.model.clone(),
        |warning| tracing::warn!(%warning, "provider configuration"),
    )
    .await
    .map_err(|error| error.to_string())?;
    let _ = setup
        .events
        .send(Event::Surface(SurfaceEvent::SessionStarted {
            model: model.label(),
        }));
    let mut permissions = Permissions::from_config(setup.config.section("permissions"))
        .map_err(|error| format!("invalid [permissions]: {error}"))?;
    // Edits only change the run's drafts: the proposal the user accepts is the approval.
    for tool in ["edit", "write"] {
        permissions.remember(tool, None, true);
    }
    let mut config = SessionConfig::new(
        setup.root.clone(),
        model,
        api_key,
        setup.store,
        setup.session_id,
    );
    config.client = client;
    config.permissions = permissions;
    config.tools.remove("run_command");
    config.drafts = Some(setup.drafts.clone());
    // MCP servers start with the session (the first run), not with the editor connection.
    let mcp = crate::mcp::McpClients::for_workspace(&setup.config, &setup.root);
    let mcp_start = mcp.start().await;
    for message in mcp_start.problems() {
        let _ = setup
            .events
            .send(Event::Surface(SurfaceEvent::Warning { message }));
    }
    for tool in mcp_start.tools {
        config.tools.register(tool);
    }
    let feedback = Arc::new(EditorFeedback::new(
        setup.events.clone(),
        setup.proxy,
        setup.buffers,
        setup.drafts,
    ));
    let (events_tx, mut events_rx) = mpsc::channel::<AgentEvent>(256);
    let relay_to = setup.events.clone();
    let relay_feedback = feedback.clone();
    let relay = tokio::spawn(async move {
        while let Some(event) = events_rx.recv().await {
            if matches!(event, AgentEvent::TurnDone { .. }) {
                relay_feedback.forget_sent();
            }
            if relay_to
                .send(Event::Surface(SurfaceEvent::Agent(event)))
                .is_err()
            {
                break;
            }
        }
    });
    let outcome = run_session(config, submissions, events_tx, feedback).await;
    let _ = relay.await;
    mcp.shutdown().await;
    match outcome.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
