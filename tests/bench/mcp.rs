//! The MCP benchmark: what tack's MCP layers cost, each next to a baseline measured in the
//! same run on the same machine.
//!
//! - Client, start: the `@modelcontextprotocol/server-everything` server started through
//!   tack's `McpClients` (spawn, initialize, tools/list, tools made agent tools), against a
//!   bare rmcp client doing the same spawn, initialize and tools/list.
//! - Client, call: its `echo` tool called through the agent tool tack makes of it, against the
//!   same call on the bare rmcp client.
//! - Server: `hover` on a C file through `tack mcp` (MCP over stdio, tack, clangd), against
//!   the same hover sent to tack's headless language session in process (no MCP at all).
//!
//! Needs `tests/e2e/setup.sh` (the npm MCP servers, clangd). Run:
//! `cargo bench --bench mcp -- [--calls N] [--starts N]`.

// A benchmark program: its report goes to stdout.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tack::agent::{NoFeedback, ToolSettings, Workspace};
use tack::mcp::{McpClients, McpConfig};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp bench failed: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let (mut calls, mut starts) = (200usize, 10usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> Result<usize> {
            Ok(args
                .next()
                .ok_or_else(|| anyhow!("{arg} needs a value"))?
                .parse()?)
        };
        match arg.as_str() {
            "--calls" => calls = number()?,
            "--starts" => starts = number()?,
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            other => bail!("unknown argument {other}; usage: [--calls N] [--starts N]"),
        }
    }
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        client_side(&find_tool("mcp-server-everything")?, calls, starts).await?;
        server_side(&find_tool("clangd")?, calls / 2).await
    })
}

/// A tool from the e2e tools folder, else from `PATH`.
fn find_tool(name: &str) -> Result<PathBuf> {
    let pinned = std::env::var_os("E2E_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/tack-tools")))
        .map(|dir| dir.join("bin").join(name));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    pinned
        .into_iter()
        .chain(on_path)
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{name} is not installed: run tests/e2e/setup.sh"))
}

struct Figures {
    median: Duration,
    p90: Duration,
}

fn figures(mut samples: Vec<Duration>) -> Figures {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Figures {
        median: at(0.5),
        p90: at(0.9),
    }
}

fn line(what: &str, tack: &Figures, baseline: &Figures, unit_ms: bool) {
    let show = |d: Duration| {
        if unit_ms {
            format!("{:8.2} ms", d.as_secs_f64() * 1000.0)
        } else {
            format!("{:8.1} µs", d.as_secs_f64() * 1e6)
        }
    };
    println!(
        "{what:<34} tack median {} p90 {} | baseline median {} p90 {} | overhead {:+.2} ms",
        show(tack.median),
        show(tack.p90),
        show(baseline.median),
        show(baseline.p90),
        (tack.median.as_secs_f64() - baseline.median.as_secs_f64()) * 1000.0
    );
}

async fn bare_client(server: &Path) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ()>> {
    let transport = TokioChildProcess::builder(tokio::process::Command::new(server))
        .stderr(std::process::Stdio::null())
        .spawn()?
        .0;
    Ok(().serve(transport).await?)
}

async fn client_side(server: &Path, calls: usize, starts: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let section: toml::Table =
        format!("[mcp.ev]\ncommand = {:?}\n", server.display().to_string()).parse()?;

    let mut tack_starts = Vec::new();
    let mut bare_starts = Vec::new();
    // Alternating which goes first, so neither always starts on a machine just freed.
    for round in 0..starts.max(1) {
        for tack_turn in [round % 2 == 0, round % 2 == 1] {
            let started = Instant::now();
            if tack_turn {
                let clients = McpClients::new(McpConfig::load(section.get("mcp"), dir.path()));
                let start = clients.start().await;
                if start.tools.is_empty() {
                    bail!("server-everything did not start: {:?}", start.problems());
                }
                tack_starts.push(started.elapsed());
                clients.shutdown().await;
            } else {
                let client = bare_client(server).await?;
                client.list_all_tools().await?;
                bare_starts.push(started.elapsed());
                client.cancel().await?;
            }
        }
    }
    line(
        "client: server start + tools/list",
        &figures(tack_starts),
        &figures(bare_starts),
        true,
    );

    let clients = McpClients::new(McpConfig::load(section.get("mcp"), dir.path()));
    let start = clients.start().await;
    let echo = start
        .tools
        .iter()
        .find(|tool| tool.name() == "ev__echo")
        .context("no ev__echo tool")?
        .clone();
    let context = tack::agent::tools::ToolContext {
        workspace: Workspace::new(dir.path(), Arc::new(NoFeedback))?,
        settings: ToolSettings::default(),
    };
    let bare = bare_client(server).await?;
    let args = json!({ "message": "benchmark" });
    let mut through_tack = Vec::with_capacity(calls);
    let mut direct = Vec::with_capacity(calls);
    for _ in 0..calls.max(1) {
        let started = Instant::now();
        echo.run(args.clone(), context.clone())
            .await
            .map_err(|e| anyhow!("{e}"))?;
        through_tack.push(started.elapsed());
        let started = Instant::now();
        let params = CallToolRequestParams::new("echo")
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        bare.call_tool(params).await?;
        direct.push(started.elapsed());
    }
    line(
        "client: echo tool call",
        &figures(through_tack),
        &figures(direct),
        false,
    );
    clients.shutdown().await;
    bare.cancel().await?;
    Ok(())
}

async fn server_side(clangd: &Path, calls: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().canonicalize()?;
    std::fs::write(
        root.join("tack.toml"),
        format!(
            "[servers.clangd]\ncommand = {:?}\n",
            clangd.display().to_string()
        ),
    )?;
    let source = "int add(int a, int b) { return a + b; }\nint main(void) { return add(1, 2); }\n";
    let main_c = root.join("main.c");
    std::fs::write(&main_c, source)?;
    let home = root.join(".home");

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tack"));
    command
        .args(["mcp", "-C"])
        .arg(&root)
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_DATA_HOME", &home)
        .env("XDG_STATE_HOME", &home)
        .env("TACK_LOG", "warn");
    let transport = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()?
        .0;
    let client = ().serve(transport).await?;
    let hover_args = json!({ "path": "main.c", "line": 2, "symbol": "add" });
    let hover = || {
        CallToolRequestParams::new("hover")
            .with_arguments(hover_args.as_object().cloned().unwrap_or_default())
    };
    // The first answer waits for clangd to index the file.
    client.call_tool(hover()).await?;
    let mut through_mcp = Vec::with_capacity(calls);
    for _ in 0..calls.max(1) {
        let started = Instant::now();
        let result = client.call_tool(hover()).await?;
        if result.is_error == Some(true) {
            bail!("hover through tack mcp failed: {result:?}");
        }
        through_mcp.push(started.elapsed());
    }
    client.cancel().await?;

    let session = tack::headless::LanguageSession::start(&root).await?;
    session.set_text(&main_c, source)?;
    let params: Value = json!({
        "textDocument": { "uri": tack::headless::file_uri(&main_c)? },
        "position": { "line": 1, "character": 24 },
    });
    session
        .request("textDocument/hover", params.clone())
        .await?;
    let mut in_process = Vec::with_capacity(calls);
    for _ in 0..calls.max(1) {
        let started = Instant::now();
        session
            .request("textDocument/hover", params.clone())
            .await?;
        in_process.push(started.elapsed());
    }
    session.shutdown().await;
    line(
        "server: hover (tack mcp vs in-process)",
        &figures(through_mcp),
        &figures(in_process),
        true,
    );
    Ok(())
}
