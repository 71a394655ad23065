//! Logging: `tracing` to stderr and to a log file, never to stdout (stdout carries the LSP
//! protocol in `tack lsp`).
//!
//! The filter is `TACK_LOG` (default `info`). The file is `TACK_LOG_FILE` when set (empty:
//! no file), else `$XDG_STATE_HOME/tack/tack.log` (`~/.local/state/tack/tack.log`). A file
//! over [`MAX_LOG_BYTES`] is moved to `tack.log.1` at start, so the log stays bounded.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::Mutex;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

/// The log file path, or `None` when logging to a file is turned off or no home is known.
pub fn log_file_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TACK_LOG_FILE") {
        return (!path.is_empty()).then(|| PathBuf::from(path));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    Some(state.join("tack").join("tack.log"))
}

fn open_log_file(path: &PathBuf) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
        let mut rotated = path.clone().into_os_string();
        rotated.push(".1");
        std::fs::rename(path, rotated)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the subscriber: stderr always, plus the log file when it can be opened.
pub fn init() {
    let filter = || EnvFilter::try_from_env("TACK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter());
    let mut file_problem = None;
    let file = log_file_path().and_then(|path| match open_log_file(&path) {
        Ok(file) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(Mutex::new(file))
                .with_ansi(false)
                .with_filter(filter()),
        ),
        Err(error) => {
            file_problem = Some(format!(
                "cannot write the log file {}: {error}",
                path.display()
            ));
            None
        }
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    if let Some(problem) = file_problem {
        tracing::warn!("{problem}; logging to stderr only");
    }
}
