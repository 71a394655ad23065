//! Logging setup: `tracing` to stderr (never stdout, which carries the LSP protocol).

use tracing_subscriber::EnvFilter;

/// Installs a subscriber that writes to stderr, filtered by `TACK_LOG` (default `info`).
pub fn init_stderr() {
    let filter = EnvFilter::try_from_env("TACK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
