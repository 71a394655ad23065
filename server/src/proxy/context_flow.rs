//! The syntax side of one editor session: parse trees of the open documents (reparsed
//! incrementally on every change), the workspace's tags index, and the context an editor
//! run's first user turn carries (assembled in a task, see `context::editor_turn`).
//!
//! A run started from a code action or command knows its document and range: the turn the
//! session gets is the run's prompt with the assembled context items. A cancel that arrives
//! while the context is being assembled still cancels the run: the task then sends the bare
//! prompt followed by a cancel, so the session starts and stops the turn as usual.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use super::main_loop::Proxy;
use crate::agent::feedback::FeedbackDiagnostic;
use crate::agent::{DraftSet, Severity, Submission};
use crate::context::{ContextSettings, Intent};
use crate::documents::{Position, Range};
use crate::surfaces::EditorFeedback;
use crate::syntax::{OpenTrees, RepoIndex};

/// What one editor session keeps of syntax.
#[derive(Default)]
pub struct EditorSyntax {
    pub trees: OpenTrees,
    /// Built at the first run (from the tags cache when warm), refreshed at each run.
    pub index: Arc<Mutex<Option<RepoIndex>>>,
    /// The place of the run being started (set by the command, taken by the run).
    pub next_request: Option<(String, Range, Intent)>,
    /// Wakes the assembling task of the current run when the run is cancelled.
    assembling: Option<Arc<Notify>>,
    /// The index build was started (at the first opened document).
    index_started: bool,
}

/// The document, range and intent of a tack command, when it has them.
pub fn request_of(command: &str, argument: &Value) -> Option<(String, Range, Intent)> {
    let uri = argument["uri"]
        .as_str()
        .filter(|u| !u.is_empty())?
        .to_owned();
    let range_of = |value: &Value| serde_json::from_value::<Range>(value.clone()).ok();
    let zero = Range {
        start: Position {
            line: 0,
            character: 0,
        },
        end: Position {
            line: 0,
            character: 0,
        },
    };
    let (range, intent) = match command {
        "tack.fix" => (range_of(&argument["diagnostic"]["range"])?, Intent::Fix),
        "tack.fixFile" => (zero, Intent::FixFile),
        "tack.explain" => (range_of(&argument["range"])?, Intent::Explain),
        "tack.refactor" => (range_of(&argument["range"])?, Intent::Refactor),
        "tack.ask" => (range_of(&argument["range"]).unwrap_or(zero), Intent::Ask),
        "tack.instruction" => {
            let line = u32::try_from(argument["line"].as_u64()?).ok()?;
            let at = Position { line, character: 0 };
            (Range { start: at, end: at }, Intent::Instruction)
        }
        _ => return None,
    };
    Some((uri, range, intent))
}

impl Proxy {
    pub(super) fn syntax_opened(&mut self, uri: &str) {
        if let Some(document) = self.documents.get(uri) {
            self.syntax.trees.open(document);
        }
        self.start_index_build();
    }

    /// Builds the tags index in the background, once (from the tags cache when warm), so a
    /// run finds it ready.
    fn start_index_build(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        if std::mem::replace(&mut self.syntax.index_started, true) {
            return;
        }
        let (settings, _) = ContextSettings::from_config(self.config.section("context"));
        let index = self.syntax.index.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(crate::context::cli::build_index(&root, &settings));
            }
        });
    }

    /// A saved file's tags again (the index follows files as they change on disk).
    pub(super) fn syntax_saved(&mut self, uri: &str) {
        let (Some(root), Ok(url)) = (self.root.clone(), url::Url::parse(uri)) else {
            return;
        };
        let Some(relative) = url
            .to_file_path()
            .ok()
            .and_then(|path| crate::syntax::repo_map::relative_path(&root, &path))
        else {
            return;
        };
        let index = self.syntax.index.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(index) = slot.as_mut() {
                if let Err(error) = index.update_file(&relative) {
                    tracing::debug!(%error, "index not updated");
                }
                if let Err(error) = index.save_cache() {
                    tracing::debug!(%error, "tags cache not saved");
                }
            }
        });
    }

    /// After a `didChange`, with where the store says its changes fell.
    pub(super) fn syntax_changed(&mut self, uri: &str, edits: &crate::documents::TextEdits) {
        if let Some(document) = self.documents.get(uri) {
            self.syntax.trees.change(edits, document);
        }
    }

    pub(super) fn syntax_closed(&mut self, uri: &str) {
        self.syntax.trees.close(uri);
    }

    /// A run's cancel: the task assembling its context stops and cancels the turn.
    pub(super) fn cancel_context_assembly(&mut self) {
        if let Some(notify) = self.syntax.assembling.take() {
            notify.notify_one();
        }
    }

    /// Sends the run's user turn: with the assembled context when the command named a
    /// place (in a task), else `prompt` at once. `false` when the session takes no turns.
    pub(super) fn send_user_turn(
        &mut self,
        submissions: mpsc::Sender<Submission>,
        prompt: String,
    ) -> bool {
        let request = self.syntax.next_request.take();
        let (Some((uri, range, intent)), Some(root), Some(agent)) =
            (request, self.root.clone(), self.agent.as_ref())
        else {
            return submissions
                .try_send(Submission::UserTurn {
                    text: prompt,
                    context: Vec::new(),
                })
                .is_ok();
        };
        if submissions.is_closed() {
            return false;
        }
        let (settings, warnings) = ContextSettings::from_config(self.config.section("context"));
        for warning in warnings {
            tracing::warn!(%warning, "configuration");
        }
        let text = match self.documents.get(&uri) {
            Some(document) => Some(document.text_string()),
            None => url::Url::parse(&uri)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .and_then(|path| std::fs::read_to_string(path).ok()),
        };
        let tags = self
            .documents
            .get(&uri)
            .and_then(|document| self.syntax.trees.tags(document));
        let diagnostics: Vec<FeedbackDiagnostic> = self
            .diagnostics
            .merged(&uri)
            .into_iter()
            .map(|d| FeedbackDiagnostic {
                severity: Severity::from_lsp(d.severity),
                line: d.range.start.line + 1,
                message: d.message,
                source: d.source,
            })
            .collect();
        let feedback = EditorFeedback::new(
            self.events.clone(),
            self.handle(),
            agent.buffers.clone(),
            Arc::new(DraftSet::default()),
        );
        let notify = Arc::new(Notify::new());
        self.syntax.assembling = Some(notify.clone());
        let editor_turn = crate::context::EditorTurn {
            root,
            uri,
            range,
            intent,
            prompt: prompt.clone(),
            text,
            tags,
            diagnostics,
            settings,
            index: self.syntax.index.clone(),
        };
        tokio::spawn(async move {
            tokio::select! {
                (text, context) = crate::context::editor_turn(editor_turn, &feedback) => {
                    let _ = submissions.send(Submission::UserTurn { text, context }).await;
                }
                _ = notify.notified() => {
                    let _ = submissions.send(Submission::UserTurn { text: prompt, context: Vec::new() }).await;
                    let _ = submissions.send(Submission::Cancel).await;
                }
            }
        });
        true
    }
}
