//! Diagnostics from children into the store, and the merged set out to the editor.
//!
//! Push (`textDocument/publishDiagnostics`) and pull (`textDocument/diagnostic`) both land in
//! the store keyed by (server, uri). tack pulls by itself from servers that only offer pull
//! (such as `tsc --lsp`), after every open and change (of any of its documents, when its
//! diagnostics reach across files) and when the server asks for a refresh
//! (`workspace/diagnostic/refresh`, answered by tack), and always pushes one merged set per
//! uri to the editor — so the editor needs no pull support and never sees two sets.

use super::child::{ChildState, PendingChildRequest};
use super::main_loop::{PULL_DEBOUNCE, Proxy, Timer};
use crate::diagnostics::Diagnostic;
use crate::jsonrpc::{Message, Notification, Request, RequestId, Response, error_code};
use crate::server_id::ServerId;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct PublishParams {
    uri: String,
    #[serde(default)]
    version: Option<i32>,
    diagnostics: Vec<Value>,
}

impl Proxy {
    pub(super) fn on_publish_diagnostics(&mut self, server: &ServerId, notification: Notification) {
        let params = match notification.params_as::<PublishParams>() {
            Ok(params) => params,
            Err(error) => {
                return tracing::warn!(%server, %error, "publishDiagnostics with invalid params ignored");
            }
        };
        let diagnostics = parse_diagnostics(server, params.diagnostics);
        if self
            .diagnostics
            .publish(server, &params.uri, params.version, diagnostics)
            && !self.is_drafted(&params.uri)
        {
            self.publish_merged(&params.uri, params.version);
        }
    }

    /// Sends the editor the merged set for a uri. The version is included when it is the
    /// document's current one.
    pub(super) fn publish_merged(&mut self, uri: &str, version: Option<i32>) {
        let current = self.documents.get(uri).map(|d| d.version);
        let version = version.filter(|v| Some(*v) == current);
        if self.is_drafted(uri) {
            // The servers judge the agent's draft; the editor keeps its last set until the
            // run ends.
            return;
        }
        let mut diagnostics = self.editor_facing_diagnostics(uri);
        diagnostics.extend(self.proposal_diagnostics(uri));
        let mut params = json!({ "uri": uri, "diagnostics": diagnostics });
        if let Some(version) = version {
            params["version"] = json!(version);
        }
        self.notify_editor("textDocument/publishDiagnostics", &params);
    }

    /// Drops a failed server's diagnostics and re-sends the merged sets it was part of.
    pub(super) fn clear_child_diagnostics(&mut self, server: &ServerId, reason: &str) {
        for uri in self.diagnostics.server_failed(server, reason.to_owned()) {
            self.publish_merged(&uri, None);
        }
    }

    fn is_pull_server(&self, server: &ServerId) -> bool {
        self.children.get(server).is_some_and(|c| {
            let advertised = &c.capabilities["diagnosticProvider"];
            (!advertised.is_null() && advertised != &Value::Bool(false))
                || c.has_dynamic_registration("textDocument/diagnostic")
        })
    }

    /// Schedules a pull shortly, so a burst of changes costs one pull.
    pub(super) fn schedule_pull(&mut self, server: &ServerId, uri: &str) {
        if self.is_pull_server(server)
            && self
                .pulls_scheduled
                .insert((server.clone(), uri.to_owned()))
        {
            self.schedule(
                PULL_DEBOUNCE,
                Timer::PullDiagnostics {
                    server: server.clone(),
                    uri: uri.to_owned(),
                },
            );
        }
    }

    /// After a change to `uri`: pulls it again, and every other open document of the server
    /// too when the server says a change in one file can change another's diagnostics
    /// (`diagnosticProvider.interFileDependencies`; `tsc --lsp` relies on this and sends no
    /// refresh).
    pub(super) fn schedule_pulls_after_change(&mut self, server: &ServerId, uri: &str) {
        let across_files = self.children.get(server).is_some_and(|c| {
            c.capabilities["diagnosticProvider"]["interFileDependencies"] == Value::Bool(true)
        });
        if across_files {
            self.pull_all_open(server);
        } else {
            self.schedule_pull(server, uri);
        }
    }

    pub(super) fn pull_all_open(&mut self, server: &ServerId) {
        if !self.is_pull_server(server) {
            return;
        }
        let uris: Vec<String> = self.documents.iter().map(|d| d.uri.clone()).collect();
        for uri in uris {
            if self
                .language_for(&uri)
                .is_some_and(|l| self.children.get(server).is_some_and(|c| c.serves(&l)))
            {
                self.schedule_pull(server, &uri);
            }
        }
    }

    pub(super) fn pull_diagnostics(&mut self, server: &ServerId, uri: &str) {
        let version = match self.documents.get(uri) {
            Some(document) => Some(document.version),
            None => return,
        };
        let Some(child) = self.children.get_mut(server) else {
            return;
        };
        if child.state != ChildState::Running {
            return;
        }
        let cid = child.allocate_request(PendingChildRequest::PullDiagnostics {
            uri: uri.to_owned(),
            version,
        });
        let params =
            serde_json::value::to_raw_value(&json!({ "textDocument": { "uri": uri } })).ok();
        child.send(Message::Request(Request::new(
            RequestId::Number(cid),
            "textDocument/diagnostic",
            params,
        )));
    }

    pub(super) fn on_pull_response(
        &mut self,
        server: &ServerId,
        uri: &str,
        version: Option<i32>,
        response: Response,
    ) {
        if let Some(error) = response.error {
            let retrigger = error
                .data
                .as_ref()
                .and_then(|d| d["retriggerRequest"].as_bool());
            if error.code == error_code::SERVER_CANCELLED && retrigger != Some(false) {
                self.schedule_pull(server, uri);
            } else {
                tracing::debug!(%server, uri, ?error, "pull diagnostics failed");
            }
            return;
        }
        let report: Value = response
            .result
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null);
        let diagnostics = match report["kind"].as_str() {
            Some("full") => {
                let items = report["items"].as_array().cloned().unwrap_or_default();
                parse_diagnostics(server, items)
            }
            Some("unchanged") => match self.diagnostics.for_server(server, uri) {
                Some((_, previous)) => previous,
                None => Vec::new(),
            },
            _ => return tracing::warn!(%server, uri, "pull diagnostics answer without a kind"),
        };
        if self.diagnostics.publish(server, uri, version, diagnostics) {
            self.publish_merged(uri, version);
        }
    }

    /// The editor pulled anyway (tack does not advertise pull): answer with the merged set.
    pub(super) fn on_pull_diagnostic_request(&mut self, request: Request) {
        let uri = super::routing::document_uri(request.params.as_deref()).unwrap_or_default();
        let items = self.editor_facing_diagnostics(&uri);
        self.respond_value(request.id, &json!({ "kind": "full", "items": items }));
    }
}

pub(super) fn parse_diagnostics(server: &ServerId, raw: Vec<Value>) -> Vec<Diagnostic> {
    raw.into_iter()
        .filter_map(|value| match Diagnostic::from_raw(value) {
            Ok(diagnostic) => Some(diagnostic),
            Err(error) => {
                tracing::warn!(%server, %error, "malformed diagnostic skipped");
                None
            }
        })
        .collect()
}
