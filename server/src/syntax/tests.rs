#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn every_grammar_loads_and_every_query_compiles() {
    for language in Language::ALL {
        let grammar = language.grammar();
        assert!(
            (tree_sitter::MIN_COMPATIBLE_LANGUAGE_VERSION..=tree_sitter::LANGUAGE_VERSION)
                .contains(&grammar.abi_version()),
            "{language:?}: grammar ABI {} is not one tree-sitter {} reads",
            grammar.abi_version(),
            tree_sitter::LANGUAGE_VERSION
        );
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&grammar).unwrap();
        let tags = language.tags_query().unwrap();
        assert!(tags.query.pattern_count() > 3, "{language:?}");
        assert!(tags.roles.contains(&languages::CaptureRole::Name));
    }
}

#[test]
fn languages_by_id_and_extension() {
    assert_eq!(Language::from_id("typescriptreact"), Some(Language::Tsx));
    assert_eq!(
        Language::from_id("javascriptreact"),
        Some(Language::JavaScript)
    );
    assert_eq!(Language::from_id("cobol"), None);
    assert_eq!(Language::from_extension("hpp"), Some(Language::Cpp));
    assert_eq!(Language::from_extension("h"), Some(Language::C));
    assert_eq!(
        Language::from_path(std::path::Path::new("a/b.pyi")),
        Some(Language::Python)
    );
    for language in Language::ALL {
        assert_eq!(Language::from_id(language.id()), Some(language));
    }
}

fn fixture(relative: &str) -> (Language, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/context")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    (Language::from_path(&path).unwrap(), text)
}

/// Definitions (kind, name, lines, signature) and the names used, for a snapshot.
fn render_tags(tags: &FileTags) -> String {
    let mut out = String::from("definitions:\n");
    for (index, symbol) in tags.symbols.iter().enumerate() {
        out.push_str(&format!(
            "{}{} {} {}-{} name@{}:{} | {}\n",
            "  ".repeat(symbols::depth_of(tags, index)),
            symbol.kind.as_str(),
            symbol.name,
            symbol.start_line + 1,
            symbol.end_line + 1,
            symbol.name_line + 1,
            symbol.name_column,
            symbol.signature.replace('\n', "⏎")
        ));
    }
    out.push_str("references:\n");
    for reference in &tags.references {
        let lines: Vec<String> = reference
            .lines
            .iter()
            .map(|l| (l + 1).to_string())
            .collect();
        out.push_str(&format!("  {} {}\n", reference.name, lines.join(",")));
    }
    out
}

fn tags_of(relative: &str) -> FileTags {
    let (language, text) = fixture(relative);
    tags::tag_text(language, text.as_bytes()).unwrap()
}

#[test]
fn rust_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("rust_app/src/store.rs")));
    insta::assert_snapshot!(
        "rust_model_tags",
        render_tags(&tags_of("rust_app/src/model.rs"))
    );
}

#[test]
fn python_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("python_app/shop/models.py")));
}

#[test]
fn typescript_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("ts_app/src/tasks.ts")));
    insta::assert_snapshot!(
        "typescript_types_tags",
        render_tags(&tags_of("ts_app/src/types.ts"))
    );
}

#[test]
fn tsx_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("ts_app/src/view.tsx")));
}

#[test]
fn javascript_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("mixed/web/app.js")));
}

#[test]
fn go_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("mixed/go/queue.go")));
}

#[test]
fn c_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("mixed/c/list.c")));
    insta::assert_snapshot!("c_header_tags", render_tags(&tags_of("mixed/c/list.h")));
}

#[test]
fn cpp_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("mixed/cpp/shape.cpp")));
}

#[test]
fn java_tags() {
    insta::assert_snapshot!(render_tags(&tags_of("mixed/java/Shop.java")));
}

#[test]
fn outline_nests_definitions_and_finds_the_enclosing_symbol() {
    let (_, text) = fixture("rust_app/src/store.rs");
    let tags = tags_of("rust_app/src/store.rs");
    insta::assert_snapshot!(symbols::render_outline(&tags));
    let inside = text.find("self.items.push(item)").unwrap();
    let enclosing = &tags.symbols[symbols::enclosing_symbol(&tags, inside).unwrap()];
    assert_eq!(
        (enclosing.kind, enclosing.name.as_str()),
        (SymbolKind::Method, "insert")
    );
    let chain: Vec<&str> =
        symbols::ancestors(&tags, symbols::enclosing_symbol(&tags, inside).unwrap())
            .iter()
            .map(|s| s.name.as_str())
            .collect();
    assert_eq!(chain, ["Store"]);
    // Between definitions there is none.
    assert!(symbols::enclosing_symbol(&tags, text.find("//! Where").unwrap()).is_none());
}

#[test]
fn python_outline_has_methods_inside_classes() {
    insta::assert_snapshot!(symbols::render_outline(&tags_of(
        "python_app/shop/models.py"
    )));
}

#[test]
fn incremental_reparse_matches_a_fresh_parse() {
    use crate::documents::{ContentChange, Document, Position, Range, TextEdits};
    let (_, text) = fixture("rust_app/src/store.rs");
    let mut document = Document::new("file:///w/store.rs".into(), "rust".into(), 1, &text);
    let mut trees = OpenTrees::new();
    trees.open(&document);
    // Rename `insert` to `add_item`, then add a function at the end, in one didChange.
    let line = text.lines().position(|l| l.contains("fn insert")).unwrap() as u32;
    let column = text
        .lines()
        .nth(line as usize)
        .unwrap()
        .find("insert")
        .unwrap() as u32;
    let changes = [
        ContentChange {
            range: Some(Range {
                start: Position {
                    line,
                    character: column,
                },
                end: Position {
                    line,
                    character: column + 6,
                },
            }),
            text: "add_item".into(),
        },
        ContentChange {
            range: Some(Range {
                start: Position {
                    line: 999,
                    character: 0,
                },
                end: Position {
                    line: 999,
                    character: 0,
                },
            }),
            text: "\nfn helper_é() -> u8 {\n    1\n}\n".into(),
        },
    ];
    let edits = changes
        .iter()
        .map(|change| document.apply_change(change).unwrap())
        .collect();
    document.version = 2;
    trees.change(&TextEdits::Ranges(edits), &document);
    let open = trees.current(&document).unwrap();
    assert_eq!(open.version, 2);
    let fresh = tags::parse(Language::Rust, document.text_string().as_bytes(), None).unwrap();
    assert_eq!(open.tree.root_node().to_sexp(), fresh.root_node().to_sexp());
    let tags = trees.tags(&document).unwrap();
    let names: Vec<&str> = tags.symbols.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"add_item") && names.contains(&"helper_é"),
        "{names:?}"
    );
    assert!(!names.contains(&"insert"));
    // A whole-text change parses anew.
    let replaced = ContentChange {
        range: None,
        text: "fn only() {}\n".into(),
    };
    assert_eq!(document.apply_change(&replaced), None);
    trees.change(&TextEdits::Replaced, &document);
    let tags = trees.tags(&document).unwrap();
    assert_eq!(tags.symbols.len(), 1);
    trees.close("file:///w/store.rs");
    assert!(trees.is_empty());
}

#[test]
fn utf16_and_byte_columns_convert_both_ways() {
    let line = "let é = \"😀\"; x";
    let byte = line.find('x').unwrap();
    let utf16 = utf16_column(line, byte);
    assert_eq!(utf16, 14);
    assert_eq!(byte_column(line, utf16), byte);
    assert_eq!(byte_column(line, 999), line.len());
}

/// A match as (pattern, [(capture, start byte, end byte)]).
type PlainMatch = (usize, Vec<(u32, usize, usize)>);

/// Every match, sorted, from one matcher.
fn all_matches(language: Language, text: &str, own: bool) -> Vec<PlainMatch> {
    let tags = language.tags_query().unwrap();
    let tree = tags::parse(language, text.as_bytes(), None).unwrap();
    let mut out = Vec::new();
    let mut push = |pattern: usize, captures: &tag_patterns::Captures<'_>| {
        let mut captures: Vec<(u32, usize, usize)> = captures
            .iter()
            .map(|(c, node)| (*c, node.start_byte(), node.end_byte()))
            .collect();
        captures.sort_unstable();
        out.push((pattern, captures));
    };
    if own {
        let patterns = tags.patterns.as_ref().unwrap();
        patterns.for_each_match(tree.root_node(), &mut push);
    } else {
        tags::query_cursor_matches(&tags.query, &tree, text.as_bytes(), &mut push);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Snippets with what the fixtures lack: several declarators, static fields, grouped
/// constants, function-valued assignments, syntax errors.
const EDGE_CASES: &[(Language, &str)] = &[
    (
        Language::C,
        "int a(void), *b(int), c;\nstruct s { int x; } v;\ntypedef struct t t_t;\n#define M(x) x\nint f( {\n",
    ),
    (
        Language::Cpp,
        "int A::run() { return go(1); }\nclass K : public B { void m(); };\nint& r(int x) { return x; }\nnamespace n { using T = int; }\n",
    ),
    (
        Language::Go,
        "package p\nconst (\n\tA = 1\n\tB, C = 2, 3\n)\nvar x, y int\ntype S struct{}\ntype I interface{ M() }\nfunc (s S) M() { f(1); s.g() }\n",
    ),
    (
        Language::Java,
        "class A { static final int X = 1, Y = 2; private static int z; int w; A() { new B(); run(); } }\n",
    ),
    (
        Language::JavaScript,
        "const f = () => 1, g = function () {};\nexport const h = 2;\nobj.m = () => {};\nclass C extends D { m() { new E(); this.n(); } }\n<X/>;\n",
    ),
    (
        Language::Python,
        "A = 1\nB: int = 2\n@dec\nclass K(Base, Other):\n    def m(self) -> T:\n        return g(self.h(1))\nfrom a.b import c\ndef broken(:\n",
    ),
    (
        Language::Rust,
        "impl<T> Tr for Wrap<T> { fn m(&self) { a::b(); self.c(); d::<u8>(); e!(); } }\nimpl x::Y { }\nconst C: u8 = 1;\nfn broken( {\n",
    ),
    (
        Language::TypeScript,
        "interface I { m(): void }\nabstract class A { abstract n(): T; }\nenum E { X }\nnamespace N {}\nconst f = (x: U) => x;\nclass C extends D {}\n",
    ),
    (Language::Tsx, "const App = () => <Panel><Item/></Panel>;\n"),
];

#[test]
fn every_tags_query_is_within_the_one_walk_matcher() {
    for language in Language::ALL {
        assert!(
            language.tags_query().unwrap().patterns.is_some(),
            "{language:?}: tags.scm uses more than tag_patterns knows, so indexing it is slow"
        );
    }
}

#[test]
fn the_one_walk_matcher_finds_what_query_cursor_finds() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/context");
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut texts: Vec<(Language, String, String)> = EDGE_CASES
        .iter()
        .map(|(language, text)| {
            (
                *language,
                (*text).to_owned(),
                format!("{language:?} edge cases"),
            )
        })
        .collect();
    for root in [fixtures, ours] {
        for entry in ignore::WalkBuilder::new(&root).build().flatten() {
            if let Some(language) = Language::from_path(entry.path()) {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                texts.push((language, text, entry.path().display().to_string()));
            }
        }
    }
    assert!(texts.len() > 100, "{} files", texts.len());
    let mut languages = std::collections::BTreeSet::new();
    for (language, text, name) in &texts {
        let expected = all_matches(*language, text, false);
        let found = all_matches(*language, text, true);
        assert!(!expected.is_empty(), "{name}: no matches at all");
        let missing: Vec<_> = expected.iter().filter(|m| !found.contains(m)).collect();
        assert!(
            missing.is_empty(),
            "{name}: QueryCursor found, we did not: {missing:?}"
        );
        // QueryCursor gives only the first name of the second spec in a grouped Go `const`
        // (`B, C = 2, 3` yields B alone, though `var x, y int` yields both): a match it drops,
        // not one we invent. Everywhere else the two agree exactly.
        let extra: Vec<&str> = found
            .iter()
            .filter(|m| !expected.contains(m))
            .map(|(_, captures)| &text[captures[0].1..captures[0].2])
            .collect();
        let known: &[&str] = if name == "Go edge cases" { &["C"] } else { &[] };
        assert_eq!(extra, known, "{name}: we found what QueryCursor did not");
        languages.insert(*language);
    }
    assert_eq!(languages.len(), Language::ALL.len());
}

#[test]
fn a_query_outside_the_subset_is_left_to_query_cursor() {
    let grammar = Language::Rust.grammar();
    for source in [
        "((identifier) @name (#eq? @name \"x\"))",
        "(block (expression_statement)* @name)",
        "(function_item !name) @name",
        "(block . (identifier) @name)",
    ] {
        let query = tree_sitter::Query::new(&grammar, source).unwrap();
        assert!(
            tag_patterns::TagPatterns::compile(&grammar, &query, source).is_none(),
            "{source}"
        );
    }
    let plain = "(function_item name: (identifier) @name) @definition.function";
    let query = tree_sitter::Query::new(&grammar, plain).unwrap();
    assert!(tag_patterns::TagPatterns::compile(&grammar, &query, plain).is_some());
}

#[test]
fn a_name_only_its_own_file_uses_gets_no_share_of_rank() {
    let root = tempfile::tempdir().unwrap();
    // b.rs's helpers are used only inside b.rs; a.rs uses `shared_name` from b.rs, and b.rs
    // uses `entry_point` from a.rs (so b.rs has rank to give). Names are chosen so b.rs's
    // references are not in name-id order.
    std::fs::write(
        root.path().join("b.rs"),
        "fn zeta_helper() {}\nfn shared_name() { zeta_helper(); alpha_helper(); entry_point(); }\nfn alpha_helper() {}\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("a.rs"),
        "fn entry_point() { shared_name(); }\n",
    )
    .unwrap();
    let index = RepoIndex::build(root.path(), MapOptions::in_memory());
    let ranked = index.rank(&repo_map::Focus::default());
    let score = |name: &str| {
        ranked
            .iter()
            .find(|r| index.files()[r.file].tags.symbols[r.symbol].name == name)
            .map(|r| r.score)
            .unwrap()
    };
    assert!(
        score("shared_name") > 100.0 * score("zeta_helper"),
        "{ranked:?}"
    );
    // Both helpers are left with their file's tie-break alone.
    assert_eq!(score("zeta_helper"), score("alpha_helper"));
}
