//! Navigation through the language servers: `definition`, `references`, `hover`, `symbols`,
//! rendered as short text (`path:line: code line`), never raw JSON.
//!
//! The model names a position the way it reads code: a path, a 1-based line, and the
//! identifier on that line; the tool turns that into an LSP position (UTF-16 column).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Effect, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema, parse_args,
};
use crate::agent::workspace::Workspace;

/// Results listed at most.
const MAX_RESULTS: usize = 50;
/// Hover text kept at most (characters).
const MAX_HOVER: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Navigation {
    Definition,
    References,
    Hover,
    Symbols,
}

impl Navigation {
    pub const ALL: [Navigation; 4] = [
        Navigation::Definition,
        Navigation::References,
        Navigation::Hover,
        Navigation::Symbols,
    ];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionArgs {
    path: String,
    line: u32,
    symbol: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SymbolsArgs {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    query: Option<String>,
}

impl Tool for Navigation {
    fn name(&self) -> &'static str {
        match self {
            Navigation::Definition => "definition",
            Navigation::References => "references",
            Navigation::Hover => "hover",
            Navigation::Symbols => "symbols",
        }
    }

    fn description(&self) -> &'static str {
        match self {
            Navigation::Definition => "Where symbol (on path:line) is defined.",
            Navigation::References => "Every use of symbol (on path:line).",
            Navigation::Hover => "Type and docs of symbol (on path:line).",
            Navigation::Symbols => "Symbols of a file (path), or workspace symbols matching query.",
        }
    }

    fn parameters(&self) -> Value {
        match self {
            Navigation::Symbols => object_schema(
                json!({"path": {"type": "string"}, "query": {"type": "string"}}),
                &[],
            ),
            _ => object_schema(
                json!({
                    "path": {"type": "string"},
                    "line": {"type": "integer", "minimum": 1},
                    "symbol": {"type": "string"},
                }),
                &["path", "line", "symbol"],
            ),
        }
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let path = match self {
            Navigation::Symbols => parse_args::<SymbolsArgs>(args)?.path,
            _ => Some(parse_args::<PositionArgs>(args)?.path),
        };
        match path {
            Some(path) => Ok(vec![workspace.relative(&workspace.resolve(&path)?)]),
            None => Ok(Vec::new()),
        }
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        let kind = *self;
        Box::pin(async move {
            let workspace = &context.workspace;
            let feedback = workspace.feedback().clone();
            if kind == Navigation::Symbols {
                let args: SymbolsArgs = parse_args(&args)?;
                let (method, params, path) = match (&args.path, &args.query) {
                    (Some(path), _) => {
                        let path = workspace.resolve(path)?;
                        let params = json!({"textDocument": {"uri": file_uri(&path)?}});
                        ("textDocument/documentSymbol", params, Some(path))
                    }
                    (None, Some(query)) => ("workspace/symbol", json!({"query": query}), None),
                    (None, None) => {
                        return Err(ToolError::InvalidArguments("give path or query".into()));
                    }
                };
                let result = feedback
                    .request(method, params)
                    .await
                    .map_err(ToolError::Failed)?;
                return Ok(ToolOutput::Text(render_symbols(
                    workspace,
                    &result,
                    path.as_deref(),
                )));
            }
            let args: PositionArgs = parse_args(&args)?;
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
            let mut params = json!({
                "textDocument": {"uri": file_uri(&path)?},
                "position": {"line": args.line - 1, "character": character},
            });
            let method = match kind {
                Navigation::Definition => "textDocument/definition",
                Navigation::References => {
                    params["context"] = json!({"includeDeclaration": true});
                    "textDocument/references"
                }
                _ => "textDocument/hover",
            };
            let result = feedback
                .request(method, params)
                .await
                .map_err(ToolError::Failed)?;
            let out = if kind == Navigation::Hover {
                render_hover(&result)
            } else {
                render_locations(workspace, &result)
            };
            Ok(ToolOutput::Text(out))
        })
    }
}

pub(super) fn file_uri(path: &Path) -> Result<String, ToolError> {
    url::Url::from_file_path(path)
        .map(String::from)
        .map_err(|()| ToolError::Failed(format!("{} has no file URI", path.display())))
}

/// The UTF-16 column of the first `symbol` on 1-based `line`.
pub(super) fn utf16_column(text: &str, line: u32, symbol: &str) -> Option<usize> {
    let line_text = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let at = line_text.find(symbol.trim())?;
    Some(line_text[..at].encode_utf16().count())
}

/// `path:line: code line` for one location.
fn location_line(workspace: &Workspace, uri: &str, line0: u64) -> String {
    let path = url::Url::parse(uri)
        .ok()
        .and_then(|url| url.to_file_path().ok())
        .unwrap_or_else(|| PathBuf::from(uri));
    let code = workspace
        .read_text(&path)
        .ok()
        .and_then(|text| {
            text.lines()
                .nth(usize::try_from(line0).ok()?)
                .map(|line| line.trim().chars().take(160).collect::<String>())
        })
        .unwrap_or_default();
    format!("{}:{}: {code}", workspace.relative(&path), line0 + 1)
}

fn render_locations(workspace: &Workspace, result: &Value) -> String {
    let items: Vec<&Value> = match result {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    let mut lines: Vec<String> = items
        .iter()
        .filter_map(|item| {
            // Location, or LocationLink.
            let uri = item
                .get("uri")
                .or_else(|| item.get("targetUri"))?
                .as_str()?;
            let range = item
                .get("range")
                .or_else(|| item.get("targetSelectionRange"))?;
            let line = range.pointer("/start/line")?.as_u64()?;
            Some(location_line(workspace, uri, line))
        })
        .collect();
    if lines.is_empty() {
        return "Nothing found.".to_owned();
    }
    let total = lines.len();
    lines.truncate(MAX_RESULTS);
    let mut out = lines.join("\n");
    if total > MAX_RESULTS {
        let _ = write!(out, "\n… {} more", total - MAX_RESULTS);
    }
    out
}

fn render_hover(result: &Value) -> String {
    fn text_of(value: &Value) -> String {
        match value {
            Value::String(text) => text.clone(),
            Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join("\n"),
            Value::Object(object) => object
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        }
    }
    let text = result.get("contents").map(text_of).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return "No hover information.".to_owned();
    }
    match text.char_indices().nth(MAX_HOVER) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn symbol_kind(kind: u64) -> &'static str {
    const KINDS: [&str; 26] = [
        "file",
        "module",
        "namespace",
        "package",
        "class",
        "method",
        "property",
        "field",
        "constructor",
        "enum",
        "interface",
        "function",
        "variable",
        "constant",
        "string",
        "number",
        "boolean",
        "array",
        "object",
        "key",
        "null",
        "enum member",
        "struct",
        "event",
        "operator",
        "type parameter",
    ];
    usize::try_from(kind)
        .ok()
        .and_then(|k| k.checked_sub(1))
        .and_then(|k| KINDS.get(k))
        .copied()
        .unwrap_or("symbol")
}

fn render_symbols(workspace: &Workspace, result: &Value, document: Option<&Path>) -> String {
    fn walk(items: &[Value], depth: usize, out: &mut Vec<String>, document: &str) {
        for item in items {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
            let kind = symbol_kind(item.get("kind").and_then(Value::as_u64).unwrap_or(0));
            let line = item
                .pointer("/selectionRange/start/line")
                .or_else(|| item.pointer("/range/start/line"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            out.push(format!(
                "{document}:{}: {}{kind} {name}",
                line + 1,
                "  ".repeat(depth)
            ));
            if let Some(children) = item.get("children").and_then(Value::as_array) {
                walk(children, depth + 1, out, document);
            }
        }
    }
    let Some(items) = result.as_array() else {
        return "No symbols.".to_owned();
    };
    let mut lines = Vec::new();
    let is_document_symbols = items
        .first()
        .is_some_and(|item| item.get("location").is_none());
    match document {
        Some(path) if is_document_symbols => walk(items, 0, &mut lines, &workspace.relative(path)),
        _ => {
            for item in items {
                let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
                let kind = symbol_kind(item.get("kind").and_then(Value::as_u64).unwrap_or(0));
                let place = match (
                    item.pointer("/location/uri").and_then(Value::as_str),
                    item.pointer("/location/range/start/line")
                        .and_then(Value::as_u64),
                ) {
                    (Some(uri), Some(line)) => location_line(workspace, uri, line),
                    (Some(uri), None) => uri.to_owned(),
                    _ => "?".to_owned(),
                };
                lines.push(format!("{kind} {name} — {place}"));
            }
        }
    }
    if lines.is_empty() {
        return "No symbols.".to_owned();
    }
    let total = lines.len();
    lines.truncate(MAX_RESULTS);
    let mut out = lines.join("\n");
    if total > MAX_RESULTS {
        let _ = write!(out, "\n… {} more", total - MAX_RESULTS);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_utf16_and_locations_render_as_code_lines() {
        assert_eq!(utf16_column("é load()\n", 1, "load"), Some(2));
        assert_eq!(utf16_column("a\nb\n", 3, "b"), None);
        let (dir, cx) = super::super::tests::context(&[("src/a.c", "int x;\nint load(void);\n")]);
        let uri = file_uri(&cx.workspace.root().join("src/a.c")).unwrap();
        let result = json!([{"uri": uri, "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 8}}},
            {"targetUri": uri, "targetSelectionRange": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
             "targetRange": {}}]);
        assert_eq!(
            render_locations(&cx.workspace, &result),
            "src/a.c:2: int load(void);\nsrc/a.c:1: int x;"
        );
        assert_eq!(
            render_locations(&cx.workspace, &Value::Null),
            "Nothing found."
        );
        assert_eq!(
            render_hover(&json!({"contents": {"kind": "markdown", "value": "int load(void)"}})),
            "int load(void)"
        );
        let symbols = json!([{"name": "S", "kind": 23, "range": {"start": {"line": 0}}, "selectionRange": {"start": {"line": 0}},
            "children": [{"name": "f", "kind": 8, "range": {"start": {"line": 1}}, "selectionRange": {"start": {"line": 1}}}]}]);
        let path = cx.workspace.root().join("src/a.c");
        assert_eq!(
            render_symbols(&cx.workspace, &symbols, Some(&path)),
            "src/a.c:1: struct S\nsrc/a.c:2:   field f"
        );
        drop(dir);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod through_feedback {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use futures::future::BoxFuture;
    use serde_json::{Value, json};

    use super::super::tests::text;
    use super::super::{Tool, ToolContext, ToolSettings};
    use super::Navigation;
    use crate::agent::feedback::{FeedbackReport, LanguageFeedback};
    use crate::agent::workspace::Workspace;

    /// Answers every request with a definition at line 1 of the same file, recording it.
    #[derive(Default)]
    struct Recorder {
        requests: Mutex<Vec<(String, Value)>>,
    }

    impl LanguageFeedback for Recorder {
        fn buffer_text(&self, _path: &Path) -> Option<String> {
            None
        }
        fn file_changed<'a>(&'a self, _path: &'a Path, _text: &'a str) -> BoxFuture<'a, ()> {
            Box::pin(async {})
        }
        fn fresh_diagnostics<'a>(
            &'a self,
            _paths: &'a [PathBuf],
            _deadline: Instant,
        ) -> BoxFuture<'a, FeedbackReport> {
            Box::pin(async { FeedbackReport::default() })
        }
        fn known_diagnostics(&self) -> FeedbackReport {
            FeedbackReport::default()
        }
        fn request<'a>(
            &'a self,
            method: &'a str,
            params: Value,
        ) -> BoxFuture<'a, Result<Value, String>> {
            let uri = params["textDocument"]["uri"].clone();
            self.requests
                .lock()
                .unwrap()
                .push((method.to_owned(), params));
            Box::pin(async move {
                Ok(
                    json!({"uri": uri, "range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 8}}}),
                )
            })
        }
    }

    #[tokio::test]
    async fn definition_sends_an_lsp_position_and_renders_the_code_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.c"),
            "int load(void);\nint main(void) { return load(); }\n",
        )
        .unwrap();
        let recorder = Arc::new(Recorder::default());
        let workspace = Workspace::new(dir.path(), recorder.clone()).unwrap();
        let context = ToolContext {
            workspace,
            settings: ToolSettings::default(),
        };
        let args = json!({"path": "a.c", "line": 2, "symbol": "load"});
        let out = Navigation::Definition
            .run(args, context.clone())
            .await
            .unwrap();
        assert_eq!(text(out), "a.c:1: int load(void);");
        let (method, params) = recorder.requests.lock().unwrap()[0].clone();
        assert_eq!(method, "textDocument/definition");
        assert_eq!(params["position"], json!({"line": 1, "character": 24}));
        assert!(
            params["textDocument"]["uri"]
                .as_str()
                .unwrap()
                .ends_with("/a.c")
        );
        let error = Navigation::References
            .run(
                json!({"path": "a.c", "line": 1, "symbol": "nothing"}),
                context,
            )
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("\"nothing\" is not on that line"),
            "{error}"
        );
    }
}
