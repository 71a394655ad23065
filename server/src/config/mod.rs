//! Layered configuration, the language-server table, and the choice of servers.
//!
//! Layers, lowest first, each overriding the one below: the built-in defaults
//! (`defaults.toml`, compiled in) < the user file (`$XDG_CONFIG_HOME/tack/config.toml`, else
//! `$HOME/.config/tack/config.toml`) < the project `tack.toml` at the workspace root < the
//! LSP `initializationOptions` (a JSON object of the same shape; `null` means "not set") <
//! `TACK_*` environment variables. Tables merge deeply; any other value, arrays included,
//! replaces the one below.
//!
//! Environment: `TACK_<KEY>` names a top-level key and `__` separates nesting levels
//! (`TACK_MODEL=ollama/qwen`, `TACK_SERVERS__CLANGD__COMMAND=/opt/clangd`). Names match
//! existing keys ignoring case, with `_` standing for `-` (`TACK_SERVERS__RUST_ANALYZER__ARGS`);
//! new names are lowercased, except variable names under a server's `env`, which keep their
//! case. Values are parsed as TOML values where they parse (`42`, `true`, `["--stdio"]`,
//! `{ a = 1 }`), else taken as strings; keys whose type is a string always take the raw text.
//! [`NON_CONFIG_ENV_VARS`] (`TACK_LOG`, the log filter) are not configuration.
//!
//! Loading never fails. Each layer is checked before it is merged: an unknown key, a value of
//! the wrong type, a file that is not valid TOML, or a new server that does not say what to
//! run is reported as a [`ConfigWarning`] naming the key and the source, and that key (or
//! file) is dropped so the lower layer's value stands. Warnings never quote values (they may
//! be secrets).
//!
//! The schema:
//! - `[servers.<name>]`: `command`, `args`, `languages`, `root_markers`, `settings` (answers to
//!   `workspace/configuration`), `initialization_options`, `env`, `enabled`, `alternative_to`
//!   (used for its languages only when the named server is not available; `""` clears it),
//!   `install_hint` (shown by `tack doctor`). A server new to a layer must set `command` and
//!   `languages`.
//! - `[languages.<id>]`: `extensions` (without the dot) and `filenames`, mapping files to LSP
//!   language ids.
//! - `[mcp.<name>]`: an MCP server whose tools the agent gets: `command`, `args`, `env`, `cwd`
//!   (stdio) or `url`, `headers` (streamable HTTP), `enabled`, `tools`,
//!   `startup_timeout_secs`, `tool_timeout_secs` (see `crate::mcp::config`).
//! - Sections owned by other modules pass through unchecked except for their own type, kept
//!   raw in [`Config::sections`]: `model` (a string), and the tables `providers`, `agent`,
//!   `snapshots`, `context`, `ledger`, `permissions`, `editor`.

mod detect;
mod env;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

pub use detect::{DEFAULT_DETECTION_LIMIT, detect_languages, find_in_path};
pub use env::{ENV_PREFIX, NON_CONFIG_ENV_VARS, is_config_var};

/// The built-in defaults, the lowest layer.
const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// The project configuration file, read from the workspace root.
pub const PROJECT_FILE_NAME: &str = "tack.toml";

/// Where the configuration comes from. Tests build it by hand; `tack` builds it with
/// [`ConfigSources::from_env`].
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    /// The user file; absent files are fine.
    pub user_file: Option<PathBuf>,
    /// The workspace root, where the project `tack.toml` is read.
    pub workspace_root: Option<PathBuf>,
    /// The LSP `initializationOptions`.
    pub initialization_options: Option<serde_json::Value>,
    /// Environment variables; only `TACK_*` configuration variables are read.
    pub env: Vec<(String, String)>,
}

impl ConfigSources {
    /// Sources from the real process: the user file under `$XDG_CONFIG_HOME` (or
    /// `$HOME/.config`) and the `TACK_*` variables of the environment.
    pub fn from_env(
        workspace_root: Option<PathBuf>,
        initialization_options: Option<serde_json::Value>,
    ) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| is_config_var(name))
            .collect();
        Self {
            user_file: user_config_file(
                std::env::var_os("XDG_CONFIG_HOME"),
                std::env::var_os("HOME"),
            ),
            workspace_root,
            initialization_options,
            env,
        }
    }

    /// The configuration files, lowest layer first: the user file, then the project file.
    pub fn config_files(&self) -> Vec<PathBuf> {
        let project_file = self
            .workspace_root
            .as_ref()
            .map(|root| root.join(PROJECT_FILE_NAME));
        self.user_file.iter().cloned().chain(project_file).collect()
    }
}

/// `$XDG_CONFIG_HOME/tack/config.toml` when that variable is an absolute path (as the XDG
/// base directory specification requires), else `$HOME/.config/tack/config.toml`.
fn user_config_file(
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let config_dir = xdg_config_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            home.filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(config_dir.join("tack").join("config.toml"))
}

/// Where a layer (and so a warning) came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    Defaults,
    File(PathBuf),
    InitializationOptions,
    EnvVar(String),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Defaults => f.write_str("built-in defaults"),
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::InitializationOptions => f.write_str("initializationOptions"),
            ConfigSource::EnvVar(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// Something wrong in one source; the configuration was loaded without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub source: ConfigSource,
    pub kind: WarningKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// A key the schema does not know; ignored.
    UnknownKey {
        key: String,
        suggestion: Option<String>,
    },
    /// A value of the wrong type; the lower layer's value stands.
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A file that is not valid TOML; the whole file is skipped.
    BrokenToml {
        line: usize,
        column: usize,
        message: String,
    },
    /// A file that exists but could not be read; skipped.
    UnreadableFile { message: String },
    /// The whole source is not a table (for example `initializationOptions` is an array).
    NotATable { found: &'static str },
    /// A server no lower layer defines, without `command` or `languages`; ignored.
    IncompleteServer {
        key: String,
        suggestion: Option<String>,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.source)?;
        match &self.kind {
            WarningKind::UnknownKey { key, suggestion } => {
                write!(f, "unknown key `{key}`")?;
                if let Some(suggestion) = suggestion {
                    write!(f, " (did you mean `{suggestion}`?)")?;
                }
                f.write_str("; ignored")
            }
            WarningKind::WrongType {
                key,
                expected,
                found,
            } => write!(
                f,
                "`{key}` should be {expected}, found {}; using the value from the layer below",
                with_article(found)
            ),
            WarningKind::BrokenToml {
                line,
                column,
                message,
            } => write!(
                f,
                "invalid TOML at line {line}, column {column}: {message}; file skipped"
            ),
            WarningKind::UnreadableFile { message } => {
                write!(f, "cannot read the file: {message}; file skipped")
            }
            WarningKind::NotATable { found } => {
                write!(
                    f,
                    "should be a table (a JSON object), found {}; ignored",
                    with_article(found)
                )
            }
            WarningKind::IncompleteServer { key, suggestion } => {
                write!(
                    f,
                    "`{key}` is not a known server, and a new server needs `command` and `languages`"
                )?;
                if let Some(suggestion) = suggestion {
                    write!(f, " (did you mean `{suggestion}`?)")?;
                }
                f.write_str("; ignored")
            }
        }
    }
}

/// "an array", "a string": a TOML type name with its article.
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// The result of [`Config::load`]: the configuration, what was wrong, and which files
/// were read (parsed and applied), lowest layer first.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
    pub files_read: Vec<PathBuf>,
}

/// The merged configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Language servers by name (the key of `[servers.<name>]`).
    pub servers: BTreeMap<String, ServerConfig>,
    /// File-to-language mapping by LSP language id.
    pub languages: BTreeMap<String, LanguageConfig>,
    /// Top-level sections owned by other modules (`model`, `providers`, `agent`, `snapshots`,
    /// `context`, `ledger`, `mcp`, `permissions`, `editor`), merged across layers and kept raw; each
    /// owner deserializes its own section. Only sections that some layer sets are present.
    pub sections: Table,
}

/// One `[servers.<name>]` table after merging.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub command: String,
    pub args: Vec<String>,
    pub languages: Vec<String>,
    pub root_markers: Vec<String>,
    /// A JSON object (empty when unset).
    pub settings: serde_json::Value,
    pub initialization_options: Option<serde_json::Value>,
    pub env: BTreeMap<String, String>,
    pub enabled: bool,
    pub alternative_to: Option<String>,
    pub install_hint: Option<String>,
}

/// One `[languages.<id>]` table after merging.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LanguageConfig {
    /// File extensions without the dot, compared exactly first, then ignoring ASCII case.
    pub extensions: Vec<String>,
    /// Exact file names (`Makefile`), checked before extensions.
    pub filenames: Vec<String>,
}

/// A server chosen to run, with its program found.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedServer {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// All the languages this server serves (for routing documents to it).
    pub languages: Vec<String>,
    pub settings: serde_json::Value,
    pub initialization_options: Option<serde_json::Value>,
    pub root_markers: Vec<String>,
}

/// How one configured server stands for one language (see [`Config::server_choices`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ServerChoice {
    pub name: String,
    pub command: String,
    pub alternative_to: Option<String>,
    pub install_hint: Option<String>,
    pub status: ServerStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerStatus {
    /// Will run, as this program.
    Selected(PathBuf),
    /// An alternative not needed: the server it stands in for is selected.
    Standby,
    /// Its command is not an executable file nor on `PATH`.
    NotFound,
}

impl Default for Config {
    /// The built-in defaults alone.
    fn default() -> Self {
        Config::load(&ConfigSources::default()).config
    }
}

impl Config {
    /// Loads every layer of `sources` over the built-in defaults. Never fails; see the
    /// module documentation for what becomes a warning.
    pub fn load(sources: &ConfigSources) -> LoadedConfig {
        let mut warnings = Vec::new();
        let mut files_read = Vec::new();
        let mut merged = Table::new();

        match parse_toml(DEFAULTS_TOML) {
            Ok(defaults) => apply_layer(
                &mut merged,
                defaults,
                &ConfigSource::Defaults,
                &mut warnings,
            ),
            Err(kind) => warnings.push(ConfigWarning {
                source: ConfigSource::Defaults,
                kind,
            }),
        }

        for path in sources.config_files() {
            let source = ConfigSource::File(path.clone());
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    warnings.push(ConfigWarning {
                        source,
                        kind: WarningKind::UnreadableFile {
                            message: error.to_string(),
                        },
                    });
                    continue;
                }
            };
            match parse_toml(&text) {
                Ok(layer) => {
                    files_read.push(path);
                    apply_layer(&mut merged, layer, &source, &mut warnings);
                }
                Err(kind) => warnings.push(ConfigWarning { source, kind }),
            }
        }

        if let Some(options) = &sources.initialization_options {
            let source = ConfigSource::InitializationOptions;
            match json_to_toml(options) {
                None => {}
                Some(Value::Table(layer)) => {
                    apply_layer(&mut merged, layer, &source, &mut warnings)
                }
                Some(other) => warnings.push(ConfigWarning {
                    source,
                    kind: WarningKind::NotATable {
                        found: other.type_str(),
                    },
                }),
            }
        }

        let mut env_vars: Vec<&(String, String)> = sources.env.iter().collect();
        env_vars.sort();
        for (name, value) in env_vars {
            if let Some(layer) = env::layer_for_var(name, value, &merged, &mut warnings) {
                let source = ConfigSource::EnvVar(name.clone());
                apply_layer(&mut merged, layer, &source, &mut warnings);
            }
        }

        LoadedConfig {
            config: Config::from_merged(merged),
            warnings,
            files_read,
        }
    }

    /// Builds the typed view of a merged table whose layers all passed the schema check.
    fn from_merged(mut merged: Table) -> Config {
        let mut take_tables = |key: &str| match merged.remove(key) {
            Some(Value::Table(entries)) => entries
                .into_iter()
                .filter_map(|(name, entry)| match entry {
                    Value::Table(fields) => Some((name, fields)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let servers = take_tables("servers")
            .into_iter()
            .map(|(name, fields)| (name, ServerConfig::from_fields(&fields)))
            .collect();
        let languages = take_tables("languages")
            .into_iter()
            .map(|(id, fields)| {
                let language = LanguageConfig {
                    extensions: string_list(&fields, "extensions"),
                    filenames: string_list(&fields, "filenames"),
                };
                (id, language)
            })
            .collect();
        Config {
            servers,
            languages,
            sections: merged,
        }
    }

    /// One pass-through section (`model`, `agent`, …), if any layer sets it.
    pub fn section(&self, name: &str) -> Option<&Value> {
        self.sections.get(name)
    }

    /// The LSP language id of a file, by exact file name, then by extension.
    pub fn language_of_path(&self, path: &Path) -> Option<&str> {
        let file_name = path.file_name()?.to_str()?;
        let by_name = self
            .languages
            .iter()
            .find(|(_, language)| language.filenames.iter().any(|name| name == file_name));
        if let Some((id, _)) = by_name {
            return Some(id);
        }
        let extension = path.extension()?.to_str()?;
        let by_exact_extension = self
            .languages
            .iter()
            .find(|(_, language)| language.extensions.iter().any(|ext| ext == extension));
        let (id, _) = by_exact_extension.or_else(|| {
            self.languages.iter().find(|(_, language)| {
                language
                    .extensions
                    .iter()
                    .any(|ext| ext.eq_ignore_ascii_case(extension))
            })
        })?;
        Some(id)
    }

    /// Every enabled server that serves `language_id`, in name order, with its standing:
    /// selected (with the program `which` found), standby (an alternative whose primary is
    /// selected), or not found. An alternative is considered only when the server it stands
    /// in for is not selected (disabled, serving other languages, undefined, or not found).
    pub fn server_choices(
        &self,
        language_id: &str,
        which: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Vec<ServerChoice> {
        let candidates: BTreeMap<&str, (&ServerConfig, Option<PathBuf>)> = self
            .servers
            .iter()
            .filter(|(_, server)| {
                server.enabled && server.languages.iter().any(|id| id == language_id)
            })
            .map(|(name, server)| (name.as_str(), (server, which(&server.command))))
            .collect();
        // Whether `name` runs: found, and not standing in for a server that runs.
        // Bounded by the number of candidates, so a cycle of alternatives cannot recurse forever.
        fn is_selected(
            name: &str,
            candidates: &BTreeMap<&str, (&ServerConfig, Option<PathBuf>)>,
            depth: usize,
        ) -> bool {
            let Some((server, program)) = candidates.get(name) else {
                return false;
            };
            program.is_some() && !primary_is_selected(server, candidates, depth)
        }
        fn primary_is_selected(
            server: &ServerConfig,
            candidates: &BTreeMap<&str, (&ServerConfig, Option<PathBuf>)>,
            depth: usize,
        ) -> bool {
            match &server.alternative_to {
                Some(primary) if depth < candidates.len() => {
                    is_selected(primary, candidates, depth + 1)
                }
                _ => false,
            }
        }
        candidates
            .iter()
            .map(|(name, (server, program))| {
                let status = if primary_is_selected(server, &candidates, 0) {
                    ServerStatus::Standby
                } else {
                    match program {
                        Some(program) => ServerStatus::Selected(program.clone()),
                        None => ServerStatus::NotFound,
                    }
                };
                ServerChoice {
                    name: (*name).to_owned(),
                    command: server.command.clone(),
                    alternative_to: server.alternative_to.clone(),
                    install_hint: server.install_hint.clone(),
                    status,
                }
            })
            .collect()
    }

    /// The servers to run for `language_id` (the selected ones of [`Config::server_choices`]),
    /// in name order; the first is the language's primary server.
    pub fn servers_for_language(
        &self,
        language_id: &str,
        which: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Vec<ResolvedServer> {
        self.server_choices(language_id, which)
            .into_iter()
            .filter_map(|choice| match choice.status {
                ServerStatus::Selected(program) => {
                    let server = self.servers.get(&choice.name)?;
                    Some(server.resolve(choice.name, program))
                }
                ServerStatus::Standby | ServerStatus::NotFound => None,
            })
            .collect()
    }

    /// The servers to run for a set of languages, each server once.
    pub fn servers_for_languages(
        &self,
        language_ids: &BTreeSet<String>,
        which: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Vec<ResolvedServer> {
        let mut resolved: Vec<ResolvedServer> = Vec::new();
        for language_id in language_ids {
            for server in self.servers_for_language(language_id, which) {
                if !resolved.iter().any(|known| known.name == server.name) {
                    resolved.push(server);
                }
            }
        }
        resolved
    }
}

impl ServerConfig {
    fn from_fields(fields: &Table) -> ServerConfig {
        let string = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
        let table_as_json = |key: &str| fields.get(key).map(toml_to_json);
        ServerConfig {
            command: string("command").unwrap_or_default(),
            args: string_list(fields, "args"),
            languages: string_list(fields, "languages"),
            root_markers: string_list(fields, "root_markers"),
            settings: table_as_json("settings")
                .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new())),
            initialization_options: table_as_json("initialization_options"),
            env: fields
                .get("env")
                .and_then(Value::as_table)
                .map(|env| {
                    env.iter()
                        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            enabled: fields
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            alternative_to: string("alternative_to").filter(|name| !name.is_empty()),
            install_hint: string("install_hint").filter(|hint| !hint.is_empty()),
        }
    }

    fn resolve(&self, name: String, program: PathBuf) -> ResolvedServer {
        ResolvedServer {
            name,
            program,
            args: self.args.clone(),
            env: self.env.clone(),
            languages: self.languages.clone(),
            settings: self.settings.clone(),
            initialization_options: self.initialization_options.clone(),
            root_markers: self.root_markers.clone(),
        }
    }

    /// The answer to one `workspace/configuration` item: see [`settings_section`].
    pub fn settings_section(&self, section: Option<&str>) -> serde_json::Value {
        settings_section(&self.settings, section)
    }
}

impl ResolvedServer {
    /// The answer to one `workspace/configuration` item: see [`settings_section`].
    pub fn settings_section(&self, section: Option<&str>) -> serde_json::Value {
        settings_section(&self.settings, section)
    }
}

/// Looks `section` up in `settings`: the whole settings when `section` is `None` or empty;
/// otherwise the value at the dotted path, where a key may itself contain dots
/// (`"python.analysis"` finds `{"python": {"analysis": …}}` and `{"python.analysis": …}`);
/// `null` when absent.
pub fn settings_section(settings: &serde_json::Value, section: Option<&str>) -> serde_json::Value {
    fn lookup<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
        let object = value.as_object()?;
        if let Some(found) = object.get(path) {
            return Some(found);
        }
        path.match_indices('.').find_map(|(dot, _)| {
            let child = object.get(&path[..dot])?;
            lookup(child, &path[dot + 1..])
        })
    }
    match section.filter(|section| !section.is_empty()) {
        None => settings.clone(),
        Some(path) => lookup(settings, path)
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    }
}

fn apply_layer(
    merged: &mut Table,
    layer: Table,
    source: &ConfigSource,
    warnings: &mut Vec<ConfigWarning>,
) {
    let cleaned = schema::clean_layer(layer, merged, source, warnings);
    deep_merge(merged, cleaned);
}

/// Merges `overlay` into `base`: tables merge key by key, anything else replaces.
fn deep_merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_table)), Value::Table(overlay_table)) => {
                deep_merge(base_table, overlay_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Parses a TOML document; a syntax error becomes a warning kind with its line and column.
fn parse_toml(text: &str) -> Result<Table, WarningKind> {
    text.parse::<Table>().map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start).min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        WarningKind::BrokenToml {
            line,
            column,
            message: error.message().trim().to_owned(),
        }
    })
}

fn string_list(fields: &Table, key: &str) -> Vec<String> {
    fields
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// TOML to JSON; datetimes become their TOML text, non-finite floats become `null`.
fn toml_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::String(text) => serde_json::Value::String(text.clone()),
        Value::Integer(number) => serde_json::Value::from(*number),
        Value::Float(number) => serde_json::Number::from_f64(*number)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Boolean(flag) => serde_json::Value::Bool(*flag),
        Value::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(toml_to_json).collect()),
        Value::Table(table) => serde_json::Value::Object(
            table
                .iter()
                .map(|(key, value)| (key.clone(), toml_to_json(value)))
                .collect(),
        ),
    }
}

/// JSON to TOML. `null` means "not set": it yields `None`, and is dropped from objects and
/// arrays. Integers beyond `i64` become floats.
fn json_to_toml(value: &serde_json::Value) -> Option<Value> {
    Some(match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(flag) => Value::Boolean(*flag),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(integer) => Value::Integer(integer),
            None => Value::Float(number.as_f64()?),
        },
        serde_json::Value::String(text) => Value::String(text.clone()),
        serde_json::Value::Array(items) => {
            Value::Array(items.iter().filter_map(json_to_toml).collect())
        }
        serde_json::Value::Object(object) => Value::Table(
            object
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), json_to_toml(value)?)))
                .collect(),
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
