//! `read`: a file's lines with their numbers, optionally a range; unsaved editor buffers win
//! over the disk.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Effect, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema, parse_args,
};
use crate::agent::workspace::Workspace;

/// Longer lines are cut (minified files, data).
const MAX_LINE_CHARS: usize = 500;

pub struct Read;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    /// 1-based, inclusive.
    start_line: Option<usize>,
    end_line: Option<usize>,
}

impl Tool for Read {
    fn name(&self) -> &'static str {
        "read"
    }

    fn description(&self) -> &'static str {
        "Read a text file; lines are numbered. Use start_line/end_line for big files."
    }

    fn parameters(&self) -> Value {
        object_schema(
            json!({
                "path": {"type": "string"},
                "start_line": {"type": "integer", "minimum": 1},
                "end_line": {"type": "integer", "minimum": 1},
            }),
            &["path"],
        )
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let args: Args = parse_args(args)?;
        Ok(vec![workspace.relative(&workspace.resolve(&args.path)?)])
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let args: Args = parse_args(&args)?;
            let workspace = &context.workspace;
            let path = workspace.resolve(&args.path)?;
            let shown = workspace.relative(&path);
            if path.is_dir() {
                return Err(ToolError::Failed(format!(
                    "{shown} is a folder; use list to see what it holds"
                )));
            }
            let text = workspace
                .read_text(&path)
                .map_err(|error| ToolError::io(shown.clone(), error))?;
            let total = text.lines().count();
            let start = args.start_line.unwrap_or(1).max(1);
            let limit = context.settings.max_read_lines;
            let end = args
                .end_line
                .unwrap_or(start.saturating_add(limit - 1))
                .min(total)
                .min(start.saturating_add(limit - 1));
            if total == 0 {
                return Ok(ToolOutput::Text(format!("{shown} is empty.")));
            }
            if start > total {
                return Err(ToolError::Failed(format!(
                    "{shown} has {total} lines; start_line {start} is past the end"
                )));
            }
            let mut out = String::new();
            for (index, line) in text.lines().enumerate().take(end).skip(start - 1) {
                let line = match line.char_indices().nth(MAX_LINE_CHARS) {
                    Some((cut, _)) => format!("{}… (line cut)", &line[..cut]),
                    None => line.to_owned(),
                };
                let _ = writeln!(out, "{:>5}| {line}", index + 1);
            }
            if end < total {
                let _ = write!(
                    out,
                    "({shown}: lines {start}-{end} of {total}; ask for start_line {} to go on)",
                    end + 1
                );
            }
            Ok(ToolOutput::Text(out.trim_end().to_owned()))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tests::{call, context, text};
    use serde_json::json;

    #[tokio::test]
    async fn reads_numbered_lines_and_ranges() {
        let body: String = (1..=10).map(|n| format!("line {n}\n")).collect();
        let (_dir, mut cx) = context(&[("a.txt", &body)]);
        let all = text(call(&cx, "read", json!({"path": "a.txt"})).await.unwrap());
        assert!(all.starts_with("    1| line 1\n"), "{all}");
        assert!(all.ends_with("   10| line 10"), "{all}");
        let some = text(
            call(
                &cx,
                "read",
                json!({"path": "a.txt", "start_line": 3, "end_line": 4}),
            )
            .await
            .unwrap(),
        );
        assert_eq!(
            some,
            "    3| line 3\n    4| line 4\n(a.txt: lines 3-4 of 10; ask for start_line 5 to go on)"
        );
        cx.settings.max_read_lines = 2;
        let capped = text(call(&cx, "read", json!({"path": "a.txt"})).await.unwrap());
        assert!(
            capped.ends_with("ask for start_line 3 to go on)"),
            "{capped}"
        );
        let past = call(&cx, "read", json!({"path": "a.txt", "start_line": 11}))
            .await
            .unwrap_err();
        assert!(past.to_string().contains("has 10 lines"), "{past}");
    }

    #[tokio::test]
    async fn refuses_escapes_and_folders_and_reports_missing_files() {
        let (_dir, cx) = context(&[("src/a.c", "x")]);
        let error = call(&cx, "read", json!({"path": "../etc/passwd"}))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("outside the workspace"),
            "{error}"
        );
        let error = call(&cx, "read", json!({"path": "src"})).await.unwrap_err();
        assert!(error.to_string().contains("src is a folder"), "{error}");
        let error = call(&cx, "read", json!({"path": "nope.c"}))
            .await
            .unwrap_err();
        assert!(error.to_string().starts_with("nope.c: "), "{error}");
        let error = call(&cx, "read", json!({"file": "a"})).await.unwrap_err();
        assert!(
            error.to_string().starts_with("invalid arguments"),
            "{error}"
        );
    }
}
