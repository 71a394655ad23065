//! JSON-RPC 2.0 messages as LSP uses them.
//!
//! Params and results are kept as raw JSON text (`RawValue`) so that whatever tack does not
//! itself look at is forwarded byte for byte: no field is dropped, reordered or renumbered.
//! `"result": null` and an absent `result` are told apart.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// A request id: an integer or a string, as the peer chose it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId::Number(n)
    }
}

/// JSON-RPC and LSP error codes tack itself answers with.
pub mod error_code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    pub const SERVER_NOT_INITIALIZED: i64 = -32002;
    pub const REQUEST_FAILED: i64 = -32803;
    pub const SERVER_CANCELLED: i64 = -32802;
    pub const CONTENT_MODIFIED: i64 = -32801;
    pub const REQUEST_CANCELLED: i64 = -32800;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    pub code: i64,
    pub message: String,
    /// Boxed: a `Value` is large (more so with serde_json's `preserve_order`), and rare here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<serde_json::Value>>,
}

impl ResponseError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

/// A response. `id` is `None` only for an error answering a message whose id could not be read.
#[derive(Debug, Clone)]
pub struct Response {
    pub id: Option<RequestId>,
    pub result: Option<Box<RawValue>>,
    pub error: Option<ResponseError>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// Why bytes that arrived in a well-formed frame are not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("not a JSON-RPC message: {reason}")]
    InvalidShape {
        /// The id, when one could be read, so a request can still be answered.
        id: Option<RequestId>,
        reason: String,
    },
}

impl MessageError {
    /// The error response the sender of these bytes should get.
    pub fn to_response(&self) -> Response {
        match self {
            MessageError::InvalidJson(_) => Response::error(
                None,
                ResponseError::new(error_code::PARSE_ERROR, self.to_string()),
            ),
            MessageError::InvalidShape { id, .. } => Response::error(
                id.clone(),
                ResponseError::new(error_code::INVALID_REQUEST, self.to_string()),
            ),
        }
    }
}

/// Deserializes a present field as `Some`, even when its value is `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Box<RawValue>>,
}

#[derive(Serialize)]
struct WireOut<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Option<&'a RequestId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ResponseError>,
}

const NULL_JSON: &str = "null";

impl Message {
    /// Parses one frame body.
    pub fn parse(bytes: &[u8]) -> Result<Message, MessageError> {
        let wire: WireMessage = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                MessageError::InvalidShape {
                    id: None,
                    reason: e.to_string(),
                }
            } else {
                MessageError::InvalidJson(e.to_string())
            }
        })?;
        let id = match &wire.id {
            None => None,
            Some(raw) if raw.get() == NULL_JSON => None,
            Some(raw) => Some(serde_json::from_str::<RequestId>(raw.get()).map_err(|_| {
                MessageError::InvalidShape {
                    id: None,
                    reason: format!("id must be an integer or a string, got {}", raw.get()),
                }
            })?),
        };
        match (wire.method, id) {
            (Some(method), Some(id)) => Ok(Message::Request(Request {
                id,
                method,
                params: wire.params,
            })),
            (Some(method), None) if wire.id.is_none() => Ok(Message::Notification(Notification {
                method,
                params: wire.params,
            })),
            (Some(method), None) => Err(MessageError::InvalidShape {
                id: None,
                reason: format!("request {method:?} has a null id"),
            }),
            (None, id) => {
                let error = match wire.error {
                    Some(raw) if raw.get() != NULL_JSON => Some(
                        serde_json::from_str::<ResponseError>(raw.get()).map_err(|e| {
                            MessageError::InvalidShape {
                                id: id.clone(),
                                reason: format!("malformed error object: {e}"),
                            }
                        })?,
                    ),
                    _ => None,
                };
                if wire.result.is_none() && error.is_none() {
                    return Err(MessageError::InvalidShape {
                        id,
                        reason: "neither a method nor a result or error".to_owned(),
                    });
                }
                Ok(Message::Response(Response {
                    id,
                    result: if error.is_some() { None } else { wire.result },
                    error,
                }))
            }
        }
    }

    /// Serializes to the frame body.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let out = match self {
            Message::Request(r) => WireOut {
                jsonrpc: "2.0",
                id: Some(Some(&r.id)),
                method: Some(&r.method),
                params: r.params.as_deref(),
                result: None,
                error: None,
            },
            Message::Notification(n) => WireOut {
                jsonrpc: "2.0",
                id: None,
                method: Some(&n.method),
                params: n.params.as_deref(),
                result: None,
                error: None,
            },
            Message::Response(r) => {
                let null = null_raw();
                WireOut {
                    jsonrpc: "2.0",
                    id: Some(r.id.as_ref()),
                    method: None,
                    params: None,
                    result: match (&r.error, &r.result) {
                        (Some(_), _) => None,
                        (None, Some(result)) => Some(result),
                        (None, None) => Some(null),
                    },
                    error: r.error.as_ref(),
                }
            }
        };
        serde_json::to_string(&out)
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

fn null_raw() -> &'static RawValue {
    static NULL: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    // `Box<RawValue>::default()` is the JSON literal `null`.
    NULL.get_or_init(Box::<RawValue>::default)
}

impl Response {
    pub fn ok(id: RequestId, result: Box<RawValue>) -> Self {
        Self {
            id: Some(id),
            result: Some(result),
            error: None,
        }
    }

    pub fn error(id: Option<RequestId>, error: ResponseError) -> Self {
        Self {
            id,
            result: None,
            error: Some(error),
        }
    }

    /// A success response whose result is `value` serialized.
    pub fn ok_value(id: RequestId, value: &impl Serialize) -> Self {
        match to_raw(value) {
            Ok(raw) => Self::ok(id, raw),
            Err(e) => Self::error(
                Some(id),
                ResponseError::new(error_code::INTERNAL_ERROR, e.to_string()),
            ),
        }
    }
}

impl Request {
    pub fn new(id: RequestId, method: &str, params: Option<Box<RawValue>>) -> Self {
        Self {
            id,
            method: method.to_owned(),
            params,
        }
    }

    /// Deserializes the params, `null` when absent.
    pub fn params_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        params_as(self.params.as_deref())
    }
}

impl Notification {
    pub fn new(method: &str, params: Option<Box<RawValue>>) -> Self {
        Self {
            method: method.to_owned(),
            params,
        }
    }

    pub fn with_value(method: &str, params: &impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(Self::new(method, Some(to_raw(params)?)))
    }

    pub fn params_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        params_as(self.params.as_deref())
    }
}

pub fn params_as<T: serde::de::DeserializeOwned>(
    params: Option<&RawValue>,
) -> Result<T, serde_json::Error> {
    serde_json::from_str(params.map_or(NULL_JSON, RawValue::get))
}

/// Serializes a value into raw JSON.
pub fn to_raw(value: &impl Serialize) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn roundtrip(json: &str) -> String {
        Message::parse(json.as_bytes()).unwrap().to_json().unwrap()
    }

    #[test]
    fn request_params_are_kept_byte_for_byte() {
        let json = r#"{"jsonrpc":"2.0","id":7,"method":"rust-analyzer/expandMacro","params":{"z":1,"a":[1.50,"é"],"n":null}}"#;
        assert_eq!(roundtrip(json), json);
    }

    #[test]
    fn string_ids_and_notifications() {
        let json = r#"{"jsonrpc":"2.0","id":"abc","method":"m"}"#;
        assert_eq!(roundtrip(json), json);
        let json = r#"{"jsonrpc":"2.0","method":"$/progress","params":{"token":1}}"#;
        match Message::parse(json.as_bytes()).unwrap() {
            Message::Notification(n) => assert_eq!(n.method, "$/progress"),
            other => panic!("{other:?}"),
        }
        assert_eq!(roundtrip(json), json);
    }

    #[test]
    fn null_result_is_not_absent_result() {
        let json = r#"{"jsonrpc":"2.0","id":1,"result":null}"#;
        match Message::parse(json.as_bytes()).unwrap() {
            Message::Response(r) => assert_eq!(r.result.unwrap().get(), "null"),
            other => panic!("{other:?}"),
        }
        assert_eq!(roundtrip(json), json);
    }

    #[test]
    fn error_responses_roundtrip() {
        let json = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}"#;
        assert_eq!(roundtrip(json), json);
        let json = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#;
        assert_eq!(roundtrip(json), json);
    }

    #[test]
    fn invalid_json_is_a_parse_error() {
        let err = Message::parse(b"{\"jsonrpc\":\"2.0\",").unwrap_err();
        assert!(matches!(err, MessageError::InvalidJson(_)));
        let response = err.to_response();
        assert_eq!(response.error.unwrap().code, error_code::PARSE_ERROR);
        assert!(response.id.is_none());
    }

    #[test]
    fn wrong_shapes_are_invalid_requests() {
        for json in [
            r#"[1,2]"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":7}"#,
        ] {
            let err = Message::parse(json.as_bytes()).unwrap_err();
            assert!(matches!(err, MessageError::InvalidShape { .. }), "{json}");
            assert_eq!(
                err.to_response().error.unwrap().code,
                error_code::INVALID_REQUEST
            );
        }
        let err = Message::parse(br#"{"id":3,"error":{"message":1}}"#).unwrap_err();
        assert_eq!(err.to_response().id, Some(RequestId::Number(3)));
    }

    #[test]
    fn response_without_result_serializes_null() {
        let r = Message::Response(Response {
            id: Some(RequestId::Number(2)),
            result: None,
            error: None,
        });
        assert_eq!(
            r.to_json().unwrap(),
            r#"{"jsonrpc":"2.0","id":2,"result":null}"#
        );
    }
}
