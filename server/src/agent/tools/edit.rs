//! `edit`: exact string replacement. Each `old` must occur exactly once in the file (as it is
//! after the edits before it); otherwise the error shows where it occurs, or the nearest
//! lines, with line numbers. Several edits, in one file or several, are all or nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Effect, FileEdit, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema,
    parse_args,
};
use crate::agent::workspace::Workspace;

/// How many near matches an error lists.
const NEAR_MATCHES: usize = 3;

pub struct Edit;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    old: Option<String>,
    #[serde(default)]
    new: Option<String>,
    #[serde(default)]
    edits: Vec<OneEdit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneEdit {
    #[serde(default)]
    path: Option<String>,
    old: String,
    new: String,
}

impl Args {
    /// Every edit with its path, in order.
    fn edits(self) -> Result<Vec<(String, String, String)>, ToolError> {
        let mut all = Vec::new();
        match (self.old, self.new) {
            (Some(old), Some(new)) => {
                let path = self.path.clone().ok_or_else(|| {
                    ToolError::InvalidArguments("path is required with old/new".into())
                })?;
                all.push((path, old, new));
            }
            (None, None) => {}
            _ => {
                return Err(ToolError::InvalidArguments("give both old and new".into()));
            }
        }
        for edit in self.edits {
            let path = edit.path.or_else(|| self.path.clone()).ok_or_else(|| {
                ToolError::InvalidArguments("each edit needs a path (or give path once)".into())
            })?;
            all.push((path, edit.old, edit.new));
        }
        if all.is_empty() {
            return Err(ToolError::InvalidArguments(
                "nothing to do: give old/new or edits".into(),
            ));
        }
        Ok(all)
    }
}

impl Tool for Edit {
    fn name(&self) -> &'static str {
        "edit"
    }

    fn description(&self) -> &'static str {
        "Replace exact text: old must match once. Several changes: edits [{path, old, new}], all or nothing."
    }

    fn parameters(&self) -> Value {
        let edit = json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
            "required": ["old", "new"],
        });
        object_schema(
            json!({
                "path": {"type": "string"},
                "old": {"type": "string"},
                "new": {"type": "string"},
                "edits": {"type": "array", "items": edit},
            }),
            &[],
        )
    }

    fn effect(&self) -> Effect {
        Effect::Edits
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let args: Args = parse_args(args)?;
        let mut paths = Vec::new();
        for (path, _, _) in args.edits()? {
            let shown = workspace.relative(&workspace.resolve(&path)?);
            if !paths.contains(&shown) {
                paths.push(shown);
            }
        }
        Ok(paths)
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let args: Args = parse_args(&args)?;
            let workspace = &context.workspace;
            // Current text per file, edited in order.
            let mut files: BTreeMap<PathBuf, (String, String)> = BTreeMap::new();
            let mut order = Vec::new();
            let edits = args.edits()?;
            let count = edits.len();
            for (number, (raw, old, new)) in edits.into_iter().enumerate() {
                let path = workspace.resolve(&raw)?;
                let shown = workspace.relative(&path);
                let which = if count > 1 {
                    format!("edit {} ({shown})", number + 1)
                } else {
                    shown.clone()
                };
                if old.is_empty() {
                    return Err(ToolError::Failed(format!(
                        "{which}: old is empty; use write to create a file"
                    )));
                }
                if old == new {
                    return Err(ToolError::Failed(format!(
                        "{which}: old and new are the same"
                    )));
                }
                if !files.contains_key(&path) {
                    let text = workspace
                        .read_text(&path)
                        .map_err(|error| ToolError::io(shown.clone(), error))?;
                    files.insert(path.clone(), (text.clone(), text));
                    order.push(path.clone());
                }
                let Some((_, current)) = files.get_mut(&path) else {
                    continue;
                };
                let at = unique_match(current, &old).map_err(|problem| {
                    ToolError::Failed(format!("{which}: {problem}. Nothing was changed."))
                })?;
                current.replace_range(at..at + old.len(), &new);
            }
            let mut changed = Vec::new();
            let edits: Vec<FileEdit> = order
                .into_iter()
                .filter_map(|path| {
                    let (before, after) = files.remove(&path)?;
                    changed.push(workspace.relative(&path));
                    Some(FileEdit {
                        path,
                        before: Some(before),
                        after,
                    })
                })
                .collect();
            Ok(ToolOutput::Edits {
                edits,
                message: format!(
                    "Edited {} ({count} replacement{}).",
                    changed.join(", "),
                    if count == 1 { "" } else { "s" }
                ),
            })
        })
    }
}

/// The byte offset of the only occurrence of `old` in `text`, or why there is none.
fn unique_match(text: &str, old: &str) -> Result<usize, String> {
    let offsets: Vec<usize> = text.match_indices(old).map(|(at, _)| at).collect();
    match offsets.as_slice() {
        [at] => Ok(*at),
        [] => Err(not_found(text, old)),
        many => {
            let lines: Vec<String> = many
                .iter()
                .take(10)
                .map(|at| line_of(text, *at).to_string())
                .collect();
            Err(format!(
                "old matches {} times (lines {}); include more surrounding text so it matches once",
                many.len(),
                lines.join(", ")
            ))
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// "not found", with the lines most like `old`'s first non-blank line.
fn not_found(text: &str, old: &str) -> String {
    let mut message = "old was not found".to_owned();
    let squashed = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    if !squashed(old).is_empty() && squashed(text).contains(&squashed(old)) {
        message.push_str(" exactly, but it does with different whitespace or indentation; copy it exactly from read");
    }
    let Some(probe) = old.lines().map(str::trim).find(|line| !line.is_empty()) else {
        return message;
    };
    let mut scored: Vec<(f32, usize, &str)> = text
        .lines()
        .take(20_000)
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let ratio = similar::TextDiff::from_chars(probe, line.trim()).ratio();
            (ratio, index + 1, line)
        })
        .filter(|(ratio, _, _)| *ratio >= 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    if scored.is_empty() {
        message.push_str("; no similar line either: read the file first");
        return message;
    }
    message.push_str("; nearest lines:");
    for (_, line_number, line) in scored.into_iter().take(NEAR_MATCHES) {
        message.push_str(&format!("\n  {line_number}: {}", line.trim_end()));
    }
    message
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tests::{call, context};
    use super::super::{FileEdit, ToolOutput};
    use serde_json::json;

    const SOURCE: &str = "int add(int a, int b) {\n    return a + b;\n}\n\nint twice(int a) {\n    return a + a;\n}\n";

    fn edits(output: ToolOutput) -> Vec<FileEdit> {
        match output {
            ToolOutput::Edits { edits, .. } => edits,
            other => panic!("expected edits, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn replaces_a_unique_match_without_touching_the_disk() {
        let (dir, cx) = context(&[("m.c", SOURCE)]);
        let out = call(
            &cx,
            "edit",
            json!({"path": "m.c", "old": "a + b", "new": "b + a"}),
        )
        .await
        .unwrap();
        let edits = edits(out);
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].before.as_deref(), Some(SOURCE));
        assert_eq!(edits[0].after, SOURCE.replace("a + b", "b + a"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("m.c")).unwrap(),
            SOURCE,
            "the session writes, not the tool"
        );
    }

    #[tokio::test]
    async fn an_ambiguous_match_lists_its_lines() {
        let (_dir, cx) = context(&[("m.c", SOURCE)]);
        let error = call(
            &cx,
            "edit",
            json!({"path": "m.c", "old": "    return", "new": "return"}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "m.c: old matches 2 times (lines 2, 6); include more surrounding text so it matches once. Nothing was changed."
        );
    }

    #[tokio::test]
    async fn a_missing_match_shows_the_nearest_lines() {
        let (_dir, cx) = context(&[("m.c", SOURCE)]);
        let error = call(
            &cx,
            "edit",
            json!({"path": "m.c", "old": "int add(int x, int y) {", "new": "x"}),
        )
        .await
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "m.c: old was not found; nearest lines:\n  1: int add(int a, int b) {"
            ),
            "{text}"
        );
        let error = call(
            &cx,
            "edit",
            json!({"path": "m.c", "old": "return  a + b;", "new": "x"}),
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("different whitespace"),
            "{error}"
        );
        let error = call(
            &cx,
            "edit",
            json!({"path": "m.c", "old": "zzzzqqqq", "new": "x"}),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("no similar line"), "{error}");
    }

    #[tokio::test]
    async fn multi_edit_is_all_or_nothing_and_sees_earlier_edits() {
        let (_dir, cx) = context(&[("m.c", SOURCE), ("n.c", "int n;\n")]);
        let out = call(
            &cx,
            "edit",
            json!({"edits": [
                {"path": "m.c", "old": "a + b", "new": "sum"},
                {"path": "m.c", "old": "return sum", "new": "return (sum)"},
                {"path": "n.c", "old": "int n;", "new": "long n;"},
            ]}),
        )
        .await
        .unwrap();
        let edits = edits(out);
        assert_eq!(edits.len(), 2);
        assert!(edits[0].after.contains("return (sum);"));
        assert_eq!(edits[1].after, "long n;\n");
        let error = call(
            &cx,
            "edit",
            json!({"path": "m.c", "edits": [
                {"old": "a + b", "new": "sum"},
                {"old": "not there", "new": "x"},
            ]}),
        )
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("edit 2 (m.c): old was not found"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn bad_requests_are_explained() {
        let (_dir, cx) = context(&[("m.c", SOURCE)]);
        for (args, expected) in [
            (
                json!({"path": "m.c", "old": "", "new": "x"}),
                "old is empty",
            ),
            (json!({"path": "m.c", "old": "a", "new": "a"}), "the same"),
            (json!({"path": "m.c", "old": "a"}), "give both old and new"),
            (json!({"path": "m.c"}), "nothing to do"),
            (
                json!({"path": "../m.c", "old": "a", "new": "b"}),
                "outside the workspace",
            ),
        ] {
            let error = call(&cx, "edit", args).await.unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{error} lacks {expected}"
            );
        }
    }
}
