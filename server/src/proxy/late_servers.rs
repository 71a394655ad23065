//! Servers that start after `initialize` was answered (a document of a language the workspace
//! did not show at start was opened): what they provide beyond the capabilities the editor
//! was told is announced with `client/registerCapability`, scoped to their languages, for
//! every feature the editor registers dynamically. Without it the editor would never ask
//! them for, say, hover, when no server at start had it.
//!
//! Only features nothing announced yet are registered: a feature the editor already asks
//! tack for reaches the late server through the usual routing, and registering it again
//! would make the editor ask twice.

use serde_json::{Map, Value, json};

use super::capabilities::MergedCapabilities;
use super::main_loop::Proxy;
use crate::server_id::ServerId;

/// A `ServerCapabilities` field, the method it is registered under, and the client
/// capability (a JSON pointer) that says whether the editor registers it dynamically.
const DYNAMIC_FEATURES: [(&str, &str, &str); 27] = [
    ("hoverProvider", "textDocument/hover", "/textDocument/hover"),
    (
        "completionProvider",
        "textDocument/completion",
        "/textDocument/completion",
    ),
    (
        "signatureHelpProvider",
        "textDocument/signatureHelp",
        "/textDocument/signatureHelp",
    ),
    (
        "declarationProvider",
        "textDocument/declaration",
        "/textDocument/declaration",
    ),
    (
        "definitionProvider",
        "textDocument/definition",
        "/textDocument/definition",
    ),
    (
        "typeDefinitionProvider",
        "textDocument/typeDefinition",
        "/textDocument/typeDefinition",
    ),
    (
        "implementationProvider",
        "textDocument/implementation",
        "/textDocument/implementation",
    ),
    (
        "referencesProvider",
        "textDocument/references",
        "/textDocument/references",
    ),
    (
        "documentHighlightProvider",
        "textDocument/documentHighlight",
        "/textDocument/documentHighlight",
    ),
    (
        "documentSymbolProvider",
        "textDocument/documentSymbol",
        "/textDocument/documentSymbol",
    ),
    (
        "codeLensProvider",
        "textDocument/codeLens",
        "/textDocument/codeLens",
    ),
    (
        "documentLinkProvider",
        "textDocument/documentLink",
        "/textDocument/documentLink",
    ),
    (
        "colorProvider",
        "textDocument/documentColor",
        "/textDocument/colorProvider",
    ),
    (
        "documentFormattingProvider",
        "textDocument/formatting",
        "/textDocument/formatting",
    ),
    (
        "documentRangeFormattingProvider",
        "textDocument/rangeFormatting",
        "/textDocument/rangeFormatting",
    ),
    (
        "documentOnTypeFormattingProvider",
        "textDocument/onTypeFormatting",
        "/textDocument/onTypeFormatting",
    ),
    (
        "renameProvider",
        "textDocument/rename",
        "/textDocument/rename",
    ),
    (
        "foldingRangeProvider",
        "textDocument/foldingRange",
        "/textDocument/foldingRange",
    ),
    (
        "selectionRangeProvider",
        "textDocument/selectionRange",
        "/textDocument/selectionRange",
    ),
    (
        "linkedEditingRangeProvider",
        "textDocument/linkedEditingRange",
        "/textDocument/linkedEditingRange",
    ),
    (
        "callHierarchyProvider",
        "textDocument/prepareCallHierarchy",
        "/textDocument/callHierarchy",
    ),
    (
        "typeHierarchyProvider",
        "textDocument/prepareTypeHierarchy",
        "/textDocument/typeHierarchy",
    ),
    (
        "inlineValueProvider",
        "textDocument/inlineValue",
        "/textDocument/inlineValue",
    ),
    (
        "inlayHintProvider",
        "textDocument/inlayHint",
        "/textDocument/inlayHint",
    ),
    (
        "semanticTokensProvider",
        "textDocument/semanticTokens",
        "/textDocument/semanticTokens",
    ),
    (
        "workspaceSymbolProvider",
        "workspace/symbol",
        "/workspace/symbol",
    ),
    (
        "executeCommandProvider",
        "workspace/executeCommand",
        "/workspace/executeCommand",
    ),
];

/// What to tell the editor of a server that started late.
#[derive(Debug, Default, PartialEq)]
pub struct LateAnnouncement {
    /// `Registration` objects for one `client/registerCapability`.
    pub registrations: Vec<Value>,
    /// Features the editor cannot learn of (it does not register them dynamically).
    pub unannounced: Vec<&'static str>,
}

fn is_provided(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Null) | Some(Value::Bool(false)))
}

/// The registrations for `server` (capabilities `child`, serving `languages`) given what
/// the editor was told (`announced`), and `announced` updated to include them.
pub fn announce_late_server(
    announced: &mut MergedCapabilities,
    server: &ServerId,
    child: &Value,
    languages: &[String],
    client: &Value,
) -> LateAnnouncement {
    let selector: Vec<Value> = languages
        .iter()
        .map(|language| json!({ "language": language }))
        .collect();
    let mut out = LateAnnouncement::default();
    for (field, method, client_path) in DYNAMIC_FEATURES {
        let Some(provided) = child.get(field).filter(|v| is_provided(Some(v))) else {
            continue;
        };
        let mut options = match provided {
            Value::Object(options) => options.clone(),
            _ => Map::new(),
        };
        if field == "executeCommandProvider" {
            let commands: Vec<Value> = options
                .get("commands")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|command| !announced.command_owners.contains_key(*command))
                .map(|command| json!(command))
                .collect();
            if commands.is_empty() {
                continue;
            }
            options.insert("commands".to_owned(), Value::Array(commands));
        } else if is_provided(announced.capabilities.get(field)) {
            continue;
        }
        let dynamic = client
            .pointer(client_path)
            .and_then(|c| c.get("dynamicRegistration"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !dynamic {
            out.unannounced.push(method);
            continue;
        }
        if method.starts_with("textDocument/") {
            options.insert(
                "documentSelector".to_owned(),
                Value::Array(selector.clone()),
            );
        }
        // Remember what is announced now, and who owns it.
        if field == "executeCommandProvider" {
            for command in options["commands"].as_array().into_iter().flatten() {
                if let Some(command) = command.as_str() {
                    announced
                        .command_owners
                        .insert(command.to_owned(), server.clone());
                }
            }
        } else {
            if field == "semanticTokensProvider" {
                announced.semantic_tokens_owner = Some(server.clone());
            }
            if let Value::Object(capabilities) = &mut announced.capabilities {
                capabilities.insert(field.to_owned(), provided.clone());
            }
        }
        out.registrations.push(json!({
            "id": format!("tack/late/{server}/{method}"),
            "method": method,
            "registerOptions": Value::Object(options),
        }));
    }
    out
}

impl Proxy {
    /// Tells the editor what `server`, started after `initialize`, adds (see the module docs).
    pub(super) fn announce_late_server(&mut self, server: &ServerId) {
        let Some(child) = self.children.get(server) else {
            return;
        };
        let announcement = announce_late_server(
            &mut self.merged,
            server,
            &child.capabilities,
            &child.languages,
            &self.client_capabilities,
        );
        if !announcement.unannounced.is_empty() {
            tracing::info!(
                %server,
                features = ?announcement.unannounced,
                "the editor does not register these dynamically, so it will not ask this late-started server for them"
            );
        }
        if announcement.registrations.is_empty() {
            return;
        }
        tracing::info!(%server, count = announcement.registrations.len(), "announcing a late-started server's features");
        self.notify_editor_request(
            "client/registerCapability",
            &json!({ "registrations": announcement.registrations }),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::proxy::capabilities::merge_server_capabilities;

    #[test]
    fn only_what_was_not_announced_is_registered_for_the_late_servers_languages() {
        let clangd = ServerId::new("clangd");
        let mut announced = merge_server_capabilities(&[(
            clangd.clone(),
            json!({"hoverProvider": true, "executeCommandProvider": {"commands": ["clangd.apply"]}}),
        )]);
        let pyright = ServerId::new("pyright");
        let child = json!({
            "hoverProvider": true,
            "renameProvider": {"prepareProvider": true},
            "inlayHintProvider": true,
            "executeCommandProvider": {"commands": ["clangd.apply", "pyright.organize"]},
        });
        let client = json!({
            "textDocument": {"rename": {"dynamicRegistration": true}, "inlayHint": {}},
            "workspace": {"executeCommand": {"dynamicRegistration": true}},
        });
        let out = announce_late_server(
            &mut announced,
            &pyright,
            &child,
            &["python".to_owned()],
            &client,
        );
        assert_eq!(
            out.registrations,
            vec![
                json!({"id": "tack/late/pyright/textDocument/rename", "method": "textDocument/rename",
                       "registerOptions": {"prepareProvider": true, "documentSelector": [{"language": "python"}]}}),
                json!({"id": "tack/late/pyright/workspace/executeCommand", "method": "workspace/executeCommand",
                       "registerOptions": {"commands": ["pyright.organize"]}}),
            ]
        );
        assert_eq!(out.unannounced, vec!["textDocument/inlayHint"]);
        assert_eq!(announced.command_owners["pyright.organize"], pyright);
        assert_eq!(announced.command_owners["clangd.apply"], clangd);
        // A restart of the same server announces nothing twice.
        let again = announce_late_server(
            &mut announced,
            &pyright,
            &child,
            &["python".to_owned()],
            &client,
        );
        assert!(again.registrations.is_empty(), "{again:?}");
    }
}
