//! `grep`: a regular expression over the workspace's files with ripgrep's searcher
//! (`grep-searcher`, `grep-regex`), honouring `.gitignore`; binary files are skipped.

use std::path::Path;

use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, SearcherBuilder, sinks};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Effect, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema, parse_args,
};
use crate::agent::workspace::Workspace;

/// Matched lines are cut to this many characters.
const MAX_LINE_CHARS: usize = 200;

pub struct Grep;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
    /// Only files whose path matches this glob, e.g. `*.rs`.
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    ignore_case: bool,
}

impl Tool for Grep {
    fn name(&self) -> &'static str {
        "grep"
    }

    fn description(&self) -> &'static str {
        "Search file contents with a regex; returns path:line: text. Optional path (file or folder) and glob filter."
    }

    fn parameters(&self) -> Value {
        object_schema(
            json!({
                "pattern": {"type": "string"},
                "path": {"type": "string"},
                "glob": {"type": "string"},
                "ignore_case": {"type": "boolean"},
            }),
            &["pattern"],
        )
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let args: Args = parse_args(args)?;
        let path = workspace.resolve(args.path.as_deref().unwrap_or("."))?;
        Ok(vec![workspace.relative(&path)])
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let args: Args = parse_args(&args)?;
            let workspace = context.workspace.clone();
            let start = workspace.resolve(args.path.as_deref().unwrap_or("."))?;
            let matcher = RegexMatcherBuilder::new()
                .case_insensitive(args.ignore_case)
                .build(&args.pattern)
                .map_err(|error| ToolError::InvalidArguments(format!("pattern: {error}")))?;
            let filter = match &args.glob {
                Some(glob) => Some(
                    globset::Glob::new(glob)
                        .map_err(|error| {
                            ToolError::InvalidArguments(format!("glob {glob:?}: {}", error.kind()))
                        })?
                        .compile_matcher(),
                ),
                None => None,
            };
            let limit = context.settings.max_grep_matches;
            tokio::task::spawn_blocking(move || {
                let mut searcher = SearcherBuilder::new()
                    .binary_detection(BinaryDetection::quit(0))
                    .line_number(true)
                    .build();
                let mut walk = ignore::WalkBuilder::new(&start);
                walk.hidden(false)
                    .require_git(false)
                    .sort_by_file_name(|a, b| a.cmp(b))
                    .filter_entry(|entry| entry.file_name() != ".git");
                let mut hits = Vec::new();
                let mut more = 0usize;
                for entry in walk.build().filter_map(Result::ok) {
                    if !entry.file_type().is_some_and(|t| t.is_file()) {
                        continue;
                    }
                    let path = entry.path();
                    let shown = workspace.relative(path);
                    if let Some(filter) = &filter
                        && !filter.is_match(&shown)
                        && !path
                            .file_name()
                            .is_some_and(|name| filter.is_match(Path::new(name)))
                    {
                        continue;
                    }
                    // Unreadable files are skipped, as ripgrep does.
                    let _ = searcher.search_path(
                        &matcher,
                        path,
                        sinks::Lossy(|line_number, line| {
                            if hits.len() == limit {
                                more += 1;
                                return Ok(true);
                            }
                            let line = line.trim_end_matches(['\n', '\r']);
                            let line = match line.char_indices().nth(MAX_LINE_CHARS) {
                                Some((cut, _)) => format!("{}…", &line[..cut]),
                                None => line.to_owned(),
                            };
                            hits.push(format!("{shown}:{line_number}: {line}"));
                            Ok(true)
                        }),
                    );
                }
                Ok(ToolOutput::Text(super::capped_listing(
                    &hits,
                    more,
                    "No matches.",
                    "more matches; narrow the search",
                )))
            })
            .await
            .map_err(|error| ToolError::Failed(format!("grep stopped: {error}")))?
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tests::{call, context, text};
    use serde_json::json;

    #[tokio::test]
    async fn finds_matches_with_line_numbers_respecting_ignores_and_filters() {
        let (_dir, mut cx) = context(&[
            (".gitignore", "target/\n"),
            ("src/lib.rs", "fn load() {}\nfn main() { load(); }\n"),
            ("src/notes.md", "load the config\n"),
            ("target/gen.rs", "fn load() {}\n"),
            ("blob.bin", "load\0\0binary"),
        ]);
        let all = text(
            call(&cx, "grep", json!({"pattern": "load\\("}))
                .await
                .unwrap(),
        );
        assert_eq!(
            all,
            "src/lib.rs:1: fn load() {}\nsrc/lib.rs:2: fn main() { load(); }"
        );
        let md = text(
            call(
                &cx,
                "grep",
                json!({"pattern": "LOAD", "ignore_case": true, "glob": "*.md"}),
            )
            .await
            .unwrap(),
        );
        assert_eq!(md, "src/notes.md:1: load the config");
        let none = text(
            call(&cx, "grep", json!({"pattern": "nothing here"}))
                .await
                .unwrap(),
        );
        assert_eq!(none, "No matches.");
        cx.settings.max_grep_matches = 1;
        let capped = text(
            call(&cx, "grep", json!({"pattern": "load", "path": "src"}))
                .await
                .unwrap(),
        );
        assert!(
            capped.ends_with("… 2 more matches; narrow the search"),
            "{capped}"
        );
        let bad = call(&cx, "grep", json!({"pattern": "("}))
            .await
            .unwrap_err();
        assert!(
            bad.to_string().starts_with("invalid arguments: pattern"),
            "{bad}"
        );
    }
}
