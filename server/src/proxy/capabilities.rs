//! Capabilities at `initialize`: what tack forwards to its children, how it merges their
//! answers into the one `ServerCapabilities` the editor sees, and what each child supports.
//!
//! Everything here is a pure function over JSON values, so that fields tack does not know
//! (newer protocol versions, server extensions) pass through instead of being dropped.
//!
//! The merge rules, per `ServerCapabilities` field:
//! - `positionEncoding` is always `utf-16`: children are offered nothing else, and that is
//!   what the editor gets.
//! - `textDocumentSync` is always incremental with open/close: tack keeps every document's
//!   text itself and sends each child the kind of sync it asked for ([`child_sync`]).
//! - Providers that are a boolean or an options object are present when any child has them.
//!   One child's value is passed on verbatim; several are merged: lists are united (order
//!   kept, duplicates dropped), booleans or-ed, other values taken from the first child.
//!   `codeActionKinds` is kept only if every child lists its kinds (a child without a list
//!   may return any kind). A static registration `id` is dropped, and a `documentSelector`
//!   is kept only if every child restricts itself with one (their union).
//! - `executeCommandProvider` unites the commands and records which child owns each one.
//! - `semanticTokensProvider` is the first child's: tokens are integer indices into the
//!   server's own legend, delta-encoded by position, and delta requests carry per-server
//!   result ids, so streams of two servers cannot be combined without re-encoding both.
//!   One child owns semantic tokens for the session.
//! - `diagnosticProvider` is not advertised: tack pulls from the children that have it and
//!   pushes the merged diagnostics to the editor itself.
//! - `workspace.workspaceFolders` and `workspace.fileOperations` are merged.
//! - `experimental` and any other field are the first child's that has one (in the order
//!   of `children`): they are server-specific and cannot be merged without knowing them.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::server_id::ServerId;

/// The editor's `ClientCapabilities` as a child receives them: unchanged, except that
/// `general.positionEncodings` offers only UTF-16, the encoding tack speaks on both sides.
pub fn client_capabilities_for_child(client: &Value) -> Value {
    let mut capabilities = match client {
        Value::Object(object) => object.clone(),
        _ => Map::new(),
    };
    let general = capabilities
        .entry("general")
        .or_insert_with(|| Value::Object(Map::new()));
    if !general.is_object() {
        *general = Value::Object(Map::new());
    }
    if let Value::Object(general) = general {
        general.insert("positionEncodings".into(), json!(["utf-16"]));
    }
    Value::Object(capabilities)
}

/// How a child wants document text sent (`TextDocumentSyncKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    None,
    Full,
    Incremental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOptions {
    pub include_text: bool,
}

/// Which document notifications a child wants, read from its `textDocumentSync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSync {
    pub open_close: bool,
    pub change: SyncKind,
    pub will_save: bool,
    pub will_save_wait_until: bool,
    /// `None`: no `didSave`.
    pub save: Option<SaveOptions>,
}

/// What a child's `ServerCapabilities` ask for in document sync. The number form
/// (`"textDocumentSync": 2`) means open/close, changes of that kind and saves without
/// text, as the reference client reads it; `0` or no field means nothing at all. In the
/// object form a missing field means `false` / no changes, as the specification says.
pub fn child_sync(capabilities: &Value) -> ChildSync {
    let nothing = ChildSync {
        open_close: false,
        change: SyncKind::None,
        will_save: false,
        will_save_wait_until: false,
        save: None,
    };
    match capabilities.get("textDocumentSync") {
        Some(Value::Number(kind)) => match sync_kind(kind.as_u64()) {
            SyncKind::None => nothing,
            change => ChildSync {
                open_close: true,
                change,
                save: Some(SaveOptions {
                    include_text: false,
                }),
                ..nothing
            },
        },
        Some(Value::Object(options)) => ChildSync {
            open_close: is_true(options.get("openClose")),
            change: sync_kind(options.get("change").and_then(Value::as_u64)),
            will_save: is_true(options.get("willSave")),
            will_save_wait_until: is_true(options.get("willSaveWaitUntil")),
            save: match options.get("save") {
                Some(Value::Bool(true)) => Some(SaveOptions {
                    include_text: false,
                }),
                Some(Value::Object(save)) => Some(SaveOptions {
                    include_text: is_true(save.get("includeText")),
                }),
                _ => None,
            },
        },
        _ => nothing,
    }
}

fn sync_kind(number: Option<u64>) -> SyncKind {
    match number {
        Some(1) => SyncKind::Full,
        Some(2) => SyncKind::Incremental,
        _ => SyncKind::None,
    }
}

fn is_true(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Bool(true)))
}

/// Whether a capability value says "supported": anything but absent, `null` or `false`
/// (`true`, an options object, a registration id string).
fn is_provided(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Null) | Some(Value::Bool(false)))
}

/// The `ServerCapabilities` tack answers the editor with, and what the proxy needs to know
/// to route by them.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedCapabilities {
    pub capabilities: Value,
    /// `workspace/executeCommand` command → the child that advertised it (first one wins).
    pub command_owners: HashMap<String, ServerId>,
    /// The child whose semantic tokens the editor gets.
    pub semantic_tokens_owner: Option<ServerId>,
    /// The children that support pull diagnostics (`textDocument/diagnostic`), in order.
    pub pull_diagnostic_servers: Vec<ServerId>,
    /// What could not be merged faithfully, for the log.
    pub warnings: Vec<String>,
}

/// `ServerCapabilities` fields whose value is a boolean or an options object, merged by
/// the generic rule. `documentOnTypeFormattingProvider` and `executeCommandProvider` are
/// options objects merged by the same rule plus a step of their own.
const MERGED_PROVIDERS: [&str; 28] = [
    "hoverProvider",
    "completionProvider",
    "signatureHelpProvider",
    "declarationProvider",
    "definitionProvider",
    "typeDefinitionProvider",
    "implementationProvider",
    "referencesProvider",
    "documentHighlightProvider",
    "documentSymbolProvider",
    "codeActionProvider",
    "codeLensProvider",
    "documentLinkProvider",
    "colorProvider",
    "documentFormattingProvider",
    "documentRangeFormattingProvider",
    "documentOnTypeFormattingProvider",
    "renameProvider",
    "foldingRangeProvider",
    "selectionRangeProvider",
    "linkedEditingRangeProvider",
    "callHierarchyProvider",
    "monikerProvider",
    "typeHierarchyProvider",
    "inlineValueProvider",
    "inlayHintProvider",
    "workspaceSymbolProvider",
    "executeCommandProvider",
];

/// Fields with a rule of their own below; all others are taken from the first child.
const FIELDS_WITH_OWN_RULE: [&str; 5] = [
    "positionEncoding",
    "textDocumentSync",
    "semanticTokensProvider",
    "diagnosticProvider",
    "workspace",
];

/// Merges the children's `ServerCapabilities` (in the order given, which decides every
/// "first child wins") into the editor-facing ones. See the module documentation for the
/// rules.
pub fn merge_server_capabilities(children: &[(ServerId, Value)]) -> MergedCapabilities {
    let mut warnings = Vec::new();
    let mut merged = Map::new();
    merged.insert("positionEncoding".into(), json!("utf-16"));
    for (server, capabilities) in children {
        match capabilities.get("positionEncoding").and_then(Value::as_str) {
            None | Some("utf-16") => {}
            Some(other) => warnings.push(format!(
                "{server} chose position encoding {other} although only utf-16 was offered"
            )),
        }
    }
    merged.insert("textDocumentSync".into(), merged_sync(children));

    for field in MERGED_PROVIDERS {
        let contributions = contributions(children, field);
        if let Some(value) = merge_provider(field, &contributions, &mut warnings) {
            merged.insert(field.into(), value);
        }
    }

    let mut command_owners = HashMap::new();
    for (server, provider) in contributions(children, "executeCommandProvider") {
        let commands = provider.get("commands").and_then(Value::as_array);
        for command in commands.into_iter().flatten().filter_map(Value::as_str) {
            match command_owners.get(command) {
                None => {
                    command_owners.insert(command.to_owned(), server.clone());
                }
                Some(owner) if owner != server => warnings.push(format!(
                    "command {command} is advertised by both {owner} and {server}; {owner} runs it"
                )),
                Some(_) => {}
            }
        }
    }

    let semantic_tokens = contributions(children, "semanticTokensProvider");
    let semantic_tokens_owner = semantic_tokens.first().map(|(server, provider)| {
        merged.insert("semanticTokensProvider".into(), (*provider).clone());
        (*server).clone()
    });
    for (server, _) in semantic_tokens.iter().skip(1) {
        warnings.push(format!(
            "semantic tokens of {server} are not used: those of {} are (legends cannot be merged)",
            semantic_tokens[0].0
        ));
    }

    let pull_diagnostic_servers = contributions(children, "diagnosticProvider")
        .into_iter()
        .map(|(server, _)| server.clone())
        .collect();

    if let Some(workspace) = merged_workspace(children) {
        merged.insert("workspace".into(), workspace);
    }

    for (_, capabilities) in children {
        for (field, value) in capabilities.as_object().into_iter().flatten() {
            let handled = FIELDS_WITH_OWN_RULE.contains(&field.as_str())
                || MERGED_PROVIDERS.contains(&field.as_str());
            if !handled && !merged.contains_key(field) {
                merged.insert(field.clone(), value.clone());
            }
        }
    }

    MergedCapabilities {
        capabilities: Value::Object(merged),
        command_owners,
        semantic_tokens_owner,
        pull_diagnostic_servers,
        warnings,
    }
}

/// The children that provide `field`, with its value.
fn contributions<'a>(
    children: &'a [(ServerId, Value)],
    field: &str,
) -> Vec<(&'a ServerId, &'a Value)> {
    children
        .iter()
        .filter_map(|(server, capabilities)| {
            let value = capabilities.get(field)?;
            is_provided(Some(value)).then_some((server, value))
        })
        .collect()
}

fn merged_sync(children: &[(ServerId, Value)]) -> Value {
    let syncs: Vec<ChildSync> = children.iter().map(|(_, c)| child_sync(c)).collect();
    json!({
        "openClose": true,
        "change": 2,
        "willSave": syncs.iter().any(|sync| sync.will_save),
        "willSaveWaitUntil": syncs.iter().any(|sync| sync.will_save_wait_until),
        "save": {
            "includeText": syncs.iter().any(|sync| sync.save.is_some_and(|save| save.include_text)),
        },
    })
}

/// The generic rule for one provider field; `None` when no child provides it.
fn merge_provider(
    field: &str,
    contributions: &[(&ServerId, &Value)],
    warnings: &mut Vec<String>,
) -> Option<Value> {
    match contributions {
        [] => return None,
        [(_, only)] => return Some((*only).clone()),
        _ => {}
    }
    let objects: Vec<Option<&Map<String, Value>>> = contributions
        .iter()
        .map(|(_, value)| value.as_object())
        .collect();
    if objects.iter().all(Option::is_none) {
        return Some(Value::Bool(true));
    }

    let mut merged = Map::new();
    for object in objects.iter().flatten() {
        merge_objects(&mut merged, object);
    }
    if merged.remove("id").is_some() {
        warnings.push(format!(
            "{field}: static registration ids of several servers cannot be merged; dropped"
        ));
    }
    let every_child_has = |key: &str| {
        objects
            .iter()
            .all(|object| object.is_some_and(|o| o.get(key).is_some_and(Value::is_array)))
    };
    if !every_child_has("documentSelector") {
        merged.remove("documentSelector");
    }
    if field == "codeActionProvider" && !every_child_has("codeActionKinds") {
        merged.remove("codeActionKinds");
    }
    if field == "documentOnTypeFormattingProvider" {
        merge_on_type_formatting_triggers(&mut merged, &objects);
    }
    Some(Value::Object(merged))
}

/// `into` gains what `from` adds: missing keys, or-ed booleans, united lists, merged
/// objects; on any other clash the value already in `into` stays.
fn merge_objects(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (None, _) => {
                into.insert(key.clone(), value.clone());
            }
            (Some(Value::Bool(existing)), Value::Bool(added)) => *existing |= *added,
            (Some(Value::Array(existing)), Value::Array(added)) => unite(existing, added),
            (Some(Value::Object(existing)), Value::Object(added)) => merge_objects(existing, added),
            (Some(_), _) => {}
        }
    }
}

fn unite(into: &mut Vec<Value>, added: &[Value]) {
    for value in added {
        if !into.contains(value) {
            into.push(value.clone());
        }
    }
}

/// Only one `firstTriggerCharacter` can be advertised: the first child's. The others'
/// join `moreTriggerCharacter`.
fn merge_on_type_formatting_triggers(
    merged: &mut Map<String, Value>,
    objects: &[Option<&Map<String, Value>>],
) {
    let first = merged.get("firstTriggerCharacter").cloned();
    let mut more = match merged.remove("moreTriggerCharacter") {
        Some(Value::Array(more)) => more,
        _ => Vec::new(),
    };
    let other_firsts: Vec<Value> = objects
        .iter()
        .flatten()
        .filter_map(|object| object.get("firstTriggerCharacter"))
        .filter(|trigger| Some(*trigger) != first.as_ref())
        .cloned()
        .collect();
    unite(&mut more, &other_firsts);
    more.retain(|trigger| Some(trigger) != first.as_ref());
    if !more.is_empty() {
        merged.insert("moreTriggerCharacter".into(), Value::Array(more));
    }
}

/// `workspace`: folders supported if any child supports them, change notifications wanted
/// if any child wants them; file operation filters united; other fields from the first
/// child that has them.
fn merged_workspace(children: &[(ServerId, Value)]) -> Option<Value> {
    let workspaces: Vec<&Map<String, Value>> = children
        .iter()
        .filter_map(|(_, capabilities)| capabilities.get("workspace")?.as_object())
        .collect();
    if workspaces.is_empty() {
        return None;
    }
    let mut merged = Map::new();
    let folders: Vec<&Value> = workspaces
        .iter()
        .filter_map(|workspace| workspace.get("workspaceFolders"))
        .collect();
    if !folders.is_empty() {
        let supported = folders.iter().any(|f| is_true(f.get("supported")));
        let notifications = folders
            .iter()
            .any(|f| wants_folder_notifications(f.get("changeNotifications")));
        merged.insert(
            "workspaceFolders".into(),
            json!({"supported": supported, "changeNotifications": notifications}),
        );
    }
    let mut file_operations = Map::new();
    for workspace in &workspaces {
        if let Some(Value::Object(operations)) = workspace.get("fileOperations") {
            merge_objects(&mut file_operations, operations);
        }
    }
    if !file_operations.is_empty() {
        merged.insert("fileOperations".into(), Value::Object(file_operations));
    }
    for workspace in &workspaces {
        for (field, value) in *workspace {
            if field != "workspaceFolders"
                && field != "fileOperations"
                && !merged.contains_key(field)
            {
                merged.insert(field.clone(), value.clone());
            }
        }
    }
    Some(Value::Object(merged))
}

/// `workspaceFolders.changeNotifications`: `true`, or the id under which the server will
/// register for them.
fn wants_folder_notifications(value: Option<&Value>) -> bool {
    match value {
        Some(Value::String(registration_id)) => !registration_id.is_empty(),
        other => is_true(other),
    }
}

/// Whether a child's `ServerCapabilities` advertise what an LSP method needs. Methods the
/// specification does not tie to a capability (custom ones such as
/// `rust-analyzer/expandMacro`, or `workspace/didChangeConfiguration`) are assumed
/// supported: the proxy routes those by other rules.
pub fn server_supports(capabilities: &Value, method: &str) -> bool {
    let provider = |field: &str| is_provided(capabilities.get(field));
    let option = |field: &str, option: &str| {
        is_provided(
            capabilities
                .get(field)
                .and_then(|provider| provider.get(option)),
        )
    };
    let file_operation = |operation: &str| {
        is_provided(
            capabilities
                .pointer("/workspace/fileOperations")
                .and_then(|operations| operations.get(operation)),
        )
    };
    match method {
        "textDocument/hover" => provider("hoverProvider"),
        "textDocument/completion" => provider("completionProvider"),
        "completionItem/resolve" => option("completionProvider", "resolveProvider"),
        "textDocument/signatureHelp" => provider("signatureHelpProvider"),
        "textDocument/declaration" => provider("declarationProvider"),
        "textDocument/definition" => provider("definitionProvider"),
        "textDocument/typeDefinition" => provider("typeDefinitionProvider"),
        "textDocument/implementation" => provider("implementationProvider"),
        "textDocument/references" => provider("referencesProvider"),
        "textDocument/documentHighlight" => provider("documentHighlightProvider"),
        "textDocument/documentSymbol" => provider("documentSymbolProvider"),
        "textDocument/codeAction" => provider("codeActionProvider"),
        "codeAction/resolve" => option("codeActionProvider", "resolveProvider"),
        "textDocument/codeLens" => provider("codeLensProvider"),
        "codeLens/resolve" => option("codeLensProvider", "resolveProvider"),
        "textDocument/documentLink" => provider("documentLinkProvider"),
        "documentLink/resolve" => option("documentLinkProvider", "resolveProvider"),
        "textDocument/documentColor" | "textDocument/colorPresentation" => {
            provider("colorProvider")
        }
        "textDocument/formatting" => provider("documentFormattingProvider"),
        "textDocument/rangeFormatting" => provider("documentRangeFormattingProvider"),
        "textDocument/rangesFormatting" => {
            option("documentRangeFormattingProvider", "rangesSupport")
        }
        "textDocument/onTypeFormatting" => provider("documentOnTypeFormattingProvider"),
        "textDocument/rename" => provider("renameProvider"),
        "textDocument/prepareRename" => option("renameProvider", "prepareProvider"),
        "textDocument/foldingRange" => provider("foldingRangeProvider"),
        "textDocument/selectionRange" => provider("selectionRangeProvider"),
        "textDocument/semanticTokens/full" => option("semanticTokensProvider", "full"),
        "textDocument/semanticTokens/full/delta" => {
            is_true(capabilities.pointer("/semanticTokensProvider/full/delta"))
        }
        "textDocument/semanticTokens/range" => option("semanticTokensProvider", "range"),
        "textDocument/linkedEditingRange" => provider("linkedEditingRangeProvider"),
        "textDocument/moniker" => provider("monikerProvider"),
        "textDocument/inlayHint" => provider("inlayHintProvider"),
        "inlayHint/resolve" => option("inlayHintProvider", "resolveProvider"),
        "textDocument/inlineValue" => provider("inlineValueProvider"),
        "textDocument/inlineCompletion" => provider("inlineCompletionProvider"),
        "textDocument/prepareCallHierarchy"
        | "callHierarchy/incomingCalls"
        | "callHierarchy/outgoingCalls" => provider("callHierarchyProvider"),
        "textDocument/prepareTypeHierarchy"
        | "typeHierarchy/supertypes"
        | "typeHierarchy/subtypes" => provider("typeHierarchyProvider"),
        "workspace/symbol" => provider("workspaceSymbolProvider"),
        "workspaceSymbol/resolve" => option("workspaceSymbolProvider", "resolveProvider"),
        "workspace/executeCommand" => provider("executeCommandProvider"),
        "textDocument/diagnostic" => provider("diagnosticProvider"),
        "workspace/diagnostic" => option("diagnosticProvider", "workspaceDiagnostics"),
        "textDocument/didOpen" | "textDocument/didClose" => child_sync(capabilities).open_close,
        "textDocument/didChange" => child_sync(capabilities).change != SyncKind::None,
        "textDocument/willSave" => child_sync(capabilities).will_save,
        "textDocument/willSaveWaitUntil" => child_sync(capabilities).will_save_wait_until,
        "textDocument/didSave" => child_sync(capabilities).save.is_some(),
        "workspace/didChangeWorkspaceFolders" => wants_folder_notifications(
            capabilities.pointer("/workspace/workspaceFolders/changeNotifications"),
        ),
        "workspace/willCreateFiles" => file_operation("willCreate"),
        "workspace/didCreateFiles" => file_operation("didCreate"),
        "workspace/willRenameFiles" => file_operation("willRename"),
        "workspace/didRenameFiles" => file_operation("didRename"),
        "workspace/willDeleteFiles" => file_operation("willDelete"),
        "workspace/didDeleteFiles" => file_operation("didDelete"),
        _ => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn id(name: &str) -> ServerId {
        ServerId::new(name)
    }

    fn merge(children: &[(&str, Value)]) -> MergedCapabilities {
        let children: Vec<(ServerId, Value)> = children
            .iter()
            .map(|(name, capabilities)| (id(name), capabilities.clone()))
            .collect();
        merge_server_capabilities(&children)
    }

    /// The value the editor gets for one field.
    fn merged_field(children: &[(&str, Value)], field: &str) -> Option<Value> {
        merge(children).capabilities.get(field).cloned()
    }

    #[test]
    fn children_are_offered_only_utf16() {
        let client = json!({
            "general": {"positionEncodings": ["utf-8", "utf-32", "utf-16"], "staleRequestSupport": {"cancel": true}},
            "textDocument": {"hover": {"contentFormat": ["markdown"]}},
            "experimental": {"snippetTextEdit": true},
        });
        let forwarded = client_capabilities_for_child(&client);
        assert_eq!(
            forwarded,
            json!({
                "general": {"positionEncodings": ["utf-16"], "staleRequestSupport": {"cancel": true}},
                "textDocument": {"hover": {"contentFormat": ["markdown"]}},
                "experimental": {"snippetTextEdit": true},
            })
        );
        assert_eq!(
            client_capabilities_for_child(&json!({"window": {}})),
            json!({"window": {}, "general": {"positionEncodings": ["utf-16"]}})
        );
        assert_eq!(
            client_capabilities_for_child(&Value::Null),
            json!({"general": {"positionEncodings": ["utf-16"]}})
        );
    }

    #[test]
    fn child_sync_reads_the_number_form() {
        let incremental = child_sync(&json!({"textDocumentSync": 2}));
        assert_eq!(
            incremental,
            ChildSync {
                open_close: true,
                change: SyncKind::Incremental,
                will_save: false,
                will_save_wait_until: false,
                save: Some(SaveOptions {
                    include_text: false
                }),
            }
        );
        assert_eq!(
            child_sync(&json!({"textDocumentSync": 1})).change,
            SyncKind::Full
        );
        let none = child_sync(&json!({"textDocumentSync": 0}));
        assert!(!none.open_close && none.change == SyncKind::None && none.save.is_none());
        assert_eq!(child_sync(&json!({})), none);
    }

    #[test]
    fn child_sync_reads_the_object_form() {
        let sync = child_sync(&json!({"textDocumentSync": {
            "openClose": true, "change": 1, "willSave": true, "save": {"includeText": true},
        }}));
        assert_eq!(
            sync,
            ChildSync {
                open_close: true,
                change: SyncKind::Full,
                will_save: true,
                will_save_wait_until: false,
                save: Some(SaveOptions { include_text: true }),
            }
        );
        let sparse = child_sync(
            &json!({"textDocumentSync": {"change": 2, "save": true, "willSaveWaitUntil": true}}),
        );
        assert!(!sparse.open_close);
        assert_eq!(sparse.change, SyncKind::Incremental);
        assert!(sparse.will_save_wait_until);
        assert_eq!(
            sparse.save,
            Some(SaveOptions {
                include_text: false
            })
        );
        assert_eq!(
            child_sync(&json!({"textDocumentSync": {"save": false}})).save,
            None
        );
    }

    #[test]
    fn editor_always_gets_incremental_sync() {
        let sync = merged_field(
            &[
                ("a", json!({"textDocumentSync": 1})),
                (
                    "b",
                    json!({"textDocumentSync": {"openClose": true, "change": 1, "save": {"includeText": true}, "willSaveWaitUntil": true}}),
                ),
            ],
            "textDocumentSync",
        );
        assert_eq!(
            sync,
            Some(
                json!({"openClose": true, "change": 2, "willSave": false, "willSaveWaitUntil": true, "save": {"includeText": true}})
            )
        );
        let quiet = merged_field(&[("a", json!({"textDocumentSync": 2}))], "textDocumentSync");
        assert_eq!(
            quiet,
            Some(
                json!({"openClose": true, "change": 2, "willSave": false, "willSaveWaitUntil": false, "save": {"includeText": false}})
            )
        );
        assert_eq!(merged_field(&[], "positionEncoding"), Some(json!("utf-16")));
    }

    #[test]
    fn boolean_providers_are_present_if_any_child_has_them() {
        let children = [
            (
                "a",
                json!({"hoverProvider": false, "definitionProvider": true, "referencesProvider": false}),
            ),
            (
                "b",
                json!({"hoverProvider": true, "definitionProvider": true, "foldingRangeProvider": null}),
            ),
        ];
        let merged = merge(&children).capabilities;
        assert_eq!(merged["hoverProvider"], json!(true));
        assert_eq!(merged["definitionProvider"], json!(true));
        assert!(merged.get("referencesProvider").is_none());
        assert!(merged.get("foldingRangeProvider").is_none());
    }

    #[test]
    fn boolean_and_object_forms_merge_into_an_object() {
        let merged = merged_field(
            &[
                ("a", json!({"hoverProvider": true})),
                ("b", json!({"hoverProvider": {"workDoneProgress": true}})),
                ("c", json!({"hoverProvider": {"workDoneProgress": false}})),
            ],
            "hoverProvider",
        );
        assert_eq!(merged, Some(json!({"workDoneProgress": true})));
    }

    #[test]
    fn code_action_kinds_unite_and_resolve_is_any() {
        let merged = merged_field(
            &[
                (
                    "a",
                    json!({"codeActionProvider": {"codeActionKinds": ["quickfix", "refactor"]}}),
                ),
                (
                    "b",
                    json!({"codeActionProvider": {"codeActionKinds": ["quickfix", "source.organizeImports"], "resolveProvider": true}}),
                ),
            ],
            "codeActionProvider",
        );
        assert_eq!(
            merged,
            Some(
                json!({"codeActionKinds": ["quickfix", "refactor", "source.organizeImports"], "resolveProvider": true})
            )
        );
        // A child without a list may return any kind, so no list is advertised.
        let merged = merged_field(
            &[
                (
                    "a",
                    json!({"codeActionProvider": {"codeActionKinds": ["quickfix"]}}),
                ),
                ("b", json!({"codeActionProvider": true})),
            ],
            "codeActionProvider",
        );
        assert_eq!(merged, Some(json!({})));
    }

    #[test]
    fn rename_prepare_is_any() {
        let merged = merged_field(
            &[
                ("a", json!({"renameProvider": true})),
                ("b", json!({"renameProvider": {"prepareProvider": true}})),
            ],
            "renameProvider",
        );
        assert_eq!(merged, Some(json!({"prepareProvider": true})));
    }

    #[test]
    fn completion_triggers_unite_in_order() {
        let merged = merged_field(
            &[
                (
                    "a",
                    json!({"completionProvider": {"triggerCharacters": [".", ":", ">"], "resolveProvider": false}}),
                ),
                (
                    "b",
                    json!({"completionProvider": {"triggerCharacters": [".", "[", "\""], "allCommitCharacters": [";"], "resolveProvider": true, "completionItem": {"labelDetailsSupport": true}}}),
                ),
                (
                    "c",
                    json!({"completionProvider": {"allCommitCharacters": [";", "("]}}),
                ),
            ],
            "completionProvider",
        );
        assert_eq!(
            merged,
            Some(json!({
                "triggerCharacters": [".", ":", ">", "[", "\""],
                "allCommitCharacters": [";", "("],
                "resolveProvider": true,
                "completionItem": {"labelDetailsSupport": true},
            }))
        );
    }

    #[test]
    fn signature_help_triggers_unite() {
        let merged = merged_field(
            &[
                (
                    "a",
                    json!({"signatureHelpProvider": {"triggerCharacters": ["(", ","]}}),
                ),
                (
                    "b",
                    json!({"signatureHelpProvider": {"triggerCharacters": ["(", "<"], "retriggerCharacters": [")"]}}),
                ),
            ],
            "signatureHelpProvider",
        );
        assert_eq!(
            merged,
            Some(json!({"triggerCharacters": ["(", ",", "<"], "retriggerCharacters": [")"]}))
        );
    }

    #[test]
    fn on_type_formatting_keeps_one_first_trigger() {
        let merged = merged_field(
            &[
                (
                    "a",
                    json!({"documentOnTypeFormattingProvider": {"firstTriggerCharacter": "\n"}}),
                ),
                (
                    "b",
                    json!({"documentOnTypeFormattingProvider": {"firstTriggerCharacter": "}", "moreTriggerCharacter": [";", "\n"]}}),
                ),
            ],
            "documentOnTypeFormattingProvider",
        );
        assert_eq!(
            merged,
            Some(json!({"firstTriggerCharacter": "\n", "moreTriggerCharacter": [";", "}"]}))
        );
    }

    #[test]
    fn commands_unite_and_the_first_owner_wins() {
        let merged = merge(&[
            (
                "clangd",
                json!({"executeCommandProvider": {"commands": ["clangd.applyFix", "shared.run"]}}),
            ),
            (
                "tidy",
                json!({"executeCommandProvider": {"commands": ["shared.run", "tidy.fix"], "workDoneProgress": true}}),
            ),
        ]);
        assert_eq!(
            merged.capabilities["executeCommandProvider"],
            json!({"commands": ["clangd.applyFix", "shared.run", "tidy.fix"], "workDoneProgress": true})
        );
        let mut owners: Vec<(&str, &str)> = merged
            .command_owners
            .iter()
            .map(|(command, owner)| (command.as_str(), owner.as_str()))
            .collect();
        owners.sort_unstable();
        assert_eq!(
            owners,
            [
                ("clangd.applyFix", "clangd"),
                ("shared.run", "clangd"),
                ("tidy.fix", "tidy")
            ]
        );
        assert_eq!(merged.warnings.len(), 1);
        assert!(
            merged.warnings[0].contains("shared.run"),
            "{:?}",
            merged.warnings
        );
    }

    #[test]
    fn semantic_tokens_come_from_the_first_child() {
        let legend_a =
            json!({"legend": {"tokenTypes": ["variable"], "tokenModifiers": []}, "full": true});
        let legend_b = json!({"legend": {"tokenTypes": ["class"], "tokenModifiers": ["static"]}, "range": true});
        let merged = merge(&[
            ("plain", json!({"hoverProvider": true})),
            ("a", json!({"semanticTokensProvider": legend_a})),
            ("b", json!({"semanticTokensProvider": legend_b})),
        ]);
        assert_eq!(merged.capabilities["semanticTokensProvider"], legend_a);
        assert_eq!(merged.semantic_tokens_owner, Some(id("a")));
        assert_eq!(merged.warnings.len(), 1);
        assert!(merged.warnings[0].contains("of b"), "{:?}", merged.warnings);
        assert_eq!(merge(&[("plain", json!({}))]).semantic_tokens_owner, None);
    }

    #[test]
    fn pull_diagnostics_are_not_advertised() {
        let merged = merge(&[
            (
                "a",
                json!({"diagnosticProvider": {"interFileDependencies": true, "workspaceDiagnostics": false}}),
            ),
            ("b", json!({})),
            (
                "c",
                json!({"diagnosticProvider": {"identifier": "c", "interFileDependencies": false, "workspaceDiagnostics": true}}),
            ),
        ]);
        assert!(merged.capabilities.get("diagnosticProvider").is_none());
        assert_eq!(merged.pull_diagnostic_servers, [id("a"), id("c")]);
    }

    #[test]
    fn workspace_folders_and_file_operations_merge() {
        let py_filter = json!({"scheme": "file", "pattern": {"glob": "**/*.py"}});
        let c_filter = json!({"pattern": {"glob": "**/*.{c,h}"}});
        let merged = merged_field(
            &[
                (
                    "a",
                    json!({"workspace": {
                        "workspaceFolders": {"supported": true, "changeNotifications": "folders-registration"},
                        "fileOperations": {"willRename": {"filters": [py_filter]}},
                        "textDocumentContent": {"schemes": ["a-virtual"]},
                    }}),
                ),
                (
                    "b",
                    json!({"workspace": {
                        "workspaceFolders": {"supported": false},
                        "fileOperations": {"willRename": {"filters": [c_filter, py_filter]}, "didCreate": {"filters": [c_filter]}},
                        "textDocumentContent": {"schemes": ["b-virtual"]},
                    }}),
                ),
                ("c", json!({})),
            ],
            "workspace",
        );
        assert_eq!(
            merged,
            Some(json!({
                "workspaceFolders": {"supported": true, "changeNotifications": true},
                "fileOperations": {
                    "willRename": {"filters": [py_filter, c_filter]},
                    "didCreate": {"filters": [c_filter]},
                },
                "textDocumentContent": {"schemes": ["a-virtual"]},
            }))
        );
        assert_eq!(merged_field(&[("a", json!({}))], "workspace"), None);
        let quiet = merged_field(
            &[(
                "a",
                json!({"workspace": {"workspaceFolders": {"supported": true}}}),
            )],
            "workspace",
        );
        assert_eq!(
            quiet,
            Some(json!({"workspaceFolders": {"supported": true, "changeNotifications": false}}))
        );
    }

    #[test]
    fn unknown_fields_come_from_the_first_child_that_has_them() {
        let merged = merge(&[
            ("a", json!({"astProvider": true})),
            ("b", json!({"experimental": {"b": 1}, "astProvider": false, "notebookDocumentSync": {"notebookSelector": []}})),
            ("c", json!({"experimental": {"c": 2}})),
        ])
        .capabilities;
        assert_eq!(merged["astProvider"], json!(true));
        assert_eq!(merged["experimental"], json!({"b": 1}));
        assert_eq!(
            merged["notebookDocumentSync"],
            json!({"notebookSelector": []})
        );
    }

    #[test]
    fn one_child_passes_through_verbatim_and_several_drop_registration_ids() {
        let registration = json!({"id": "decl-1", "documentSelector": [{"language": "c"}], "workDoneProgress": false});
        assert_eq!(
            merged_field(
                &[("a", json!({"declarationProvider": registration}))],
                "declarationProvider"
            ),
            Some(registration)
        );
        let merged = merge(&[
            (
                "a",
                json!({"declarationProvider": {"id": "decl-1", "documentSelector": [{"language": "c"}]}}),
            ),
            (
                "b",
                json!({"declarationProvider": {"documentSelector": [{"language": "cpp"}]}}),
            ),
            (
                "c",
                json!({"typeDefinitionProvider": {"documentSelector": [{"language": "c"}]}}),
            ),
            ("d", json!({"typeDefinitionProvider": true})),
        ]);
        assert_eq!(
            merged.capabilities["declarationProvider"],
            json!({"documentSelector": [{"language": "c"}, {"language": "cpp"}]})
        );
        // d serves every document, so no selector may narrow the merged provider.
        assert_eq!(merged.capabilities["typeDefinitionProvider"], json!({}));
        assert_eq!(merged.warnings.len(), 1);
        assert!(
            merged.warnings[0].contains("declarationProvider"),
            "{:?}",
            merged.warnings
        );
    }

    #[test]
    fn server_supports_reads_providers_and_their_options() {
        let capabilities = json!({
            "hoverProvider": true,
            "definitionProvider": {"workDoneProgress": true},
            "referencesProvider": false,
            "completionProvider": {"triggerCharacters": ["."], "resolveProvider": false},
            "codeActionProvider": {"resolveProvider": true},
            "renameProvider": true,
            "semanticTokensProvider": {"legend": {}, "full": {"delta": true}, "range": false},
            "callHierarchyProvider": {"id": "calls"},
            "diagnosticProvider": {"interFileDependencies": false, "workspaceDiagnostics": false},
            "textDocumentSync": {"openClose": true, "change": 2, "willSaveWaitUntil": true},
            "workspace": {"workspaceFolders": {"supported": true, "changeNotifications": "ws"}, "fileOperations": {"willRename": {"filters": []}}},
        });
        let supported = [
            "textDocument/hover",
            "textDocument/definition",
            "textDocument/completion",
            "textDocument/codeAction",
            "codeAction/resolve",
            "textDocument/rename",
            "textDocument/semanticTokens/full",
            "textDocument/semanticTokens/full/delta",
            "textDocument/prepareCallHierarchy",
            "callHierarchy/incomingCalls",
            "textDocument/diagnostic",
            "textDocument/didOpen",
            "textDocument/didChange",
            "textDocument/willSaveWaitUntil",
            "workspace/didChangeWorkspaceFolders",
            "workspace/willRenameFiles",
            "rust-analyzer/expandMacro",
            "clangd/switchSourceHeader",
        ];
        let unsupported = [
            "textDocument/references",
            "completionItem/resolve",
            "textDocument/prepareRename",
            "textDocument/semanticTokens/range",
            "textDocument/typeDefinition",
            "typeHierarchy/supertypes",
            "workspace/diagnostic",
            "workspace/symbol",
            "workspace/executeCommand",
            "textDocument/willSave",
            "textDocument/didSave",
            "workspace/didRenameFiles",
            "inlayHint/resolve",
        ];
        for method in supported {
            assert!(
                server_supports(&capabilities, method),
                "{method} should be supported"
            );
        }
        for method in unsupported {
            assert!(
                !server_supports(&capabilities, method),
                "{method} should not be supported"
            );
        }
        let full_only = json!({"semanticTokensProvider": {"legend": {}, "full": true}});
        assert!(server_supports(
            &full_only,
            "textDocument/semanticTokens/full"
        ));
        assert!(!server_supports(
            &full_only,
            "textDocument/semanticTokens/full/delta"
        ));
        assert!(server_supports(
            &json!({"textDocumentSync": 1}),
            "textDocument/didSave"
        ));
        assert!(!server_supports(&json!({}), "textDocument/didOpen"));
    }

    fn clangd_capabilities() -> Value {
        json!({
            "astProvider": true,
            "callHierarchyProvider": true,
            "clangdInlayHintsProvider": true,
            "codeActionProvider": {"codeActionKinds": ["quickfix", "refactor", "info"]},
            "compilationDatabase": {"automaticReload": true},
            "completionProvider": {"resolveProvider": false, "triggerCharacters": [".", "<", ">", ":", "\"", "/", "*"]},
            "declarationProvider": true,
            "definitionProvider": true,
            "documentFormattingProvider": true,
            "documentHighlightProvider": true,
            "documentLinkProvider": {"resolveProvider": false},
            "documentOnTypeFormattingProvider": {"firstTriggerCharacter": "\n", "moreTriggerCharacter": []},
            "documentRangeFormattingProvider": true,
            "documentSymbolProvider": true,
            "executeCommandProvider": {"commands": ["clangd.applyFix", "clangd.applyTweak"]},
            "foldingRangeProvider": true,
            "hoverProvider": true,
            "implementationProvider": true,
            "inlayHintProvider": true,
            "memoryUsageProvider": true,
            "referencesProvider": true,
            "renameProvider": {"prepareProvider": true},
            "selectionRangeProvider": true,
            "semanticTokensProvider": {
                "full": {"delta": true},
                "legend": {
                    "tokenModifiers": ["declaration", "definition", "deprecated", "deduced", "readonly", "static"],
                    "tokenTypes": ["variable", "variable", "parameter", "function", "method", "function", "property", "variable", "class"],
                },
                "range": false,
            },
            "signatureHelpProvider": {"triggerCharacters": ["(", ")", "{", "}", "<", ">", ","]},
            "standardTypeHierarchyProvider": true,
            "textDocumentSync": {"change": 2, "openClose": true, "save": true},
            "typeDefinitionProvider": true,
            "typeHierarchyProvider": true,
            "workspaceSymbolProvider": true,
        })
    }

    fn pyright_capabilities() -> Value {
        json!({
            "textDocumentSync": 2,
            "definitionProvider": {"workDoneProgress": true},
            "declarationProvider": {"workDoneProgress": true},
            "typeDefinitionProvider": {"workDoneProgress": true},
            "referencesProvider": {"workDoneProgress": true},
            "documentSymbolProvider": {"workDoneProgress": true},
            "workspaceSymbolProvider": {"workDoneProgress": true},
            "hoverProvider": {"workDoneProgress": true},
            "documentHighlightProvider": {"workDoneProgress": true},
            "renameProvider": {"prepareProvider": true, "workDoneProgress": true},
            "completionProvider": {
                "triggerCharacters": [".", "[", "\"", "'"],
                "resolveProvider": true,
                "workDoneProgress": true,
                "completionItem": {"labelDetailsSupport": true},
            },
            "signatureHelpProvider": {"triggerCharacters": ["(", ",", ")"], "workDoneProgress": true},
            "codeActionProvider": {"codeActionKinds": ["quickfix", "source.organizeImports"], "workDoneProgress": true},
            "executeCommandProvider": {"commands": ["pyright.organizeimports", "pyright.createtypestub"], "workDoneProgress": true},
            "callHierarchyProvider": true,
            "diagnosticProvider": {"identifier": "pyright", "interFileDependencies": true, "workspaceDiagnostics": false},
            "workspace": {
                "workspaceFolders": {"supported": true, "changeNotifications": true},
                "fileOperations": {"willRename": {"filters": [{"pattern": {"glob": "**/*.py"}}]}},
            },
            "experimental": {"pyright": true},
        })
    }

    #[test]
    fn clangd_and_pyright_merge() {
        let merged = merge(&[
            ("clangd", clangd_capabilities()),
            ("pyright", pyright_capabilities()),
        ]);
        insta::assert_snapshot!(
            "clangd_and_pyright_capabilities",
            serde_json::to_string_pretty(&sorted_keys(&merged.capabilities)).unwrap()
        );
        let mut owners: Vec<String> = merged
            .command_owners
            .iter()
            .map(|(command, owner)| format!("{command} -> {owner}"))
            .collect();
        owners.sort_unstable();
        let routing = format!(
            "command owners:\n{}\nsemantic tokens: {:?}\npull diagnostics: {:?}\nwarnings: {:?}\n",
            owners.join("\n"),
            merged.semantic_tokens_owner,
            merged.pull_diagnostic_servers,
            merged.warnings,
        );
        insta::assert_snapshot!("clangd_and_pyright_routing", routing);
    }

    /// `value` with every object's keys in sorted order, so the snapshot does not depend on
    /// whether serde_json keeps insertion order (its `preserve_order` feature, which a
    /// dependency may turn on).
    fn sorted_keys(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key.clone(), sorted_keys(value)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
            other => other.clone(),
        }
    }
}
