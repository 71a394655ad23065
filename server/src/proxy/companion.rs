//! Companion mode: the editor keeps running its own language servers for some languages, and
//! tack runs none for them; the editor reports the diagnostics it shows to tack, so the agent
//! sees the same live diagnostics the user does.
//!
//! - **Which languages.** The editor declares them at `initialize`, in
//!   `initializationOptions.editor.companion.languages` (LSP language ids, such as
//!   `["python", "rust"]`). It is the editor's statement of what it runs, so tack reads it
//!   from `initialize` only: a `tack.toml` cannot turn it on, and `tack run` (no editor) never
//!   has it. tack registers no server for those languages: nothing is started for them, at
//!   `initialize` or when one of their documents opens, and nothing is routed to them.
//! - **The report.** The notification `tack/editorDiagnostics` `{uri, version?, diagnostics}`
//!   carries every diagnostic the editor shows for one uri (any source except tack's own
//!   publishes), as LSP `Diagnostic`s; an empty list clears it. It replaces the set of the
//!   source [`EDITOR_SOURCE`] for that uri in the diagnostics store, under the editor's
//!   document version — like any server's publish.
//! - **Who sees it.** The agent: the merged view, the workspace summary, "Fix all errors in
//!   file", and the waits for fresh diagnostics, where the editor's report answers for a file
//!   that is open in the editor and not drafted. The editor never sees its tack's drafts, so
//!   for a drafted file the editor's report does not count (the wait says no server covers
//!   it rather than passing the old text's diagnostics for the draft's). The editor itself is
//!   never sent its own report back: what tack publishes leaves that source out.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::main_loop::Proxy;
use crate::diagnostics::Diagnostic;
use crate::jsonrpc::Notification;
use crate::server_id::ServerId;

/// The notification an editor in companion mode sends.
pub const EDITOR_DIAGNOSTICS: &str = "tack/editorDiagnostics";

/// The source name the editor's report is kept under (a reserved server name).
pub const EDITOR_SOURCE: &str = "editor";

pub fn editor_source() -> ServerId {
    ServerId::new(EDITOR_SOURCE)
}

/// The languages the editor serves itself, from the `initialize` params.
pub fn companion_languages(init_params: &Value) -> Result<BTreeSet<String>, String> {
    let declared = &init_params["initializationOptions"]["editor"]["companion"]["languages"];
    match declared {
        Value::Null => Ok(BTreeSet::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    format!(
                        "initializationOptions.editor.companion.languages must list language ids as strings, found {item}"
                    )
                })
            })
            .collect(),
        _ => Err(
            "initializationOptions.editor.companion.languages must be an array of language ids"
                .to_owned(),
        ),
    }
}

/// The servers whose answer a wait for one file's diagnostics needs. The editor's report
/// counts only when it describes the text the wait is about: the file is open in the editor
/// and the agent has no draft of it.
pub fn servers_to_wait_for(
    mut servers: Vec<ServerId>,
    editor_text_is_current: bool,
) -> Vec<ServerId> {
    if !editor_text_is_current {
        servers.retain(|server| server.as_str() != EDITOR_SOURCE);
    }
    servers
}

#[derive(Deserialize)]
struct EditorDiagnosticsParams {
    uri: String,
    #[serde(default)]
    version: Option<i32>,
    diagnostics: Vec<Value>,
}

impl Proxy {
    /// The languages declared as the editor's own, ignoring a malformed declaration (it is
    /// reported once, at `initialize`, by [`Self::checked_companion_languages`]).
    pub(super) fn companion_languages(&self) -> BTreeSet<String> {
        companion_languages(&self.init_params).unwrap_or_default()
    }

    /// The languages declared as the editor's own; a malformed declaration is shown to the
    /// user and counts as none.
    pub(super) fn checked_companion_languages(&mut self) -> BTreeSet<String> {
        match companion_languages(&self.init_params) {
            Ok(languages) => {
                if !languages.is_empty() {
                    tracing::info!(
                        ?languages,
                        "companion mode: the editor serves these languages itself"
                    );
                }
                languages
            }
            Err(problem) => {
                tracing::warn!("{problem}");
                self.show_message(
                    2,
                    format!("tack: {problem}; tack serves every language itself"),
                );
                BTreeSet::new()
            }
        }
    }

    /// Routing facts for the agent: the editor answers for its own languages.
    pub(super) fn add_companion_routing(&self, servers: &mut BTreeMap<String, Vec<ServerId>>) {
        for language in self.companion_languages() {
            servers.entry(language).or_default().push(editor_source());
        }
    }

    /// `tack/editorDiagnostics`: the editor's diagnostics for one uri replace its previous set.
    pub(super) fn on_editor_diagnostics(&mut self, notification: Notification) {
        let params = match notification.params_as::<EditorDiagnosticsParams>() {
            Ok(params) => params,
            Err(error) => {
                let problem = format!(
                    "{EDITOR_DIAGNOSTICS} ignored: its params must be {{uri, version?, diagnostics}} ({error})"
                );
                tracing::warn!("{problem}");
                return self.notify_editor(
                    "window/logMessage",
                    &json!({ "type": 2, "message": format!("tack: {problem}") }),
                );
            }
        };
        let source = editor_source();
        let diagnostics: Vec<Diagnostic> =
            super::diagnostics_flow::parse_diagnostics(&source, params.diagnostics)
                .into_iter()
                // tack's own markers are not the editor's: a client that forwards them back
                // would otherwise see them twice.
                .filter(|diagnostic| diagnostic.source.as_deref() != Some("tack"))
                .collect();
        tracing::debug!(uri = params.uri, version = ?params.version, count = diagnostics.len(), "editor diagnostics");
        self.diagnostics
            .publish(&source, &params.uri, params.version, diagnostics);
    }

    /// The merged diagnostics for `uri` as the editor is sent them: without the editor's own
    /// report.
    pub(super) fn editor_facing_diagnostics(&self, uri: &str) -> Vec<Value> {
        self.diagnostics
            .merged_raw_without(uri, Some(&editor_source()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_initialization_options_only() {
        let params = json!({ "initializationOptions": { "editor": { "companion": { "languages": ["python", "rust"] } } } });
        assert_eq!(
            companion_languages(&params).unwrap(),
            BTreeSet::from(["python".to_owned(), "rust".to_owned()])
        );
        assert!(companion_languages(&json!({})).unwrap().is_empty());
        assert!(
            companion_languages(&json!({ "initializationOptions": null }))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_malformed_declaration_names_the_key() {
        let not_array = json!({ "initializationOptions": { "editor": { "companion": { "languages": "python" } } } });
        let problem = companion_languages(&not_array).unwrap_err();
        assert!(
            problem.contains("initializationOptions.editor.companion.languages must be an array"),
            "{problem}"
        );
        let not_strings = json!({ "initializationOptions": { "editor": { "companion": { "languages": ["c", 3] } } } });
        let problem = companion_languages(&not_strings).unwrap_err();
        assert!(problem.contains("as strings, found 3"), "{problem}");
    }

    #[test]
    fn the_editor_answers_only_for_its_current_text() {
        let servers = vec![editor_source()];
        assert_eq!(servers_to_wait_for(servers.clone(), true), servers);
        assert!(servers_to_wait_for(servers, false).is_empty());
        let clangd = vec![ServerId::new("clangd")];
        assert_eq!(servers_to_wait_for(clangd.clone(), false), clangd);
    }
}
