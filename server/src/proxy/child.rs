//! One child language server: its process, transport, request table and crash history.
//!
//! The process is owned by a waiter task that reports its exit as an event; dropping the
//! [`ChildProcess`] handle (or calling `kill`) kills it, so a child never outlives its session.

use super::capabilities::ChildSync;
use super::main_loop::Event;
use crate::config::ResolvedServer;
use crate::jsonrpc::{self, Message, Outgoing, RequestId};
use crate::server_id::ServerId;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// How many stderr lines are kept for the message shown when a server is given up on.
const STDERR_TAIL_LINES: usize = 20;
/// How long an exit report waits for the rest of the child's stderr.
const STDERR_DRAIN_TIMEOUT: Duration = Duration::from_millis(500);
/// A server that crashes this often within [`CRASH_WINDOW`] is given up on.
pub const MAX_CRASHES: usize = 5;
pub const CRASH_WINDOW: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("could not start language server {server} ({program}): {source}")]
    Io {
        server: ServerId,
        program: String,
        source: std::io::Error,
    },
    #[error("language server {server} has no {stream} pipe")]
    MissingPipe {
        server: ServerId,
        stream: &'static str,
    },
}

/// Why tack sent a request to a child, so its response can be put to use.
#[derive(Debug)]
pub enum PendingChildRequest {
    /// Forwarded from the editor; the answer completes that editor request (or part of it).
    Editor {
        editor_id: RequestId,
    },
    Initialize,
    Shutdown,
    /// tack pulls diagnostics itself from servers that only offer pull.
    PullDiagnostics {
        uri: String,
        version: Option<i32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Configured and found, not started: no document of its languages has been seen.
    NotStarted,
    /// Spawned; `initialize` sent, not yet answered.
    Starting,
    Running,
    /// Exited; a restart is scheduled.
    Restarting,
    /// Crashed too often, or could not be started at all.
    GivenUp,
    /// Shut down on purpose.
    Stopped,
}

/// The handle that keeps the process alive; dropping it kills the process.
pub struct ChildProcess {
    kill: Option<oneshot::Sender<()>>,
    pub pid: Option<u32>,
}

impl ChildProcess {
    pub fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Child {
    pub id: ServerId,
    pub config: ResolvedServer,
    pub languages: Vec<String>,
    /// Increases on every (re)start; events from older generations are ignored.
    pub generation: u32,
    pub state: ChildState,
    pub outgoing: Option<Outgoing>,
    pub process: Option<ChildProcess>,
    pub capabilities: Value,
    pub sync: ChildSync,
    pub next_request_id: i64,
    pub pending: HashMap<i64, PendingChildRequest>,
    /// Messages for a child that is starting or restarting, sent once it runs.
    pub queued: Vec<Message>,
    pub crashes: VecDeque<Instant>,
    pub stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Progress tokens this child created with `window/workDoneProgress/create`.
    pub progress_tokens: HashSet<String>,
    /// Methods registered dynamically (`client/registerCapability`), by registration id.
    pub registrations: HashMap<String, String>,
    pub gave_up_reason: Option<String>,
}

impl Child {
    pub fn new(id: ServerId, config: ResolvedServer, languages: Vec<String>) -> Self {
        Self {
            id,
            config,
            languages,
            generation: 0,
            state: ChildState::NotStarted,
            outgoing: None,
            process: None,
            capabilities: Value::Null,
            sync: super::capabilities::child_sync(&Value::Null),
            next_request_id: 1,
            pending: HashMap::new(),
            queued: Vec::new(),
            crashes: VecDeque::new(),
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            progress_tokens: HashSet::new(),
            registrations: HashMap::new(),
            gave_up_reason: None,
        }
    }

    pub fn serves(&self, language_id: &str) -> bool {
        self.languages.iter().any(|l| l == language_id)
    }

    pub fn is_alive(&self) -> bool {
        matches!(
            self.state,
            ChildState::Starting | ChildState::Running | ChildState::Restarting
        )
    }

    pub fn has_dynamic_registration(&self, method: &str) -> bool {
        self.registrations.values().any(|m| m == method)
    }

    /// Spawns the process and its reader, writer, stderr and waiter tasks.
    pub fn spawn(
        &mut self,
        root: &Path,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<(), SpawnError> {
        self.generation += 1;
        let generation = self.generation;
        let mut command = tokio::process::Command::new(&self.config.program);
        command
            .args(&self.config.args)
            .envs(&self.config.env)
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut process = command.spawn().map_err(|source| SpawnError::Io {
            server: self.id.clone(),
            program: self.config.program.display().to_string(),
            source,
        })?;
        let missing = |stream| SpawnError::MissingPipe {
            server: self.id.clone(),
            stream,
        };
        let stdin = process.stdin.take().ok_or_else(|| missing("stdin"))?;
        let stdout = process.stdout.take().ok_or_else(|| missing("stdout"))?;
        let stderr = process.stderr.take().ok_or_else(|| missing("stderr"))?;
        let pid = process.id();

        let server = self.id.clone();
        jsonrpc::spawn_reader(
            BufReader::with_capacity(64 * 1024, stdout),
            events.clone(),
            move |incoming| Event::Child {
                server: server.clone(),
                generation,
                incoming,
            },
        );
        self.outgoing = Some(jsonrpc::spawn_writer(stdin));

        let tail = self.stderr_tail.clone();
        let server = self.id.clone();
        let stderr_task = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "tack::child_stderr", server = %server, "{line}");
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });

        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let server = self.id.clone();
        let events = events.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = process.wait() => status,
                _ = kill_rx => {
                    let _ = process.start_kill();
                    process.wait().await
                }
            };
            // The last stderr lines explain a crash: read them before reporting the exit (a
            // grandchild holding the pipe open must not delay the report for long).
            let _ = tokio::time::timeout(STDERR_DRAIN_TIMEOUT, stderr_task).await;
            let status = match status {
                Ok(status) => status.to_string(),
                Err(error) => format!("unknown ({error})"),
            };
            let _ = events.send(Event::ChildExited {
                server,
                generation,
                status,
            });
        });

        self.process = Some(ChildProcess {
            kill: Some(kill_tx),
            pid,
        });
        self.state = ChildState::Starting;
        self.capabilities = Value::Null;
        self.progress_tokens.clear();
        self.registrations.clear();
        Ok(())
    }

    /// Sends a message now if the child runs, or queues it while it starts.
    pub fn send_or_queue(&mut self, message: Message) {
        match self.state {
            ChildState::Running => self.send(message),
            ChildState::Starting | ChildState::Restarting => self.queued.push(message),
            ChildState::NotStarted | ChildState::GivenUp | ChildState::Stopped => {}
        }
    }

    /// Sends a message if the transport is up.
    pub fn send(&mut self, message: Message) {
        if let Some(outgoing) = &self.outgoing
            && !outgoing.send(message)
        {
            tracing::debug!(server = %self.id, "message dropped: the server's input is closed");
        }
    }

    /// Allocates an id for a request tack sends to this child.
    pub fn allocate_request(&mut self, purpose: PendingChildRequest) -> i64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        self.pending.insert(id, purpose);
        id
    }

    pub fn stderr_tail_text(&self) -> String {
        match self.stderr_tail.lock() {
            Ok(tail) => tail.iter().cloned().collect::<Vec<_>>().join("\n"),
            Err(_) => String::new(),
        }
    }

    /// Records a crash; returns true when the server has crashed too often and must be given up.
    pub fn record_crash(&mut self, now: Instant) -> bool {
        self.crashes.push_back(now);
        while let Some(first) = self.crashes.front() {
            if now.duration_since(*first) > CRASH_WINDOW {
                self.crashes.pop_front();
            } else {
                break;
            }
        }
        self.crashes.len() >= MAX_CRASHES
    }

    /// The wait before the next restart: 200 ms doubling per recent crash, at most 5 s.
    pub fn restart_backoff(&self) -> Duration {
        let exponent = self.crashes.len().saturating_sub(1).min(5) as u32;
        Duration::from_millis(200 * 2u64.pow(exponent)).min(Duration::from_secs(5))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn child() -> Child {
        Child::new(
            ServerId::new("x"),
            ResolvedServer {
                name: "x".into(),
                program: "x".into(),
                args: vec![],
                languages: vec!["c".into()],
                env: Default::default(),
                settings: Value::Null,
                initialization_options: None,
                root_markers: vec![],
            },
            vec!["c".into()],
        )
    }

    #[test]
    fn gives_up_after_max_crashes_in_window_only() {
        let mut c = child();
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let window = CRASH_WINDOW.as_secs();
        assert!(!c.record_crash(at(0)));
        for n in 1..MAX_CRASHES as u64 - 1 {
            assert!(!c.record_crash(at(window - 10 + n)));
        }
        // The first crash has left the window: still under the limit.
        assert!(!c.record_crash(at(window + 1)));
        assert_eq!(c.crashes.len(), MAX_CRASHES - 1);
        assert!(c.record_crash(at(window + 2)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut c = child();
        let now = Instant::now();
        c.record_crash(now);
        assert_eq!(c.restart_backoff(), Duration::from_millis(200));
        c.record_crash(now);
        assert_eq!(c.restart_backoff(), Duration::from_millis(400));
        for _ in 0..10 {
            c.crashes.push_back(now);
        }
        assert_eq!(c.restart_backoff(), Duration::from_secs(5));
    }
}
