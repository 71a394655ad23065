//! The session ledger: every session's events, appended to one JSONL file per session in
//! tack's data folder (`<data dir>/ledger/<session>.jsonl`), in the open, versioned format
//! documented in `docs/session-log.md`. It is the user's own record: never pruned by tack.
//!
//! - `record`: one line — the schema version, type, session, sequence number, UTC timestamp
//!   and turn, then the event's own fields, then what the ledger adds (`detail`).
//! - `writer`: [`LedgerWriter`], a consumer of [`AgentEvent`](crate::agent::AgentEvent)s next
//!   to the front end's own (`tack run`, the editor); one `write` per line, secrets always
//!   redacted, prompts and file content redactable by `[ledger]` settings.
//! - `reader`: the files back, a torn last line skipped with a warning (invariant 8).
//! - `summary`: one pass over a file gives a session's figures; `stats`, `survival`,
//!   `export` (`otlp`, `activitywatch`) and `cli` build the commands on it.
//! - `front_end`: [`SessionLedger`], what `tack run` and the editor hold: the current
//!   session's writer (and the previous one's until it ended).
//! - `git_state`: HEAD and dirty state of the workspace's repository at session start.

pub mod activitywatch;
pub mod cli;
pub mod export;
mod front_end;
mod git_state;
pub mod otlp;
pub mod reader;
pub mod record;
pub mod stats;
pub mod summary;
pub mod survival;
pub mod time;
pub mod writer;

use std::path::{Path, PathBuf};

pub use front_end::{SessionLedger, recording_restore, secrets_redactor};
pub use git_state::git_state;
pub use reader::{LedgerFile, read_lines, session_files};
pub use record::{Line, SCHEMA_VERSION, line_hash};
pub use writer::LedgerWriter;

/// Everything that can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid [ledger] setting {key}: {message}")]
    Setting { key: String, message: String },
    #[error("no data directory: neither XDG_DATA_HOME nor HOME is set")]
    NoDataDir,
    #[error("no session matches {0:?}; `tack sessions` lists them")]
    UnknownSession(String),
    #[error("{0:?} matches several sessions ({1}); give more of the id")]
    AmbiguousSession(String, String),
    #[error("{0}")]
    Usage(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}")]
    Export(String),
}

impl LedgerError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> LedgerError {
        LedgerError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The `[ledger]` section: where sessions are written and what of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    /// `false`: no ledger is written at all.
    pub enabled: bool,
    /// The folder of the session files (default `<data dir>/ledger`).
    pub dir: PathBuf,
    /// Record the user's prompts and the model's text (else a length and hash stand in).
    pub record_prompts: bool,
    /// Record file content: diffs, tool arguments and results, approval summaries.
    pub record_file_content: bool,
}

impl LedgerSettings {
    /// The defaults under `data_dir`: enabled, everything recorded.
    pub fn defaults(data_dir: &Path) -> LedgerSettings {
        LedgerSettings {
            enabled: true,
            dir: data_dir.join("ledger"),
            record_prompts: true,
            record_file_content: true,
        }
    }

    /// The settings from the `[ledger]` table (`None`: the defaults). A key of the wrong type
    /// or an unknown key is an error naming it: a mistyped `record_prompts = "no"` must not
    /// silently record prompts.
    pub fn from_config(
        section: Option<&toml::Value>,
        data_dir: &Path,
    ) -> Result<LedgerSettings, LedgerError> {
        let mut settings = LedgerSettings::defaults(data_dir);
        let Some(section) = section else {
            return Ok(settings);
        };
        let table = section.as_table().ok_or_else(|| LedgerError::Setting {
            key: "ledger".to_owned(),
            message: "must be a table".to_owned(),
        })?;
        for (key, value) in table {
            let wrong = |expected: &str| LedgerError::Setting {
                key: key.clone(),
                message: format!("expected {expected}, found {value}"),
            };
            match key.as_str() {
                "enabled" => {
                    settings.enabled = value.as_bool().ok_or_else(|| wrong("a boolean"))?
                }
                "record_prompts" => {
                    settings.record_prompts = value.as_bool().ok_or_else(|| wrong("a boolean"))?
                }
                "record_file_content" => {
                    settings.record_file_content =
                        value.as_bool().ok_or_else(|| wrong("a boolean"))?
                }
                "dir" => {
                    let dir = value.as_str().ok_or_else(|| wrong("a string"))?;
                    settings.dir = expand_home(dir);
                }
                _ => {
                    return Err(LedgerError::Setting {
                        key: key.clone(),
                        message: "unknown key; the keys are enabled, dir, record_prompts, \
                                  record_file_content"
                            .to_owned(),
                    });
                }
            }
        }
        Ok(settings)
    }

    /// The settings for this machine and configuration: `[ledger]` over the defaults in
    /// tack's data folder.
    pub fn load(config: &crate::config::Config) -> Result<LedgerSettings, LedgerError> {
        let data_dir = crate::snapshots::default_data_dir().map_err(|_| LedgerError::NoDataDir)?;
        LedgerSettings::from_config(config.section("ledger"), &data_dir)
    }
}

/// `~/x` → `$HOME/x`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Milliseconds since the Unix epoch, UTC (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
