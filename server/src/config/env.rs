//! The `TACK_*` environment layer: one variable becomes one single-key layer.
//!
//! `TACK_<KEY>` names a top-level key and `__` separates nesting levels:
//! `TACK_MODEL=ollama/qwen` sets `model`, `TACK_SERVERS__CLANGD__COMMAND=/opt/clangd` sets
//! `servers.clangd.command`. Names are matched against the keys already present in the lower
//! layers without regard to case and with `_` standing for `-`, so
//! `TACK_SERVERS__RUST_ANALYZER__ARGS` reaches `servers.rust-analyzer.args`; a segment that
//! matches nothing is used lowercased, except the names of a server's `env` table, which are
//! environment variable names and keep their case (`TACK_SERVERS__PYRIGHT__ENV__NODE_OPTIONS`). Values are parsed as TOML values where they parse
//! (`42`, `true`, `["--stdio"]`, `{ a = 1 }`, `"quoted"`), else taken as strings; a key whose
//! schema type is a string always takes the raw text.

use toml::{Table, Value};

use super::schema::{self, Kind};
use super::{ConfigSource, ConfigWarning, WarningKind};

/// Prefix of every variable read as configuration.
pub const ENV_PREFIX: &str = "TACK_";

/// `TACK_*` variables that are not configuration keys and are never read as such.
/// `TACK_LOG` is the log filter, `TACK_LOG_FILE` the log file (see `logging`).
pub const NON_CONFIG_ENV_VARS: &[&str] = &["TACK_LOG", "TACK_LOG_FILE"];

/// Whether `name` is read as a configuration key.
pub fn is_config_var(name: &str) -> bool {
    name.starts_with(ENV_PREFIX) && !NON_CONFIG_ENV_VARS.contains(&name)
}

/// The layer that the variable `name` contributes, or `None` when it is not a configuration
/// variable. A malformed name (an empty segment, as in `TACK_SERVERS____ARGS`) is a warning.
pub(super) fn layer_for_var(
    name: &str,
    raw_value: &str,
    lower: &Table,
    warnings: &mut Vec<ConfigWarning>,
) -> Option<Table> {
    if !is_config_var(name) {
        return None;
    }
    let key = &name[ENV_PREFIX.len()..];
    let segments: Vec<&str> = key.split("__").collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        warnings.push(ConfigWarning {
            source: ConfigSource::EnvVar(name.to_owned()),
            kind: WarningKind::UnknownKey {
                key: key.to_lowercase().replace("__", "."),
                suggestion: None,
            },
        });
        return None;
    }
    let path = resolve_segments(&segments, lower);
    let value = if schema::expected_kind(&path) == Some(Kind::String) {
        Value::String(raw_value.to_owned())
    } else {
        raw_value
            .parse::<Value>()
            .unwrap_or_else(|_| Value::String(raw_value.to_owned()))
    };
    Some(nest(&path, value))
}

/// Maps each segment to the key it names at its level in `lower` (case-insensitive,
/// `_` matching `-`), or to the segment lowercased when no key there matches.
fn resolve_segments(segments: &[&str], lower: &Table) -> Vec<String> {
    let mut path = Vec::with_capacity(segments.len());
    let mut level = Some(lower);
    for segment in segments {
        let wanted = normalize(segment);
        let existing = level.and_then(|table| table.keys().find(|key| normalize(key) == wanted));
        let names_a_variable = matches!(path.as_slice(), [servers, _, env] if servers == "servers" && env == "env")
            || matches!(path.as_slice(), [mcp, _, env] if mcp == "mcp" && env == "env");
        let key = match existing {
            Some(existing) => existing.clone(),
            None if names_a_variable => (*segment).to_owned(),
            None => segment.to_lowercase(),
        };
        level = level
            .and_then(|table| table.get(&key))
            .and_then(Value::as_table);
        path.push(key);
    }
    path
}

fn normalize(key: &str) -> String {
    key.to_lowercase().replace('-', "_")
}

fn nest(path: &[String], value: Value) -> Table {
    let mut value = value;
    for key in path.iter().skip(1).rev() {
        let mut table = Table::new();
        table.insert(key.clone(), value);
        value = Value::Table(table);
    }
    let mut top = Table::new();
    if let Some(first) = path.first() {
        top.insert(first.clone(), value);
    }
    top
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn layer(name: &str, value: &str, lower: &Table) -> Option<Table> {
        let mut warnings = Vec::new();
        let layer = layer_for_var(name, value, lower, &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        layer
    }

    #[test]
    fn nested_names_follow_existing_keys_and_hyphens() {
        let lower: Table = "[servers.rust-analyzer]\ncommand = \"ra\"\n"
            .parse()
            .unwrap();
        let got = layer("TACK_SERVERS__RUST_ANALYZER__ARGS", "[\"-v\"]", &lower).unwrap();
        let expected: Table = "[servers.rust-analyzer]\nargs = [\"-v\"]\n"
            .parse()
            .unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn values_parse_as_toml_where_they_can() {
        let lower = Table::new();
        let got = layer("TACK_AGENT__MAX_TURNS", "12", &lower).unwrap();
        assert_eq!(got["agent"]["max_turns"].as_integer(), Some(12));
        let got = layer("TACK_AGENT__AUTO", "true", &lower).unwrap();
        assert_eq!(got["agent"]["auto"].as_bool(), Some(true));
        let got = layer("TACK_AGENT__NAME", "plain words", &lower).unwrap();
        assert_eq!(got["agent"]["name"].as_str(), Some("plain words"));
    }

    #[test]
    fn string_keys_keep_the_raw_text() {
        let lower = Table::new();
        let got = layer("TACK_MODEL", "42", &lower).unwrap();
        assert_eq!(got["model"].as_str(), Some("42"));
        let got = layer("TACK_SERVERS__CLANGD__COMMAND", "true", &lower).unwrap();
        assert_eq!(got["servers"]["clangd"]["command"].as_str(), Some("true"));
    }

    #[test]
    fn log_filter_and_other_variables_are_not_configuration() {
        let lower = Table::new();
        assert!(layer("TACK_LOG", "debug", &lower).is_none());
        assert!(layer("HOME", "/root", &lower).is_none());
    }

    #[test]
    fn empty_segment_is_a_warning() {
        let mut warnings = Vec::new();
        let got = layer_for_var("TACK_SERVERS____ARGS", "x", &Table::new(), &mut warnings);
        assert!(got.is_none());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].to_string().contains("TACK_SERVERS____ARGS"));
    }
}
