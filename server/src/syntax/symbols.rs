//! Symbols of one file from its tags: the outline (definitions nested as in the source) and
//! the enclosing symbol of a position.

use std::fmt::Write as _;

use super::tags::{FileTags, Symbol, SymbolKind};

/// The outline of a file: one line per definition, indented by nesting, with its 1-based
/// lines.
pub fn render_outline(tags: &FileTags) -> String {
    let mut out = String::new();
    for (index, symbol) in tags.symbols.iter().enumerate() {
        let depth = depth_of(tags, index);
        let _ = writeln!(
            out,
            "{}{} {}  {}-{}",
            "  ".repeat(depth),
            symbol.kind.as_str(),
            symbol.name,
            symbol.start_line + 1,
            symbol.end_line + 1
        );
    }
    out
}

/// How many definitions enclose the symbol at `index`.
pub fn depth_of(tags: &FileTags, index: usize) -> usize {
    let mut depth = 0;
    let mut parent = tags.symbols.get(index).and_then(|s| s.parent);
    while let Some(p) = parent {
        depth += 1;
        parent = tags.symbols.get(p as usize).and_then(|s| s.parent);
    }
    depth
}

/// The chain of definitions enclosing the symbol at `index`, outermost first (without it).
pub fn ancestors(tags: &FileTags, index: usize) -> Vec<&Symbol> {
    let mut chain = Vec::new();
    let mut parent = tags.symbols.get(index).and_then(|s| s.parent);
    while let Some(p) = parent {
        let Some(symbol) = tags.symbols.get(p as usize) else {
            break;
        };
        chain.push(symbol);
        parent = symbol.parent;
    }
    chain.reverse();
    chain
}

/// The innermost definition that contains the byte `offset`, as an index into the symbols.
pub fn innermost_at(tags: &FileTags, offset: usize) -> Option<usize> {
    let offset = u32::try_from(offset).unwrap_or(u32::MAX);
    // Later symbols that contain the offset are nested deeper (source order).
    tags.symbols
        .iter()
        .enumerate()
        .rev()
        .find(|(_, s)| s.start_byte <= offset && offset < s.end_byte.max(s.start_byte + 1))
        .map(|(index, _)| index)
}

/// The symbol to show as "where the cursor is": the innermost function or method that
/// contains `offset`, else the innermost definition of any kind.
pub fn enclosing_symbol(tags: &FileTags, offset: usize) -> Option<usize> {
    let innermost = innermost_at(tags, offset)?;
    let mut current = Some(innermost);
    while let Some(index) = current {
        let symbol = &tags.symbols[index];
        if matches!(symbol.kind, SymbolKind::Function | SymbolKind::Method) {
            return Some(index);
        }
        current = symbol.parent.map(|p| p as usize);
    }
    Some(innermost)
}

/// The symbols named `name` that define it (not `impl` blocks).
pub fn definitions_named<'a>(
    tags: &'a FileTags,
    name: &'a str,
) -> impl Iterator<Item = &'a Symbol> {
    tags.symbols
        .iter()
        .filter(move |s| s.name == name && s.kind.defines_name())
}
