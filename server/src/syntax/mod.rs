//! Syntax: tree-sitter grammars and tack's own queries (`grammars/`), tags (definitions and
//! references), outlines and enclosing symbols, the parse caches, and the repository map.
//!
//! - `languages`: the language table (LSP ids, extensions, grammars, compiled queries);
//! - `tags`: running a `tags.scm` on a tree: [`FileTags`] of [`Symbol`]s and references;
//! - `symbols`: outline, enclosing symbol, definitions by name in a file;
//! - `open_trees`: parse trees of the editor's open documents, reparsed incrementally on
//!   every change;
//! - `tag_cache`: tags of files on disk, parsed on demand, keyed by mtime and size, in
//!   memory and in tack's cache folder;
//! - `repo_map`: the repository index (files → definitions, references), its ranking and
//!   the rendered map.

pub mod languages;
pub mod open_trees;
pub mod rank;
pub mod repo_map;
pub mod symbols;
pub mod tag_cache;
pub mod tag_patterns;
pub mod tags;

pub use languages::Language;
pub use open_trees::OpenTrees;
pub use repo_map::{MapOptions, RepoIndex, RepoMap};
pub use tags::{FileTags, Reference, Symbol, SymbolKind};

/// What can go wrong reading syntax.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyntaxError {
    #[error("the {language} grammar cannot be loaded: {message}")]
    Grammar {
        language: &'static str,
        message: String,
    },
    #[error("grammars/{language}/tags.scm does not compile: {message}")]
    Query {
        language: &'static str,
        message: String,
    },
    #[error("the {language} parser gave no tree")]
    ParseFailed { language: &'static str },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// The UTF-16 column of byte column `byte_column` in `line` (clamped to the line).
pub fn utf16_column(line: &str, byte_column: usize) -> u32 {
    let mut cut = byte_column.min(line.len());
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    u32::try_from(line[..cut].encode_utf16().count()).unwrap_or(u32::MAX)
}

/// The byte column of UTF-16 column `utf16_column` in `line` (clamped to the line).
pub fn byte_column(line: &str, utf16_column: u32) -> usize {
    let mut units = 0u32;
    for (index, character) in line.char_indices() {
        if units >= utf16_column {
            return index;
        }
        units += character.len_utf16() as u32;
    }
    line.len()
}

/// The default folder for tack's caches: `$XDG_CACHE_HOME/tack`, else `~/.cache/tack`.
pub fn default_cache_dir() -> Option<std::path::PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return Some(std::path::PathBuf::from(xdg).join("tack"));
    }
    non_empty("HOME").map(|home| std::path::PathBuf::from(home).join(".cache/tack"))
}

#[cfg(test)]
mod tests;
