//! `rename`: a symbol renamed by the language server (`textDocument/rename`), across every
//! file that uses it. The server's `WorkspaceEdit` becomes whole-file edits, so the session
//! snapshots, writes and checks them like any other edit (all or nothing).
//!
//! Only text edits are taken: a rename that would also create, rename or delete files is
//! refused with a message, rather than half done.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::navigate::{file_uri, utf16_column};
use super::{
    Effect, FileEdit, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema,
    parse_args,
};
use crate::agent::workspace::Workspace;
use crate::documents::{ContentChange, Document, Range};

pub struct Rename;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    line: u32,
    symbol: String,
    new_name: String,
}

impl Tool for Rename {
    fn name(&self) -> &'static str {
        "rename"
    }

    fn description(&self) -> &'static str {
        "Rename symbol (on path:line) to new_name everywhere, by the language server."
    }

    fn parameters(&self) -> Value {
        object_schema(
            json!({
                "path": {"type": "string"},
                "line": {"type": "integer", "minimum": 1},
                "symbol": {"type": "string"},
                "new_name": {"type": "string"},
            }),
            &["path", "line", "symbol", "new_name"],
        )
    }

    fn effect(&self) -> Effect {
        Effect::Edits
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let args: Args = parse_args(args)?;
        Ok(vec![workspace.relative(&workspace.resolve(&args.path)?)])
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let args: Args = parse_args(&args)?;
            if args.new_name.trim().is_empty() {
                return Err(ToolError::InvalidArguments("new_name is empty".into()));
            }
            let workspace = &context.workspace;
            let path = workspace.resolve(&args.path)?;
            let shown = workspace.relative(&path);
            let text = workspace
                .read_text(&path)
                .map_err(|error| ToolError::io(shown.clone(), error))?;
            let character = utf16_column(&text, args.line, &args.symbol).ok_or_else(|| {
                ToolError::Failed(format!(
                    "{shown}:{}: {:?} is not on that line; read the file for the exact line",
                    args.line, args.symbol
                ))
            })?;
            let params = json!({
                "textDocument": {"uri": file_uri(&path)?},
                "position": {"line": args.line - 1, "character": character},
                "newName": args.new_name,
            });
            let result = workspace
                .feedback()
                .request("textDocument/rename", params)
                .await
                .map_err(ToolError::Failed)?;
            let per_file = text_edits_by_file(&result)?;
            if per_file.is_empty() {
                return Err(ToolError::Failed(format!(
                    "the language server found nothing to rename for {:?} at {shown}:{}",
                    args.symbol, args.line
                )));
            }
            let mut edits = Vec::new();
            let mut occurrences = 0;
            for (uri, changes) in per_file {
                let path = path_of_uri(&uri)?;
                let path = workspace.resolve(&path.to_string_lossy())?;
                let relative = workspace.relative(&path);
                let before = workspace
                    .read_text(&path)
                    .map_err(|error| ToolError::io(relative, error))?;
                occurrences += changes.len();
                let after = apply_text_edits(&uri, &before, changes);
                if after != before {
                    edits.push(FileEdit {
                        path,
                        before: Some(before),
                        after,
                    });
                }
            }
            let files = edits.len();
            let message = format!(
                "Renamed {:?} to {:?}: {occurrences} occurrence(s) in {files} file(s).",
                args.symbol, args.new_name
            );
            Ok(ToolOutput::Edits { edits, message })
        })
    }
}

/// The text edits of a `WorkspaceEdit`, per document uri (`changes` or `documentChanges`).
/// File operations are refused: the tool changes text only.
fn text_edits_by_file(edit: &Value) -> Result<BTreeMap<String, Vec<ContentChange>>, ToolError> {
    let mut out: BTreeMap<String, Vec<ContentChange>> = BTreeMap::new();
    if edit.is_null() {
        return Ok(out);
    }
    let parse = |edits: &Value| -> Result<Vec<ContentChange>, ToolError> {
        let edits = edits.as_array().cloned().unwrap_or_default();
        edits
            .into_iter()
            .map(|edit| {
                let range: Range = serde_json::from_value(edit["range"].clone()).map_err(|e| {
                    ToolError::Failed(format!("the server's rename edit has a bad range: {e}"))
                })?;
                let text = edit["newText"].as_str().unwrap_or_default().to_owned();
                Ok(ContentChange {
                    range: Some(range),
                    text,
                })
            })
            .collect()
    };
    if let Some(changes) = edit.get("documentChanges").and_then(Value::as_array) {
        for change in changes {
            if let Some(kind) = change.get("kind").and_then(Value::as_str) {
                return Err(ToolError::Failed(format!(
                    "the server's rename would also {kind} a file; rename files with write \
                     and run_command instead"
                )));
            }
            let Some(uri) = change.pointer("/textDocument/uri").and_then(Value::as_str) else {
                continue;
            };
            out.entry(uri.to_owned())
                .or_default()
                .extend(parse(&change["edits"])?);
        }
    } else if let Some(changes) = edit.get("changes").and_then(Value::as_object) {
        for (uri, edits) in changes {
            out.entry(uri.clone()).or_default().extend(parse(edits)?);
        }
    }
    out.retain(|_, edits| !edits.is_empty());
    Ok(out)
}

fn path_of_uri(uri: &str) -> Result<PathBuf, ToolError> {
    url::Url::parse(uri)
        .ok()
        .and_then(|url| url.to_file_path().ok())
        .ok_or_else(|| ToolError::Failed(format!("the server's rename names {uri}, not a file")))
}

/// `text` with every edit applied. The edits' ranges all refer to `text` as it is (the LSP's
/// rule for one `TextEdit[]`), so they are applied from the last to the first.
fn apply_text_edits(uri: &str, text: &str, mut edits: Vec<ContentChange>) -> String {
    let mut document = Document::new(uri.to_owned(), String::new(), 0, text);
    edits.sort_by_key(|edit| edit.range.map(|range| range.start));
    for edit in edits.iter().rev() {
        document.apply_change(edit);
    }
    document.text_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn edit(line: u32, start: u32, end: u32, text: &str) -> Value {
        json!({"range": {"start": {"line": line, "character": start},
                         "end": {"line": line, "character": end}}, "newText": text})
    }

    #[test]
    fn edits_apply_from_last_to_first_in_utf16_columns() {
        let text = "int load(void);\nint é = load() + load();\n";
        let edits = text_edits_by_file(&json!({"changes": {"file:///a.c": [
            edit(1, 8, 12, "from_path"),
            edit(0, 4, 8, "from_path"),
            edit(1, 17, 21, "from_path"),
        ]}}))
        .unwrap();
        let changes = edits["file:///a.c"].clone();
        assert_eq!(
            apply_text_edits("file:///a.c", text, changes),
            "int from_path(void);\nint é = from_path() + from_path();\n"
        );
    }

    #[test]
    fn document_changes_are_read_and_file_operations_refused() {
        let edits = text_edits_by_file(&json!({"documentChanges": [
            {"textDocument": {"uri": "file:///a.c", "version": 3}, "edits": [edit(0, 0, 1, "x")]},
            {"textDocument": {"uri": "file:///b.c", "version": null}, "edits": []},
        ]}))
        .unwrap();
        assert_eq!(edits.keys().collect::<Vec<_>>(), ["file:///a.c"]);
        let error = text_edits_by_file(&json!({"documentChanges": [
            {"kind": "rename", "oldUri": "file:///a.c", "newUri": "file:///b.c"},
        ]}))
        .unwrap_err();
        assert!(
            error.to_string().contains("would also rename a file"),
            "{error}"
        );
        assert!(text_edits_by_file(&Value::Null).unwrap().is_empty());
    }
}
