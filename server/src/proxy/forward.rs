//! Forwarding what tack does not handle itself: editor requests to the right children (one
//! or several, merged), their answers back, editor notifications, editor answers to child
//! requests, and cancellation with ids mapped in both directions.

use super::child::{ChildState, PendingChildRequest};
use super::main_loop::{EditorBound, Inflight, Proxy};
use super::merge::{self, Part};
use super::routing::{self, Strategy};
use crate::jsonrpc::{
    Message, Notification, Request, RequestId, Response, ResponseError, error_code,
};
use crate::server_id::ServerId;
use serde::Deserialize;
use serde_json::value::RawValue;

impl Proxy {
    pub(super) fn forward_editor_request(&mut self, mut request: Request) {
        if self.inflight.contains_key(&request.id) {
            return self.respond_error(
                request.id.clone(),
                error_code::INVALID_REQUEST,
                format!("request id {} is already in use", request.id),
            );
        }
        let method = request.method.clone();
        let method = method.as_str();
        let targets: Vec<ServerId>;
        let mut merge_kind = None;
        if routing::is_resolve(method) {
            let tagged = request.params.as_deref().and_then(merge::untag);
            targets = match tagged {
                Some((server, params)) => {
                    request.params = Some(params);
                    vec![server]
                }
                None => self
                    .capable_servers(None, method)
                    .into_iter()
                    .take(1)
                    .collect(),
            };
        } else if method == "workspace/executeCommand" {
            targets = self
                .command_owner(request.params.as_deref())
                .into_iter()
                .collect();
            if targets.is_empty() {
                let command = command_name(request.params.as_deref()).unwrap_or_default();
                return self.respond_error(
                    request.id,
                    error_code::INVALID_PARAMS,
                    format!("no language server offers the command {command:?}"),
                );
            }
        } else {
            let uri = routing::document_uri(request.params.as_deref());
            let language = uri.as_deref().and_then(|uri| self.language_for(uri));
            let mut candidates = if uri.is_some() || routing::is_workspace_wide(method) {
                self.capable_servers(language.as_deref(), method)
            } else {
                self.custom_method_owner(method).into_iter().collect()
            };
            if method.starts_with("textDocument/semanticTokens")
                && let Some(owner) = &self.merged.semantic_tokens_owner
                && candidates.contains(owner)
            {
                candidates = vec![owner.clone()];
            }
            match routing::strategy(method) {
                Strategy::FanOut(kind) if candidates.len() > 1 => {
                    merge_kind = Some(kind);
                    targets = candidates;
                }
                _ => targets = candidates.into_iter().take(1).collect(),
            }
        }
        if targets.is_empty() {
            if routing::is_standard(&request.method) {
                // No server offers it: an empty answer is what the editor can use.
                return self.respond_value(request.id, &serde_json::Value::Null);
            }
            return self.respond_error(
                request.id,
                error_code::METHOD_NOT_FOUND,
                format!("no language server handles {}", request.method),
            );
        }
        self.dispatch(request, targets, merge_kind);
    }

    /// Sends a request to the targets and records what waits on their answers.
    fn dispatch(
        &mut self,
        request: Request,
        targets: Vec<ServerId>,
        merge: Option<routing::MergeKind>,
    ) {
        let mut inflight = Inflight {
            method: request.method.clone(),
            merge,
            waiting: Vec::with_capacity(targets.len()),
            parts: Vec::with_capacity(targets.len()),
            order: targets.clone(),
            appended: Vec::new(),
        };
        for server in targets {
            let Some(child) = self.children.get_mut(&server) else {
                continue;
            };
            let cid = child.allocate_request(PendingChildRequest::Editor {
                editor_id: request.id.clone(),
            });
            inflight.waiting.push((server, child.generation, cid));
            child.send_or_queue(Message::Request(Request {
                id: RequestId::Number(cid),
                method: request.method.clone(),
                params: request.params.clone(),
            }));
        }
        self.inflight.insert(request.id, inflight);
    }

    /// Records one child's answer to an editor request; answers the editor when all are in.
    pub(super) fn part_done(
        &mut self,
        editor_id: RequestId,
        server: &ServerId,
        cid: i64,
        result: Result<Box<RawValue>, ResponseError>,
    ) {
        let Some(inflight) = self.inflight.get_mut(&editor_id) else {
            return;
        };
        inflight
            .waiting
            .retain(|(s, _, waiting_cid)| !(s == server && *waiting_cid == cid));
        inflight.parts.push((server.clone(), result));
        if !inflight.waiting.is_empty() {
            return;
        }
        let Some(mut inflight) = self.inflight.remove(&editor_id) else {
            return;
        };
        let response = match inflight.merge {
            None => match inflight.parts.pop() {
                Some((_, Ok(result))) => Response::ok(editor_id, result),
                Some((_, Err(error))) => Response::error(Some(editor_id), error),
                None => Response::ok_value(editor_id, &serde_json::Value::Null),
            },
            Some(kind) => {
                let order = &inflight.order;
                let mut parts: Vec<Part> = inflight.parts;
                parts.sort_by_key(|(s, _)| order.iter().position(|o| o == s));
                match merge::merge(kind, parts) {
                    Ok(result) => Response::ok(editor_id, result),
                    Err(error) => Response::error(Some(editor_id), error),
                }
            }
        };
        tracing::trace!(method = %inflight.method, "answered");
        let response = if inflight.appended.is_empty() {
            response
        } else {
            with_appended(response, inflight.appended)
        };
        self.respond(response);
    }

    /// Servers of `language` (or all, for `None`) that can answer `method`, in priority order.
    pub(super) fn capable_servers(&self, language: Option<&str>, method: &str) -> Vec<ServerId> {
        let candidates: Vec<ServerId> = match language {
            Some(language) => self
                .language_servers
                .get(language)
                .cloned()
                .unwrap_or_default(),
            None => self.children.keys().cloned().collect(),
        };
        candidates
            .into_iter()
            .filter(|id| {
                self.children.get(id).is_some_and(|c| {
                    c.is_alive()
                        && (c.state != ChildState::Running
                            || super::capabilities::server_supports(&c.capabilities, method)
                            || c.has_dynamic_registration(method))
                })
            })
            .collect()
    }

    /// The server a custom method without a document goes to: the one named by the method's
    /// prefix (`rust-analyzer/…`), else the first running server.
    fn custom_method_owner(&self, method: &str) -> Option<ServerId> {
        if let Some(prefix) = routing::method_prefix(method) {
            let named = ServerId::new(prefix);
            if self.children.get(&named).is_some_and(|c| c.is_alive()) {
                return Some(named);
            }
        }
        self.children
            .values()
            .find(|c| c.is_alive())
            .map(|c| c.id.clone())
    }

    fn command_owner(&self, params: Option<&RawValue>) -> Option<ServerId> {
        let command = command_name(params)?;
        if let Some(owner) = self.merged.command_owners.get(&command)
            && self.children.get(owner).is_some_and(|c| c.is_alive())
        {
            return Some(owner.clone());
        }
        // A server started after `initialize` may own it.
        self.children
            .values()
            .find(|c| {
                c.is_alive()
                    && c.capabilities["executeCommandProvider"]["commands"]
                        .as_array()
                        .is_some_and(|commands| commands.iter().any(|x| x == &command))
            })
            .map(|c| c.id.clone())
    }

    /// The language a document is routed by: the editor's language id when a server serves
    /// it, else the one its file name maps to.
    pub(super) fn language_for(&self, uri: &str) -> Option<String> {
        if let Some(document) = self.documents.get(uri)
            && self.language_servers.contains_key(&document.language_id)
        {
            return Some(document.language_id.clone());
        }
        let path = url::Url::parse(uri).ok()?.to_file_path().ok()?;
        self.config.language_of_path(&path).map(str::to_owned)
    }

    /// Notifications tack does not handle: to the servers of the document's language, or to
    /// every running server when it concerns no document.
    pub(super) fn forward_editor_notification(&mut self, notification: Notification) {
        let uri = routing::document_uri(notification.params.as_deref());
        let language = uri.as_deref().and_then(|uri| self.language_for(uri));
        let targets: Vec<ServerId> = match &language {
            Some(language) => self
                .language_servers
                .get(language)
                .cloned()
                .unwrap_or_default(),
            None => self.children.keys().cloned().collect(),
        };
        for server in targets {
            if let Some(child) = self.children.get_mut(&server)
                && child.is_alive()
            {
                child.send_or_queue(Message::Notification(notification.clone()));
            }
        }
    }

    /// `$/cancelRequest` from the editor: passed to every child still working on that request,
    /// with the id that child knows. The child's answer (usually RequestCancelled) is
    /// forwarded as usual, so the request still gets exactly one response.
    pub(super) fn on_editor_cancel(&mut self, notification: Notification) {
        let Ok(CancelParams { id }) = notification.params_as::<CancelParams>() else {
            return tracing::warn!("$/cancelRequest without a valid id");
        };
        let Some(inflight) = self.inflight.get(&id) else {
            return;
        };
        let waiting = inflight.waiting.clone();
        for (server, generation, cid) in waiting {
            if let Some(child) = self.children.get_mut(&server)
                && child.generation == generation
                && let Ok(n) =
                    Notification::with_value("$/cancelRequest", &serde_json::json!({ "id": cid }))
            {
                child.send_or_queue(Message::Notification(n));
            }
        }
    }

    /// `window/workDoneProgress/cancel`: to the child that created the token, under its own
    /// token; tokens tack did not map (created by the editor) go to every running child.
    pub(super) fn on_progress_cancel(&mut self, notification: Notification) {
        #[derive(Deserialize)]
        struct Params {
            token: serde_json::Value,
        }
        let Ok(Params { token }) = notification.params_as::<Params>() else {
            return;
        };
        if self.cancel_by_token(&token) {
            return;
        }
        if let Some(key) = token.as_str()
            && let Some((server, original)) = self.progress_tokens.get(key).cloned()
        {
            if let Some(child) = self.children.get_mut(&server)
                && let Ok(n) = Notification::with_value(
                    "window/workDoneProgress/cancel",
                    &serde_json::json!({ "token": original }),
                )
            {
                child.send_or_queue(Message::Notification(n));
            }
            return;
        }
        self.forward_editor_notification(notification);
    }

    /// The editor answered a request tack forwarded from a child: back to that child with
    /// the child's own id, result untouched.
    pub(super) fn on_editor_response(&mut self, response: Response) {
        let Some(id) = response.id.clone() else {
            return tracing::warn!(error = ?response.error, "the editor sent an error without an id");
        };
        let Some(bound) = self.editor_bound.remove(&id) else {
            return tracing::warn!(%id, "the editor answered a request tack did not send");
        };
        match bound {
            EditorBound::Surface(purpose) => self.on_surface_answer(purpose, response),
            EditorBound::Ignored => {}
            EditorBound::FromChild {
                server,
                generation,
                child_id,
            } => {
                let Some(child) = self.children.get_mut(&server) else {
                    return;
                };
                if child.generation != generation {
                    return tracing::debug!(%server, "answer for a server process that has exited dropped");
                }
                child.send(Message::Response(Response {
                    id: Some(child_id),
                    result: response.result,
                    error: response.error,
                }));
            }
        }
    }

    /// Sends a child's request on to the editor under a fresh id.
    pub(super) fn forward_child_request(
        &mut self,
        server: &ServerId,
        generation: u32,
        request: Request,
    ) {
        let id = RequestId::Number(self.next_editor_bound_id);
        self.next_editor_bound_id += 1;
        self.editor_bound.insert(
            id.clone(),
            EditorBound::FromChild {
                server: server.clone(),
                generation,
                child_id: request.id,
            },
        );
        self.send_to_editor(Message::Request(Request {
            id,
            method: request.method,
            params: request.params,
        }));
    }
}

impl Proxy {
    /// `textDocument/codeAction`: the children's actions (merged) followed by tack's own.
    pub(super) fn on_code_action(&mut self, request: Request) {
        let params = request
            .params_as::<serde_json::Value>()
            .unwrap_or(serde_json::Value::Null);
        let ours = self.tack_code_actions(&params);
        if ours.is_empty() {
            return self.forward_editor_request(request);
        }
        let language = params["textDocument"]["uri"]
            .as_str()
            .and_then(|uri| self.language_for(uri));
        if self
            .capable_servers(language.as_deref(), &request.method)
            .is_empty()
        {
            return self.respond_value(request.id, &ours);
        }
        let id = request.id.clone();
        self.forward_editor_request(request);
        if let Some(inflight) = self.inflight.get_mut(&id) {
            inflight.appended = ours;
        }
    }
}

/// The children's answer with tack's items after theirs (tack's alone if theirs failed).
fn with_appended(response: Response, appended: Vec<serde_json::Value>) -> Response {
    let Some(id) = response.id.clone() else {
        return response;
    };
    let mut items: Vec<serde_json::Value> = match (&response.error, &response.result) {
        (None, Some(raw)) => serde_json::from_str(raw.get()).unwrap_or_default(),
        _ => Vec::new(),
    };
    items.extend(appended);
    Response::ok_value(id, &items)
}

#[derive(Deserialize)]
struct CancelParams {
    id: RequestId,
}

fn command_name(params: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Params {
        command: String,
    }
    serde_json::from_str::<Params>(params?.get())
        .ok()
        .map(|p| p.command)
}
