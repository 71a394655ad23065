//! The `tack` command line: the binary edge, where errors become `anyhow` reports.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tack", version, about = "An open coding-agent harness shipped as a language server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Language Server Protocol (stdio by default).
    Lsp {
        /// Listen on a loopback TCP address (127.0.0.1:PORT, [::1]:PORT) or a Unix socket path.
        #[arg(long)]
        listen: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tack::logging::init_stderr();
    match cli.command {
        Command::Lsp { listen: _ } => Ok(()),
    }
}
