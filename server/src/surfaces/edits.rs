//! Text changes as the editor takes them: line hunks between two texts, LSP `TextEdit`s for
//! them, and `WorkspaceEdit`s shaped by what the client supports.
//!
//! A hunk is a run of whole lines of the base replaced by other lines, so its range starts at
//! a line start and ends at a line start, or at the very end of a base without a final line
//! break (the one place a UTF-16 column is needed).

use serde_json::{Value, json};
use similar::{DiffOp, TextDiff};

/// Lines `start..end` of the base (0-based, end exclusive) become `new_text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub start: u32,
    pub end: u32,
    pub old_text: String,
    pub new_text: String,
}

impl Hunk {
    /// 1-based first line, for messages; an insertion names the line it goes before.
    pub fn first_line(&self) -> u32 {
        self.start + 1
    }

    /// Lines added and removed.
    pub fn counts(&self) -> (usize, usize) {
        (self.new_text.lines().count(), self.old_text.lines().count())
    }
}

/// The hunks that turn `base` into `target`, in order.
pub fn hunks(base: &str, target: &str) -> Vec<Hunk> {
    let diff = TextDiff::from_lines(base, target);
    let old_lines: Vec<&str> = base.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = target.split_inclusive('\n').collect();
    let mut hunks: Vec<Hunk> = Vec::new();
    for op in diff.ops() {
        let (old, new) = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => (old_index..old_index + old_len, new_index..new_index),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => (old_index..old_index, new_index..new_index + new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index..old_index + old_len,
                new_index..new_index + new_len,
            ),
        };
        let old_text: String = old_lines[old.clone()].concat();
        let new_text: String = new_lines[new].concat();
        let start = u32::try_from(old.start).unwrap_or(u32::MAX);
        let end = u32::try_from(old.end).unwrap_or(u32::MAX);
        // Adjacent operations (a delete next to an insert) make one hunk.
        if let Some(last) = hunks.last_mut()
            && last.end == start
        {
            last.end = end;
            last.old_text.push_str(&old_text);
            last.new_text.push_str(&new_text);
            continue;
        }
        hunks.push(Hunk {
            start,
            end,
            old_text,
            new_text,
        });
    }
    hunks
}

/// `base` with only the hunks `keep` accepts applied (hunks as [`hunks`] made them for it).
pub fn apply_hunks(base: &str, hunks: &[Hunk], keep: impl Fn(usize) -> bool) -> String {
    let lines: Vec<&str> = base.split_inclusive('\n').collect();
    let mut out = String::with_capacity(base.len());
    let mut next = 0usize;
    for (index, hunk) in hunks.iter().enumerate() {
        let (start, end) = (hunk.start as usize, hunk.end as usize);
        out.extend(
            lines[next.min(lines.len())..start.min(lines.len())]
                .iter()
                .copied(),
        );
        if keep(index) {
            out.push_str(&hunk.new_text);
        } else {
            out.push_str(&hunk.old_text);
        }
        next = end;
    }
    out.extend(lines[next.min(lines.len())..].iter().copied());
    out
}

/// The LSP `TextEdit` of a hunk of `base`.
pub fn text_edit(base: &str, hunk: &Hunk) -> Value {
    json!({
        "range": {
            "start": line_start(base, hunk.start),
            "end": line_start(base, hunk.end),
        },
        "newText": hunk.new_text,
    })
}

/// The LSP position of the start of line `line`; past the last line break of a base that does
/// not end with one, the end of the text.
fn line_start(base: &str, line: u32) -> Value {
    let total = base.split_inclusive('\n').count();
    let ends_open = !base.is_empty() && !base.ends_with('\n');
    if ends_open && line as usize >= total {
        let last = base.rsplit('\n').next().unwrap_or("");
        let column = last.encode_utf16().count();
        return json!({ "line": total - 1, "character": column });
    }
    json!({ "line": line, "character": 0 })
}

/// One file's part of a `WorkspaceEdit`.
#[derive(Debug, Clone)]
pub struct FileEdits {
    pub uri: String,
    /// The editor's version the edits apply to; `None` for a file not open in the editor.
    pub version: Option<i32>,
    /// The file does not exist yet.
    pub create: bool,
    pub edits: Vec<Value>,
}

/// What the client said it can take in a `WorkspaceEdit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EditSupport {
    pub document_changes: bool,
    pub create_files: bool,
}

impl EditSupport {
    pub fn from_client_capabilities(capabilities: &Value) -> EditSupport {
        let workspace_edit = &capabilities["workspace"]["workspaceEdit"];
        let operations = workspace_edit["resourceOperations"].as_array();
        EditSupport {
            document_changes: workspace_edit["documentChanges"] == Value::Bool(true),
            create_files: operations.is_some_and(|ops| ops.iter().any(|op| op == "create")),
        }
    }
}

/// A `WorkspaceEdit`: versioned `documentChanges` when the client takes them (so it refuses a
/// stale edit by itself), else the plain `changes` map.
pub fn workspace_edit(files: &[FileEdits], support: EditSupport) -> Value {
    if !support.document_changes {
        let changes: serde_json::Map<String, Value> = files
            .iter()
            .map(|file| (file.uri.clone(), Value::Array(file.edits.clone())))
            .collect();
        return json!({ "changes": changes });
    }
    let mut document_changes = Vec::new();
    for file in files {
        if file.create && support.create_files {
            document_changes.push(json!({
                "kind": "create",
                "uri": file.uri,
                "options": { "ignoreIfExists": true },
            }));
        }
        document_changes.push(json!({
            "textDocument": { "uri": file.uri, "version": file.version },
            "edits": file.edits,
        }));
    }
    json!({ "documentChanges": document_changes })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hunks_cover_replacements_insertions_and_deletions() {
        let base = "a\nb\nc\nd\n";
        let target = "a\nB\nc\nd\ne\n";
        let found = hunks(base, target);
        assert_eq!(
            found,
            vec![
                Hunk {
                    start: 1,
                    end: 2,
                    old_text: "b\n".into(),
                    new_text: "B\n".into()
                },
                Hunk {
                    start: 4,
                    end: 4,
                    old_text: String::new(),
                    new_text: "e\n".into()
                },
            ]
        );
        assert_eq!(apply_hunks(base, &found, |_| true), target);
        assert_eq!(apply_hunks(base, &found, |_| false), base);
        assert_eq!(apply_hunks(base, &found, |i| i == 1), "a\nb\nc\nd\ne\n");
        assert_eq!(
            text_edit(base, &found[1]),
            json!({"range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 0}}, "newText": "e\n"})
        );
    }

    #[test]
    fn a_base_without_a_final_line_break_ends_at_its_last_column() {
        let base = "int x;\nreturn é";
        let target = "int x;\nreturn 0;\n";
        let found = hunks(base, target);
        assert_eq!(found.len(), 1);
        assert_eq!(
            text_edit(base, &found[0])["range"],
            json!({"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 8}})
        );
        assert_eq!(apply_hunks(base, &found, |_| true), target);
    }

    #[test]
    fn workspace_edits_follow_client_support() {
        let file = FileEdits {
            uri: "file:///w/a.c".into(),
            version: Some(3),
            create: false,
            edits: vec![json!({"newText": "x"})],
        };
        let versioned = workspace_edit(
            std::slice::from_ref(&file),
            EditSupport {
                document_changes: true,
                create_files: false,
            },
        );
        assert_eq!(
            versioned["documentChanges"][0]["textDocument"],
            json!({"uri": "file:///w/a.c", "version": 3})
        );
        let plain = workspace_edit(&[file], EditSupport::default());
        assert_eq!(plain["changes"]["file:///w/a.c"][0]["newText"], "x");
        let support = EditSupport::from_client_capabilities(&json!({
            "workspace": {"workspaceEdit": {"documentChanges": true, "resourceOperations": ["create", "rename"]}}
        }));
        assert!(support.document_changes && support.create_files);
    }
}
