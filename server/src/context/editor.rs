//! The context of an editor run: the run's prompt, then the items assembled for its
//! document and range, with definitions from the language servers of the session.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{
    ContextItem, ContextRequest, ContextSettings, DocumentView, Intent, MAX_NAMES, Sources,
    assemble, names_used, render_for_model, resolve_definitions,
};
use crate::agent::LanguageFeedback;
use crate::agent::feedback::FeedbackDiagnostic;
use crate::documents::Range;
use crate::syntax::{FileTags, Language, RepoIndex};

/// Everything the main loop hands the task that assembles a run's turn.
pub struct EditorTurn {
    pub root: PathBuf,
    pub uri: String,
    pub range: Range,
    pub intent: Intent,
    /// The run's prompt (it quotes the lines it is about).
    pub prompt: String,
    /// The document's text (the editor's buffer, else the file); `None`: unreadable.
    pub text: Option<String>,
    /// The open document's tags, from its incrementally kept tree.
    pub tags: Option<Arc<FileTags>>,
    pub diagnostics: Vec<FeedbackDiagnostic>,
    pub settings: ContextSettings,
    pub index: Arc<Mutex<Option<RepoIndex>>>,
}

/// The user turn for an editor run: its prompt with the assembled context (just the prompt
/// when the document cannot be read).
pub async fn editor_turn(
    turn: EditorTurn,
    feedback: &dyn LanguageFeedback,
) -> (String, Vec<crate::agent::protocol::ContextItem>) {
    let Some(text) = turn.text.clone() else {
        return (turn.prompt, Vec::new());
    };
    let path = url::Url::parse(&turn.uri)
        .ok()
        .and_then(|u| u.to_file_path().ok());
    let language = path.as_deref().and_then(Language::from_path);
    let tags = turn.tags.clone().or_else(|| {
        language
            .and_then(|l| crate::syntax::tags::tag_text(l, text.as_bytes()).ok())
            .map(Arc::new)
    });
    let relative = path
        .as_deref()
        .and_then(|p| crate::syntax::repo_map::relative_path(&turn.root, p))
        .unwrap_or_else(|| turn.uri.clone());
    let view = DocumentView {
        uri: &turn.uri,
        relative: &relative,
        text: &text,
        tags: tags.as_deref(),
    };
    let uses = names_used(&view, turn.range, MAX_NAMES);
    let deadline = Instant::now() + turn.settings.lsp_timeout;
    let resolved = resolve_definitions(feedback, &turn.uri, &uses, deadline).await;
    let started = Instant::now();
    let fallback = turn.prompt.clone();
    let assembled = tokio::task::spawn_blocking(move || {
        let mut index = turn
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Built at the first opened document; kept current as files are saved.
        if index.is_none() {
            *index = Some(super::cli::build_index(&turn.root, &turn.settings));
        }
        if let (Some(index), Some(language), Some(tags)) = (index.as_mut(), language, &tags) {
            // The editor's unsaved text counts.
            index.update_tags(&relative, language, tags.clone());
        }
        let request = ContextRequest {
            uri: turn.uri.clone(),
            range: turn.range,
            intent: turn.intent,
            instruction: turn.prompt.clone(),
            budget: turn.settings.budget,
            repo_map_tokens: turn.settings.repo_map_tokens,
            quote_selection: false,
        };
        let read = |p: &std::path::Path| std::fs::read_to_string(p).ok();
        let items = assemble(
            &request,
            &Sources {
                root: &turn.root,
                document: DocumentView {
                    uri: &turn.uri,
                    relative: &relative,
                    text: &text,
                    tags: tags.as_deref(),
                },
                resolved: &resolved,
                diagnostics: &turn.diagnostics,
                index: index.as_ref(),
                read: &read,
            },
        );
        for item in &items {
            tracing::info!(
                kind = item.kind.as_str(),
                uri = item.uri.as_deref().unwrap_or(""),
                reason = item.reason,
                tokens = item.tokens,
                hash = item.content_hash,
                "context item"
            );
        }
        let sent = items.iter().map(ContextItem::as_sent).collect();
        (render_for_model(&items), sent)
    })
    .await;
    tracing::debug!(elapsed = ?started.elapsed(), "context assembled");
    assembled.unwrap_or_else(|error| {
        tracing::warn!(%error, "context not assembled");
        (fallback, Vec::new())
    })
}
