//! Document synchronization: `didOpen`, `didChange`, `didSave`, `didClose`, `willSave`.
//!
//! tack keeps every open buffer in its document store and asks the editor for incremental
//! changes. Each child gets the stream it asked for: incremental changes forwarded as sent,
//! or the full text for servers that want full sync. A child that starts or restarts gets
//! `didOpen` for every open document of its languages, with the current text.

use super::capabilities::SyncKind;
use super::child::ChildState;
use super::main_loop::Proxy;
use crate::documents::ContentChange;
use crate::jsonrpc::{Message, Notification};
use crate::server_id::ServerId;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DidOpenParams {
    text_document: OpenedDocument,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenedDocument {
    uri: String,
    language_id: String,
    version: i32,
    text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DidChangeParams {
    text_document: VersionedDocument,
    content_changes: Vec<ContentChange>,
}

#[derive(Deserialize)]
struct VersionedDocument {
    uri: String,
    version: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentParams {
    text_document: DocumentId,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct DocumentId {
    uri: String,
}

impl Proxy {
    /// The running servers for a document's language.
    pub(super) fn running_servers_for(&self, uri: &str) -> Vec<ServerId> {
        let Some(language) = self.language_for(uri) else {
            return Vec::new();
        };
        self.language_servers
            .get(&language)
            .into_iter()
            .flatten()
            .filter(|id| {
                self.children
                    .get(*id)
                    .is_some_and(|c| c.state == ChildState::Running)
            })
            .cloned()
            .collect()
    }

    pub(super) fn on_did_open(&mut self, notification: Notification) {
        let Ok(DidOpenParams { text_document: doc }) = notification.params_as() else {
            return tracing::warn!("didOpen with invalid params ignored");
        };
        let uri = doc.uri.clone();
        self.documents
            .open(doc.uri, doc.language_id, doc.version, &doc.text);
        self.syntax_opened(&uri);
        if let Some(language) = self.language_for(&uri) {
            self.ensure_language_started(&language);
        }
        self.share_buffer(&uri);
        // The servers may have a draft of it open: the editor's text replaces it.
        if self.undraft(&uri) {
            self.resend_full_text(&uri);
            return;
        }
        for server in self.running_servers_for(&uri) {
            if let Some(child) = self.children.get_mut(&server)
                && child.sync.open_close
            {
                child.send(Message::Notification(notification.clone()));
            }
            self.schedule_pull(&server, &uri);
        }
    }

    pub(super) fn on_did_change(&mut self, notification: Notification) {
        let Ok(params) = notification.params_as::<DidChangeParams>() else {
            return tracing::warn!("didChange with invalid params ignored");
        };
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        let applied = match self
            .documents
            .change(&uri, version, &params.content_changes)
        {
            Ok(edits) => {
                self.syntax_changed(&uri, &edits);
                true
            }
            Err(error) => {
                tracing::warn!(%error, uri, "didChange not applied to tack's copy");
                false
            }
        };
        self.share_buffer(&uri);
        if self.undraft(&uri) {
            return self.resend_full_text(&uri);
        }
        let servers = self.running_servers_for(&uri);
        // The whole text is built only when a server asked for full sync: on a large file it
        // would cost more than everything else a keystroke does.
        let wants_full = servers.iter().any(|id| {
            self.children
                .get(id)
                .is_some_and(|c| c.sync.change == SyncKind::Full)
        });
        let full_text = if applied && wants_full {
            self.documents.get(&uri).map(|d| d.text_string())
        } else {
            None
        };
        for server in servers {
            let Some(child) = self.children.get_mut(&server) else {
                continue;
            };
            match child.sync.change {
                SyncKind::Incremental => child.send(Message::Notification(notification.clone())),
                SyncKind::Full => {
                    let Some(text) = &full_text else { continue };
                    if let Ok(n) = Notification::with_value(
                        "textDocument/didChange",
                        &json!({
                            "textDocument": { "uri": uri, "version": version },
                            "contentChanges": [{ "text": text }],
                        }),
                    ) {
                        child.send(Message::Notification(n));
                    }
                }
                SyncKind::None => {}
            }
            self.schedule_pulls_after_change(&server, &uri);
        }
    }

    pub(super) fn on_did_save(&mut self, notification: Notification) {
        let Ok(params) = notification.params_as::<DocumentParams>() else {
            return tracing::warn!("didSave with invalid params ignored");
        };
        let uri = params.text_document.uri;
        self.syntax_saved(&uri);
        for server in self.running_servers_for(&uri) {
            let text = self.documents.get(&uri).map(|d| d.text_string());
            let Some(child) = self.children.get_mut(&server) else {
                continue;
            };
            let Some(save) = &child.sync.save else {
                continue;
            };
            if save.include_text
                && params.text.is_none()
                && let Some(text) = text
            {
                if let Ok(n) = Notification::with_value(
                    "textDocument/didSave",
                    &json!({ "textDocument": { "uri": uri }, "text": text }),
                ) {
                    child.send(Message::Notification(n));
                }
            } else {
                child.send(Message::Notification(notification.clone()));
            }
        }
    }

    pub(super) fn on_did_close(&mut self, notification: Notification) {
        let Ok(params) = notification.params_as::<DocumentParams>() else {
            return tracing::warn!("didClose with invalid params ignored");
        };
        let uri = params.text_document.uri;
        let servers = self.running_servers_for(&uri);
        self.documents.close(&uri);
        self.syntax_closed(&uri);
        self.share_buffer(&uri);
        if self.keep_draft_open(&uri) {
            // The agent's draft stays open in the servers until its run ends.
            return;
        }
        for server in servers {
            if let Some(child) = self.children.get_mut(&server)
                && child.sync.open_close
            {
                child.send(Message::Notification(notification.clone()));
            }
        }
    }

    pub(super) fn on_will_save(&mut self, notification: Notification) {
        let Ok(params) = notification.params_as::<DocumentParams>() else {
            return;
        };
        for server in self.running_servers_for(&params.text_document.uri) {
            if let Some(child) = self.children.get_mut(&server)
                && child.sync.will_save
            {
                child.send(Message::Notification(notification.clone()));
            }
        }
    }

    /// The editor's whole text of `uri` to every server, replacing what they had (a draft).
    fn resend_full_text(&mut self, uri: &str) {
        let Some(document) = self.documents.get(uri) else {
            return;
        };
        let params = json!({
            "textDocument": { "uri": uri, "version": document.version },
            "contentChanges": [{ "text": document.text_string() }],
        });
        let Ok(notification) = Notification::with_value("textDocument/didChange", &params) else {
            return;
        };
        for server in self.running_servers_for(uri) {
            if let Some(child) = self.children.get_mut(&server) {
                child.send(Message::Notification(notification.clone()));
            }
            self.schedule_pulls_after_change(&server, uri);
        }
    }

    /// `didOpen` for every open document of the child's languages, with the current text.
    pub(super) fn open_documents_in(&mut self, server: &ServerId) {
        let mut opens = Vec::new();
        for document in self.documents.iter() {
            let Some(language) = self.language_for(&document.uri) else {
                continue;
            };
            if self
                .children
                .get(server)
                .is_some_and(|c| c.serves(&language))
            {
                opens.push(json!({
                    "textDocument": {
                        "uri": document.uri,
                        "languageId": document.language_id,
                        "version": document.version,
                        "text": document.text_string(),
                    }
                }));
            }
        }
        let Some(child) = self.children.get_mut(server) else {
            return;
        };
        if !child.sync.open_close {
            return;
        }
        for params in opens {
            if let Ok(n) = Notification::with_value("textDocument/didOpen", &params) {
                child.send(Message::Notification(n));
            }
        }
    }
}
