//! One ledger line. Written as `{"v":1,"type":"…","session":"…","seq":N,"ts":MS,"turn":T,`
//! then the event's own fields (as the agent protocol serializes them), then `"detail":{…}`
//! when the ledger adds something (tool names, wait times, edit hunks and line hashes). The
//! header comes first and in this order so a reader can tell a line's type from its first
//! bytes and skip what it does not need without parsing it.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The schema version every line carries as `v`. Readers accept lines of this version and
/// older; fields are only ever added within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// The header every line has. Unknown fields are ignored, so a reader of this version reads
/// lines with fields added later.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub session: String,
    pub seq: u64,
    /// UTC, milliseconds since the Unix epoch.
    pub ts: u64,
    /// The user turn the event belongs to (0: before the first turn).
    #[serde(default)]
    pub turn: u32,
}

/// A line read back: its header and the rest of its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub header: Header,
    /// Every field of the line (the header's too), as JSON.
    pub fields: Map<String, Value>,
}

impl Line {
    /// Parses one line; `Err` for a line that is not a ledger record.
    pub fn parse(text: &[u8]) -> Result<Line, serde_json::Error> {
        let value: Value = serde_json::from_slice(text)?;
        let header = Header::deserialize(&value)?;
        let Value::Object(fields) = value else {
            return Err(serde::de::Error::custom("a ledger line is a JSON object"));
        };
        Ok(Line { header, fields })
    }

    pub fn kind(&self) -> &str {
        &self.header.kind
    }

    pub fn get(&self, key: &str) -> &Value {
        self.fields.get(key).unwrap_or(&Value::Null)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).as_str()
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).as_u64()
    }

    /// What the ledger added (`detail`), `Null` when nothing.
    pub fn detail(&self, key: &str) -> &Value {
        &self.get("detail")[key]
    }
}

/// The type of a line from its first bytes, when it was written in the header order (every
/// line tack writes is); `None` otherwise, and then the caller parses the line.
pub fn fast_kind(line: &[u8]) -> Option<&[u8]> {
    const PREFIX: &[u8] = b"{\"v\":";
    let rest = line.strip_prefix(PREFIX)?;
    let comma = rest.iter().position(|&b| b == b',')?;
    let rest = rest[comma..].strip_prefix(b",\"type\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..end])
}

/// Writes one line: the header, the event's fields (`event` without its `type`), `detail`.
pub fn format_line(
    header: &Header,
    event: &Map<String, Value>,
    detail: &Map<String, Value>,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&format!("{{\"v\":{},\"type\":", header.v));
    out.push_str(&Value::String(header.kind.clone()).to_string());
    out.push_str(",\"session\":");
    out.push_str(&Value::String(header.session.clone()).to_string());
    out.push_str(&format!(
        ",\"seq\":{},\"ts\":{},\"turn\":{}",
        header.seq, header.ts, header.turn
    ));
    for (key, value) in event {
        if matches!(
            key.as_str(),
            "type" | "v" | "session" | "seq" | "ts" | "turn" | "detail"
        ) {
            continue;
        }
        out.push(',');
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    if !detail.is_empty() {
        out.push_str(",\"detail\":");
        out.push_str(&Value::Object(detail.clone()).to_string());
    }
    out.push('}');
    out
}

/// The ledger's hash of one line of a file: the first 16 hex digits of the SHA-256 of the line
/// with surrounding whitespace removed (so re-indenting or moving a line keeps its hash).
pub fn line_hash(line: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(line.trim().as_bytes());
    let mut out = String::with_capacity(16);
    for byte in &digest[..8] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}
