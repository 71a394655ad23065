//! Merging the answers of several servers to one request, and tagging merged items so that
//! their `*/resolve` requests find the server that produced them.
//!
//! A single answer is never touched. When several servers answer, items that carry `data` get
//! it wrapped as `{"tack.server": <id>, "tack.data": <original>}`; [`untag`] restores it.

use super::routing::MergeKind;
use crate::jsonrpc::{ResponseError, error_code};
use crate::server_id::ServerId;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub type Part = (ServerId, Result<Box<RawValue>, ResponseError>);

const TAG_SERVER: &str = "tack.server";
const TAG_DATA: &str = "tack.data";

/// Combines the parts (in server priority order) into one answer.
pub fn merge(kind: MergeKind, parts: Vec<Part>) -> Result<Box<RawValue>, ResponseError> {
    if parts.len() == 1 {
        if let Some((_, only)) = parts.into_iter().next() {
            return only;
        }
        return Ok(Box::<RawValue>::default());
    }
    let mut first_error = None;
    let mut answers = Vec::new();
    for (server, part) in parts {
        match part {
            Ok(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(value) => answers.push((server, value)),
                Err(e) => tracing::warn!(%server, error = %e, "unparsable result skipped in merge"),
            },
            Err(error) => {
                tracing::debug!(%server, ?error, "a server's part of a merged request failed");
                first_error.get_or_insert(error);
            }
        }
    }
    if answers.is_empty() {
        return Err(first_error.unwrap_or_else(|| {
            ResponseError::new(error_code::INTERNAL_ERROR, "no server answered")
        }));
    }
    let merged = match kind {
        MergeKind::Concat => concat(answers),
        MergeKind::Symbols => symbols(answers),
        MergeKind::Completion => completion(answers),
    };
    serde_json::value::to_raw_value(&merged)
        .map_err(|e| ResponseError::new(error_code::INTERNAL_ERROR, e.to_string()))
}

fn tag(server: &ServerId, item: &mut Value) {
    if let Value::Object(object) = item {
        let mut wrapped = Map::new();
        wrapped.insert(TAG_SERVER.to_owned(), Value::String(server.to_string()));
        if let Some(original) = object.remove("data") {
            wrapped.insert(TAG_DATA.to_owned(), original);
        }
        object.insert("data".to_owned(), Value::Object(wrapped));
    }
}

/// For a `*/resolve` request's params: the server that produced the item, and the params with
/// the item's original `data` restored. `None` when the item carries no tag.
pub fn untag(params: &RawValue) -> Option<(ServerId, Box<RawValue>)> {
    let mut item: Value = serde_json::from_str(params.get()).ok()?;
    let object = item.as_object_mut()?;
    let wrapped = object.get_mut("data")?.as_object_mut()?;
    let server = ServerId::new(wrapped.get(TAG_SERVER)?.as_str()?);
    let original = wrapped.remove(TAG_DATA);
    match original {
        Some(original) => {
            object.insert("data".to_owned(), original);
        }
        None => {
            object.remove("data");
        }
    }
    let raw = serde_json::value::to_raw_value(&item).ok()?;
    Some((server, raw))
}

fn concat(answers: Vec<(ServerId, Value)>) -> Value {
    let mut all_null = true;
    let mut items = Vec::new();
    for (server, answer) in answers {
        if let Value::Array(array) = answer {
            all_null = false;
            for mut item in array {
                tag(&server, &mut item);
                items.push(item);
            }
        }
    }
    if all_null {
        Value::Null
    } else {
        Value::Array(items)
    }
}

fn symbols(answers: Vec<(ServerId, Value)>) -> Value {
    // `DocumentSymbol` has `selectionRange`, `SymbolInformation` has `location`: a client
    // takes one shape per answer, so answers of the other shape are left out.
    let is_hierarchical = |v: &Value| v.get("selectionRange").is_some();
    let mut shape: Option<bool> = None;
    let mut kept = Vec::new();
    for (server, answer) in answers {
        let Value::Array(array) = &answer else {
            continue;
        };
        let Some(first) = array.first() else {
            continue;
        };
        let this = is_hierarchical(first);
        if *shape.get_or_insert(this) == this {
            kept.push((server, answer));
        } else {
            tracing::debug!(%server, "document symbols of another shape left out of the merge");
        }
    }
    if kept.is_empty() {
        return Value::Array(Vec::new());
    }
    concat(kept)
}

/// Fields of `CompletionList.itemDefaults` an item inherits when it lacks them.
const ITEM_DEFAULTS: [&str; 4] = [
    "commitCharacters",
    "insertTextFormat",
    "insertTextMode",
    "data",
];

fn completion(answers: Vec<(ServerId, Value)>) -> Value {
    let mut is_incomplete = false;
    let mut any = false;
    let mut items = Vec::new();
    for (server, answer) in answers {
        let (list_items, defaults) = match answer {
            Value::Array(array) => (array, None),
            Value::Object(mut list) => {
                is_incomplete |= list
                    .get("isIncomplete")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let defaults = list.remove("itemDefaults");
                match list.remove("items") {
                    Some(Value::Array(array)) => (array, defaults),
                    _ => (Vec::new(), defaults),
                }
            }
            _ => continue,
        };
        any = true;
        for mut item in list_items {
            if let (Some(Value::Object(defaults)), Value::Object(object)) = (&defaults, &mut item) {
                apply_item_defaults(defaults, object);
            }
            tag(&server, &mut item);
            items.push(item);
        }
    }
    if !any {
        return Value::Null;
    }
    serde_json::json!({ "isIncomplete": is_incomplete, "items": items })
}

fn apply_item_defaults(defaults: &Map<String, Value>, item: &mut Map<String, Value>) {
    for key in ITEM_DEFAULTS {
        if let Some(value) = defaults.get(key)
            && !item.contains_key(key)
        {
            item.insert(key.to_owned(), value.clone());
        }
    }
    // `editRange` becomes a `textEdit` over that range with the item's insert text or label.
    if let Some(range) = defaults.get("editRange")
        && !item.contains_key("textEdit")
    {
        let new_text = item
            .get("textEditText")
            .or_else(|| item.get("insertText"))
            .or_else(|| item.get("label"))
            .cloned()
            .unwrap_or(Value::String(String::new()));
        let edit = if range.get("insert").is_some() {
            serde_json::json!({ "newText": new_text, "insert": range["insert"], "replace": range["replace"] })
        } else {
            serde_json::json!({ "newText": new_text, "range": range })
        };
        item.insert("textEdit".to_owned(), edit);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(server: &str, v: Value) -> Part {
        (
            ServerId::new(server),
            Ok(serde_json::value::to_raw_value(&v).unwrap()),
        )
    }

    fn merged(kind: MergeKind, parts: Vec<Part>) -> Value {
        serde_json::from_str(merge(kind, parts).unwrap().get()).unwrap()
    }

    #[test]
    fn single_answer_is_untouched() {
        let raw = RawValue::from_string(r#"[{"title":"x","data":{"k":1}}]"#.into()).unwrap();
        let out = merge(MergeKind::Concat, vec![(ServerId::new("a"), Ok(raw))]).unwrap();
        assert_eq!(out.get(), r#"[{"title":"x","data":{"k":1}}]"#);
    }

    #[test]
    fn concat_tags_and_untag_restores() {
        let out = merged(
            MergeKind::Concat,
            vec![
                ok("a", json!([{"title": "fix a", "data": {"k": 1}}])),
                ok("b", Value::Null),
                ok("c", json!([{"title": "fix c"}])),
            ],
        );
        assert_eq!(out[0]["title"], "fix a");
        assert_eq!(out[1]["title"], "fix c");
        let raw = serde_json::value::to_raw_value(&out[0]).unwrap();
        let (server, params) = untag(&raw).unwrap();
        assert_eq!(server.as_str(), "a");
        let restored: Value = serde_json::from_str(params.get()).unwrap();
        assert_eq!(restored, json!({"title": "fix a", "data": {"k": 1}}));
        let raw = serde_json::value::to_raw_value(&out[1]).unwrap();
        let (server, params) = untag(&raw).unwrap();
        assert_eq!(server.as_str(), "c");
        assert_eq!(params.get(), r#"{"title":"fix c"}"#);
    }

    #[test]
    fn all_null_stays_null_and_errors_are_skipped() {
        assert_eq!(
            merged(
                MergeKind::Concat,
                vec![ok("a", Value::Null), ok("b", Value::Null)]
            ),
            Value::Null
        );
        let failed: Part = (
            ServerId::new("b"),
            Err(ResponseError::new(error_code::REQUEST_FAILED, "crashed")),
        );
        let out = merged(MergeKind::Concat, vec![ok("a", json!([1])), failed.clone()]);
        assert_eq!(out, json!([1]));
        let err = merge(MergeKind::Concat, vec![failed.clone(), failed]).unwrap_err();
        assert_eq!(err.message, "crashed");
    }

    #[test]
    fn completion_lists_merge_with_item_defaults() {
        let out = merged(
            MergeKind::Completion,
            vec![
                ok("a", json!([{"label": "x"}])),
                ok(
                    "b",
                    json!({
                        "isIncomplete": true,
                        "itemDefaults": {"insertTextFormat": 2, "editRange": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 2}}},
                        "items": [{"label": "y"}]
                    }),
                ),
            ],
        );
        assert_eq!(out["isIncomplete"], true);
        assert_eq!(out["items"][0]["label"], "x");
        assert_eq!(out["items"][1]["insertTextFormat"], 2);
        assert_eq!(out["items"][1]["textEdit"]["newText"], "y");
        assert_eq!(out["items"][1]["data"]["tack.server"], "b");
    }

    #[test]
    fn symbols_of_another_shape_are_left_out() {
        let out = merged(
            MergeKind::Symbols,
            vec![
                ok("a", json!([{"name": "f", "selectionRange": {}}])),
                ok("b", json!([{"name": "g", "location": {}}])),
                ok("c", json!([{"name": "h", "selectionRange": {}}])),
            ],
        );
        let names: Vec<_> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("f"), json!("h")]);
    }
}
