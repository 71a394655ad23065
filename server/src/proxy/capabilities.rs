//! STUB
use crate::server_id::ServerId;
use serde_json::Value;
use std::collections::HashMap;
pub fn client_capabilities_for_child(c: &Value) -> Value {
    c.clone()
}
#[derive(Default, Clone)]
pub struct MergedCapabilities {
    pub capabilities: Value,
    pub command_owners: HashMap<String, ServerId>,
    pub semantic_tokens_owner: Option<ServerId>,
    pub pull_diagnostic_servers: Vec<ServerId>,
    pub warnings: Vec<String>,
}
pub fn merge_server_capabilities(_c: &[(ServerId, Value)]) -> MergedCapabilities {
    MergedCapabilities::default()
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncKind {
    #[default]
    None,
    Full,
    Incremental,
}
#[derive(Clone, Debug, Default)]
pub struct SaveOptions {
    pub include_text: bool,
}
#[derive(Clone, Debug, Default)]
pub struct ChildSync {
    pub open_close: bool,
    pub change: SyncKind,
    pub will_save: bool,
    pub will_save_wait_until: bool,
    pub save: Option<SaveOptions>,
}
pub fn child_sync(_v: &Value) -> ChildSync {
    ChildSync::default()
}
pub fn server_supports(_c: &Value, _m: &str) -> bool {
    true
}
