//! A matcher for the part of the tree-sitter query language our `tags.scm` files use, run as
//! one walk over the tree.
//!
//! tree-sitter's `QueryCursor` keeps every pattern in flight at every node, which makes it the
//! larger half of indexing a file. Our tags patterns are all of one shape: a node kind with
//! child patterns (by field or not, in order), alternations of plain kinds, anonymous
//! `"literal"` children, and captures. This module compiles exactly that subset and matches it
//! from the nodes whose kind can start a pattern, which costs about one cursor step per node.
//! A query using anything else (predicates, quantifiers, anchors, negated fields) compiles to
//! `None`, and the caller keeps using `QueryCursor` for it; tests check both give the same
//! matches.

use std::collections::HashMap;

/// The compiled patterns of one query, indexed by the node kind each one starts at.
#[derive(Debug)]
pub struct TagPatterns {
    /// The top-level patterns, in the query's order (so a position is a pattern index).
    patterns: Vec<PatternNode>,
    /// Node kind id → indices into `patterns`, in pattern order.
    by_root_kind: Vec<Vec<usize>>,
}

/// A node of a pattern.
#[derive(Debug)]
struct PatternNode {
    /// The node kinds it matches.
    kinds: KindTest,
    /// The field the node must be in (for a child pattern).
    field: Option<u16>,
    /// The query's capture indices of this node.
    captures: Vec<u32>,
    /// Child patterns, matched against the node's children in order.
    children: Vec<PatternNode>,
    /// Whether this node or any below it is captured (if not, one match is enough).
    captures_below: bool,
}

#[derive(Debug)]
enum KindTest {
    /// `(_)`: any named node.
    AnyNamed,
    /// Named nodes, or anonymous ones (`"static"`), of these kind ids.
    Kinds(Vec<u16>),
}

/// A match: the pattern's index in the query and each captured node.
pub type Captures<'tree> = Vec<(u32, tree_sitter::Node<'tree>)>;

impl TagPatterns {
    /// Compiles `source` for `language`, whose tree-sitter `query` was compiled from the same
    /// source (for capture indices); `None` where the source uses more than this matcher knows.
    pub fn compile(
        language: &tree_sitter::Language,
        query: &tree_sitter::Query,
        source: &str,
    ) -> Option<TagPatterns> {
        let tokens = tokenize(source)?;
        let kinds = KindTable::new(language);
        let mut reader = Reader {
            tokens: &tokens,
            at: 0,
            language,
            query,
            kinds: &kinds,
        };
        let mut patterns = Vec::new();
        while reader.at < tokens.len() {
            patterns.push(reader.top_level()?);
        }
        if patterns.len() != query.pattern_count() {
            return None;
        }
        let mut by_root_kind = vec![Vec::new(); usize::from(kinds.count)];
        for (i, pattern) in patterns.iter().enumerate() {
            match &pattern.kinds {
                KindTest::AnyNamed => {
                    for (id, roots) in by_root_kind.iter_mut().enumerate() {
                        if language.node_kind_is_named(u16::try_from(id).ok()?) {
                            roots.push(i);
                        }
                    }
                }
                KindTest::Kinds(ids) => {
                    for id in ids {
                        by_root_kind.get_mut(usize::from(*id))?.push(i);
                    }
                }
            }
        }
        Some(TagPatterns {
            patterns,
            by_root_kind,
        })
    }

    /// Calls `on_match` with every match in `root`'s tree, node by node in document order.
    pub fn for_each_match<'tree>(
        &self,
        root: tree_sitter::Node<'tree>,
        mut on_match: impl FnMut(usize, &Captures<'tree>),
    ) {
        let mut cursor = root.walk();
        let mut found = Vec::new();
        loop {
            let node = cursor.node();
            if let Some(starting) = self.by_root_kind.get(usize::from(node.kind_id())) {
                for &i in starting {
                    found.clear();
                    match_node(node, &self.patterns[i], Vec::new(), &mut found);
                    for captures in &found {
                        on_match(i, captures);
                    }
                }
            }
            if cursor.goto_first_child() {
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return;
                }
            }
        }
    }
}

/// Appends to `out` every way `pattern` matches `node`, each extending `captured`.
fn match_node<'tree>(
    node: tree_sitter::Node<'tree>,
    pattern: &PatternNode,
    mut captured: Captures<'tree>,
    out: &mut Vec<Captures<'tree>>,
) {
    let kind_matches = match &pattern.kinds {
        KindTest::AnyNamed => node.is_named(),
        KindTest::Kinds(ids) => ids.contains(&node.kind_id()),
    };
    if !kind_matches {
        return;
    }
    captured.extend(pattern.captures.iter().map(|&c| (c, node)));
    if pattern.children.is_empty() {
        out.push(captured);
        return;
    }
    let mut children = Vec::new();
    let mut cursor = node.walk();
    if cursor.goto_first_child() {
        loop {
            children.push((cursor.node(), cursor.field_id().map(u16::from)));
            if !cursor.goto_next_sibling() {
                break;
            }
        }
    }
    match_children(&children, &pattern.children, 0, captured, out);
}

/// Matches `patterns` in order against `children[from..]`.
fn match_children<'tree>(
    children: &[(tree_sitter::Node<'tree>, Option<u16>)],
    patterns: &[PatternNode],
    from: usize,
    captured: Captures<'tree>,
    out: &mut Vec<Captures<'tree>>,
) {
    let Some((pattern, rest)) = patterns.split_first() else {
        out.push(captured);
        return;
    };
    let mut below = Vec::new();
    for (i, (child, field)) in children.iter().enumerate().skip(from) {
        if pattern.field.is_some() && pattern.field != *field {
            continue;
        }
        below.clear();
        match_node(*child, pattern, captured.clone(), &mut below);
        if below.is_empty() {
            continue;
        }
        if !pattern.captures_below {
            // Nothing to capture here: the earliest child leaves the most room for the rest.
            match_children(children, rest, i + 1, captured, out);
            return;
        }
        for with_child in below.drain(..) {
            match_children(children, rest, i + 1, with_child, out);
        }
    }
}

/// Every node kind name of a grammar, named and anonymous, with its ids.
struct KindTable {
    count: u16,
    named: HashMap<String, Vec<u16>>,
    anonymous: HashMap<String, Vec<u16>>,
}

impl KindTable {
    fn new(language: &tree_sitter::Language) -> KindTable {
        let count = u16::try_from(language.node_kind_count()).unwrap_or(u16::MAX);
        let mut named: HashMap<String, Vec<u16>> = HashMap::new();
        let mut anonymous: HashMap<String, Vec<u16>> = HashMap::new();
        for id in 0..count {
            let Some(name) = language.node_kind_for_id(id) else {
                continue;
            };
            let table = if language.node_kind_is_named(id) {
                &mut named
            } else {
                &mut anonymous
            };
            table.entry(name.to_owned()).or_default().push(id);
        }
        KindTable {
            count,
            named,
            anonymous,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    /// A node kind, `_`, or a field name (followed by `Colon`).
    Word(String),
    Colon,
    Capture(String),
    Literal(String),
}

/// The tokens of a query source; `None` at anything outside the subset.
fn tokenize(source: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ';' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {}
            '(' => tokens.push(Token::Open),
            ')' => tokens.push(Token::Close),
            '[' => tokens.push(Token::OpenBracket),
            ']' => tokens.push(Token::CloseBracket),
            ':' => tokens.push(Token::Colon),
            '"' => {
                let mut literal = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => return None,
                        c => literal.push(c),
                    }
                }
                tokens.push(Token::Literal(literal));
            }
            '@' => tokens.push(Token::Capture(word(&mut chars, String::new()))),
            c if is_word_char(c) => tokens.push(Token::Word(word(&mut chars, c.to_string()))),
            // Predicates (#), negated fields (!), anchors (.), quantifiers (* + ?).
            _ => return None,
        }
    }
    Some(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

fn word(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, mut text: String) -> String {
    while let Some(&c) = chars.peek() {
        if !is_word_char(c) {
            break;
        }
        text.push(c);
        chars.next();
    }
    text
}

/// Reads patterns from tokens.
struct Reader<'a> {
    tokens: &'a [Token],
    at: usize,
    language: &'a tree_sitter::Language,
    query: &'a tree_sitter::Query,
    kinds: &'a KindTable,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        token
    }

    /// A top-level pattern; `((pattern) @capture…)` groups one pattern.
    fn top_level(&mut self) -> Option<PatternNode> {
        if self.peek() == Some(&Token::Open) && self.tokens.get(self.at + 1) == Some(&Token::Open) {
            self.next();
            let mut inner = self.node(None)?;
            self.captures(&mut inner)?;
            if self.next()? != &Token::Close {
                return None;
            }
            self.captures(&mut inner)?;
            return Some(inner);
        }
        self.node(None)
    }

    /// A node pattern (with its trailing captures).
    fn node(&mut self, field: Option<u16>) -> Option<PatternNode> {
        let mut node = match self.next()?.clone() {
            Token::Open => {
                let Token::Word(kind) = self.next()?.clone() else {
                    return None;
                };
                let kinds = if kind == "_" {
                    KindTest::AnyNamed
                } else {
                    KindTest::Kinds(self.kinds.named.get(&kind)?.clone())
                };
                let mut children = Vec::new();
                loop {
                    match self.peek()? {
                        Token::Close => {
                            self.next();
                            break;
                        }
                        Token::Word(name)
                            if self.tokens.get(self.at + 1) == Some(&Token::Colon) =>
                        {
                            let id = self.language.field_id_for_name(name)?;
                            self.at += 2;
                            children.push(self.node(Some(u16::from(id)))?);
                        }
                        _ => children.push(self.node(None)?),
                    }
                }
                PatternNode {
                    kinds,
                    field,
                    captures: Vec::new(),
                    captures_below: false,
                    children,
                }
            }
            Token::OpenBracket => {
                // An alternation of plain kinds.
                let mut ids = Vec::new();
                loop {
                    match self.next()? {
                        Token::CloseBracket => break,
                        Token::Open => {
                            let Token::Word(kind) = self.next()?.clone() else {
                                return None;
                            };
                            ids.extend(self.kinds.named.get(&kind)?);
                            if self.next()? != &Token::Close {
                                return None;
                            }
                        }
                        Token::Literal(text) => {
                            let text = text.clone();
                            ids.extend(self.kinds.anonymous.get(&text)?);
                        }
                        _ => return None,
                    }
                }
                PatternNode {
                    kinds: KindTest::Kinds(ids),
                    field,
                    captures: Vec::new(),
                    captures_below: false,
                    children: Vec::new(),
                }
            }
            Token::Literal(text) => PatternNode {
                kinds: KindTest::Kinds(self.kinds.anonymous.get(&text)?.clone()),
                field,
                captures: Vec::new(),
                captures_below: false,
                children: Vec::new(),
            },
            _ => return None,
        };
        self.captures(&mut node)?;
        Some(node)
    }

    /// The captures following a node.
    fn captures(&mut self, node: &mut PatternNode) -> Option<()> {
        while let Some(Token::Capture(name)) = self.peek() {
            let index = self.query.capture_index_for_name(name)?;
            node.captures.push(index);
            self.next();
        }
        node.captures_below =
            !node.captures.is_empty() || node.children.iter().any(|c| c.captures_below);
        Some(())
    }
}
