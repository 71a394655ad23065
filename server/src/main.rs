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
enum AuthAction {
    /// `tack auth login anthropic`, then paste the key.
    Login { provider: String },
}

#[derive(Subcommand)]
enum SnapshotsAction {
    List,
    Show { n: u32 },
    Diff { n: u32 },
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
    /// Run the agent on a folder: `tack run "fix the failing test"`.
    Run {
        /// What to do.
        task: String,
        /// The folder to work in (default: the current folder).
        #[arg(long, short = 'C', value_name = "FOLDER", default_value = ".")]
        folder: std::path::PathBuf,
        /// The model, as provider/model (default: `model` from the configuration, else a
        /// local server found running).
        #[arg(long)]
        model: Option<String>,
        /// Allow every tool call the permissions would ask about (explicit denies stay).
        #[arg(long)]
        yes: bool,
        /// Print the agent's events as JSON lines.
        #[arg(long)]
        json: bool,
        /// Model requests at most.
        #[arg(long, value_name = "N")]
        max_turns: Option<u32>,
    },
    /// List configured and reachable models, with context size and price.
    Models {
        /// Update prices and limits from models.dev first (a network request).
        #[arg(long)]
        refresh: bool,
    },
    /// Store an API key for a provider (read from standard input; kept 0600 in tack's data
    /// folder, never logged).
    Auth {
        #[command(subcommand)]
        action: AuthAction,
    },
    /// The agent's changes in this folder's latest session: list, show N, diff N.
    Snapshots {
        #[command(subcommand)]
        action: Option<SnapshotsAction>,
    },
    /// Undo the last agent change (or change N and every later one) in this folder.
    Undo { n: Option<u32> },
    /// Redo the last undone agent change in this folder.
    Redo,
    /// Show which language servers were found for which languages, the configuration files
    /// read, and any problems.
    Doctor {
        /// The workspace folder to check (default: the current folder).
        #[arg(value_name = "FOLDER")]
        folder: Option<std::path::PathBuf>,
    },
    /// The sessions in the ledger: when, where, model, turns, tokens, cost and outcome.
    Sessions {
        /// How many of the newest to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// List every session.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Replay one session: prompts, context sent, model calls, tool calls, approvals, edits
    /// with diffs, undos (`last` for the newest; a unique prefix of an id will do).
    Log { id: String },
    /// Tokens, cost, time, tool calls and approval rates from the ledger.
    Stats {
        /// Group by day, model, session or tool.
        #[arg(long, value_name = "GROUP")]
        by: Option<String>,
        /// Only what happened since a date (2025-01-31) or a span ago (7d, 12h).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Which agent lines survive in this repository: still in HEAD after N days, revised or
    /// deleted within 14 days, cost per durable line; the same for human lines.
    Survival {
        /// Judge "still in HEAD" for lines that landed at least this many days ago.
        #[arg(long, default_value_t = 30)]
        days: u64,
        #[arg(long)]
        json: bool,
    },
    /// The ledger in other shapes: jsonl (raw), csv (a row per model call), ccusage (its
    /// daily JSON), otlp (traces and metrics to OTEL_EXPORTER_OTLP_ENDPOINT), activitywatch
    /// (heartbeats to an ActivityWatch server).
    Export {
        #[arg(long, value_name = "FORMAT")]
        format: String,
        /// Only what happened since a date (2025-01-31) or a span ago (7d, 12h).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only this session (an id, a unique prefix of one, or `last`).
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// The ActivityWatch server.
        #[arg(long, value_name = "URL", default_value = "http://localhost:5600")]
        activitywatch_url: String,
        /// Heartbeats closer than this many seconds merge into one ActivityWatch event.
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        pulsetime: u64,
    },
    /// Print the context the model would get for a request at FILE[:LINE[-LAST]]: each item
    /// with its reason and token estimate.
    Context {
        /// The place: a file, `file:line` or `file:first-last` (lines count from 1).
        target: String,
        /// The workspace folder (default: the current folder).
        #[arg(long, short = 'C', value_name = "FOLDER", default_value = ".")]
        folder: std::path::PathBuf,
        /// fix, fix-file, explain, refactor, ask or instruction.
        #[arg(long)]
        intent: Option<String>,
        /// The request text (default: a placeholder).
        #[arg(long)]
        prompt: Option<String>,
        /// Tokens for the whole context (default: `[context] budget`).
        #[arg(long, value_name = "TOKENS")]
        budget: Option<usize>,
        /// One JSON object per item (kind, uri, range, reason, tokens, content_hash, text).
        #[arg(long)]
        json: bool,
        /// The text exactly as the model gets it (no headings of tack's).
        #[arg(long, conflicts_with = "json")]
        raw: bool,
    },
    /// Serve tack's language intelligence (diagnostics, navigation, snapshot-backed edits
    /// with undo/redo) over MCP on stdio, for Claude Code, Codex, OpenCode or any MCP client.
    Mcp {
        /// The folder whose language servers to run (default: the current folder).
        #[arg(long, short = 'C', value_name = "FOLDER", default_value = ".")]
        folder: std::path::PathBuf,
    },
    /// Serve the Agent Client Protocol on stdio: tack as an external agent for Zed's agent
    /// panel (`"agent_servers": {"tack": {"command": "tack", "args": ["acp"]}}`).
    Acp,
    /// Print Helix `languages.toml` entries that put tack in front of each language's servers.
    HelixConfig {
        /// The command Helix starts (default: this tack binary's path).
        #[arg(long, value_name = "PATH")]
        command: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tack::logging::init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            tracing::debug!("{error:#}");
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
        // Providers: configured, key present (never the key), local servers reachable.
        // Remote providers are not contacted.
        let registry = providers_registry()?;
        let client = tack::providers::ModelClient::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not start the async runtime")?;
        let local = runtime.block_on(tack::providers::discovery::discover(
            &client,
            &tack::providers::discovery::probe_targets(registry.catalog()),
        ));
        let statuses = tack::providers::cli::provider_statuses(&registry, &local);
        // MCP servers are started to be checked, then closed.
        let loaded = tack::config::Config::load(&sources);
        let mcp = runtime.block_on(tack::mcp::client::doctor_report(&loaded.config, &folder));
        write_stdout(&format!(
            "{report}\n{}\n{mcp}",
            tack::providers::cli::render_doctor(&statuses)
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::HelixConfig { command } = &cli.command {
        let folder = std::env::current_dir().context("cannot read the current folder")?;
        let loaded =
            tack::config::Config::load(&tack::config::ConfigSources::from_env(Some(folder), None));
        for warning in &loaded.warnings {
            eprintln!("tack: {warning}");
        }
        let command = match command {
            Some(command) => command.clone(),
            None => std::env::current_exe()
                .map(|path| path.display().to_string())
                .unwrap_or_else(|_| "tack".to_owned()),
        };
        write_stdout(&tack::helix::languages_toml(&loaded.config, &command))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(result) = run_ledger_command(&cli.command) {
        write_stdout(&result?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Context {
        target,
        folder,
        intent,
        prompt,
        budget,
        json,
        raw,
    } = &cli.command
    {
        let options = tack::context::cli::ContextOptions {
            target: target.clone(),
            folder: folder.clone(),
            intent: intent.clone(),
            prompt: prompt.clone(),
            budget: *budget,
            json: *json,
            raw: *raw,
        };
        write_stdout(&tack::context::cli::run(&options)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(result) = run_snapshot_command(&cli.command) {
        write_stdout(&result?)?;
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
        Command::Run {
            task,
            folder,
            model,
            yes,
            json,
            max_turns,
        } => {
            let options = tack::run::RunOptions {
                task,
                folder,
                model,
                yes,
                json,
                max_turns,
            };
            let code = runtime.block_on(tack::run::run(options))?;
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            Ok(ExitCode::from(code))
        }
        Command::Mcp { folder } => {
            runtime.block_on(tack::mcp::server::serve_stdio(&folder))?;
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            Ok(ExitCode::SUCCESS)
        }
        Command::Acp => {
            runtime.block_on(tack::acp::serve_stdio())?;
            // Language servers and stdin reader must not keep the process alive.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { refresh } => {
            let registry = providers_registry()?;
            let client = tack::providers::ModelClient::default();
            let text = runtime.block_on(tack::providers::cli::models_command(
                &registry, &client, refresh,
            ))?;
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Auth {
            action: AuthAction::Login { provider },
        } => {
            let registry = providers_registry()?;
            eprint!("API key for {provider} (input is read from standard input): ");
            let key = read_secret_line().context("cannot read the key")?;
            let text = tack::providers::cli::auth_login(&registry, &provider, key.trim())?;
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            format,
            since,
            session,
            activitywatch_url,
            pulsetime,
        } => {
            let settings = ledger_settings()?;
            let text = runtime.block_on(tack::ledger::cli::export(
                &settings,
                &format,
                since.as_deref(),
                session.as_deref(),
                &activitywatch_url,
                pulsetime,
            ))?;
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { .. }
        | Command::Context { .. }
        | Command::HelixConfig { .. }
        | Command::Snapshots { .. }
        | Command::Undo { .. }
        | Command::Redo
        | Command::Sessions { .. }
        | Command::Log { .. }
        | Command::Stats { .. }
        | Command::Survival { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// The provider registry from this folder's configuration.
fn providers_registry() -> anyhow::Result<tack::providers::registry::Registry> {
    let folder = std::env::current_dir().context("cannot read the current folder")?;
    let loaded =
        tack::config::Config::load(&tack::config::ConfigSources::from_env(Some(folder), None));
    for warning in &loaded.warnings {
        eprintln!("tack: {warning}");
    }
    let (config, warnings) = tack::providers::ProvidersConfig::from_toml(
        loaded.config.section("model").and_then(toml::Value::as_str),
        loaded
            .config
            .section("providers")
            .and_then(toml::Value::as_table),
    );
    let (registry, more) = tack::providers::registry::Registry::for_user(config);
    for warning in warnings.iter().chain(&more) {
        eprintln!("tack: {warning}");
    }
    Ok(registry)
}

/// `tack snapshots`, `tack undo`, `tack redo` on the current folder; `None` for other commands.
fn run_snapshot_command(command: &Command) -> Option<anyhow::Result<String>> {
    let open = || -> anyhow::Result<tack::snapshots::SnapshotStore> {
        let folder = std::env::current_dir().context("cannot read the current folder")?;
        let data = tack::snapshots::default_data_dir()?;
        Ok(tack::snapshots::SnapshotStore::open(&data, &folder)?)
    };
    use tack::snapshots::cli;
    let result = match command {
        Command::Snapshots { action } => open().and_then(|store| {
            Ok(match action {
                None | Some(SnapshotsAction::List) => cli::list(&store)?,
                Some(SnapshotsAction::Show { n }) => cli::show(&store, *n)?,
                Some(SnapshotsAction::Diff { n }) => cli::diff(&store, *n)?,
            })
        }),
        Command::Undo { n } => open().and_then(|store| {
            use tack::agent::RestoreDirection::Undo;
            Ok(tack::ledger::recording_restore(&store, Undo, || {
                cli::undo(&store, *n)
            })?)
        }),
        Command::Redo => open().and_then(|store| {
            use tack::agent::RestoreDirection::Redo;
            Ok(tack::ledger::recording_restore(&store, Redo, || {
                cli::redo(&store)
            })?)
        }),
        _ => return None,
    };
    Some(result)
}

/// The ledger settings from this folder's configuration.
fn ledger_settings() -> anyhow::Result<tack::ledger::LedgerSettings> {
    let folder = std::env::current_dir().context("cannot read the current folder")?;
    let loaded =
        tack::config::Config::load(&tack::config::ConfigSources::from_env(Some(folder), None));
    Ok(tack::ledger::LedgerSettings::load(&loaded.config)?)
}

/// `tack sessions`, `tack log`, `tack stats`; `None` for other commands.
fn run_ledger_command(command: &Command) -> Option<anyhow::Result<String>> {
    use tack::ledger::cli;
    let result = match command {
        Command::Sessions { limit, all, json } => {
            ledger_settings().and_then(|s| Ok(cli::sessions(&s, (!all).then_some(*limit), *json)?))
        }
        Command::Log { id } => ledger_settings().and_then(|s| Ok(cli::log(&s, id)?)),
        Command::Stats { by, since, json } => ledger_settings()
            .and_then(|s| Ok(cli::stats(&s, by.as_deref(), since.as_deref(), *json)?)),
        Command::Survival { days, json } => ledger_settings().and_then(|s| {
            let folder = std::env::current_dir().context("cannot read the current folder")?;
            Ok(cli::survival(&s, &folder, *days, *json)?)
        }),
        _ => return None,
    };
    Some(result)
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

/// One line from standard input; on a terminal, without echoing it (an API key must not stay
/// on the screen or in a terminal's scrollback).
fn read_secret_line() -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    }
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(saved) = &saved {
        tcsetattr(&stdin, OptionalActions::Now, saved)?;
        eprintln!();
    }
    read.map(|_| line)
}
