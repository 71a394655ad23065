//! The agent benchmark: the release `tack run --yes --json` binary on a scripted task (read,
//! an edit that breaks the file, an edit that fixes it, a final text) against the fake model
//! server and the `fake-lsp` example, measuring what the harness itself costs.
//!
//! Figures, printed next to the targets (never asserted):
//! - harness time per turn: from the moment a model reply's last byte reached tack to the
//!   moment tack's next request had fully arrived, minus the time tack spent in tools in that
//!   window (from the `tool_call_begun`/`tool_call_ended` JSON lines, stamped as read);
//! - start → first model request: process spawn to the first request fully received;
//! - peak RSS of tack: `VmHWM` from `/proc/<pid>/status`, sampled while it runs;
//! - the first request's size, split into system / tools / messages, with tokens ≈ bytes / 4.
//!
//! Timing needs to know when a reply ended and a request arrived, so tack talks to a small
//! relay in front of the fake model server that stamps both on the wire.
//!
//! Run: `cargo bench --bench agent -- [--repetitions N]`.

// A benchmark program: its report goes to stdout.
#![allow(clippy::print_stdout)]

#[path = "../support/fake_model.rs"]
mod fake_model;

use anyhow::{Context, Result, anyhow, bail};
use fake_model::{Answer, FakeModelServer, FakeToolCall, openai_chat};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HARNESS_TARGET_MS: f64 = 5.0;
const FIRST_REQUEST_TARGET_MS: f64 = 150.0;
const PEAK_RSS_TARGET_MB: f64 = 40.0;
const FIRST_REQUEST_TARGET_TOKENS: usize = 3000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agent bench failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut repetitions = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repetitions" => {
                repetitions = args
                    .next()
                    .ok_or_else(|| anyhow!("--repetitions needs a value"))?
                    .parse()?;
            }
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            other => bail!("unknown argument {other}; usage: [--repetitions N]"),
        }
    }
    let tack = PathBuf::from(env!("CARGO_BIN_EXE_tack"));
    let fake_lsp = find_fake_lsp(&tack)?;
    println!("tack: {}", tack.display());
    println!("fake-lsp: {}", fake_lsp.display());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut samples = Vec::new();
    for repetition in 0..repetitions.max(1) {
        let sample = runtime.block_on(one_run(&tack, &fake_lsp))?;
        println!(
            "run {}: {} requests, start→first request {:.1} ms, peak RSS {:.1} MB, \
             harness per turn {}",
            repetition + 1,
            sample.requests,
            ms(sample.first_request),
            sample.peak_rss_kb as f64 / 1024.0,
            sample
                .harness_per_turn
                .iter()
                .map(|d| format!("{:.2} ms", ms(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        samples.push(sample);
    }
    report(&samples);
    Ok(())
}

/// What one `tack run` measured.
struct Sample {
    requests: usize,
    first_request: Duration,
    /// Per turn after the first: gap between reply end and next request, minus tool time.
    harness_per_turn: Vec<Duration>,
    /// The same gaps with tool time left in.
    gap_per_turn: Vec<Duration>,
    peak_rss_kb: u64,
    first_request_body: Value,
    first_request_bytes: usize,
}

fn report(samples: &[Sample]) {
    let harness: Vec<Duration> = samples
        .iter()
        .flat_map(|s| s.harness_per_turn.iter().copied())
        .collect();
    let gaps: Vec<Duration> = samples
        .iter()
        .flat_map(|s| s.gap_per_turn.iter().copied())
        .collect();
    let firsts: Vec<Duration> = samples.iter().map(|s| s.first_request).collect();
    let peak = samples.iter().map(|s| s.peak_rss_kb).max().unwrap_or(0) as f64 / 1024.0;
    println!();
    println!("== agent bench ({} runs) ==", samples.len());
    println!(
        "harness time per turn (median, tools excluded): {:>8.2} ms   target <= {HARNESS_TARGET_MS} ms   [max {:.2} ms over {} turns]",
        ms(median(&harness)),
        ms(harness.iter().max().copied().unwrap_or_default()),
        harness.len()
    );
    println!(
        "  reply end -> next request, tools included (median): {:.2} ms",
        ms(median(&gaps))
    );
    println!(
        "start -> first model request (median):          {:>8.1} ms   target <= {FIRST_REQUEST_TARGET_MS} ms   [min {:.1}, max {:.1}]",
        ms(median(&firsts)),
        ms(firsts.iter().min().copied().unwrap_or_default()),
        ms(firsts.iter().max().copied().unwrap_or_default())
    );
    println!(
        "peak RSS of tack (max VmHWM sampled):           {peak:>8.1} MB   target <= {PEAK_RSS_TARGET_MB} MB"
    );
    if let Some(sample) = samples.first() {
        let body = &sample.first_request_body;
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let system = messages.first().map(json_len).unwrap_or(0);
        let rest = messages.iter().skip(1).map(json_len).sum::<usize>();
        let tools = body.get("tools").map(json_len).unwrap_or(0);
        let total = sample.first_request_bytes;
        println!(
            "first request: {total} bytes ≈ {} tokens   target <= {FIRST_REQUEST_TARGET_TOKENS} tokens",
            total / 4
        );
        println!("  system:   {system:>6} bytes ≈ {:>5} tokens", system / 4);
        println!(
            "  tools:    {tools:>6} bytes ≈ {:>5} tokens ({} tools)",
            tools / 4,
            body["tools"].as_array().map(Vec::len).unwrap_or(0)
        );
        println!("  messages: {rest:>6} bytes ≈ {:>5} tokens", rest / 4);
        println!(
            "  other:    {:>6} bytes (model, stream flags, JSON framing)",
            total.saturating_sub(system + tools + rest)
        );
    }
}

fn json_len(value: &Value) -> usize {
    value.to_string().len()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn tool(id: &str, name: &str, args: Value) -> Answer {
    Answer::default().with_tool_call(FakeToolCall::new(id, name, &[&args.to_string()]))
}

async fn one_run(tack: &Path, fake_lsp: &Path) -> Result<Sample> {
    let model = FakeModelServer::start().await?;
    let relay = Relay::start(model.url()).await?;
    let workspace = tempfile::Builder::new()
        .prefix("tack-agent-bench")
        .tempdir()?;
    let root = workspace.path();
    std::fs::write(
        root.join("tack.toml"),
        format!(
            "model = \"scripted/m\"\n\n[providers.scripted]\napi = \"openai-chat\"\nbase_url = \"{}/v1\"\n\n\
             [languages.fake]\nextensions = [\"fk\"]\n\n[servers.alpha]\ncommand = {:?}\nargs = [\"--name\", \"alpha\"]\nlanguages = [\"fake\"]\n",
            relay.url,
            fake_lsp.display().to_string()
        ),
    )?;
    std::fs::write(root.join("main.fk"), "value = 1\n")?;
    model.push(openai_chat::stream(&tool(
        "c1",
        "read",
        json!({ "path": "main.fk" }),
    )));
    model.push(openai_chat::stream(&tool(
        "c2",
        "edit",
        json!({ "path": "main.fk", "old": "value = 1", "new": "value = ERROR: missing operand" }),
    )));
    model.push(openai_chat::stream(&tool(
        "c3",
        "edit",
        json!({ "path": "main.fk", "old": "ERROR: missing operand", "new": "2" }),
    )));
    model.push(openai_chat::stream(&Answer::text(&["Fixed."])));

    let home = root.join(".home");
    let tack = tack.to_path_buf();
    let root_owned = root.to_path_buf();
    let child_run = tokio::task::spawn_blocking(move || run_tack(&tack, &root_owned, &home));
    let run = child_run.await??;

    let exchanges = relay.exchanges();
    let requests = model.requests();
    if run.status_ok.is_none() {
        bail!("tack failed; stderr:\n{}", run.stderr);
    }
    if std::fs::read_to_string(root.join("main.fk"))? != "value = 2\n" {
        bail!(
            "the scripted task did not end with the fixed file; stderr:\n{}",
            run.stderr
        );
    }
    let first = requests
        .first()
        .ok_or_else(|| anyhow!("no request reached the model"))?;
    let first_arrival = exchanges
        .first()
        .and_then(|e| e.request_done)
        .ok_or_else(|| anyhow!("the relay saw no request"))?;

    let mut harness_per_turn = Vec::new();
    let mut gap_per_turn = Vec::new();
    for pair in exchanges.windows(2) {
        let (Some(reply_end), Some(next)) = (pair[0].reply_end, pair[1].request_done) else {
            continue;
        };
        let gap = next.saturating_duration_since(reply_end);
        let tools: Duration = run
            .tool_spans
            .iter()
            .map(|(begun, ended)| {
                let start = (*begun).max(reply_end);
                let end = (*ended).min(next);
                end.saturating_duration_since(start)
            })
            .sum();
        gap_per_turn.push(gap);
        harness_per_turn.push(gap.saturating_sub(tools));
    }
    Ok(Sample {
        requests: requests.len(),
        first_request: first_arrival.saturating_duration_since(run.spawned),
        harness_per_turn,
        gap_per_turn,
        peak_rss_kb: run.peak_rss_kb,
        first_request_body: first.json(),
        first_request_bytes: first.body.len(),
    })
}

/// What the `tack` process did, as seen from outside.
struct TackRun {
    spawned: Instant,
    /// `Some` when it exited successfully.
    status_ok: Option<()>,
    stderr: String,
    /// (begun, ended) stamps of each tool call, taken when its JSON line was read.
    tool_spans: Vec<(Instant, Instant)>,
    peak_rss_kb: u64,
}

fn run_tack(tack: &Path, root: &Path, home: &Path) -> Result<TackRun> {
    let spawned = Instant::now();
    let mut child = Command::new(tack)
        .args([
            "run",
            "--yes",
            "--json",
            "change the value, then fix what breaks",
        ])
        .current_dir(root)
        .env("XDG_CONFIG_HOME", home)
        .env("XDG_DATA_HOME", home)
        .env("XDG_STATE_HOME", home)
        .env("TACK_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", tack.display()))?;
    let pid = child.id();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = vm_hwm_kb(pid) {
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        })
    };
    let stderr_pipe = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = stderr_pipe {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        }
        text
    });
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let mut begun: Vec<(String, Instant)> = Vec::new();
    let mut tool_spans = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let stamp = Instant::now();
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        match event["type"].as_str() {
            Some("tool_call_begun") => begun.push((id, stamp)),
            Some("tool_call_ended") => {
                if let Some(at) = begun.iter().position(|(began, _)| *began == id) {
                    let (_, start) = begun.remove(at);
                    tool_spans.push((start, stamp));
                }
            }
            _ => {}
        }
    }
    let status = child.wait()?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_rss_kb = sampler.join().unwrap_or(0);
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(TackRun {
        spawned,
        status_ok: status.success().then_some(()),
        stderr,
        tool_spans,
        peak_rss_kb,
    })
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One HTTP exchange through the relay, stamped on the wire.
#[derive(Clone, Copy, Default)]
struct Exchange {
    /// The request's headers and `content-length` body had all arrived.
    request_done: Option<Instant>,
    /// The reply's terminating chunk had been handed to tack.
    reply_end: Option<Instant>,
}

/// A TCP relay in front of the fake model server (one connection per request, as the fake
/// server closes after each reply), stamping when requests arrive and replies end.
struct Relay {
    url: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Relay {
    async fn start(upstream_url: String) -> Result<Relay> {
        let upstream = upstream_url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("unexpected model url {upstream_url}"))?
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let exchanges = exchanges.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let index = {
                        let mut list = lock(&exchanges);
                        list.push(Exchange::default());
                        list.len() - 1
                    };
                    tokio::spawn(relay_one(
                        client,
                        upstream.clone(),
                        exchanges.clone(),
                        index,
                    ));
                }
            })
        };
        Ok(Relay {
            url,
            exchanges,
            accept,
        })
    }

    fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.exchanges).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn relay_one(
    client: TcpStream,
    upstream: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    index: usize,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upload = {
        let exchanges = exchanges.clone();
        async move {
            let mut seen = Vec::new();
            let mut buffer = [0u8; 16384];
            let mut stamped = false;
            while let Ok(read) = client_read.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
                if !stamped {
                    seen.extend_from_slice(&buffer[..read]);
                    if request_complete(&seen) {
                        lock(&exchanges)[index].request_done = Some(Instant::now());
                        stamped = true;
                        seen = Vec::new();
                    }
                }
                if server_write.write_all(&buffer[..read]).await.is_err() {
                    break;
                }
            }
            let _ = server_write.shutdown().await;
        }
    };
    let download = async move {
        let mut tail = Vec::new();
        let mut buffer = [0u8; 16384];
        while let Ok(read) = server_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
            tail.extend_from_slice(&buffer[..read]);
            if tail.len() > 16 {
                tail.drain(..tail.len() - 16);
            }
            if tail.ends_with(b"0\r\n\r\n") {
                lock(&exchanges)[index].reply_end = Some(Instant::now());
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upload, download);
}

/// Whether `bytes` hold a whole HTTP request (headers and `content-length` body).
fn request_complete(bytes: &[u8]) -> bool {
    let Some(header_end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim() == "content-length")
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    bytes.len() >= header_end + 4 + length
}

/// The `fake-lsp` example next to the release `tack`, built when missing.
fn find_fake_lsp(tack: &Path) -> Result<PathBuf> {
    let profile_dir = tack
        .parent()
        .ok_or_else(|| anyhow!("{} has no folder", tack.display()))?;
    let fake_lsp = profile_dir
        .join("examples")
        .join(format!("fake-lsp{}", std::env::consts::EXE_SUFFIX));
    if fake_lsp.is_file() {
        return Ok(fake_lsp);
    }
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| anyhow!("{} has no target folder", profile_dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("building: the fake-lsp example (release)");
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "--example",
            "fake-lsp",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .status()?;
    if !status.success() || !fake_lsp.is_file() {
        bail!("building the fake-lsp example failed");
    }
    Ok(fake_lsp)
}
