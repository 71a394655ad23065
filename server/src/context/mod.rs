//! Context: what the model sees for a request, within a token budget.
//!
//! A request is (uri, range, intent) with the user's instruction. [`assemble`] returns
//! ordered [`ContextItem`]s — instructions, the selection, the enclosing symbol, the
//! definitions the selection uses, the document's diagnostics, the repository map — each
//! with its kind, uri, range, reason, token estimate, content hash and text (the fields the
//! session ledger records per model call). Definitions come from the proxied language
//! server when one answers ([`resolve_definitions`], `textDocument/definition` for every
//! name the selection uses, within a deadline) and from the tree-sitter tags index
//! otherwise.
//!
//! Budget: the instructions and the selection always go in (a huge selection is cut); the
//! enclosing symbol, definitions and diagnostics take what fits, in that order; the
//! repository map gets what is left, at most [`ContextSettings::repo_map_tokens`].
//!
//! - `tokens`: the tokenizer-free token estimate;
//! - `settings`: the `[context]` configuration section;
//! - `editor`: assembling the context of an editor run (documents, LSP, index);
//! - `cli`: `tack context <file>[:line]`.

pub mod cli;
pub mod editor;
pub mod settings;
pub mod tokens;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::agent::LanguageFeedback;
use crate::agent::feedback::FeedbackDiagnostic;
use crate::documents::{Position, Range};
use crate::syntax::repo_map::Focus;
use crate::syntax::{FileTags, Language, RepoIndex, SymbolKind, symbols};
pub use editor::{EditorTurn, editor_turn};
pub use settings::ContextSettings;
use tokens::estimate_tokens;

/// What a context item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextKind {
    Instructions,
    Selection,
    EnclosingSymbol,
    Definition,
    Diagnostics,
    RepoMap,
}

impl ContextKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextKind::Instructions => "instructions",
            ContextKind::Selection => "selection",
            ContextKind::EnclosingSymbol => "enclosing_symbol",
            ContextKind::Definition => "definition",
            ContextKind::Diagnostics => "diagnostics",
            ContextKind::RepoMap => "repo_map",
        }
    }
}

/// One piece of what the model sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextItem {
    pub kind: ContextKind,
    /// The document it comes from (none for instructions and the repository map).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// Why it is in the context, in words.
    pub reason: String,
    /// Estimated tokens of `text`.
    pub tokens: usize,
    /// FNV-1a 64 of `text`, in hex.
    pub content_hash: String,
    pub text: String,
}

impl ContextItem {
    pub fn new(
        kind: ContextKind,
        uri: Option<String>,
        range: Option<Range>,
        reason: String,
        text: String,
    ) -> ContextItem {
        ContextItem {
            kind,
            uri,
            range,
            reason,
            tokens: estimate_tokens(&text),
            content_hash: format!("{:016x}", crate::syntax::tag_cache::fnv1a(text.as_bytes())),
            text,
        }
    }

    /// The item as the ledger records it (`context_sent`): no text, a SHA-256 of it, the
    /// range as 1-based inclusive lines. The user's request is kind `request` there
    /// (`instructions` names the project's instruction files).
    pub fn as_sent(&self) -> crate::agent::protocol::ContextItem {
        let kind = match self.kind {
            ContextKind::Instructions => "request",
            other => other.as_str(),
        };
        let mut sent = crate::agent::protocol::ContextItem::new(kind, &self.reason, &self.text);
        sent.uri = self.uri.clone();
        sent.range = self.range.map(|range| crate::agent::protocol::LineRange {
            start: range.start.line + 1,
            // An end at the start of a line leaves that line out (LSP ends are exclusive).
            end: if range.end.character == 0 && range.end.line > range.start.line {
                range.end.line
            } else {
                range.end.line + 1
            },
        });
        sent.tokens = self.tokens as u64;
        sent
    }
}

/// What the request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Fix,
    FixFile,
    Explain,
    Refactor,
    Ask,
    Instruction,
}

impl Intent {
    pub fn parse(text: &str) -> Option<Intent> {
        Some(match text {
            "fix" => Intent::Fix,
            "fix-file" | "fix_file" => Intent::FixFile,
            "explain" => Intent::Explain,
            "refactor" => Intent::Refactor,
            "ask" => Intent::Ask,
            "instruction" => Intent::Instruction,
            _ => return None,
        })
    }
}

/// A request for context.
#[derive(Debug, Clone)]
pub struct ContextRequest {
    pub uri: String,
    pub range: Range,
    pub intent: Intent,
    /// The user's instruction as the model gets it.
    pub instruction: String,
    /// Tokens for everything.
    pub budget: usize,
    /// Tokens the repository map may take at most.
    pub repo_map_tokens: usize,
    /// Whether to add the selected lines as an item (`false` when the instruction quotes
    /// them already, as the editor's prompts do).
    pub quote_selection: bool,
}

/// The document a request is about, as text and tags.
pub struct DocumentView<'a> {
    pub uri: &'a str,
    /// Workspace-relative path (for the map's focus and for reasons).
    pub relative: &'a str,
    pub text: &'a str,
    pub tags: Option<&'a FileTags>,
}

/// A name used in the selection, and where (LSP position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameUse {
    pub name: String,
    pub position: Position,
}

/// Where a name is defined, as a language server (or the tags) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDefinition {
    pub name: String,
    pub uri: String,
    pub range: Range,
    /// Who found it: a server name, or `tree-sitter`.
    pub source: String,
}

/// Names used in the selection the definitions of which are worth showing: each name once,
/// the first use, at most `limit`, names defined inside the selection left out.
pub fn names_used(view: &DocumentView<'_>, range: Range, limit: usize) -> Vec<NameUse> {
    let Some(tags) = view.tags else {
        return Vec::new();
    };
    let (first, last) = (range.start.line, range.end.line.max(range.start.line));
    let defined_here: std::collections::HashSet<&str> = tags
        .symbols
        .iter()
        .filter(|s| s.start_line >= first && s.end_line <= last)
        .map(|s| s.name.as_str())
        .collect();
    let lines: Vec<&str> = view.text.lines().collect();
    let mut uses: Vec<NameUse> = Vec::new();
    for reference in &tags.references {
        if defined_here.contains(reference.name.as_str()) {
            continue;
        }
        let Some(line) = reference.lines.iter().find(|l| **l >= first && **l <= last) else {
            continue;
        };
        let Some(text) = lines.get(*line as usize) else {
            continue;
        };
        let Some(byte) = find_word(text, &reference.name) else {
            continue;
        };
        uses.push(NameUse {
            name: reference.name.clone(),
            position: Position {
                line: *line,
                character: crate::syntax::utf16_column(text, byte),
            },
        });
    }
    uses.sort_by_key(|u| u.position);
    uses.truncate(limit);
    uses
}

/// The byte column of `word` as a whole word in `line`.
fn find_word(line: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Asks the language servers (`textDocument/definition`) where each name is defined, all
/// at once, until `deadline`. Names no server answered for are left out (the tags index
/// stands in for them in [`assemble`]).
pub async fn resolve_definitions(
    feedback: &dyn LanguageFeedback,
    uri: &str,
    uses: &[NameUse],
    deadline: Instant,
) -> Vec<ResolvedDefinition> {
    let asks = uses.iter().map(|name_use| async move {
        let params = serde_json::json!({
            "textDocument": { "uri": uri },
            "position": name_use.position,
        });
        let answer = tokio::time::timeout_at(
            deadline.into(),
            feedback.request("textDocument/definition", params),
        )
        .await;
        let Ok(Ok(value)) = answer else { return None };
        let location = match &value {
            serde_json::Value::Array(list) => list.first()?.clone(),
            serde_json::Value::Object(_) => value.clone(),
            _ => return None,
        };
        // Location or LocationLink.
        let target_uri = location
            .get("uri")
            .or_else(|| location.get("targetUri"))?
            .as_str()?
            .to_owned();
        let range = location
            .get("range")
            .or_else(|| location.get("targetSelectionRange"))
            .or_else(|| location.get("targetRange"))?;
        let range: Range = serde_json::from_value(range.clone()).ok()?;
        Some(ResolvedDefinition {
            name: name_use.name.clone(),
            uri: target_uri,
            range,
            source: "the language server".to_owned(),
        })
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Everything [`assemble`] reads besides the request.
pub struct Sources<'a> {
    pub root: &'a Path,
    pub document: DocumentView<'a>,
    /// Definitions a language server resolved.
    pub resolved: &'a [ResolvedDefinition],
    /// The document's diagnostics.
    pub diagnostics: &'a [FeedbackDiagnostic],
    pub index: Option<&'a RepoIndex>,
    /// Reads another file's text (open buffer or disk).
    pub read: &'a dyn Fn(&Path) -> Option<String>,
}

/// Definitions longer than this many lines are shown by their signature.
const MAX_DEFINITION_LINES: usize = 60;
/// Names whose definitions are looked up at most.
pub const MAX_NAMES: usize = 24;
/// Diagnostics lines at most.
const MAX_DIAGNOSTICS: usize = 30;

/// The ordered context items for a request.
pub fn assemble(request: &ContextRequest, sources: &Sources<'_>) -> Vec<ContextItem> {
    let document = &sources.document;
    let mut items = Vec::new();
    let left = std::cell::Cell::new(request.budget);
    let take = |items: &mut Vec<ContextItem>, item: ContextItem, always: bool| -> bool {
        if !always && item.tokens > left.get() {
            return false;
        }
        left.set(left.get().saturating_sub(item.tokens));
        items.push(item);
        true
    };
    take(
        &mut items,
        ContextItem::new(
            ContextKind::Instructions,
            None,
            None,
            "the request".to_owned(),
            request.instruction.clone(),
        ),
        true,
    );
    let lines: Vec<&str> = document.text.lines().collect();
    let (first, last) = (
        request.range.start.line as usize,
        (request.range.end.line.max(request.range.start.line) as usize)
            .min(lines.len().saturating_sub(1)),
    );
    // The selection, cut to half the budget if it is huge.
    let whole_file = request.intent == Intent::FixFile;
    if first < lines.len() && request.quote_selection && !whole_file {
        let mut text = numbered(&lines, first, last);
        let limit = request.budget / 2;
        if estimate_tokens(&text) > limit {
            text = cut_to_tokens(&text, limit);
        }
        let what = match request.intent {
            Intent::Fix => "the lines of the diagnostic to fix",
            _ => "the user's selection",
        };
        take(
            &mut items,
            ContextItem::new(
                ContextKind::Selection,
                Some(document.uri.to_owned()),
                Some(line_range(&lines, first, last)),
                format!("{what} in {}", document.relative),
                text,
            ),
            true,
        );
    }
    // The enclosing symbol (when it is larger than the selection).
    let mut shown_lines: Vec<(String, usize, usize)> = vec![(document.uri.to_owned(), first, last)];
    if let Some(tags) = document.tags.filter(|_| !whole_file) {
        let offset = byte_offset(document.text, request.range.start);
        if let Some(index) = symbols::enclosing_symbol(tags, offset) {
            let symbol = &tags.symbols[index];
            let (start, end) = (symbol.start_line as usize, symbol.end_line as usize);
            if start < first || end > last {
                let text = numbered(&lines, start, end.min(lines.len().saturating_sub(1)));
                let item = ContextItem::new(
                    ContextKind::EnclosingSymbol,
                    Some(document.uri.to_owned()),
                    Some(line_range(&lines, start, end)),
                    format!(
                        "the {} `{}` that encloses the selection",
                        symbol.kind.as_str(),
                        symbol.name
                    ),
                    text,
                );
                if take(&mut items, item, false) {
                    shown_lines.push((document.uri.to_owned(), start, end));
                }
            }
        }
    }
    // Definitions of the names the selection uses.
    let uses = names_used(document, request.range, MAX_NAMES);
    for name_use in &uses {
        let found = sources
            .resolved
            .iter()
            .find(|r| r.name == name_use.name)
            .and_then(|r| definition_from_location(sources, r))
            .or_else(|| definition_from_index(sources, name_use, &lines));
        let Some((uri, start, end, range, text, reason)) = found else {
            continue;
        };
        let overlaps = shown_lines
            .iter()
            .any(|(u, a, b)| *u == uri && start <= *b && end >= *a);
        if overlaps {
            continue;
        }
        let item = ContextItem::new(
            ContextKind::Definition,
            Some(uri.clone()),
            Some(range),
            reason,
            text,
        );
        if take(&mut items, item, false) {
            shown_lines.push((uri, start, end));
        }
    }
    // Diagnostics of the document.
    if !sources.diagnostics.is_empty() {
        let mut text = String::new();
        for diagnostic in sources.diagnostics.iter().take(MAX_DIAGNOSTICS) {
            let source = diagnostic
                .source
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "{}:{}: {:?}{source}: {}",
                document.relative, diagnostic.line, diagnostic.severity, diagnostic.message
            );
        }
        take(
            &mut items,
            ContextItem::new(
                ContextKind::Diagnostics,
                Some(document.uri.to_owned()),
                None,
                format!(
                    "what the language servers report in {} now",
                    document.relative
                ),
                text,
            ),
            false,
        );
    }
    // The repository map with what is left.
    if let Some(index) = sources.index {
        let budget = left.get().min(request.repo_map_tokens);
        let mentioned: Vec<String> = uses.iter().map(|u| u.name.clone()).collect();
        let focus = Focus {
            files: vec![document.relative.to_owned()],
            mentioned,
        };
        let map = index.render(&focus, budget);
        if !map.text.is_empty() {
            take(
                &mut items,
                repo_map_item(map, &format!("ranked toward {}", document.relative)),
                false,
            );
        }
    }
    items
}

/// The repository map of `root` (at most `settings.repo_map_tokens`) as the section `tack run`
/// appends to the system prompt (`None`: no map, or no tokens for it). The index is built
/// (from the tags cache when warm) off the async threads; the cache is saved after. A map not
/// ready within `settings.repo_map_wait` is left out, and its build goes on in the background
/// to fill the cache for the next run.
pub async fn repo_map_section(root: &Path, settings: &ContextSettings) -> Option<String> {
    let tokens = settings.repo_map_tokens;
    if tokens == 0 {
        return None;
    }
    let wait = settings.repo_map_wait;
    let root = root.to_path_buf();
    let settings = settings.clone();
    let building = tokio::task::spawn_blocking(move || {
        let index = cli::build_index(&root, &settings);
        index.render(&Focus::default(), tokens)
    });
    let Ok(map) = tokio::time::timeout(wait, building).await else {
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "the repository map is not ready (a first build); the run goes on without it and the tags cache is being filled for the next run"
        );
        return None;
    };
    match map {
        Ok(map) if !map.text.is_empty() => {
            Some(format!("\n\n{REPO_MAP_HEADING}\n{}", map.text.trim_end()))
        }
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "no repository map");
            None
        }
    }
}

/// What precedes the map in the system prompt.
pub const REPO_MAP_HEADING: &str =
    "Repository map (the most referenced definitions, by file; `line: signature`):";

/// The repository map as an item.
pub fn repo_map_item(map: crate::syntax::RepoMap, toward: &str) -> ContextItem {
    ContextItem::new(
        ContextKind::RepoMap,
        None,
        None,
        format!(
            "the repository's most referenced definitions, {toward} ({} definitions in {} files)",
            map.symbols,
            map.files.len()
        ),
        map.text,
    )
}

/// (uri, first line, last line, range, text, reason) of a definition to show.
type FoundDefinition = (String, usize, usize, Range, String, String);

/// The definition at a location a server gave: the tags' symbol there, else its lines.
fn definition_from_location(
    sources: &Sources<'_>,
    resolved: &ResolvedDefinition,
) -> Option<FoundDefinition> {
    let path = url::Url::parse(&resolved.uri).ok()?.to_file_path().ok()?;
    if !path.starts_with(sources.root) {
        // Outside the workspace (a standard library): not worth the tokens.
        return None;
    }
    let text = (sources.read)(&path)?;
    let relative = crate::syntax::repo_map::relative_path(sources.root, &path)?;
    let line = resolved.range.start.line as usize;
    let lines: Vec<&str> = text.lines().collect();
    let language = Language::from_path(&path);
    let tags = language.and_then(|l| crate::syntax::tags::tag_text(l, text.as_bytes()).ok());
    let offset = byte_offset(&text, resolved.range.start);
    let (start, end, what) = match tags
        .as_ref()
        .and_then(|t| symbols::innermost_at(t, offset).map(|i| (t, i)))
    {
        Some((tags, i)) => {
            let s = &tags.symbols[i];
            (s.start_line as usize, s.end_line as usize, s.kind.as_str())
        }
        None => (line, line, "definition"),
    };
    let body = definition_text(&lines, start, end, tags.as_ref(), offset);
    Some((
        resolved.uri.clone(),
        start,
        end,
        line_range(&lines, start, end),
        format!("{relative}:\n{body}"),
        format!(
            "`{}` is used in the selection; its {what} in {relative}, found by {}",
            resolved.name, resolved.source
        ),
    ))
}

/// The best definition of a used name in the tags index: of a kind that fits the use (a
/// call is a function, method or macro), in the same file first, then the first by path.
fn definition_from_index(
    sources: &Sources<'_>,
    name_use: &NameUse,
    lines: &[&str],
) -> Option<FoundDefinition> {
    let index = sources.index?;
    let name = name_use.name.as_str();
    let line = lines
        .get(name_use.position.line as usize)
        .copied()
        .unwrap_or("");
    let after = crate::syntax::byte_column(line, name_use.position.character) + name.len();
    let rest = line.get(after..).unwrap_or("").trim_start();
    let is_call = rest.starts_with('(') || rest.starts_with("::<") || rest.starts_with('!');
    let fits = |kind: SymbolKind| {
        if is_call {
            matches!(
                kind,
                SymbolKind::Function | SymbolKind::Method | SymbolKind::Macro
            )
        } else {
            kind != SymbolKind::Module
        }
    };
    let definitions: Vec<_> = index
        .definitions(name)
        .into_iter()
        .filter(|(file, i)| fits(file.tags.symbols[*i].kind))
        .collect();
    let (file, symbol_index) = definitions
        .iter()
        .find(|(f, _)| f.path == sources.document.relative)
        .or_else(|| definitions.first())
        .copied()?;
    let symbol = &file.tags.symbols[symbol_index];
    let path = sources.root.join(&file.path);
    let text = (sources.read)(&path)?;
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = (symbol.start_line as usize, symbol.end_line as usize);
    let body = definition_text(
        &lines,
        start,
        end,
        Some(&file.tags),
        symbol.start_byte as usize,
    );
    let uri = crate::headless::file_uri(&path).ok()?;
    let others = definitions.len() - 1;
    let more = if others > 0 {
        format!(" (and {others} more of that name)")
    } else {
        String::new()
    };
    Some((
        uri,
        start,
        end,
        line_range(&lines, start, end),
        format!("{}:\n{body}", file.path),
        format!(
            "`{name}` is used in the selection; its {} in {}, found by tree-sitter tags{more}",
            symbol.kind.as_str(),
            file.path
        ),
    ))
}

/// A definition's numbered lines, or its signature when it is long.
fn definition_text(
    lines: &[&str],
    start: usize,
    end: usize,
    tags: Option<&FileTags>,
    offset: usize,
) -> String {
    let end = end.min(lines.len().saturating_sub(1));
    if end + 1 - start.min(end) <= MAX_DEFINITION_LINES {
        return numbered(lines, start, end);
    }
    let signature = tags
        .and_then(|t| symbols::innermost_at(t, offset).map(|i| t.symbols[i].signature.clone()))
        .unwrap_or_else(|| lines.get(start).copied().unwrap_or("").to_owned());
    let count = signature.lines().count().max(1);
    let mut text = String::new();
    for (i, line) in signature.lines().enumerate() {
        let _ = writeln!(text, "{:>5}  {line}", start + i + 1);
    }
    let _ = writeln!(text, "       … ({} more lines)", end + 1 - start - count);
    text
}

/// Lines `first..=last` (0-based) numbered from 1.
fn numbered(lines: &[&str], first: usize, last: usize) -> String {
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate().take(last + 1).skip(first) {
        let _ = writeln!(text, "{:>5}  {line}", i + 1);
    }
    text
}

fn line_range(lines: &[&str], first: usize, last: usize) -> Range {
    let end_character = lines.get(last).map_or(0, |l| {
        u32::try_from(l.encode_utf16().count()).unwrap_or(u32::MAX)
    });
    Range {
        start: Position {
            line: first as u32,
            character: 0,
        },
        end: Position {
            line: last as u32,
            character: end_character,
        },
    }
}

/// The byte offset of an LSP position in `text` (clamped).
fn byte_offset(text: &str, position: Position) -> usize {
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if index == position.line as usize {
            let content = line.trim_end_matches(['\n', '\r']);
            return offset + crate::syntax::byte_column(content, position.character);
        }
        offset += line.len();
    }
    text.len()
}

/// `text` cut to about `limit` tokens, at a line end.
fn cut_to_tokens(text: &str, limit: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for line in text.split_inclusive('\n') {
        let cost = estimate_tokens(line);
        if used + cost > limit {
            out.push_str("       … (cut to fit the budget)\n");
            break;
        }
        used += cost;
        out.push_str(line);
    }
    out
}

/// The items as the model gets them: one user message, each item under a heading.
pub fn render_for_model(items: &[ContextItem]) -> String {
    let mut out = String::new();
    for item in items {
        if item.kind == ContextKind::Instructions {
            out.push_str(&item.text);
            out.push_str("\n\n");
            continue;
        }
        let _ = writeln!(out, "<{} reason=\"{}\">", item.kind.as_str(), item.reason);
        out.push_str(&item.text);
        if !item.text.ends_with('\n') {
            out.push('\n');
        }
        let _ = writeln!(out, "</{}>\n", item.kind.as_str());
    }
    out.trim_end().to_owned()
}

/// The items for a person: each with its kind, place, reason and estimate, then its text.
pub fn render_for_user(items: &[ContextItem]) -> String {
    let mut out = String::new();
    let total: usize = items.iter().map(|i| i.tokens).sum();
    for (n, item) in items.iter().enumerate() {
        let place = match (&item.uri, &item.range) {
            (Some(uri), Some(range)) => format!(
                " {}:{}-{}",
                uri.rsplit('/').next().unwrap_or(uri),
                range.start.line + 1,
                range.end.line + 1
            ),
            (Some(uri), None) => format!(" {}", uri.rsplit('/').next().unwrap_or(uri)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "── {}. {}{place} · ~{} tokens · {}",
            n + 1,
            item.kind.as_str(),
            item.tokens,
            item.reason
        );
        out.push_str(&item.text);
        if !item.text.ends_with('\n') {
            out.push('\n');
        }
    }
    let _ = writeln!(out, "── total ~{total} tokens in {} items", items.len());
    out
}
