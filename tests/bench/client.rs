//! The benchmark's own LSP client: one server process over stdio, one request at a time.
//!
//! It is deliberately thin so that its cost is small and the same on both sides of a
//! comparison: frames are written with a single `write` each (no buffering, as an editor
//! writing keystrokes does), params arrive as ready JSON text, results are handed back raw
//! and never parsed. A reader task (on the same single-threaded runtime) parses what the
//! server sends; notifications are counted and dropped, requests from the server are
//! answered at once with an empty result. Every wait has a deadline, and a failure carries
//! the tail of the server's stderr.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tack::jsonrpc::{Incoming, Message, Request, RequestId, spawn_reader};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long any one answer may take before the benchmark reports the server as broken.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may take to exit after `exit`.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many bytes of stderr a failure shows.
const STDERR_TAIL_BYTES: usize = 2000;

/// What to start: a program, its arguments, where, with which environment changes.
pub struct Launch<'a> {
    pub label: &'a str,
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    /// Variables taken out of the inherited environment.
    pub env_removed: &'a [String],
    /// Where the server's stderr goes (a file, so it never blocks the server).
    pub stderr_path: PathBuf,
}

pub struct BenchClient {
    label: String,
    process: Child,
    stdin: ChildStdin,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    next_id: i64,
    stderr_path: PathBuf,
    /// Notifications received (diagnostics, progress, logs), all dropped.
    pub notifications: u64,
}

impl BenchClient {
    /// Starts the server. Must run inside a tokio runtime.
    pub fn spawn(launch: &Launch<'_>) -> Result<BenchClient> {
        let stderr = std::fs::File::create(&launch.stderr_path)
            .with_context(|| format!("cannot create {}", launch.stderr_path.display()))?;
        let mut command = Command::new(launch.program);
        command
            .args(launch.args)
            .current_dir(launch.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        for name in launch.env_removed {
            command.env_remove(name);
        }
        command.envs(launch.env.iter().map(|(k, v)| (k, v)));
        let mut process = command
            .spawn()
            .with_context(|| format!("cannot start {}", launch.program.display()))?;
        let stdin = process
            .stdin
            .take()
            .ok_or_else(|| anyhow!("{} has no stdin pipe", launch.label))?;
        let stdout = process
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{} has no stdout pipe", launch.label))?;
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        spawn_reader(
            BufReader::with_capacity(64 * 1024, stdout),
            incoming_tx,
            |item| item,
        );
        Ok(BenchClient {
            label: launch.label.to_owned(),
            process,
            stdin,
            incoming,
            next_id: 1,
            stderr_path: launch.stderr_path.clone(),
            notifications: 0,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// Sends a request and waits for its answer; an error answer is an error. `params` is
    /// JSON text.
    pub async fn request(&mut self, method: &str, params: &str) -> Result<Box<RawValue>> {
        let id = self.next_id;
        self.next_id += 1;
        self.write_body(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        ))
        .await?;
        self.wait_response(id, method).await
    }

    /// Sends a notification. `params` is JSON text.
    pub async fn notify(&mut self, method: &str, params: &str) -> Result<()> {
        self.write_body(&format!(
            r#"{{"jsonrpc":"2.0","method":"{method}","params":{params}}}"#
        ))
        .await
    }

    /// `shutdown`, `exit`, and a wait for the process to end; killed if it does not.
    pub async fn shutdown(mut self) -> Result<()> {
        self.request("shutdown", "null").await?;
        self.notify("exit", "null").await?;
        let exited = tokio::time::timeout(EXIT_TIMEOUT, self.process.wait()).await;
        match exited {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => bail!("{} exited with {status} after shutdown", self.label),
            Ok(Err(error)) => bail!("waiting for {} failed: {error}", self.label),
            Err(_) => {
                let _ = self.process.kill().await;
                bail!(
                    "{} did not exit within {EXIT_TIMEOUT:?} of exit",
                    self.label
                )
            }
        }
    }

    /// One frame, one `write`.
    async fn write_body(&mut self, body: &str) -> Result<()> {
        let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        if let Err(error) = self.stdin.write_all(frame.as_bytes()).await {
            return Err(self.failure(format!("writing to it failed: {error}")));
        }
        Ok(())
    }

    async fn wait_response(&mut self, id: i64, method: &str) -> Result<Box<RawValue>> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let item = match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(item)) => item,
                Ok(None) => return Err(self.failure(format!("its output ended ({method})"))),
                Err(_) => {
                    return Err(
                        self.failure(format!("no answer to {method} within {ANSWER_TIMEOUT:?}"))
                    );
                }
            };
            match item {
                Incoming::Message(Message::Response(response)) => {
                    if response.id != Some(RequestId::Number(id)) {
                        return Err(self.failure(format!(
                            "an answer to id {:?} while waiting for {id} ({method})",
                            response.id
                        )));
                    }
                    if let Some(error) = response.error {
                        return Err(self.failure(format!(
                            "{method} failed: {} ({})",
                            error.message, error.code
                        )));
                    }
                    return Ok(response.result.unwrap_or_default());
                }
                Incoming::Message(Message::Notification(_)) => self.notifications += 1,
                Incoming::Message(Message::Request(request)) => {
                    self.answer_server_request(&request).await?
                }
                Incoming::Invalid(error) => {
                    return Err(self.failure(format!("it sent an invalid message: {error}")));
                }
                Incoming::Skipped(why) => {
                    return Err(self.failure(format!("it broke the framing: {why}")));
                }
                Incoming::Closed(why) => {
                    let why = why.unwrap_or_else(|| "end of output".to_owned());
                    return Err(self.failure(format!("its output closed ({why}) during {method}")));
                }
            }
        }
    }

    /// Requests from the server get an empty answer (one `null` per item for
    /// `workspace/configuration`), the way a minimal editor answers.
    async fn answer_server_request(&mut self, request: &Request) -> Result<()> {
        let result = if request.method == "workspace/configuration" {
            let items = request
                .params_as::<serde_json::Value>()
                .ok()
                .and_then(|p| p["items"].as_array().map(Vec::len))
                .unwrap_or(0);
            format!("[{}]", vec!["null"; items].join(","))
        } else {
            "null".to_owned()
        };
        let id = serde_json::to_string(&request.id)?;
        self.write_body(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#
        ))
        .await
    }

    /// Waits until the reader task has passed on everything the server sent so far, dropping
    /// notifications, answering requests. Used between phases so that queued diagnostics do not
    /// land inside a timed request.
    pub async fn drain(&mut self) -> Result<()> {
        while let Ok(item) = self.incoming.try_recv() {
            match item {
                Incoming::Message(Message::Notification(_)) => self.notifications += 1,
                Incoming::Message(Message::Request(request)) => {
                    self.answer_server_request(&request).await?
                }
                Incoming::Message(Message::Response(response)) => {
                    return Err(self.failure(format!("an unexpected answer to {:?}", response.id)));
                }
                Incoming::Invalid(error) => {
                    return Err(self.failure(format!("it sent an invalid message: {error}")));
                }
                Incoming::Skipped(why) => {
                    return Err(self.failure(format!("it broke the framing: {why}")));
                }
                Incoming::Closed(why) => {
                    return Err(self.failure(format!("its output closed ({why:?})")));
                }
            }
        }
        Ok(())
    }

    /// An error that names the server and shows the end of its stderr.
    fn failure(&self, what: String) -> anyhow::Error {
        let stderr = std::fs::read(&self.stderr_path).unwrap_or_default();
        let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL_BYTES)..];
        anyhow!(
            "{}: {what}\n--- end of its stderr ({}) ---\n{}",
            self.label,
            self.stderr_path.display(),
            String::from_utf8_lossy(tail)
        )
    }
}
