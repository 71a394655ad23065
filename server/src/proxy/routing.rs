//! Which child servers a request goes to, and how their answers are combined.
//!
//! The one table of methods tack treats specially. Anything not listed is forwarded to the
//! primary server of the document's language and its answer is returned unchanged.

use serde::Deserialize;
use serde_json::value::RawValue;

/// How a request is distributed over the capable servers of a document's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The first capable server answers; its answer is returned byte for byte.
    Primary,
    /// Every capable server answers; the answers are merged.
    FanOut(MergeKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// Arrays are concatenated in server priority order; `null` counts as empty.
    Concat,
    /// `CompletionItem[] | CompletionList | null`, merged into one list.
    Completion,
    /// Arrays of `DocumentSymbol` or of `SymbolInformation`: concatenated when of one shape.
    Symbols,
}

pub fn strategy(method: &str) -> Strategy {
    match method {
        "textDocument/codeAction"
        | "textDocument/codeLens"
        | "textDocument/inlayHint"
        | "textDocument/willSaveWaitUntil"
        | "workspace/symbol" => Strategy::FanOut(MergeKind::Concat),
        "textDocument/completion" => Strategy::FanOut(MergeKind::Completion),
        "textDocument/documentSymbol" => Strategy::FanOut(MergeKind::Symbols),
        _ => Strategy::Primary,
    }
}

/// Requests whose params are an item produced by an earlier (possibly merged) request; they
/// must go to the server that produced the item.
pub fn is_resolve(method: &str) -> bool {
    matches!(
        method,
        "completionItem/resolve"
            | "codeAction/resolve"
            | "codeLens/resolve"
            | "inlayHint/resolve"
            | "documentLink/resolve"
            | "workspaceSymbol/resolve"
    )
}

/// Requests that concern the workspace rather than one document.
pub fn is_workspace_wide(method: &str) -> bool {
    method.starts_with("workspace/") && method != "workspace/executeCommand"
}

/// Methods of the protocol itself (as opposed to custom extensions such as
/// `rust-analyzer/expandMacro`): when no server supports one, tack answers `null` itself.
pub fn is_standard(method: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "textDocument/",
        "workspace/",
        "completionItem/",
        "codeAction/",
        "codeLens/",
        "inlayHint/",
        "documentLink/",
        "workspaceSymbol/",
        "callHierarchy/",
        "typeHierarchy/",
    ];
    PREFIXES.iter().any(|p| method.starts_with(p))
}

/// The uri of the document a message is about, when its params name one.
pub fn document_uri(params: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        text_document: Option<TextDocument>,
        /// `callHierarchy/*`, `typeHierarchy/*` items, `codeAction/resolve` … carry a uri too.
        item: Option<TextDocument>,
        uri: Option<String>,
    }
    #[derive(Deserialize)]
    struct TextDocument {
        uri: String,
    }
    let params: Params = serde_json::from_str(params?.get()).ok()?;
    params
        .text_document
        .map(|d| d.uri)
        .or(params.item.map(|d| d.uri))
        .or(params.uri)
}

/// The server a custom method belongs to by its prefix (`clangd/…` → `clangd`).
pub fn method_prefix(method: &str) -> Option<&str> {
    let (prefix, _) = method.split_once('/')?;
    (!prefix.is_empty() && prefix != "$").then_some(prefix)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn strategies() {
        assert_eq!(strategy("textDocument/hover"), Strategy::Primary);
        assert_eq!(strategy("rust-analyzer/expandMacro"), Strategy::Primary);
        assert_eq!(
            strategy("textDocument/codeAction"),
            Strategy::FanOut(MergeKind::Concat)
        );
        assert_eq!(
            strategy("textDocument/completion"),
            Strategy::FanOut(MergeKind::Completion)
        );
    }

    #[test]
    fn document_uri_from_common_shapes() {
        let p =
            raw(r#"{"textDocument":{"uri":"file:///a.c"},"position":{"line":0,"character":0}}"#);
        assert_eq!(document_uri(Some(&p)).as_deref(), Some("file:///a.c"));
        let p = raw(r#"{"item":{"uri":"file:///b.c","name":"f"}}"#);
        assert_eq!(document_uri(Some(&p)).as_deref(), Some("file:///b.c"));
        let p = raw(r#"{"query":"x"}"#);
        assert_eq!(document_uri(Some(&p)), None);
        assert_eq!(document_uri(None), None);
        let p = raw("[1,2]");
        assert_eq!(document_uri(Some(&p)), None);
    }

    #[test]
    fn custom_methods_are_not_standard() {
        assert!(is_standard("textDocument/hover"));
        assert!(!is_standard("rust-analyzer/expandMacro"));
        assert_eq!(method_prefix("clangd/switchSourceHeader"), Some("clangd"));
        assert_eq!(method_prefix("$/cancelRequest"), None);
        assert!(is_resolve("completionItem/resolve"));
    }
}
