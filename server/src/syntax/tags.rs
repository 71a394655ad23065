//! Tags: the definitions and references a file's `tags.scm` finds, with what the rest of
//! tack needs of each definition (kind, extent, where its name is, its signature lines).

use std::cell::RefCell;
use std::collections::HashMap;

use tree_sitter::StreamingIterator;

use super::SyntaxError;
use super::languages::{CaptureRole, Language};
use super::tag_patterns::Captures;

/// The kind of a definition, from the `@definition.<kind>` capture of a tags query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Union,
    Interface,
    Trait,
    Type,
    Module,
    Macro,
    Constant,
    /// A container that implements for a type named elsewhere (Rust `impl`): in outlines and
    /// enclosing symbols, but not a definition of that name.
    Impl,
    Other,
}

impl SymbolKind {
    pub const ALL: [SymbolKind; 14] = [
        SymbolKind::Function,
        SymbolKind::Method,
        SymbolKind::Class,
        SymbolKind::Struct,
        SymbolKind::Enum,
        SymbolKind::Union,
        SymbolKind::Interface,
        SymbolKind::Trait,
        SymbolKind::Type,
        SymbolKind::Module,
        SymbolKind::Macro,
        SymbolKind::Constant,
        SymbolKind::Impl,
        SymbolKind::Other,
    ];

    pub fn from_capture(kind: &str) -> SymbolKind {
        SymbolKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .unwrap_or(SymbolKind::Other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Class => "class",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Union => "union",
            SymbolKind::Interface => "interface",
            SymbolKind::Trait => "trait",
            SymbolKind::Type => "type",
            SymbolKind::Module => "module",
            SymbolKind::Macro => "macro",
            SymbolKind::Constant => "constant",
            SymbolKind::Impl => "impl",
            SymbolKind::Other => "other",
        }
    }

    /// Whether a definition of this kind holds others (methods become methods inside it).
    pub fn is_container(self) -> bool {
        matches!(
            self,
            SymbolKind::Class
                | SymbolKind::Struct
                | SymbolKind::Interface
                | SymbolKind::Trait
                | SymbolKind::Impl
        )
    }

    /// Whether it defines its name for lookups by name and the repository map.
    pub fn defines_name(self) -> bool {
        self != SymbolKind::Impl
    }

    /// A stable small number (the on-disk cache stores it).
    pub fn code(self) -> u8 {
        SymbolKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(SymbolKind::ALL.len() - 1) as u8
    }

    pub fn from_code(code: u8) -> SymbolKind {
        SymbolKind::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(SymbolKind::Other)
    }
}

/// One definition in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// Byte range of the whole definition.
    pub start_byte: u32,
    pub end_byte: u32,
    /// 0-based first and last line of the definition.
    pub start_line: u32,
    pub end_line: u32,
    /// Where the name is: 0-based line and byte column.
    pub name_line: u32,
    pub name_column: u32,
    /// The definition's lines up to where its body starts (at most [`MAX_SIGNATURE_LINES`]),
    /// with their indentation: what the repository map shows.
    pub signature: String,
    /// The innermost definition this one is inside, as an index into the file's symbols.
    pub parent: Option<u32>,
}

/// A name a file uses, and the 0-based lines it is used on (ascending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub lines: Vec<u32>,
}

/// What a tags query found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileTags {
    /// In source order (by start byte; an outer definition before the ones inside it).
    pub symbols: Vec<Symbol>,
    /// Sorted by name; a name defined in the file counts only where it is used.
    pub references: Vec<Reference>,
}

/// Signatures longer than this are cut.
pub const MAX_SIGNATURE_LINES: usize = 4;
/// Signature lines longer than this (in bytes) are cut, with `…`.
const MAX_SIGNATURE_LINE_BYTES: usize = 200;

thread_local! {
    static PARSER: RefCell<tree_sitter::Parser> = RefCell::new(tree_sitter::Parser::new());
}

/// Parses `text` (optionally reusing an edited `old_tree`).
pub fn parse(
    language: Language,
    text: &[u8],
    old_tree: Option<&tree_sitter::Tree>,
) -> Result<tree_sitter::Tree, SyntaxError> {
    with_parser(language, |parser| parser.parse(text, old_tree))
}

/// Runs `parse` with this thread's parser set to `language`.
pub(super) fn with_parser(
    language: Language,
    parse: impl FnOnce(&mut tree_sitter::Parser) -> Option<tree_sitter::Tree>,
) -> Result<tree_sitter::Tree, SyntaxError> {
    PARSER.with(|parser| {
        let mut parser = parser.borrow_mut();
        parser
            .set_language(&language.grammar())
            .map_err(|error| SyntaxError::Grammar {
                language: language.id(),
                message: error.to_string(),
            })?;
        parse(&mut parser).ok_or(SyntaxError::ParseFailed {
            language: language.id(),
        })
    })
}

/// Parses `text` and returns its tags.
pub fn tag_text(language: Language, text: &[u8]) -> Result<FileTags, SyntaxError> {
    let tree = parse(language, text, None)?;
    extract(language, &tree, text)
}

/// The tags of a parsed file.
pub fn extract<'tree>(
    language: Language,
    tree: &'tree tree_sitter::Tree,
    text: &[u8],
) -> Result<FileTags, SyntaxError> {
    let tags = language.tags_query()?;
    // Definitions by the byte range of their name: the first pattern wins.
    type Found<'tree> = (
        usize,
        SymbolKind,
        tree_sitter::Node<'tree>,
        tree_sitter::Node<'tree>,
    );
    let mut definitions: HashMap<(usize, usize), Found> = HashMap::new();
    let mut references: Vec<tree_sitter::Node> = Vec::new();
    let mut on_match = |pattern: usize, captures: &Captures<'tree>| {
        let mut name = None;
        let mut definition = None;
        let mut reference = false;
        for (capture, node) in captures {
            match tags.roles.get(*capture as usize) {
                Some(CaptureRole::Name) => name = Some(*node),
                Some(CaptureRole::Definition(kind)) => definition = Some((*kind, *node)),
                Some(CaptureRole::Reference) => reference = true,
                _ => {}
            }
        }
        let Some(name) = name else { return };
        if let Some((kind, node)) = definition {
            let key = (name.start_byte(), name.end_byte());
            let entry = definitions
                .entry(key)
                .or_insert((pattern, kind, node, name));
            if pattern < entry.0 {
                *entry = (pattern, kind, node, name);
            }
        } else if reference {
            references.push(name);
        }
    };
    match &tags.patterns {
        Some(patterns) => patterns.for_each_match(tree.root_node(), &mut on_match),
        None => query_cursor_matches(&tags.query, tree, text, &mut on_match),
    }
    let mut found: Vec<(
        (usize, usize),
        SymbolKind,
        tree_sitter::Node,
        tree_sitter::Node,
    )> = definitions
        .into_iter()
        .map(|(key, (_, kind, node, name))| (key, kind, node, name))
        .collect();
    // Outer definitions first: by start, then the longer one.
    found.sort_by_key(|(key, _, node, _)| {
        (node.start_byte(), std::cmp::Reverse(node.end_byte()), key.0)
    });
    let mut symbols: Vec<Symbol> = Vec::with_capacity(found.len());
    // Indices of the definitions enclosing the current one.
    let mut open: Vec<usize> = Vec::new();
    for ((name_start, name_end), kind, node, name) in &found {
        while let Some(&last) = open.last() {
            if symbols[last].end_byte as usize >= node.end_byte() {
                break;
            }
            open.pop();
        }
        let parent = open.last().copied();
        let kind = match (kind, parent) {
            (SymbolKind::Function, Some(p)) if symbols[p].kind.is_container() => SymbolKind::Method,
            (kind, _) => *kind,
        };
        let name_point = name.start_position();
        symbols.push(Symbol {
            name: String::from_utf8_lossy(&text[*name_start..*name_end]).into_owned(),
            kind,
            start_byte: saturate(node.start_byte()),
            end_byte: saturate(node.end_byte()),
            start_line: saturate(node.start_position().row),
            end_line: saturate(last_row(node)),
            name_line: saturate(name_point.row),
            name_column: saturate(name_point.column),
            signature: signature(text, node),
            parent: parent.map(saturate),
        });
        open.push(symbols.len() - 1);
    }
    let defined_names: std::collections::HashSet<(usize, usize)> =
        found.iter().map(|(key, _, _, _)| *key).collect();
    let mut by_name: HashMap<&[u8], Vec<u32>> = HashMap::new();
    for node in &references {
        if defined_names.contains(&(node.start_byte(), node.end_byte())) {
            continue;
        }
        by_name
            .entry(&text[node.start_byte()..node.end_byte()])
            .or_default()
            .push(saturate(node.start_position().row));
    }
    let mut references: Vec<Reference> = by_name
        .into_iter()
        .map(|(name, mut lines)| {
            lines.sort_unstable();
            lines.dedup();
            Reference {
                name: String::from_utf8_lossy(name).into_owned(),
                lines,
            }
        })
        .collect();
    references.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(FileTags {
        symbols,
        references,
    })
}

/// Every match of `query` in `tree`, from tree-sitter's own `QueryCursor`.
pub(super) fn query_cursor_matches<'tree>(
    query: &tree_sitter::Query,
    tree: &'tree tree_sitter::Tree,
    text: &[u8],
    mut on_match: impl FnMut(usize, &Captures<'tree>),
) {
    let mut cursor = tree_sitter::QueryCursor::new();
    let mut matches = cursor.matches(query, tree.root_node(), text);
    while let Some(found) = matches.next() {
        let captures: Captures = found
            .captures()
            .iter()
            .map(|capture| (capture.index, capture.node))
            .collect();
        on_match(found.pattern_index, &captures);
    }
}

/// The last row a node has text on (a node ending with its line break ends on that line).
fn last_row(node: &tree_sitter::Node) -> usize {
    let end = node.end_position();
    if end.column == 0 && end.row > node.start_position().row {
        end.row - 1
    } else {
        end.row
    }
}

fn saturate(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The start of the line holding `offset`.
fn line_start(text: &[u8], offset: usize) -> usize {
    text[..offset.min(text.len())]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1)
}

/// The end of the line holding `offset` (before its `\n`, and a `\r` before that).
fn line_end(text: &[u8], offset: usize) -> usize {
    let end = text[offset.min(text.len())..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(text.len(), |i| offset + i);
    if end > 0 && text.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    }
}

/// The whole lines of a definition from its start to where its body begins.
fn signature(text: &[u8], node: &tree_sitter::Node) -> String {
    let start = node.start_byte();
    // The header ends at the last non-blank byte before the body (or at the first line end).
    let header_end = match node.child_by_field_name("body") {
        Some(body) if body.start_byte() > start => {
            let before = &text[start..body.start_byte()];
            match before.iter().rposition(|b| !b.is_ascii_whitespace()) {
                Some(i) => start + i,
                None => start,
            }
        }
        _ => start,
    };
    let mut out = String::new();
    let mut line = line_start(text, start);
    for index in 0..MAX_SIGNATURE_LINES {
        let end = line_end(text, line);
        let content = String::from_utf8_lossy(&text[line..end]);
        let content = content.trim_end();
        if index > 0 {
            out.push('\n');
        }
        if content.len() > MAX_SIGNATURE_LINE_BYTES {
            let mut cut = MAX_SIGNATURE_LINE_BYTES;
            while !content.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&content[..cut]);
            out.push('…');
        } else {
            out.push_str(content);
        }
        if end >= header_end || end + 1 >= text.len() {
            break;
        }
        line = end + 1;
        if text.get(line) == Some(&b'\n') && text.get(end) == Some(&b'\r') {
            line += 1;
        }
    }
    out
}
