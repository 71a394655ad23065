//! STUB
use crate::server_id::ServerId;
use serde_json::Value;
pub struct Diagnostic {
    pub raw: Value,
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct DiagnosticsError;
impl Diagnostic {
    pub fn from_raw(raw: Value) -> Result<Diagnostic, DiagnosticsError> {
        Ok(Diagnostic { raw })
    }
}
#[derive(Clone, Default)]
pub struct DiagnosticStore;
impl DiagnosticStore {
    pub fn new() -> Self {
        Self
    }
    pub fn publish(&self, _s: &ServerId, _uri: &str, _v: Option<i32>, _d: Vec<Diagnostic>) -> bool {
        true
    }
    pub fn merged_raw(&self, _uri: &str) -> Vec<Value> {
        vec![]
    }
    pub fn server_failed(&self, _s: &ServerId, _r: String) -> Vec<String> {
        vec![]
    }
    pub fn server_recovered(&self, _s: &ServerId) {}
    pub fn for_server(&self, _s: &ServerId, _uri: &str) -> Option<(Option<i32>, Vec<Diagnostic>)> {
        None
    }
}
