//! The languages tack parses: their LSP ids, file extensions, tree-sitter grammars and our
//! own queries from `grammars/<language>/`, each query compiled once per process.

use std::path::Path;
use std::sync::OnceLock;

use super::SyntaxError;

/// A language with a grammar and a tags query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Rust,
    Python,
    TypeScript,
    Tsx,
    JavaScript,
    Go,
    C,
    Cpp,
    Java,
}

impl Language {
    pub const ALL: [Language; 9] = [
        Language::Rust,
        Language::Python,
        Language::TypeScript,
        Language::Tsx,
        Language::JavaScript,
        Language::Go,
        Language::C,
        Language::Cpp,
        Language::Java,
    ];

    /// The LSP language id (`typescriptreact` for TSX).
    pub fn id(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::TypeScript => "typescript",
            Language::Tsx => "typescriptreact",
            Language::JavaScript => "javascript",
            Language::Go => "go",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Java => "java",
        }
    }

    /// From an LSP language id; `javascriptreact` is JavaScript (its grammar reads JSX).
    pub fn from_id(id: &str) -> Option<Language> {
        Some(match id {
            "rust" => Language::Rust,
            "python" => Language::Python,
            "typescript" => Language::TypeScript,
            "typescriptreact" | "tsx" => Language::Tsx,
            "javascript" | "javascriptreact" | "jsx" => Language::JavaScript,
            "go" => Language::Go,
            "c" => Language::C,
            "cpp" | "c++" => Language::Cpp,
            "java" => Language::Java,
            _ => return None,
        })
    }

    /// From a file extension without the dot. `.h` is C (clangd's default too).
    pub fn from_extension(extension: &str) -> Option<Language> {
        Some(match extension {
            "rs" => Language::Rust,
            "py" | "pyi" => Language::Python,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "go" => Language::Go,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "c++" | "C" | "hh" | "hpp" | "hxx" | "h++" | "H" | "ipp"
            | "tpp" | "inl" => Language::Cpp,
            "java" => Language::Java,
            _ => return None,
        })
    }

    /// By the path's extension.
    pub fn from_path(path: &Path) -> Option<Language> {
        Language::from_extension(path.extension()?.to_str()?)
    }

    /// The tree-sitter grammar.
    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
            Language::C => tree_sitter_c::LANGUAGE.into(),
            Language::Cpp => tree_sitter_cpp::LANGUAGE.into(),
            Language::Java => tree_sitter_java::LANGUAGE.into(),
        }
    }

    /// The folder under `grammars/` that holds this language's queries.
    pub fn grammar_folder(self) -> &'static str {
        match self {
            Language::Tsx | Language::TypeScript => "typescript",
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::Go => "go",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Java => "java",
        }
    }

    /// The source of `grammars/<folder>/tags.scm` (for TSX, TypeScript's and then TSX's own).
    pub fn tags_source(self) -> &'static str {
        if self == Language::Tsx {
            return concat!(
                include_str!("../../../grammars/typescript/tags.scm"),
                include_str!("../../../grammars/tsx/tags.scm")
            );
        }
        match self.grammar_folder() {
            "rust" => include_str!("../../../grammars/rust/tags.scm"),
            "python" => include_str!("../../../grammars/python/tags.scm"),
            "typescript" => include_str!("../../../grammars/typescript/tags.scm"),
            "javascript" => include_str!("../../../grammars/javascript/tags.scm"),
            "go" => include_str!("../../../grammars/go/tags.scm"),
            "c" => include_str!("../../../grammars/c/tags.scm"),
            "cpp" => include_str!("../../../grammars/cpp/tags.scm"),
            _ => include_str!("../../../grammars/java/tags.scm"),
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The compiled tags query (compiled on first use, then shared).
    pub fn tags_query(self) -> Result<&'static TagsQuery, SyntaxError> {
        static QUERIES: [OnceLock<Result<TagsQuery, SyntaxError>>; 9] =
            [const { OnceLock::new() }; 9];
        QUERIES[self.index()]
            .get_or_init(|| TagsQuery::compile(self))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// What one capture of a tags query stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureRole {
    Name,
    Definition(super::SymbolKind),
    Reference,
    /// A capture tack does not read (helpers for predicates).
    Other,
}

/// A compiled `tags.scm` with the role of each capture.
pub struct TagsQuery {
    pub query: tree_sitter::Query,
    pub roles: Vec<CaptureRole>,
    /// The same patterns for tack's own one-walk matcher, when the query is within what it
    /// knows (ours all are; a test checks).
    pub patterns: Option<super::tag_patterns::TagPatterns>,
}

impl std::fmt::Debug for TagsQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagsQuery")
            .field("patterns", &self.query.pattern_count())
            .finish()
    }
}

impl TagsQuery {
    fn compile(language: Language) -> Result<TagsQuery, SyntaxError> {
        let grammar = language.grammar();
        let query = tree_sitter::Query::new(&grammar, language.tags_source()).map_err(|error| {
            SyntaxError::Query {
                language: language.id(),
                message: error.to_string(),
            }
        })?;
        let roles = query
            .capture_names()
            .iter()
            .map(|name| {
                if *name == "name" {
                    CaptureRole::Name
                } else if let Some(kind) = name.strip_prefix("definition.") {
                    CaptureRole::Definition(super::SymbolKind::from_capture(kind))
                } else if name.starts_with("reference.") {
                    CaptureRole::Reference
                } else {
                    CaptureRole::Other
                }
            })
            .collect();
        let patterns =
            super::tag_patterns::TagPatterns::compile(&grammar, &query, language.tags_source());
        if patterns.is_none() {
            tracing::debug!(
                language = language.id(),
                "tags query uses more than the one-walk matcher knows: using QueryCursor"
            );
        }
        Ok(TagsQuery {
            query,
            roles,
            patterns,
        })
    }
}
