//! STUB
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentChange {
    pub range: Option<Range>,
    pub text: String,
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct DocumentError;
pub struct Document {
    pub uri: String,
    pub language_id: String,
    pub version: i32,
    pub text: ropey::Rope,
}
impl Document {
    pub fn text_string(&self) -> String {
        self.text.to_string()
    }
}
#[derive(Default)]
pub struct DocumentStore;
impl DocumentStore {
    pub fn open(&mut self, _uri: String, _l: String, _v: i32, _t: String) {}
    pub fn change(
        &mut self,
        _uri: &str,
        _v: i32,
        _c: &[ContentChange],
    ) -> Result<&Document, DocumentError> {
        Err(DocumentError)
    }
    pub fn close(&mut self, _uri: &str) -> Option<Document> {
        None
    }
    pub fn get(&self, _uri: &str) -> Option<&Document> {
        None
    }
    pub fn iter(&self) -> impl Iterator<Item = &Document> {
        std::iter::empty()
    }
    pub fn len(&self) -> usize {
        0
    }
}
