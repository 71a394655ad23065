//! `run_command`: `sh -c` in the workspace (or a folder inside it), with a timeout, stdout
//! and stderr interleaved and capped (head and tail kept, the middle summarized).
//!
//! The command runs in its own process group. The whole group is killed when the command
//! times out, when the call is cancelled (its future dropped), and when the command exits
//! (so no background process outlives the call holding the output pipe).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::{
    Effect, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema, parse_args,
};
use crate::agent::workspace::Workspace;

/// How long output is still read after the command exits (a background child may hold the
/// pipe).
const DRAIN_GRACE: Duration = Duration::from_millis(200);

pub struct RunCommand;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    command: String,
    /// A folder inside the workspace; default the root.
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

impl Tool for RunCommand {
    fn name(&self) -> &'static str {
        "run_command"
    }

    fn description(&self) -> &'static str {
        "Run a shell command (sh -c) in the workspace; returns exit code and capped output."
    }

    fn parameters(&self) -> Value {
        object_schema(
            json!({
                "command": {"type": "string"},
                "cwd": {"type": "string"},
                "timeout_secs": {"type": "integer", "minimum": 1},
            }),
            &["command"],
        )
    }

    fn effect(&self) -> Effect {
        Effect::Anything
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let args: Args = parse_args(args)?;
        if let Some(cwd) = &args.cwd {
            workspace.resolve(cwd)?;
        }
        Ok(vec![args.command.trim().to_owned()])
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let args: Args = parse_args(&args)?;
            let workspace = &context.workspace;
            let cwd = workspace.resolve(args.cwd.as_deref().unwrap_or("."))?;
            if !cwd.is_dir() {
                return Err(ToolError::Failed(format!(
                    "{} is not a folder",
                    workspace.relative(&cwd)
                )));
            }
            let timeout = args
                .timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(context.settings.command_timeout);
            run(
                &args.command,
                &cwd,
                timeout,
                context.settings.max_command_output,
            )
            .await
        })
    }
}

/// Kills the process group when dropped.
struct GroupKiller(Option<Pid>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // The group may be gone already.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

async fn run(
    command: &str,
    cwd: &std::path::Path,
    timeout: Duration,
    cap: usize,
) -> Result<ToolOutput, ToolError> {
    let failed = |what: &str, error: std::io::Error| ToolError::Failed(format!("{what}: {error}"));
    let (reader, writer) = std::io::pipe().map_err(|e| failed("cannot make a pipe", e))?;
    let writer_too = writer
        .try_clone()
        .map_err(|e| failed("cannot make a pipe", e))?;
    let mut process = tokio::process::Command::new("sh");
    process
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(writer_too)
        .env("PAGER", "cat")
        .env("GIT_PAGER", "cat")
        .env("NO_COLOR", "1")
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = process.spawn().map_err(|e| failed("cannot start sh", e))?;
    // Our copies of the pipe's write end must close, or the read end never sees EOF.
    drop(process);
    let _killer = GroupKiller(child.id().and_then(|id| Pid::from_raw(id as i32)));
    let mut output = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())
        .map_err(|e| failed("cannot read the command's output", e))?;
    let mut collected = CappedOutput::new(cap);
    let mut buffer = vec![0u8; 8192];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut status = None;
    let mut eof = false;
    let mut drain_until = deadline;
    while status.is_none() || !eof {
        tokio::select! {
            read = output.read(&mut buffer), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => collected.push(&buffer[..n]),
            },
            exit = child.wait(), if status.is_none() => {
                status = Some(exit.map_err(|e| failed("waiting for the command", e))?);
                drain_until = tokio::time::Instant::now() + DRAIN_GRACE;
            }
            () = tokio::time::sleep_until(deadline), if status.is_none() => {
                return Err(ToolError::Failed(format!(
                    "{}\n[timed out after {:.1} s; the command was killed]",
                    collected.finish(),
                    timeout.as_secs_f32()
                )));
            }
            () = tokio::time::sleep_until(drain_until), if status.is_some() => eof = true,
        }
    }
    let elapsed = started.elapsed().as_secs_f32();
    let text = collected.finish();
    let code = status.and_then(|status| status.code());
    let mut out = if text.is_empty() {
        "(no output)".to_owned()
    } else {
        text
    };
    match code {
        Some(0) => {
            out.push_str(&format!("\n[exit 0, {elapsed:.1} s]"));
            Ok(ToolOutput::Text(out))
        }
        Some(code) => {
            out.push_str(&format!("\n[exit {code}, {elapsed:.1} s]"));
            Err(ToolError::Failed(out))
        }
        None => {
            out.push_str("\n[killed by a signal]");
            Err(ToolError::Failed(out))
        }
    }
}

/// Output kept within `cap` bytes: the first half and the last half, with how much was left
/// out in between.
struct CappedOutput {
    half: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
    newlines: usize,
}

impl CappedOutput {
    fn new(cap: usize) -> CappedOutput {
        CappedOutput {
            half: cap / 2,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
            newlines: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len();
        self.newlines += bytes.iter().filter(|b| **b == b'\n').count();
        let room = self.half.saturating_sub(self.head.len());
        let into_head = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..into_head]);
        bytes = &bytes[into_head..];
        self.tail.extend(bytes);
        while self.tail.len() > self.half {
            self.tail.pop_front();
        }
    }

    fn finish(self) -> String {
        let kept = self.head.len() + self.tail.len();
        if kept == self.total {
            let mut all = self.head;
            all.extend(self.tail);
            return String::from_utf8_lossy(&all).trim_end().to_owned();
        }
        // Cut at line boundaries where there are some.
        let mut head = self.head;
        if let Some(end) = head.iter().rposition(|b| *b == b'\n') {
            head.truncate(end + 1);
        }
        let mut tail: Vec<u8> = self.tail.into();
        if let Some(start) = tail.iter().position(|b| *b == b'\n')
            && start + 1 < tail.len()
        {
            tail.drain(..=start);
        }
        let count = |bytes: &[u8]| bytes.iter().filter(|b| **b == b'\n').count();
        let omitted_bytes = self.total - head.len() - tail.len();
        let omitted_lines = self.newlines.saturating_sub(count(&head) + count(&tail));
        format!(
            "{}… {omitted_lines} lines ({omitted_bytes} bytes) omitted …\n{}",
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(&tail).trim_end()
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tests::{call, context, text};
    use super::*;

    /// `bytes` as the model sees command output within `cap` bytes.
    fn cap_output(bytes: &[u8], cap: usize) -> String {
        let mut collected = CappedOutput::new(cap);
        collected.push(bytes);
        collected.finish()
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let lines: String = (1..=1000).map(|n| format!("line {n}\n")).collect();
        let out = cap_output(lines.as_bytes(), 200);
        assert!(out.starts_with("line 1\nline 2\n"), "{out}");
        assert!(out.ends_with("line 999\nline 1000"), "{out}");
        assert!(out.contains(" lines ("), "{out}");
        assert!(out.len() < 300, "{}", out.len());
        let omitted: usize = out
            .split("… ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        let shown = out.lines().count() - 1;
        assert_eq!(omitted + shown, 1000, "{out}");
        assert_eq!(cap_output(b"short\n", 200), "short");
    }

    #[tokio::test]
    async fn runs_in_the_workspace_with_exit_codes_and_interleaved_output() {
        let (_dir, cx) = context(&[("sub/f.txt", "hi\n")]);
        let out = text(
            call(
                &cx,
                "run_command",
                json!({"command": "cat f.txt; echo err >&2", "cwd": "sub"}),
            )
            .await
            .unwrap(),
        );
        assert!(out.starts_with("hi\nerr\n[exit 0, "), "{out}");
        let error = call(&cx, "run_command", json!({"command": "echo no; exit 3"}))
            .await
            .unwrap_err();
        assert!(error.to_string().starts_with("no\n[exit 3, "), "{error}");
        let error = call(&cx, "run_command", json!({"command": "ls", "cwd": ".."}))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("outside the workspace"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_background_child_that_keeps_writing_does_not_hold_the_call() {
        let (_dir, cx) = context(&[]);
        let started = Instant::now();
        let out = text(
            call(
                &cx,
                "run_command",
                json!({"command": "(while true; do echo tick; sleep 0.05; done) & echo started"}),
            )
            .await
            .unwrap(),
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(out.lines().any(|line| line == "started"), "{out}");
        assert!(out.contains("[exit 0, "), "{out}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let (dir, mut cx) = context(&[]);
        cx.settings.command_timeout = Duration::from_millis(300);
        let marker = dir.path().join("survived");
        let command = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let error = call(&cx, "run_command", json!({"command": command}))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            error.to_string().contains("timed out after 0.3 s"),
            "{error}"
        );
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(
            !marker.exists(),
            "the background child was killed with the group"
        );
    }
}
