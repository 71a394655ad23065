//! The `tack` command line: the binary edge, where errors become `anyhow` reports.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tack",
    version,
    about = "An open, provider-agnostic coding-agent harness, shipped as a language server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Language Server Protocol to an editor (stdio unless --listen is given).
    Lsp {
        /// Serve on a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT) or a Unix
        /// socket (unix:/path). Other addresses are refused; use an SSH tunnel for remote use.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Accepted for editors that pass it to every language server; stdio is the default.
        #[arg(long, hide = true)]
        stdio: bool,
    },
    /// Show which language servers were found for which languages, the configuration files
    /// read, and any problems.
    Doctor {
        /// The workspace folder to check (default: the current folder).
        #[arg(value_name = "FOLDER")]
        folder: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tack::logging::init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("tack: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Doctor { folder } = &cli.command {
        let folder = match folder {
            Some(folder) => folder.clone(),
            None => std::env::current_dir().context("cannot read the current folder")?,
        };
        let sources = tack::config::ConfigSources::from_env(Some(folder.clone()), None);
        let report = tack::doctor::report(&folder, &sources);
        write_stdout(&report.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
    // One editor session is one event loop: a single thread avoids a cross-thread wake-up
    // for every message. A listener serving several editors uses every core.
    let mut builder = match &cli.command {
        Command::Lsp { listen: None, .. } => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    match cli.command {
        Command::Lsp { listen: None, .. } => {
            let end = runtime.block_on(tack::proxy::serve_stdio());
            // Background tasks (child waiters, stdin reader) must not keep the process alive.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            Ok(match end {
                tack::proxy::SessionEnd::Clean => ExitCode::SUCCESS,
                tack::proxy::SessionEnd::Abrupt => ExitCode::from(1),
            })
        }
        Command::Lsp {
            listen: Some(address),
            ..
        } => {
            let address = tack::proxy::listen::parse_listen_address(&address)?;
            runtime.block_on(tack::proxy::listen::serve_listener(address))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// Writes a command's report to stdout (never used by `tack lsp`, whose stdout is the protocol).
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}
