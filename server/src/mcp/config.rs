//! Which MCP servers the agent's tools come from: `[mcp.<name>]` tables of tack's layered
//! configuration and the `mcpServers` object of the project's `.mcp.json` (the layout other
//! agents read), merged per server field by field with tack's configuration winning, with
//! `${VAR}` / `${VAR:-default}` expanded from the environment, and checked.
//!
//! ```toml
//! [mcp.fs]                                  # a stdio server
//! command = "npx"
//! args = ["-y", "@modelcontextprotocol/server-filesystem", "."]
//! env = { NODE_OPTIONS = "--no-warnings" }
//! tools = ["read_text_file", "list_directory"]   # optional: only these tools
//!
//! [mcp.docs]                                # a streamable-HTTP server
//! url = "https://example.com/mcp"
//! headers = { Authorization = "Bearer ${DOCS_TOKEN}" }
//! tool_timeout_secs = 30
//! ```
//!
//! A server entry that cannot be used (neither or both of `command` and `url`, an SSE-only
//! server, a variable that is not set, a bad name or URL) is kept as an invalid entry so it is
//! reported like a server that fails to start. Errors name keys and variables, never values:
//! headers and env hold secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;
use toml::{Table, Value};

/// The project file of the common `mcpServers` layout, read from the workspace root.
pub const PROJECT_MCP_JSON: &str = ".mcp.json";
/// How long a server may take to start and list its tools.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one tool call may take.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// How tack reaches a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        /// Absolute; the workspace root unless configured.
        cwd: PathBuf,
    },
    /// Streamable HTTP.
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// One usable server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerSpec {
    pub name: String,
    pub transport: McpTransport,
    /// Only these of its tools (by the server's own names); `None`: all.
    pub tools: Option<Vec<String>>,
    pub startup_timeout: Duration,
    pub tool_timeout: Duration,
}

/// One configured server, usable or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpEntry {
    pub name: String,
    /// Where it was configured: `tack.toml` (any layer of tack's configuration),
    /// `.mcp.json`, or both.
    pub origin: &'static str,
    pub state: EntryState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    Ready(McpServerSpec),
    Disabled,
    /// Why it cannot be used, naming keys and variables, never values.
    Invalid(String),
}

/// Every configured server, and what was wrong with the files themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpConfig {
    pub entries: Vec<McpEntry>,
    /// A `.mcp.json` that could not be read or parsed, or had entries of the wrong shape.
    pub warnings: Vec<String>,
}

impl McpConfig {
    /// The servers of `root`'s `.mcp.json` under the `mcp` section of tack's configuration,
    /// expanded with the process environment.
    pub fn load(section: Option<&Value>, root: &Path) -> McpConfig {
        let lookup = |name: &str| std::env::var(name).ok();
        let (json, warnings) = read_mcp_json(&root.join(PROJECT_MCP_JSON));
        let mut config = McpConfig::from_tables(section, json, root, &lookup);
        config.warnings.splice(0..0, warnings);
        config
    }

    /// [`McpConfig::load`] with the `.mcp.json` entries given and variables from `lookup`.
    fn from_tables(
        section: Option<&Value>,
        json_entries: Table,
        root: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> McpConfig {
        let tack_entries = section
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        let mut merged: BTreeMap<String, (Table, &'static str)> = BTreeMap::new();
        for (name, fields) in json_entries {
            if let Value::Table(fields) = fields {
                merged.insert(name, (fields, PROJECT_MCP_JSON));
            }
        }
        for (name, fields) in tack_entries {
            let Value::Table(fields) = fields else {
                continue;
            };
            match merged.get_mut(&name) {
                Some((existing, origin)) => {
                    existing.extend(fields);
                    *origin = "tack.toml and .mcp.json";
                }
                None => {
                    merged.insert(name, (fields, "tack.toml"));
                }
            }
        }
        let entries = merged
            .into_iter()
            .map(|(name, (fields, origin))| McpEntry {
                state: entry_state(&name, &fields, root, lookup),
                name,
                origin,
            })
            .collect();
        McpConfig {
            entries,
            warnings: Vec::new(),
        }
    }

    /// The usable servers.
    pub fn ready(&self) -> impl Iterator<Item = &McpServerSpec> {
        self.entries.iter().filter_map(|entry| match &entry.state {
            EntryState::Ready(spec) => Some(spec),
            _ => None,
        })
    }
}

/// The `mcpServers` of a `.mcp.json` as tack-shaped tables (`disabled` becomes `enabled`,
/// `type` is kept), and warnings for what could not be read. A missing file is no warning.
fn read_mcp_json(path: &Path) -> (Table, Vec<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return (Table::new(), Vec::new());
        }
        Err(error) => {
            return (
                Table::new(),
                vec![format!("{}: cannot read: {error}", path.display())],
            );
        }
    };
    let json: Json = match serde_json::from_str(&text) {
        Ok(json) => json,
        Err(error) => {
            return (
                Table::new(),
                vec![format!(
                    "{}: not valid JSON (line {}, column {}); its servers are left out",
                    path.display(),
                    error.line(),
                    error.column()
                )],
            );
        }
    };
    let mut warnings = Vec::new();
    let Some(servers) = json.get("mcpServers") else {
        return (Table::new(), warnings);
    };
    let Some(servers) = servers.as_object() else {
        warnings.push(format!(
            "{}: mcpServers is not an object; its servers are left out",
            path.display()
        ));
        return (Table::new(), warnings);
    };
    let mut entries = Table::new();
    for (name, server) in servers {
        let Some(server) = server.as_object() else {
            warnings.push(format!(
                "{}: mcpServers.{name} is not an object; left out",
                path.display()
            ));
            continue;
        };
        let mut fields = Table::new();
        for (key, value) in server {
            let converted = match (key.as_str(), value) {
                ("command" | "url" | "cwd" | "type", Json::String(text)) => {
                    Some((key.clone(), Value::String(text.clone())))
                }
                ("args", Json::Array(items)) => Some((
                    key.clone(),
                    Value::Array(
                        items
                            .iter()
                            .map(|item| match item {
                                Json::String(text) => Value::String(text.clone()),
                                other => Value::String(other.to_string()),
                            })
                            .collect(),
                    ),
                )),
                ("env" | "headers", Json::Object(map)) => Some((
                    key.clone(),
                    Value::Table(
                        map.iter()
                            .filter_map(|(k, v)| {
                                Some((k.clone(), Value::String(v.as_str()?.to_owned())))
                            })
                            .collect(),
                    ),
                )),
                ("disabled", Json::Bool(disabled)) => {
                    Some(("enabled".to_owned(), Value::Boolean(!disabled)))
                }
                // Other agents' own keys (`alwaysAllow`, `timeout`, `oauth` …) are theirs.
                _ => None,
            };
            if let Some((key, value)) = converted {
                fields.insert(key, value);
            }
        }
        entries.insert(name.clone(), Value::Table(fields));
    }
    (entries, warnings)
}

/// Whether `name` can prefix a tool name: letters, digits, `-` and `_`, at most 32.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn entry_state(
    name: &str,
    fields: &Table,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> EntryState {
    if fields.get("enabled").and_then(Value::as_bool) == Some(false) {
        return EntryState::Disabled;
    }
    match spec_of(name, fields, root, lookup) {
        Ok(spec) => EntryState::Ready(spec),
        Err(reason) => EntryState::Invalid(reason),
    }
}

fn spec_of(
    name: &str,
    fields: &Table,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<McpServerSpec, String> {
    if !valid_name(name) {
        return Err(format!(
            "the name {name:?} must be 1 to 32 letters, digits, '-' or '_' (it prefixes the tool names)"
        ));
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match fields.get(key).and_then(Value::as_str) {
            Some(raw) => expand(raw, lookup)
                .map(Some)
                .map_err(|variable| unset(name, key, &variable)),
            None => Ok(None),
        }
    };
    let table = |key: &str| -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (entry, value) in fields
            .get(key)
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            let Some(raw) = value.as_str() else { continue };
            let value = expand(raw, lookup)
                .map_err(|variable| unset(name, &format!("{key}.{entry}"), &variable))?;
            out.insert(entry.clone(), value);
        }
        Ok(out)
    };
    let seconds = |key: &str, default: Duration| -> Result<Duration, String> {
        let value = match fields.get(key) {
            None => return Ok(default),
            Some(Value::Integer(n)) => *n as f64,
            Some(Value::Float(f)) => *f,
            Some(_) => return Err(format!("mcp.{name}.{key} must be a number of seconds")),
        };
        if value.is_finite() && value > 0.0 && value <= 86_400.0 {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(format!(
                "mcp.{name}.{key} must be between 0 and 86400 seconds"
            ))
        }
    };
    let kind = fields.get("type").and_then(Value::as_str);
    if kind == Some("sse") {
        return Err(
            "the SSE transport is not supported; give the server's streamable-HTTP url instead"
                .to_owned(),
        );
    }
    let transport = match (text("command")?, text("url")?) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "mcp.{name} sets both command and url; a server is either a command or a url"
            ));
        }
        (None, None) => {
            return Err(format!(
                "mcp.{name} sets neither command (a stdio server) nor url (a streamable-HTTP server)"
            ));
        }
        (Some(command), None) => {
            let mut args = Vec::new();
            for (index, arg) in fields
                .get("args")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let raw = arg.as_str().unwrap_or_default();
                args.push(
                    expand(raw, lookup)
                        .map_err(|variable| unset(name, &format!("args[{index}]"), &variable))?,
                );
            }
            let cwd = match text("cwd")? {
                Some(cwd) => root.join(cwd),
                None => root.to_path_buf(),
            };
            McpTransport::Stdio {
                command,
                args,
                env: table("env")?,
                cwd,
            }
        }
        (None, Some(url)) => {
            let parsed = url::Url::parse(&url)
                .map_err(|error| format!("mcp.{name}.url is not a URL: {error}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("mcp.{name}.url must be http:// or https://"));
            }
            let headers = table("headers")?;
            for header in headers.keys() {
                if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(format!(
                        "mcp.{name}.headers: {header:?} is not a header name"
                    ));
                }
            }
            McpTransport::Http { url, headers }
        }
    };
    let tools = fields.get("tools").and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect()
    });
    Ok(McpServerSpec {
        name: name.to_owned(),
        transport,
        tools,
        startup_timeout: seconds("startup_timeout_secs", DEFAULT_STARTUP_TIMEOUT)?,
        tool_timeout: seconds("tool_timeout_secs", DEFAULT_TOOL_TIMEOUT)?,
    })
}

fn unset(name: &str, key: &str, variable: &str) -> String {
    format!("mcp.{name}.{key} uses ${{{variable}}}, which is not set")
}

/// Expands `${VAR}` and `${VAR:-default}`; `Err` names the first variable that is unset
/// (and has no default). `$` not followed by `{` stays as it is.
fn expand(raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (variable, default) = match inner.split_once(":-") {
            Some((variable, default)) => (variable, Some(default)),
            None => (inner, None),
        };
        match (lookup(variable), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(variable.to_owned()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigSources};

    fn lookup(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        }
    }

    fn entries(toml_text: &str, json_text: &str) -> McpConfig {
        let section: Table = toml_text.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROJECT_MCP_JSON), json_text).unwrap();
        let (json, warnings) = read_mcp_json(&dir.path().join(PROJECT_MCP_JSON));
        assert!(warnings.is_empty(), "{warnings:?}");
        McpConfig::from_tables(
            section.get("mcp"),
            json,
            Path::new("/work/project"),
            &lookup,
        )
    }

    fn state<'a>(config: &'a McpConfig, name: &str) -> &'a EntryState {
        &config
            .entries
            .iter()
            .find(|e| e.name == name)
            .unwrap()
            .state
    }

    #[test]
    fn tack_tables_and_mcp_json_merge_per_field_with_variables_expanded() {
        let config = entries(
            r#"[mcp.fs]
            tool_timeout_secs = 5
            [mcp.web]
            url = "http://127.0.0.1:9/mcp"
            headers = { Authorization = "Bearer ${TOKEN}" }
            tools = ["fetch"]
            [mcp.off]
            enabled = false
            "#,
            r#"{"mcpServers": {
                "fs": {"command": "mcp-server-filesystem", "args": ["${HOME}/src", "${NOPE:-.}"],
                       "env": {"A": "1"}, "alwaysAllow": ["x"]},
                "off": {"command": "never"},
                "old": {"type": "sse", "url": "http://127.0.0.1:9/sse"},
                "paused": {"command": "x", "disabled": true}
            }}"#,
        );
        let names: Vec<(&str, &str)> = config
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.origin))
            .collect();
        assert_eq!(
            names,
            [
                ("fs", "tack.toml and .mcp.json"),
                ("off", "tack.toml and .mcp.json"),
                ("old", ".mcp.json"),
                ("paused", ".mcp.json"),
                ("web", "tack.toml"),
            ]
        );
        let EntryState::Ready(fs) = state(&config, "fs") else {
            panic!("{config:?}")
        };
        assert_eq!(
            fs.transport,
            McpTransport::Stdio {
                command: "mcp-server-filesystem".into(),
                args: vec!["/home/u/src".into(), ".".into()],
                env: BTreeMap::from([("A".into(), "1".into())]),
                cwd: PathBuf::from("/work/project"),
            }
        );
        assert_eq!(fs.tool_timeout, Duration::from_secs(5));
        assert_eq!(fs.startup_timeout, DEFAULT_STARTUP_TIMEOUT);
        let EntryState::Ready(web) = state(&config, "web") else {
            panic!()
        };
        assert_eq!(
            web.transport,
            McpTransport::Http {
                url: "http://127.0.0.1:9/mcp".into(),
                headers: BTreeMap::from([("Authorization".into(), "Bearer s3cret".into())]),
            }
        );
        assert_eq!(web.tools, Some(vec!["fetch".to_owned()]));
        assert_eq!(state(&config, "off"), &EntryState::Disabled);
        assert_eq!(state(&config, "paused"), &EntryState::Disabled);
        assert!(matches!(state(&config, "old"), EntryState::Invalid(r) if r.contains("SSE")));
        assert_eq!(config.ready().count(), 2);
    }

    #[test]
    fn unusable_entries_say_why_without_quoting_values() {
        let config = entries(
            r#"[mcp.both]
            command = "a"
            url = "http://127.0.0.1/"
            [mcp.neither]
            args = ["x"]
            [mcp.secret]
            url = "http://127.0.0.1/mcp"
            headers = { Authorization = "Bearer ${MISSING_TOKEN}" }
            [mcp.ftp]
            url = "ftp://127.0.0.1/"
            [mcp."bad name"]
            command = "x"
            [mcp.slow]
            command = "x"
            startup_timeout_secs = -1
            "#,
            "{}",
        );
        let reason = |name: &str| match state(&config, name) {
            EntryState::Invalid(reason) => reason.clone(),
            other => panic!("{name}: {other:?}"),
        };
        assert!(reason("both").contains("both command and url"));
        assert!(reason("neither").contains("neither command"));
        assert_eq!(
            reason("secret"),
            "mcp.secret.headers.Authorization uses ${MISSING_TOKEN}, which is not set"
        );
        assert!(reason("ftp").contains("http:// or https://"));
        assert!(reason("bad name").contains("letters, digits"));
        assert!(reason("slow").contains("between 0 and 86400"));
    }

    #[test]
    fn expansion_handles_defaults_and_leaves_other_dollars() {
        assert_eq!(expand("a${TOKEN}b", &lookup).unwrap(), "as3cretb");
        assert_eq!(expand("${X:-dflt}/$PATH", &lookup).unwrap(), "dflt/$PATH");
        assert_eq!(expand("${UNSET}", &lookup).unwrap_err(), "UNSET");
        assert_eq!(expand("${open", &lookup).unwrap(), "${open");
    }

    #[test]
    fn a_broken_mcp_json_is_a_warning_and_tack_servers_still_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROJECT_MCP_JSON), "{ not json").unwrap();
        let section: Table = "[mcp.fs]\ncommand = \"x\"\n".parse().unwrap();
        let config = McpConfig::load(section.get("mcp"), dir.path());
        assert_eq!(config.warnings.len(), 1);
        assert!(
            config.warnings[0].contains("not valid JSON (line 1"),
            "{config:?}"
        );
        assert_eq!(config.ready().count(), 1);
    }

    #[test]
    fn misspelled_mcp_keys_get_did_you_mean_warnings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tack.toml"),
            "[mcp.fs]\ncomand = \"x\"\nargs = \"not a list\"\nheaders = { A = 1 }\n\
             tool_timeout_secs = \"soon\"\n",
        )
        .unwrap();
        let loaded = Config::load(&ConfigSources {
            workspace_root: Some(dir.path().to_path_buf()),
            ..ConfigSources::default()
        });
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        let text = warnings.join("\n");
        assert!(text.contains("mcp.fs.comand"), "{text}");
        assert!(text.contains("mcp.fs.command"), "did you mean: {text}");
        assert!(text.contains("mcp.fs.args"), "{text}");
        assert!(text.contains("mcp.fs.headers.A"), "{text}");
        assert!(text.contains("mcp.fs.tool_timeout_secs"), "{text}");
        assert_eq!(warnings.len(), 4, "{text}");
    }
}
