//! Messages from a child: its answers to tack's requests, its own requests to the client
//! (forwarded to the editor, or answered by tack where tack knows better), and its
//! notifications (diagnostics into the store, progress with tokens mapped, the rest as is).

use super::child::PendingChildRequest;
use super::main_loop::{EditorBound, Proxy};
use crate::jsonrpc::{
    Incoming, Message, MessageError, Notification, Request, RequestId, Response, ResponseError,
    error_code,
};
use crate::server_id::ServerId;
use serde_json::{Value, json};

impl Proxy {
    pub(super) fn on_child(&mut self, server: ServerId, generation: u32, incoming: Incoming) {
        match incoming {
            Incoming::Message(Message::Response(response)) => {
                self.on_child_response(&server, response)
            }
            Incoming::Message(Message::Request(request)) => {
                self.on_child_request(&server, generation, request)
            }
            Incoming::Message(Message::Notification(notification)) => {
                self.on_child_notification(&server, notification)
            }
            Incoming::Invalid(error) => {
                tracing::warn!(%server, %error, "invalid message from a language server");
                // If it carried the id of a request of ours, that request has failed.
                if let MessageError::InvalidShape {
                    id: Some(RequestId::Number(cid)),
                    ..
                } = &error
                    && self
                        .children
                        .get(&server)
                        .is_some_and(|c| c.pending.contains_key(cid))
                {
                    self.on_child_response(
                        &server,
                        Response::error(
                            Some(RequestId::Number(*cid)),
                            ResponseError::new(
                                error_code::REQUEST_FAILED,
                                format!(
                                    "language server {server} sent an invalid response: {error}"
                                ),
                            ),
                        ),
                    );
                }
            }
            Incoming::Skipped(why) => {
                tracing::warn!(%server, %why, "skipped malformed output of a language server")
            }
            Incoming::Closed(problem) => {
                tracing::debug!(%server, ?problem, "language server output closed")
            }
        }
    }

    fn on_child_response(&mut self, server: &ServerId, response: Response) {
        let Some(RequestId::Number(cid)) = response.id else {
            return tracing::warn!(%server, id = ?response.id, error = ?response.error, "response with an id tack never sent");
        };
        let Some(purpose) = self
            .children
            .get_mut(server)
            .and_then(|c| c.pending.remove(&cid))
        else {
            return tracing::debug!(%server, cid, "response to an unknown or answered request");
        };
        match purpose {
            PendingChildRequest::Editor { editor_id } => {
                let result = match response.error {
                    Some(error) => Err(error),
                    None => Ok(response.result.unwrap_or_default()),
                };
                self.part_done(editor_id, server, cid, result);
            }
            PendingChildRequest::Initialize => self.on_child_initialize_response(server, response),
            PendingChildRequest::Shutdown => self.on_child_shutdown_response(server),
            PendingChildRequest::PullDiagnostics { uri, version } => {
                self.on_pull_response(server, &uri, version, response)
            }
        }
    }

    fn on_child_request(&mut self, server: &ServerId, generation: u32, request: Request) {
        match request.method.as_str() {
            "workspace/configuration" => self.on_configuration_request(server, generation, request),
            "client/registerCapability" => self.on_register_capability(server, generation, request),
            // tack is the client that pulls from this server: it pulls again and pushes the
            // results. The editor does not pull from tack, so it is not asked.
            "workspace/diagnostic/refresh" => {
                self.answer_child(server, request.id, result_response(&Value::Null));
                self.pull_all_open(server);
            }
            "client/unregisterCapability" => {
                // The protocol spells this field "unregisterations".
                if let Ok(params) = request.params_as::<Value>()
                    && let (Some(child), Some(list)) = (
                        self.children.get_mut(server),
                        params["unregisterations"].as_array(),
                    )
                {
                    for item in list {
                        if let Some(id) = item["id"].as_str() {
                            child.registrations.remove(id);
                        }
                    }
                }
                self.forward_child_request(server, generation, request)
            }
            "window/workDoneProgress/create" => {
                let token = request
                    .params_as::<Value>()
                    .map(|p| p["token"].clone())
                    .unwrap_or(Value::Null);
                let mapped = mapped_token(server, &token);
                self.progress_tokens
                    .insert(mapped.clone(), (server.clone(), token.clone()));
                if let Some(child) = self.children.get_mut(server) {
                    child.progress_tokens.insert(token_key(&token));
                }
                let params = serde_json::value::to_raw_value(&json!({ "token": mapped })).ok();
                self.forward_child_request(server, generation, Request { params, ..request })
            }
            _ => self.forward_child_request(server, generation, request),
        }
    }

    /// `workspace/configuration`: answered from the server's `settings` in tack's
    /// configuration when it has any (or when the editor cannot answer); otherwise the
    /// editor's settings are asked for.
    fn on_configuration_request(&mut self, server: &ServerId, generation: u32, request: Request) {
        let settings = self
            .children
            .get(server)
            .map(|c| c.config.settings.clone())
            .unwrap_or(Value::Null);
        let editor_can_answer = self.client_capabilities["workspace"]["configuration"]
            .as_bool()
            .unwrap_or(false);
        let has_settings = settings.as_object().is_some_and(|s| !s.is_empty());
        // Before the editor is ready its answer would come only after `initialized`, and a
        // server that waits for it before answering `initialize` would stall the start.
        if !has_settings && editor_can_answer && self.editor_ready {
            return self.forward_child_request(server, generation, request);
        }
        let items = request
            .params_as::<Value>()
            .ok()
            .and_then(|p| p["items"].as_array().cloned())
            .unwrap_or_default();
        let answers: Vec<Value> = items
            .iter()
            .map(|item| crate::config::settings_section(&settings, item["section"].as_str()))
            .collect();
        self.answer_child(server, request.id, result_response(&answers));
    }

    /// Dynamic registrations are remembered for routing. Pull diagnostics registrations stay
    /// with tack (it pulls and pushes merged results itself); the rest reach the editor.
    fn on_register_capability(&mut self, server: &ServerId, generation: u32, request: Request) {
        let params: Value = request.params_as().unwrap_or(Value::Null);
        let registrations = params["registrations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut for_editor = Vec::new();
        if let Some(child) = self.children.get_mut(server) {
            for registration in registrations {
                let id = registration["id"].as_str().unwrap_or_default().to_owned();
                let method = registration["method"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                child.registrations.insert(id, method.clone());
                if method != "textDocument/diagnostic" {
                    for_editor.push(registration);
                }
            }
        }
        if for_editor.is_empty() {
            self.answer_child(server, request.id, result_response(&Value::Null));
            self.pull_all_open(server);
            return;
        }
        let params = serde_json::value::to_raw_value(&json!({ "registrations": for_editor })).ok();
        self.forward_child_request(server, generation, Request { params, ..request });
    }

    fn answer_child(&mut self, server: &ServerId, id: RequestId, response: Response) {
        if let Some(child) = self.children.get_mut(server) {
            child.send(Message::Response(Response {
                id: Some(id),
                ..response
            }));
        }
    }

    fn on_child_notification(&mut self, server: &ServerId, notification: Notification) {
        match notification.method.as_str() {
            "textDocument/publishDiagnostics" => self.on_publish_diagnostics(server, notification),
            "$/progress" => {
                let Ok(mut params) = notification.params_as::<Value>() else {
                    return;
                };
                let token = params["token"].clone();
                let created_by_child = self
                    .children
                    .get(server)
                    .is_some_and(|c| c.progress_tokens.contains(&token_key(&token)));
                if created_by_child {
                    let mapped = mapped_token(server, &token);
                    if params["value"]["kind"] == "end" {
                        self.progress_tokens.remove(&mapped);
                    }
                    params["token"] = Value::String(mapped);
                    self.notify_editor("$/progress", &params);
                } else {
                    self.send_to_editor(Message::Notification(notification));
                }
            }
            "$/cancelRequest" => {
                let Ok(params) = notification.params_as::<Value>() else {
                    return;
                };
                let Ok(child_id) = serde_json::from_value::<RequestId>(params["id"].clone()) else {
                    return;
                };
                let editor_id = self.editor_bound.iter().find_map(|(editor_id, bound)| {
                    let EditorBound::FromChild {
                        server: s,
                        child_id: c,
                        ..
                    } = bound
                    else {
                        return None;
                    };
                    (s == server && *c == child_id).then(|| editor_id.clone())
                });
                if let Some(editor_id) = editor_id {
                    self.notify_editor("$/cancelRequest", &json!({ "id": editor_id }));
                }
            }
            _ => self.send_to_editor(Message::Notification(notification)),
        }
    }
}

/// The editor-facing name of a progress token a child created: unique across children.
fn mapped_token(server: &ServerId, token: &Value) -> String {
    format!("{server}/{}", token_key(token))
}

fn token_key(token: &Value) -> String {
    match token {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A success response without an id yet (the caller fills it in).
fn result_response(value: &impl serde::Serialize) -> Response {
    match serde_json::value::to_raw_value(value) {
        Ok(raw) => Response {
            id: None,
            result: Some(raw),
            error: None,
        },
        Err(e) => Response::error(
            None,
            ResponseError::new(error_code::INTERNAL_ERROR, e.to_string()),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_mapped_per_server() {
        let a = mapped_token(&ServerId::new("clangd"), &json!(1));
        let b = mapped_token(&ServerId::new("pyright"), &json!(1));
        assert_ne!(a, b);
        assert_eq!(a, "clangd/1");
        assert_eq!(
            mapped_token(&ServerId::new("ra"), &json!("indexing")),
            "ra/indexing"
        );
    }
}
