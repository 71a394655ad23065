//! `shutdown` and `exit` ordered to every child; a child that dies is answered for, restarted
//! with backoff, or given up on with a message that says which server and why.

use super::child::{ChildState, PendingChildRequest};
use super::main_loop::{EXIT_TIMEOUT, Flow, Lifecycle, Proxy, SHUTDOWN_TIMEOUT, SessionEnd, Timer};
use crate::jsonrpc::{Message, Notification, Request, RequestId, ResponseError, error_code};
use crate::server_id::ServerId;
use std::time::Instant;

impl Proxy {
    pub(super) fn on_shutdown(&mut self, request: Request) {
        self.lifecycle = Lifecycle::ShuttingDown;
        self.shutdown_id = Some(request.id);
        let ids: Vec<ServerId> = self.children.keys().cloned().collect();
        for id in ids {
            let Some(child) = self.children.get_mut(&id) else {
                continue;
            };
            match child.state {
                ChildState::Running => {
                    let cid = child.allocate_request(PendingChildRequest::Shutdown);
                    child.send(Message::Request(Request::new(
                        RequestId::Number(cid),
                        "shutdown",
                        None,
                    )));
                    self.shutting_down.insert(id);
                }
                ChildState::Starting | ChildState::Restarting => {
                    if let Some(process) = &mut child.process {
                        process.kill();
                    }
                    child.state = ChildState::Stopped;
                }
                ChildState::NotStarted | ChildState::GivenUp | ChildState::Stopped => {}
            }
        }
        if self.shutting_down.is_empty() {
            self.finish_shutdown();
        } else {
            self.schedule(SHUTDOWN_TIMEOUT, Timer::ShutdownDeadline);
        }
    }

    pub(super) fn on_child_shutdown_response(&mut self, server: &ServerId) {
        if let Some(child) = self.children.get_mut(server) {
            child.state = ChildState::Stopped;
        }
        if self.shutting_down.remove(server) && self.shutting_down.is_empty() {
            self.finish_shutdown();
        }
    }

    pub(super) fn finish_shutdown(&mut self) {
        if let Some(id) = self.shutdown_id.take() {
            self.respond_value(id, &serde_json::Value::Null);
        }
    }

    pub(super) fn on_exit(&mut self) -> Flow {
        let end = if self.lifecycle == Lifecycle::ShuttingDown {
            SessionEnd::Clean
        } else {
            SessionEnd::Abrupt
        };
        self.lifecycle = Lifecycle::Exiting(end);
        for child in self.children.values_mut() {
            if child.process.is_some() {
                child.send(Message::Notification(Notification::new("exit", None)));
                child.state = ChildState::Stopped;
            }
        }
        if self.no_child_process_left() {
            return Flow::End(end);
        }
        self.schedule(EXIT_TIMEOUT, Timer::ExitDeadline);
        Flow::Continue
    }

    fn no_child_process_left(&self) -> bool {
        self.children.values().all(|c| c.process.is_none())
    }

    pub(super) fn on_child_exited(&mut self, server: ServerId, status: String) -> Flow {
        let Some(child) = self.children.get_mut(&server) else {
            return Flow::Continue;
        };
        child.process = None;
        child.outgoing = None;
        let expected = matches!(child.state, ChildState::Stopped | ChildState::GivenUp)
            || matches!(
                self.lifecycle,
                Lifecycle::ShuttingDown | Lifecycle::Exiting(_)
            );
        let reason = format!("language server {server} exited ({status})");
        self.fail_child_requests(&server, &reason);
        if expected {
            tracing::info!(%server, %status, "language server stopped");
            if let Some(child) = self.children.get_mut(&server) {
                child.state = ChildState::Stopped;
            }
            if self.shutting_down.remove(&server) && self.shutting_down.is_empty() {
                self.finish_shutdown();
            }
            if let Lifecycle::Exiting(end) = self.lifecycle
                && self.no_child_process_left()
            {
                return Flow::End(end);
            }
            return Flow::Continue;
        }
        tracing::warn!(%server, %status, "language server crashed");
        self.end_child_progress(&server);
        self.clear_child_diagnostics(&server, &reason);
        let Some(child) = self.children.get_mut(&server) else {
            return Flow::Continue;
        };
        if child.record_crash(Instant::now()) {
            let crashes = child.crashes.len();
            self.give_up(
                &server,
                format!("it crashed {crashes} times in a short while; last: {status}"),
            );
            return Flow::Continue;
        }
        child.state = ChildState::Restarting;
        let delay = child.restart_backoff();
        let generation = child.generation;
        self.schedule(delay, Timer::RestartChild { server, generation });
        Flow::Continue
    }

    /// Answers every request waiting on this child with an error (invariant 1: a request whose
    /// server died still gets exactly one response). Queued requests go too; queued
    /// notifications stay for the restarted process.
    pub(super) fn fail_child_requests(&mut self, server: &ServerId, reason: &str) {
        let Some(child) = self.children.get_mut(server) else {
            return;
        };
        let pending: Vec<(i64, PendingChildRequest)> = child.pending.drain().collect();
        child
            .queued
            .retain(|m| !matches!(m, Message::Request(_) | Message::Response(_)));
        for (cid, purpose) in pending {
            match purpose {
                PendingChildRequest::Editor { editor_id } => {
                    let error = ResponseError::new(error_code::REQUEST_FAILED, reason.to_owned());
                    self.part_done(editor_id, server, cid, Err(error));
                }
                PendingChildRequest::Initialize => {
                    if self.initializing.remove(server) && self.initializing.is_empty() {
                        self.finish_initialize();
                    }
                }
                PendingChildRequest::Shutdown => {
                    if self.shutting_down.remove(server) && self.shutting_down.is_empty() {
                        self.finish_shutdown();
                    }
                }
                PendingChildRequest::PullDiagnostics { .. } => {}
            }
        }
    }

    /// Stops a server for good and tells the user which one and why, with its last output.
    pub(super) fn give_up(&mut self, server: &ServerId, reason: String) {
        let Some(child) = self.children.get_mut(server) else {
            return;
        };
        child.state = ChildState::GivenUp;
        if let Some(process) = &mut child.process {
            process.kill();
        }
        let tail = child.stderr_tail_text();
        let program = child.config.program.display().to_string();
        child.gave_up_reason = Some(reason.clone());
        self.fail_child_requests(
            server,
            &format!("language server {server} stopped: {reason}"),
        );
        if let Some(child) = self.children.get_mut(server) {
            child.queued.clear();
        }
        self.clear_child_diagnostics(server, &reason);
        let mut message =
            format!("tack: language server '{server}' ({program}) was stopped: {reason}.");
        if !tail.is_empty() {
            message.push_str("\nIts last output:\n");
            message.push_str(&tail);
        }
        tracing::error!("{message}");
        self.show_message(1, message);
        if self.initializing.remove(server) && self.initializing.is_empty() {
            self.finish_initialize();
        }
    }

    /// Ends the editor's progress bars of a child that died, so none is left spinning.
    fn end_child_progress(&mut self, server: &ServerId) {
        let tokens: Vec<String> = self
            .progress_tokens
            .iter()
            .filter(|(_, (owner, _))| owner == server)
            .map(|(token, _)| token.clone())
            .collect();
        for token in tokens {
            self.progress_tokens.remove(&token);
            self.notify_editor(
                "$/progress",
                &serde_json::json!({ "token": token, "value": { "kind": "end" } }),
            );
        }
    }
}
