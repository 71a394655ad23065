//! `list`: a folder's entries, or (with a glob pattern) the files below it that match,
//! honouring `.gitignore`, `.ignore` and git's excludes, even outside a git repository.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Effect, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema, parse_args,
};
use crate::agent::workspace::Workspace;

pub struct List;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
}

impl Tool for List {
    fn name(&self) -> &'static str {
        "list"
    }

    fn description(&self) -> &'static str {
        "List a folder (default: workspace root), or files matching a glob like **/*.rs. Gitignored files are skipped."
    }

    fn parameters(&self) -> Value {
        object_schema(
            json!({"path": {"type": "string"}, "pattern": {"type": "string"}}),
            &[],
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
            let folder = workspace.resolve(args.path.as_deref().unwrap_or("."))?;
            if !folder.is_dir() {
                return Err(ToolError::Failed(format!(
                    "{} is not a folder",
                    workspace.relative(&folder)
                )));
            }
            let matcher = match &args.pattern {
                Some(pattern) => Some(
                    globset::GlobBuilder::new(pattern)
                        .literal_separator(true)
                        .build()
                        .map_err(|error| {
                            ToolError::InvalidArguments(format!(
                                "pattern {pattern:?}: {}",
                                error.kind()
                            ))
                        })?
                        .compile_matcher(),
                ),
                None => None,
            };
            let limit = context.settings.max_list_entries;
            tokio::task::spawn_blocking(move || {
                let mut walk = ignore::WalkBuilder::new(&folder);
                walk.hidden(false)
                    .require_git(false)
                    .sort_by_file_name(|a, b| a.cmp(b))
                    .filter_entry(|entry| entry.file_name() != ".git");
                if matcher.is_none() {
                    walk.max_depth(Some(1));
                }
                let mut entries = Vec::new();
                let mut more = 0usize;
                for entry in walk.build().filter_map(Result::ok) {
                    if entry.depth() == 0 {
                        continue;
                    }
                    let Ok(relative) = entry.path().strip_prefix(&folder) else {
                        continue;
                    };
                    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                    if let Some(matcher) = &matcher
                        && (is_dir || !matcher.is_match(relative))
                    {
                        continue;
                    }
                    if entries.len() == limit {
                        more += 1;
                        continue;
                    }
                    let mut shown = workspace.relative(entry.path());
                    if is_dir {
                        shown.push('/');
                    }
                    entries.push(shown);
                }
                Ok(ToolOutput::Text(super::capped_listing(
                    &entries,
                    more,
                    "No entries.",
                    "more; narrow the pattern",
                )))
            })
            .await
            .map_err(|error| ToolError::Failed(format!("list stopped: {error}")))?
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tests::{call, context, text};
    use serde_json::json;

    #[tokio::test]
    async fn lists_a_folder_and_globs_below_it_skipping_ignored_files() {
        let (_dir, mut cx) = context(&[
            (".gitignore", "build/\n*.o\n"),
            ("src/main.c", ""),
            ("src/util/str.c", ""),
            ("src/main.o", ""),
            ("build/out.c", ""),
            ("README.md", ""),
        ]);
        let root = text(call(&cx, "list", json!({})).await.unwrap());
        assert_eq!(root, ".gitignore\nREADME.md\nsrc/");
        let c_files = text(
            call(&cx, "list", json!({"pattern": "**/*.c"}))
                .await
                .unwrap(),
        );
        assert_eq!(c_files, "src/main.c\nsrc/util/str.c");
        let shallow = text(
            call(&cx, "list", json!({"path": "src", "pattern": "*.c"}))
                .await
                .unwrap(),
        );
        assert_eq!(shallow, "src/main.c");
        cx.settings.max_list_entries = 1;
        let capped = text(
            call(&cx, "list", json!({"pattern": "**/*.c"}))
                .await
                .unwrap(),
        );
        assert_eq!(capped, "src/main.c\n… 1 more; narrow the pattern");
        let error = call(&cx, "list", json!({"path": "/"})).await.unwrap_err();
        assert!(error.to_string().contains("outside the workspace"));
    }
}
