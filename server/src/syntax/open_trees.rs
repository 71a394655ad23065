//! Parse trees of the editor's open documents, kept current incrementally: every
//! `didChange` edits the tree with the change's byte range (cheap), and the tree is reparsed
//! — reusing what did not change — the next time it is needed, not on the keystroke, so a
//! burst of typing costs one reparse and never delays forwarding. Tags are extracted from a
//! tree only when asked, and kept until the next change.

use std::collections::HashMap;
use std::sync::Arc;

use ropey::Rope;

use super::tags::{self, FileTags};
use super::{Language, SyntaxError};
use crate::documents::{ByteEdit, BytePoint, Document, TextEdits};

/// One open document's tree.
#[derive(Debug, Clone)]
pub struct OpenTree {
    pub language: Language,
    pub tree: tree_sitter::Tree,
    pub version: i32,
    tags: Option<Arc<FileTags>>,
    freshness: Freshness,
}

/// How `OpenTree::tree` stands to the document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    Parsed,
    /// Edited to match, not reparsed yet (the next parse reuses it).
    Edited,
    /// The whole text was replaced: the next parse starts afresh.
    Replaced,
}

/// The trees of every open document of a language tack parses, by uri.
#[derive(Debug, Default)]
pub struct OpenTrees {
    trees: HashMap<String, OpenTree>,
}

/// The language of a document: its language id, else its uri's extension.
pub fn language_of(document: &Document) -> Option<Language> {
    Language::from_id(&document.language_id).or_else(|| {
        let path = document.uri.rsplit('/').next()?;
        Language::from_extension(path.rsplit_once('.')?.1)
    })
}

impl OpenTrees {
    pub fn new() -> OpenTrees {
        OpenTrees::default()
    }

    /// Parses a newly opened document (a language tack does not parse is ignored).
    pub fn open(&mut self, document: &Document) {
        let Some(language) = language_of(document) else {
            self.trees.remove(&document.uri);
            return;
        };
        match parse_rope(language, &document.text, None) {
            Ok(tree) => {
                self.trees.insert(
                    document.uri.clone(),
                    OpenTree {
                        language,
                        tree,
                        version: document.version,
                        tags: None,
                        freshness: Freshness::Parsed,
                    },
                );
            }
            Err(error) => tracing::warn!(%error, uri = document.uri, "document not parsed"),
        }
    }

    /// Follows a `didChange` in the tree (see the module docs): `edits` is where the
    /// document store says the changes fell, `document` the store's document after them.
    pub fn change(&mut self, edits: &TextEdits, document: &Document) {
        let Some(open) = self.trees.get_mut(&document.uri) else {
            return self.open(document);
        };
        open.version = document.version;
        open.tags = None;
        if open.freshness == Freshness::Replaced {
            return;
        }
        let TextEdits::Ranges(edits) = edits else {
            open.freshness = Freshness::Replaced;
            return;
        };
        for edit in edits {
            open.tree.edit(&input_edit(edit));
        }
        open.freshness = Freshness::Edited;
    }

    /// The tree of an open document as its text is now (`document`, the store's), reparsed
    /// first if it changed since it was last parsed.
    pub fn current(&mut self, document: &Document) -> Option<&OpenTree> {
        let open = self.trees.get_mut(&document.uri)?;
        if open.freshness != Freshness::Parsed {
            let old = (open.freshness == Freshness::Edited).then_some(&open.tree);
            match parse_rope(open.language, &document.text, old) {
                Ok(tree) => {
                    open.tree = tree;
                    open.freshness = Freshness::Parsed;
                }
                Err(error) => {
                    tracing::warn!(%error, uri = document.uri, "document not reparsed");
                    self.trees.remove(&document.uri);
                    return None;
                }
            }
        }
        self.trees.get(&document.uri)
    }

    pub fn close(&mut self, uri: &str) {
        self.trees.remove(uri);
    }

    /// The tags of an open document (extracted now if the tree changed since last time).
    pub fn tags(&mut self, document: &Document) -> Option<Arc<FileTags>> {
        self.current(document)?;
        let open = self.trees.get_mut(&document.uri)?;
        if let Some(tags) = &open.tags {
            return Some(tags.clone());
        }
        let text = document.text.to_string();
        match tags::extract(open.language, &open.tree, text.as_bytes()) {
            Ok(tags) => {
                let tags = Arc::new(tags);
                open.tags = Some(tags.clone());
                Some(tags)
            }
            Err(error) => {
                tracing::warn!(%error, uri = document.uri, "no tags");
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.trees.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }
}

/// Parses a rope chunk by chunk, reusing `old_tree` (edited to match) when given.
pub fn parse_rope(
    language: Language,
    text: &Rope,
    old_tree: Option<&tree_sitter::Tree>,
) -> Result<tree_sitter::Tree, SyntaxError> {
    let len = text.len_bytes();
    tags::with_parser(language, |parser| {
        parser.parse_with_options(
            &mut |byte: usize, _point: tree_sitter::Point| -> &[u8] {
                if byte >= len {
                    return &[];
                }
                let (chunk, chunk_start, _, _) = text.chunk_at_byte(byte);
                &chunk.as_bytes()[byte - chunk_start..]
            },
            old_tree,
            None,
        )
    })
}

/// The tree-sitter edit of where one change fell.
fn input_edit(edit: &ByteEdit) -> tree_sitter::InputEdit {
    let point = |point: BytePoint| tree_sitter::Point {
        row: point.line,
        column: point.byte_column,
    };
    tree_sitter::InputEdit {
        start_byte: edit.start_byte,
        old_end_byte: edit.old_end_byte,
        new_end_byte: edit.new_end_byte,
        start_position: point(edit.start_point),
        old_end_position: point(edit.old_end_point),
        new_end_position: point(edit.new_end_point),
    }
}
