//! The shape of a configuration layer: which keys exist, what type each one has, and the
//! check that turns one raw layer into a clean one (unknown and mistyped keys dropped, each
//! with a warning) before it is merged over the layers below.

use toml::{Table, Value};

use super::{ConfigSource, ConfigWarning, WarningKind};

/// The type a configuration key must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    String,
    Bool,
    StringList,
    /// A table whose values are all strings (`env`). Checked entry by entry.
    StringTable,
    /// A table of anything (`settings`, and the sections owned by other modules).
    Table,
    /// An integer or a float (`tool_timeout_secs`).
    Number,
}

impl Kind {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Bool => "a boolean",
            Kind::StringList => "an array of strings",
            Kind::StringTable => "a table of strings",
            Kind::Table => "a table",
            Kind::Number => "a number",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            Kind::String => value.is_str(),
            Kind::Bool => value.is_bool(),
            Kind::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_str)),
            Kind::StringTable | Kind::Table => value.is_table(),
            Kind::Number => value.is_integer() || value.is_float(),
        }
    }
}

/// Fields of one `[servers.<name>]` table.
pub(super) const SERVER_FIELDS: &[(&str, Kind)] = &[
    ("command", Kind::String),
    ("args", Kind::StringList),
    ("languages", Kind::StringList),
    ("root_markers", Kind::StringList),
    ("settings", Kind::Table),
    ("initialization_options", Kind::Table),
    ("env", Kind::StringTable),
    ("enabled", Kind::Bool),
    ("alternative_to", Kind::String),
    ("install_hint", Kind::String),
];

/// Fields of one `[languages.<id>]` table.
pub(super) const LANGUAGE_FIELDS: &[(&str, Kind)] = &[
    ("extensions", Kind::StringList),
    ("filenames", Kind::StringList),
];

/// Fields of one `[mcp.<name>]` table (an MCP server whose tools the agent gets; see
/// `crate::mcp::config`).
pub(super) const MCP_FIELDS: &[(&str, Kind)] = &[
    ("command", Kind::String),
    ("args", Kind::StringList),
    ("env", Kind::StringTable),
    ("cwd", Kind::String),
    ("url", Kind::String),
    ("headers", Kind::StringTable),
    ("enabled", Kind::Bool),
    ("tools", Kind::StringList),
    ("startup_timeout_secs", Kind::Number),
    ("tool_timeout_secs", Kind::Number),
];

/// Top-level sections owned by other modules: checked only for their own type, kept raw.
pub(super) const PASS_THROUGH_SECTIONS: &[(&str, Kind)] = &[
    ("model", Kind::String),
    ("providers", Kind::Table),
    ("agent", Kind::Table),
    ("snapshots", Kind::Table),
    ("context", Kind::Table),
    ("ledger", Kind::Table),
    ("mcp", Kind::Table),
    ("permissions", Kind::Table),
    ("editor", Kind::Table),
];

const SERVERS: &str = "servers";
const LANGUAGES: &str = "languages";
const MCP: &str = "mcp";

/// The type expected at `path` (segments from the top level), when the schema fixes one.
/// Paths inside free-form tables (`settings`, pass-through sections) have none.
pub(super) fn expected_kind(path: &[String]) -> Option<Kind> {
    match path {
        [section] => kind_of(PASS_THROUGH_SECTIONS, section),
        [table, _, field] if table == SERVERS => kind_of(SERVER_FIELDS, field),
        [table, _, field] if table == LANGUAGES => kind_of(LANGUAGE_FIELDS, field),
        [table, _, field, _] if table == SERVERS && field == "env" => Some(Kind::String),
        [table, _, field] if table == MCP => kind_of(MCP_FIELDS, field),
        [table, _, field, _] if table == MCP && (field == "env" || field == "headers") => {
            Some(Kind::String)
        }
        _ => None,
    }
}

fn kind_of(fields: &[(&str, Kind)], name: &str) -> Option<Kind> {
    fields
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, kind)| *kind)
}

/// Checks one layer against the schema. Returns what may be merged; every dropped key is
/// reported in `warnings`. `lower` is the merge of all layers below, used to tell a new
/// server (which must name its `command` and `languages`) from an override of a known one.
pub(super) fn clean_layer(
    layer: Table,
    lower: &Table,
    source: &ConfigSource,
    warnings: &mut Vec<ConfigWarning>,
) -> Table {
    let mut check = LayerCheck { source, warnings };
    let mut cleaned = Table::new();
    for (key, value) in layer {
        match key.as_str() {
            SERVERS | LANGUAGES => {
                let Value::Table(entries) = value else {
                    check.wrong_type(&[&key], Kind::Table, &value);
                    continue;
                };
                let lower_entries = lower.get(&key).and_then(Value::as_table);
                let entries = if key == SERVERS {
                    check.servers(entries, lower_entries)
                } else {
                    check.named_tables(LANGUAGES, LANGUAGE_FIELDS, entries)
                };
                if !entries.is_empty() {
                    cleaned.insert(key, Value::Table(entries));
                }
            }
            MCP => match value {
                Value::Table(entries) => {
                    let entries = check.named_tables(MCP, MCP_FIELDS, entries);
                    if !entries.is_empty() {
                        cleaned.insert(key, Value::Table(entries));
                    }
                }
                other => check.wrong_type(&[&key], Kind::Table, &other),
            },
            _ => match kind_of(PASS_THROUGH_SECTIONS, &key) {
                Some(kind) if kind.accepts(&value) => {
                    cleaned.insert(key, value);
                }
                Some(kind) => check.wrong_type(&[&key], kind, &value),
                None => {
                    let known = [SERVERS, LANGUAGES]
                        .into_iter()
                        .chain(PASS_THROUGH_SECTIONS.iter().map(|(name, _)| *name));
                    let suggestion = nearest(&key, known).map(|name| key_path(&[name]));
                    check.unknown(key_path(&[&key]), suggestion);
                }
            },
        }
    }
    cleaned
}

struct LayerCheck<'a> {
    source: &'a ConfigSource,
    warnings: &'a mut Vec<ConfigWarning>,
}

impl LayerCheck<'_> {
    fn push(&mut self, kind: WarningKind) {
        self.warnings.push(ConfigWarning {
            source: self.source.clone(),
            kind,
        });
    }

    fn unknown(&mut self, key: String, suggestion: Option<String>) {
        self.push(WarningKind::UnknownKey { key, suggestion });
    }

    fn wrong_type(&mut self, path: &[&str], expected: Kind, found: &Value) {
        self.push(WarningKind::WrongType {
            key: key_path(path),
            expected: expected.describe(),
            found: found.type_str(),
        });
    }

    /// `[servers.*]`: field checks, plus a new server must say what to run and for what.
    fn servers(&mut self, entries: Table, lower: Option<&Table>) -> Table {
        let checked = self.named_tables(SERVERS, SERVER_FIELDS, entries);
        let mut kept = Table::new();
        for (name, server) in checked {
            let is_new = lower.is_none_or(|known| !known.contains_key(&name));
            let complete = server.as_table().is_some_and(|fields| {
                fields.contains_key("command") && fields.contains_key("languages")
            });
            if is_new && !complete {
                let suggestion = lower
                    .and_then(|known| nearest(&name, known.keys().map(String::as_str)))
                    .map(|known| key_path(&[SERVERS, known]));
                self.push(WarningKind::IncompleteServer {
                    key: key_path(&[SERVERS, &name]),
                    suggestion,
                });
                continue;
            }
            kept.insert(name, server);
        }
        kept
    }

    /// A table of named tables (`servers`, `languages`) whose fields follow `fields`.
    fn named_tables(&mut self, table: &str, fields: &[(&str, Kind)], entries: Table) -> Table {
        let mut kept = Table::new();
        for (name, entry) in entries {
            let Value::Table(entry) = entry else {
                self.wrong_type(&[table, &name], Kind::Table, &entry);
                continue;
            };
            let mut kept_fields = Table::new();
            for (field, value) in entry {
                let Some(kind) = kind_of(fields, &field) else {
                    let suggestion = nearest(&field, fields.iter().map(|(known, _)| *known))
                        .map(|known| key_path(&[table, &name, known]));
                    self.unknown(key_path(&[table, &name, &field]), suggestion);
                    continue;
                };
                if !kind.accepts(&value) {
                    self.wrong_type(&[table, &name, &field], kind, &value);
                    continue;
                }
                let value = match (kind, value) {
                    (Kind::StringTable, Value::Table(map)) => {
                        Value::Table(self.string_entries(&[table, &name, &field], map))
                    }
                    (_, value) => value,
                };
                kept_fields.insert(field, value);
            }
            if !kept_fields.is_empty() {
                kept.insert(name, Value::Table(kept_fields));
            }
        }
        kept
    }

    /// Keeps the string entries of a table of strings; each other entry is a type warning.
    fn string_entries(&mut self, path: &[&str], map: Table) -> Table {
        let mut kept = Table::new();
        for (key, value) in map {
            if value.is_str() {
                kept.insert(key, value);
            } else {
                let mut entry_path = path.to_vec();
                entry_path.push(&key);
                self.wrong_type(&entry_path, Kind::String, &value);
            }
        }
        kept
    }
}

/// A dotted key path as TOML writes it: segments that are not bare keys are quoted.
pub(super) fn key_path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|segment| {
            let bare = !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare {
                (*segment).to_owned()
            } else {
                format!("{segment:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The known name closest to `key` by edit distance, when it is close enough to be a typo:
/// at most 2 edits, or a third of the key's length for long keys.
pub(super) fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let key_lower = key.to_lowercase();
    let allowed = (key.chars().count() / 3).max(2);
    known
        .filter(|candidate| *candidate != key)
        .map(|candidate| {
            (
                edit_distance(&key_lower, &candidate.to_lowercase()),
                candidate,
            )
        })
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, a_char) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("comand", "command"), 1);
        assert_eq!(edit_distance("args", "argz"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "env"), 3);
    }

    #[test]
    fn nearest_suggests_only_close_names() {
        let known = ["command", "args", "settings"];
        assert_eq!(nearest("comand", known.into_iter()), Some("command"));
        assert_eq!(nearest("Setting", known.into_iter()), Some("settings"));
        assert_eq!(nearest("frobnicate", known.into_iter()), None);
    }

    #[test]
    fn key_path_quotes_segments_that_are_not_bare_keys() {
        assert_eq!(
            key_path(&["servers", "rust-analyzer", "args"]),
            "servers.rust-analyzer.args"
        );
        assert_eq!(
            key_path(&["languages", "go.mod", "filenames"]),
            "languages.\"go.mod\".filenames"
        );
    }

    #[test]
    fn expected_kind_follows_the_schema() {
        let path = |segments: &[&str]| segments.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(expected_kind(&path(&["model"])), Some(Kind::String));
        assert_eq!(
            expected_kind(&path(&["servers", "x", "args"])),
            Some(Kind::StringList)
        );
        assert_eq!(
            expected_kind(&path(&["servers", "x", "env", "PATH"])),
            Some(Kind::String)
        );
        assert_eq!(
            expected_kind(&path(&["servers", "x", "settings", "a"])),
            None
        );
        assert_eq!(expected_kind(&path(&["agent", "max_turns"])), None);
    }
}
