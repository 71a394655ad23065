//! Proxy benchmark: the same request mix directly against a language server and through
//! `tack lsp`, in one run, printed as a table next to the targets.
//!
//! Servers: the fake server (the `fake-lsp` example: deterministic and nearly free, so the
//! difference is tack's own overhead), and clangd when it is found (a real-world figure).
//! The mix, per server: sequential `textDocument/hover`, sequential
//! `textDocument/completion`, and bursts of incremental `didChange` followed by one hover,
//! timed until the hover's answer (which covers the whole burst, handled in order). Three
//! sessions run side by side and take turns in small blocks, so a busy machine slows all
//! alike: direct, through tack, and through the `byte-relay` example, which only copies bytes
//! and so shows the floor any process between editor and server costs here. Then memory: a fresh tack session opens many code-like
//! documents and tack's resident set is read from `/proc`.
//!
//! It prints figures and never judges them: the exit status is non-zero only when something
//! is broken (a server fails to start, a request errors or times out).
//!
//! Options (arguments after `--`, or environment variables):
//! `--requests N` (`BENCH_REQUESTS`, default 2000) hovers and completions each, fake server;
//! `--bursts N` (`BENCH_BURSTS`, 100) bursts of 100 `didChange` + hover, fake server;
//! `--documents N` (`BENCH_DOCUMENTS`, 500) documents opened for the memory figure;
//! `--document-kb N` (`BENCH_DOCUMENT_KB`, 6) size of the document the mix works on;
//! `--clangd-requests N` (`BENCH_CLANGD_REQUESTS`, 200), `--clangd-bursts N`
//! (`BENCH_CLANGD_BURSTS`, 20); `--clangd PATH|off` (`BENCH_CLANGD`) picks or skips clangd.

// A benchmark's figures are its output.
#![allow(clippy::print_stdout)]

mod client;
mod code_text;

use anyhow::{Context, Result, anyhow, bail};
use client::{BenchClient, Launch};
use code_text::{CodeText, c_source};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Changes per burst (even: every insertion is undone by the next change).
const BURST_LEN: usize = 100;
/// Requests per turn before the other side takes over.
const BLOCK: usize = 50;
/// Bursts per turn.
const BURST_BLOCK: usize = 5;

/// The issue's targets.
const TARGET_ADDED_MEDIAN_US: f64 = 50.0;
const TARGET_WALL_RATIO: f64 = 1.05;
const TARGET_RSS_MB: f64 = 40.0;

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("proxy bench: {error:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("proxy bench: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("proxy bench: broken: {error:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo bench --bench proxy -- [--requests N] [--bursts N] \
[--documents N] [--document-kb N] [--clangd-requests N] [--clangd-bursts N] [--clangd PATH|off]";

struct Options {
    requests: usize,
    bursts: usize,
    documents: usize,
    document_kb: usize,
    clangd_requests: usize,
    clangd_bursts: usize,
    /// `None`: look for clangd; `Some(None)`: skip it; `Some(Some(path))`: use that one.
    clangd: Option<Option<PathBuf>>,
}

impl Options {
    fn parse() -> Result<Options> {
        let number = |name: &str, default: usize| -> Result<usize> {
            match std::env::var(name) {
                Ok(value) => value
                    .parse()
                    .with_context(|| format!("{name}={value:?} is not a count")),
                Err(_) => Ok(default),
            }
        };
        let mut options = Options {
            requests: number("BENCH_REQUESTS", 2000)?,
            bursts: number("BENCH_BURSTS", 100)?,
            documents: number("BENCH_DOCUMENTS", 500)?,
            document_kb: number("BENCH_DOCUMENT_KB", 6)?,
            clangd_requests: number("BENCH_CLANGD_REQUESTS", 200)?,
            clangd_bursts: number("BENCH_CLANGD_BURSTS", 20)?,
            clangd: std::env::var_os("BENCH_CLANGD").map(clangd_choice),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            // `cargo bench` passes `--bench` to every bench target.
            if arg == "--bench" {
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| anyhow!("{name} needs a value"))
            };
            let count = |text: String| -> Result<usize> {
                text.parse()
                    .with_context(|| format!("{name} {text:?} is not a count"))
            };
            match name.as_str() {
                "--requests" => options.requests = count(value()?)?,
                "--bursts" => options.bursts = count(value()?)?,
                "--documents" => options.documents = count(value()?)?,
                "--document-kb" => options.document_kb = count(value()?)?,
                "--clangd-requests" => options.clangd_requests = count(value()?)?,
                "--clangd-bursts" => options.clangd_bursts = count(value()?)?,
                "--clangd" => options.clangd = Some(clangd_choice(value()?.into())),
                other => bail!("unknown argument {other:?}"),
            }
        }
        Ok(options)
    }
}

fn clangd_choice(value: std::ffi::OsString) -> Option<PathBuf> {
    (value != "off").then(|| PathBuf::from(value))
}

async fn run(options: &Options) -> Result<()> {
    println!("tack proxy benchmark");
    print_machine();
    let binaries = Binaries::find()?;
    println!(
        "tack:     {} ({})",
        binaries.tack.display(),
        binaries.profile
    );
    println!("fake-lsp: {}", binaries.fake_lsp.display());
    println!("relay:    {}", binaries.byte_relay.display());
    if binaries.profile != "release" {
        println!("note:     not a release build; the figures say little about a release");
    }
    let clangd = find_clangd(options);
    match &clangd {
        Ok(clangd) => println!(
            "servers:  fake (runs), clangd (runs: {}, {})",
            clangd.path.display(),
            clangd.version
        ),
        Err(why) => println!("servers:  fake (runs), clangd (skipped: {why})"),
    }
    println!(
        "method:   three sessions side by side (direct, through a byte relay, through tack), \
         taking turns every {BLOCK} requests ({BURST_BLOCK} bursts); a burst is {BURST_LEN} incremental didChange, each \
         written on its own, then one hover, timed until the hover's answer"
    );
    println!(
        "targets:  added median latency <= {TARGET_ADDED_MEDIAN_US} us, wall time <= \
         {TARGET_WALL_RATIO}x direct, tack RSS <= {TARGET_RSS_MB} MB"
    );

    let fake = ServerUnderTest::fake(&binaries);
    let mix = Mix {
        document_bytes: options.document_kb * 1000,
        requests: options.requests,
        bursts: options.bursts,
        warmup_requests: 200.min(options.requests.max(1)),
        warmup_bursts: 5.min(options.bursts.max(1)),
    };
    compare(&binaries, &fake, &mix).await?;

    if let Ok(clangd) = &clangd {
        let server = ServerUnderTest::clangd(clangd);
        let mix = Mix {
            document_bytes: options.document_kb * 1000,
            requests: options.clangd_requests,
            bursts: options.clangd_bursts,
            warmup_requests: 20.min(options.clangd_requests.max(1)),
            warmup_bursts: 2.min(options.clangd_bursts.max(1)),
        };
        compare(&binaries, &server, &mix).await?;
    }

    memory(&binaries, &fake, options.documents).await?;
    println!();
    println!("load average at the end: {}", load_average());
    Ok(())
}

// ----- the machine and the binaries ---------------------------------------------------------

fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    println!("machine:  nproc {cpus}, {model}, Linux {kernel}");
    println!("load:     {} (1, 5, 15 min)", load_average());
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

struct Binaries {
    tack: PathBuf,
    fake_lsp: PathBuf,
    /// The `byte-relay` example: the floor any process in the middle costs.
    byte_relay: PathBuf,
    /// The cargo profile folder the binaries come from (`release` under `cargo bench`).
    profile: String,
}

impl Binaries {
    /// The `tack` this bench was built with, and the `fake-lsp` and `byte-relay` examples
    /// next to it, built (same cargo, profile and target folder) when missing or older than
    /// their sources.
    fn find() -> Result<Binaries> {
        let tack = PathBuf::from(env!("CARGO_BIN_EXE_tack"));
        let profile_dir = tack
            .parent()
            .ok_or_else(|| anyhow!("{} has no folder", tack.display()))?
            .to_path_buf();
        let profile = profile_dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let example = |name: &str| -> Result<PathBuf> {
            let binary = profile_dir
                .join("examples")
                .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            if is_stale(&binary) {
                build_example(name, &profile_dir, &profile)?;
            }
            if !binary.is_file() {
                bail!("{} was not built", binary.display());
            }
            Ok(binary)
        };
        Ok(Binaries {
            tack: tack.clone(),
            fake_lsp: example("fake-lsp")?,
            byte_relay: example("byte-relay")?,
            profile,
        })
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn is_stale(binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    [
        manifest_dir().join("src"),
        manifest_dir().join("../tests/fake_lsp"),
        manifest_dir().join("../tests/byte_relay"),
        manifest_dir().join("Cargo.toml"),
    ]
    .iter()
    .filter_map(|source| newest_mtime(source))
    .any(|modified| modified > built)
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| newest_mtime(&entry.path()))
        .max()
}

fn build_example(name: &str, profile_dir: &Path, profile: &str) -> Result<()> {
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| anyhow!("{} has no target folder", profile_dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("building: the {name} example ({profile})");
    let mut command = std::process::Command::new(&cargo);
    command
        .args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(manifest_dir().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "building the {name} example failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

struct Clangd {
    path: PathBuf,
    version: String,
}

/// clangd from `--clangd`, else on PATH, else in `~/.cache/tack-tools/bin`; or why not.
fn find_clangd(options: &Options) -> std::result::Result<Clangd, String> {
    let path = match &options.clangd {
        Some(None) => return Err("turned off with --clangd off".to_owned()),
        Some(Some(path)) => path.clone(),
        None => {
            let on_path = std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("clangd"))
                    .find(|candidate| candidate.is_file())
            });
            let tools = std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/tack-tools/bin/clangd"))
                .filter(|candidate| candidate.is_file());
            on_path.or(tools).ok_or_else(|| {
                "clangd is neither on PATH nor in ~/.cache/tack-tools/bin \
                 (install it with apt-get install clangd, or tests/e2e/setup.sh)"
                    .to_owned()
            })?
        }
    };
    let output = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|error| format!("{} does not run: {error}", path.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .lines()
        .find(|line| line.contains("clangd version"))
        .unwrap_or("unknown version")
        .trim()
        .to_owned();
    Ok(Clangd { path, version })
}

// ----- sessions --------------------------------------------------------------------------------

/// A language server as the benchmark starts it, directly and through tack.
struct ServerUnderTest {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    language_id: &'static str,
    extension: &'static str,
    /// Extra workspace files (name, contents).
    extra_files: Vec<(&'static str, &'static str)>,
}

impl ServerUnderTest {
    fn fake(binaries: &Binaries) -> ServerUnderTest {
        ServerUnderTest {
            name: "fake",
            program: binaries.fake_lsp.clone(),
            args: ["--name", "fake", "--sync", "incremental"]
                .map(str::to_owned)
                .to_vec(),
            language_id: "fake",
            extension: "fk",
            extra_files: Vec::new(),
        }
    }

    fn clangd(clangd: &Clangd) -> ServerUnderTest {
        ServerUnderTest {
            name: "clangd",
            program: clangd.path.clone(),
            // No background index: both sessions share one workspace and its index folder.
            args: ["--background-index=false", "--log=error"]
                .map(str::to_owned)
                .to_vec(),
            language_id: "c",
            extension: "c",
            extra_files: vec![("compile_flags.txt", "-std=c11\n-Wall\n")],
        }
    }

    /// The project `tack.toml` that runs this server for its language.
    fn tack_toml(&self) -> String {
        format!(
            "[languages.{language}]\nextensions = [{extension:?}]\n\n\
             [servers.{name}]\ncommand = {program:?}\nargs = {args:?}\nlanguages = [{language:?}]\n",
            language = self.language_id,
            extension = self.extension,
            name = self.name,
            program = self.program.display().to_string(),
            args = self.args,
        )
    }
}

/// A temporary folder with `workspace/` (what the servers see), `xdg/` (tack's user config
/// and data homes, empty) and `logs/` (every process's stderr).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(server: &ServerUnderTest) -> Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("tack-bench-")
            .tempdir()
            .context("cannot create a temporary folder")?;
        let scratch = Scratch { dir };
        for sub in ["workspace", "xdg", "logs"] {
            std::fs::create_dir_all(scratch.path(sub))?;
        }
        std::fs::write(scratch.path("workspace/tack.toml"), server.tack_toml())?;
        for (name, text) in &server.extra_files {
            std::fs::write(scratch.path("workspace").join(name), text)?;
        }
        Ok(scratch)
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn workspace(&self) -> Result<PathBuf> {
        Ok(self.path("workspace").canonicalize()?)
    }
}

fn file_uri(path: &Path) -> Result<String> {
    url::Url::from_file_path(path)
        .map(String::from)
        .map_err(|()| anyhow!("{} is not an absolute path", path.display()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Direct,
    /// Through the byte relay: the floor of any process in the middle.
    Relay,
    ViaTack,
}

impl Route {
    const ALL: [Route; 3] = [Route::Direct, Route::Relay, Route::ViaTack];

    fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Relay => "relay",
            Route::ViaTack => "via tack",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Starts the server directly, behind the byte relay or behind `tack lsp`, and initializes it.
async fn start(
    route: Route,
    binaries: &Binaries,
    server: &ServerUnderTest,
    scratch: &Scratch,
) -> Result<BenchClient> {
    let workspace = scratch.workspace()?;
    let xdg = scratch.path("xdg").display().to_string();
    // Outer `TACK_*` settings would change what is measured.
    let tack_vars: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("TACK_"))
        .collect();
    let tack_args = vec!["lsp".to_owned()];
    let tack_env = vec![
        ("XDG_CONFIG_HOME".to_owned(), xdg.clone()),
        ("XDG_DATA_HOME".to_owned(), xdg),
    ];
    let label = format!("{} {}", server.name, route.label());
    let stderr_path = scratch.path(&format!(
        "logs/{}-{}.stderr",
        server.name,
        route.label().replace(' ', "-")
    ));
    let relay_args: Vec<String> = std::iter::once(server.program.display().to_string())
        .chain(server.args.iter().cloned())
        .collect();
    let launch = match route {
        Route::Direct => Launch {
            label: &label,
            program: &server.program,
            args: &server.args,
            cwd: &workspace,
            env: &[],
            env_removed: &[],
            stderr_path,
        },
        Route::Relay => Launch {
            label: &label,
            program: &binaries.byte_relay,
            args: &relay_args,
            cwd: &workspace,
            env: &[],
            env_removed: &[],
            stderr_path,
        },
        Route::ViaTack => Launch {
            label: &label,
            program: &binaries.tack,
            args: &tack_args,
            cwd: &workspace,
            env: &tack_env,
            env_removed: &tack_vars,
            stderr_path,
        },
    };
    let mut client = BenchClient::spawn(&launch)?;
    client
        .request("initialize", &initialize_params(&workspace)?)
        .await?;
    client.notify("initialized", "{}").await?;
    Ok(client)
}

/// What a plain editor sends: enough for hover, completion and incremental sync, nothing
/// that invites the server to send requests of its own.
fn initialize_params(root: &Path) -> Result<String> {
    let uri = file_uri(root)?;
    Ok(json!({
        "processId": std::process::id(),
        "clientInfo": { "name": "tack-proxy-bench", "version": "0" },
        "rootUri": uri,
        "workspaceFolders": [{ "uri": uri, "name": "workspace" }],
        "capabilities": {
            "general": { "positionEncodings": ["utf-16"] },
            "textDocument": {
                "synchronization": { "didSave": true },
                "publishDiagnostics": { "versionSupport": true },
                "hover": { "contentFormat": ["markdown", "plaintext"] },
                "completion": { "completionItem": { "snippetSupport": false } }
            }
        }
    })
    .to_string())
}

// ----- the request mix -------------------------------------------------------------------------

/// One session and the version of its document.
struct Side {
    client: BenchClient,
    version: i32,
}

/// The document every request of the mix points into.
struct Target {
    uri: String,
    code: CodeText,
}

struct Mix {
    /// Size of the document the mix works on.
    document_bytes: usize,
    requests: usize,
    bursts: usize,
    warmup_requests: usize,
    warmup_bursts: usize,
}

#[derive(Clone, Copy)]
enum Kind {
    Hover,
    Completion,
    Burst,
}

impl Kind {
    fn label(self) -> String {
        match self {
            Kind::Hover => "hover".to_owned(),
            Kind::Completion => "completion".to_owned(),
            Kind::Burst => format!("{BURST_LEN}x didChange + hover"),
        }
    }
}

fn position_params(uri: &str, (line, character): (u32, u32)) -> String {
    format!(
        r#"{{"textDocument":{{"uri":"{uri}"}},"position":{{"line":{line},"character":{character}}}}}"#
    )
}

/// The `i`-th operation of a kind; returns how long it took until its answer.
async fn operation(side: &mut Side, target: &Target, kind: Kind, i: usize) -> Result<Duration> {
    let calls = &target.code.calls;
    let call = calls[i % calls.len()];
    match kind {
        Kind::Hover => {
            let params = position_params(&target.uri, call);
            let start = Instant::now();
            side.client.request("textDocument/hover", &params).await?;
            Ok(start.elapsed())
        }
        Kind::Completion => {
            // Inside the called name, after its first four characters.
            let params = position_params(&target.uri, (call.0, call.1 + 4));
            let start = Instant::now();
            side.client
                .request("textDocument/completion", &params)
                .await?;
            Ok(start.elapsed())
        }
        Kind::Burst => {
            let lines = &target.code.comment_lines;
            let start = Instant::now();
            for change in 0..BURST_LEN {
                let line = lines[(i * BURST_LEN + change) / 2 % lines.len()];
                side.version += 1;
                let (end, text) = if change % 2 == 0 { (3, "x") } else { (4, "") };
                let params = format!(
                    r#"{{"textDocument":{{"uri":"{uri}","version":{version}}},"contentChanges":[{{"range":{{"start":{{"line":{line},"character":3}},"end":{{"line":{line},"character":{end}}}}},"text":"{text}"}}]}}"#,
                    uri = target.uri,
                    version = side.version,
                );
                side.client
                    .notify("textDocument/didChange", &params)
                    .await?;
            }
            let params = position_params(&target.uri, call);
            side.client.request("textDocument/hover", &params).await?;
            Ok(start.elapsed())
        }
    }
}

/// Per route (in [`Route::ALL`] order): each operation's time, and the turns' wall time.
#[derive(Default)]
struct Samples {
    times: [Vec<Duration>; 3],
    wall: [Duration; 3],
}

impl Samples {
    fn quantiles(&self, route: Route) -> Quantiles {
        Quantiles::of(&self.times[route.index()])
    }

    /// Wall time of `route` over wall time of `base`.
    fn wall_ratio(&self, route: Route, base: Route) -> f64 {
        self.wall[route.index()].as_secs_f64() / self.wall[base.index()].as_secs_f64()
    }
}

/// Runs `count` operations on each side, the sides taking turns every `block` in an order
/// that rotates, so none is always first after another's turn.
async fn measure(
    sides: &mut [Side; 3],
    target: &Target,
    kind: Kind,
    count: usize,
    block: usize,
) -> Result<Samples> {
    let mut samples = Samples::default();
    let mut done = 0;
    let mut turn = 0;
    while done < count {
        let n = block.min(count - done);
        for step in 0..Route::ALL.len() {
            let route = Route::ALL[(turn + step) % Route::ALL.len()];
            let side = &mut sides[route.index()];
            side.client.drain().await?;
            let start = Instant::now();
            for i in done..done + n {
                samples.times[route.index()].push(operation(side, target, kind, i).await?);
            }
            samples.wall[route.index()] += start.elapsed();
        }
        done += n;
        turn += 1;
    }
    Ok(samples)
}

/// The whole mix against one server, direct and through tack; prints its table.
async fn compare(binaries: &Binaries, server: &ServerUnderTest, mix: &Mix) -> Result<()> {
    let scratch = Scratch::new(server)?;
    let code = c_source(0, mix.document_bytes, false);
    let file = scratch
        .workspace()?
        .join(format!("main.{}", server.extension));
    std::fs::write(&file, &code.text)?;
    let target = Target {
        uri: file_uri(&file)?,
        code,
    };
    let open = json!({
        "textDocument": {
            "uri": target.uri,
            "languageId": server.language_id,
            "version": 1,
            "text": target.code.text,
        }
    })
    .to_string();
    let mut sides = [
        Side {
            client: start(Route::Direct, binaries, server, &scratch).await?,
            version: 1,
        },
        Side {
            client: start(Route::Relay, binaries, server, &scratch).await?,
            version: 1,
        },
        Side {
            client: start(Route::ViaTack, binaries, server, &scratch).await?,
            version: 1,
        },
    ];
    for side in &mut sides {
        side.client.notify("textDocument/didOpen", &open).await?;
    }

    let kinds = [
        (Kind::Hover, mix.requests, mix.warmup_requests, BLOCK),
        (Kind::Completion, mix.requests, mix.warmup_requests, BLOCK),
        (Kind::Burst, mix.bursts, mix.warmup_bursts, BURST_BLOCK),
    ];
    for (kind, _, warmup, block) in kinds {
        measure(&mut sides, &target, kind, warmup, block).await?;
    }
    let pid = |route: Route| {
        sides[route.index()]
            .client
            .pid()
            .ok_or_else(|| anyhow!("the {} process has no id", route.label()))
    };
    let (relay_pid, tack_pid) = (pid(Route::Relay)?, pid(Route::ViaTack)?);
    let mut rows = Vec::new();
    for (kind, count, _, block) in kinds {
        if count > 0 {
            // Each is idle during the other turns, so these deltas are its cost for `count`.
            let before = [
                ProcessCounters::read(relay_pid)?,
                ProcessCounters::read(tack_pid)?,
            ];
            let samples = measure(&mut sides, &target, kind, count, block).await?;
            let cost = [
                ProcessCounters::read(relay_pid)?.since(&before[0]),
                ProcessCounters::read(tack_pid)?.since(&before[1]),
            ];
            rows.push((kind, count, samples, cost));
        }
    }

    println!();
    println!(
        "== {} server, {:.0} KB document: {} hovers, {} completions, {} bursts; warm-up {} / {} / {} first ==",
        server.name,
        target.code.text.len() as f64 / 1000.0,
        mix.requests,
        mix.requests,
        mix.bursts,
        mix.warmup_requests,
        mix.warmup_requests,
        mix.warmup_bursts
    );
    println!(
        "{:<30} {:>17} {:>17} {:>17} {:>12}",
        "", "direct (us)", "via tack (us)", "added (us)", "wall time"
    );
    println!(
        "{:<30} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>12}  vs targets",
        "kind", "median", "p99", "median", "p99", "median", "p99", "tack/direct"
    );
    for (kind, count, samples, _) in &rows {
        let direct = samples.quantiles(Route::Direct);
        let tack = samples.quantiles(Route::ViaTack);
        let added_median = tack.median - direct.median;
        let ratio = samples.wall_ratio(Route::ViaTack, Route::Direct);
        let verdict = format!(
            "{} added, {} wall",
            meets(added_median <= TARGET_ADDED_MEDIAN_US),
            meets(ratio <= TARGET_WALL_RATIO)
        );
        println!(
            "{:<30} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>11.3}x  {verdict}",
            format!("{} (n={count})", kind.label()),
            direct.median,
            direct.p99,
            tack.median,
            tack.p99,
            added_median,
            tack.p99 - direct.p99,
            ratio
        );
    }
    // The mix as a whole: what a session of these requests takes, per route.
    let mix_wall = |route: Route| -> f64 {
        rows.iter()
            .map(|(_, _, s, _)| s.wall[route.index()].as_secs_f64())
            .sum()
    };
    let direct_wall = mix_wall(Route::Direct);
    let tack_wall = mix_wall(Route::ViaTack);
    let mix_ratio = tack_wall / direct_wall;
    println!(
        "{:<30} {:>17.1} {:>17.1} {:>17.1} {:>11.3}x  {} wall",
        "whole mix, wall time (ms)",
        direct_wall * 1e3,
        tack_wall * 1e3,
        (tack_wall - direct_wall) * 1e3,
        mix_ratio,
        meets(mix_ratio <= TARGET_WALL_RATIO)
    );
    println!(
        "(added = via-tack quantile minus direct quantile; a burst is {} messages, so its added \
         time is spread over them; targets: added median <= {TARGET_ADDED_MEDIAN_US} us, wall <= \
         {TARGET_WALL_RATIO}x)",
        BURST_LEN + 1
    );
    println!(
        "floor, measured alongside: a byte relay in tack's place (it starts the server and copies \
         bytes both ways, one thread each, reading nothing):"
    );
    println!(
        "  {:<28} {:>12} {:>12} {:>12} {:>16} {:>12}",
        "kind", "relay median", "relay added", "relay/direct", "tack over relay", "tack/relay"
    );
    for (kind, _, samples, _) in &rows {
        let direct = samples.quantiles(Route::Direct);
        let relay = samples.quantiles(Route::Relay);
        let tack = samples.quantiles(Route::ViaTack);
        println!(
            "  {:<28} {:>9.1} us {:>9.1} us {:>11.3}x {:>13.1} us {:>11.3}x",
            kind.label(),
            relay.median,
            relay.median - direct.median,
            samples.wall_ratio(Route::Relay, Route::Direct),
            tack.median - relay.median,
            samples.wall_ratio(Route::ViaTack, Route::Relay)
        );
    }
    let relay_wall = mix_wall(Route::Relay);
    println!(
        "  {:<28} {:>12} {:>9.1} ms {:>11.3}x {:>13.1} ms {:>11.3}x",
        "whole mix, wall time",
        "",
        (relay_wall - direct_wall) * 1e3,
        relay_wall / direct_wall,
        (tack_wall - relay_wall) * 1e3,
        tack_wall / relay_wall
    );
    println!(
        "cost per operation of the process in the middle (its threads' CPU time and context \
         switches, from /proc):"
    );
    println!(
        "  {:<28} {:>10} {:>10} {:>12} {:>10}",
        "kind", "tack CPU", "switches", "relay CPU", "switches"
    );
    for (kind, count, _, [relay, tack]) in &rows {
        let per = |total: f64| total / *count as f64;
        println!(
            "  {:<28} {:>7.1} us {:>10.1} {:>9.1} us {:>10.1}",
            kind.label(),
            per(tack.cpu_seconds * 1e6),
            per(tack.context_switches as f64),
            per(relay.cpu_seconds * 1e6),
            per(relay.context_switches as f64)
        );
    }
    println!(
        "notifications received: direct {}, via tack {} (tack sends the editor a diagnostics \
         set only when it changed)",
        sides[Route::Direct.index()].client.notifications,
        sides[Route::ViaTack.index()].client.notifications
    );
    for side in sides {
        side.client.shutdown().await?;
    }
    Ok(())
}

fn meets(ok: bool) -> &'static str {
    if ok { "meets" } else { "MISSES" }
}

/// Median and 99th percentile in microseconds (nearest rank).
struct Quantiles {
    median: f64,
    p99: f64,
}

impl Quantiles {
    fn of(samples: &[Duration]) -> Quantiles {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e6
        };
        Quantiles {
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

// ----- memory ------------------------------------------------------------------------------------

/// Opens `count` documents through a fresh tack session and prints the resident sets.
async fn memory(binaries: &Binaries, server: &ServerUnderTest, count: usize) -> Result<()> {
    let scratch = Scratch::new(server)?;
    let workspace = scratch.workspace()?;
    std::fs::write(workspace.join("main.fk"), "/* main */\n")?;
    let mut tack = start(Route::ViaTack, binaries, server, &scratch).await?;
    let tack_pid = tack
        .pid()
        .ok_or_else(|| anyhow!("tack has no process id"))?;
    // A round trip so that tack and its child are fully up before the first reading.
    let main_uri = file_uri(&workspace.join("main.fk"))?;
    let open_main = json!({
        "textDocument": { "uri": main_uri, "languageId": "fake", "version": 1, "text": "/* main */\n" }
    })
    .to_string();
    tack.notify("textDocument/didOpen", &open_main).await?;
    tack.request("textDocument/hover", &position_params(&main_uri, (0, 0)))
        .await?;
    let before = ProcessMemory::read(tack_pid)?;

    let mut bytes = 0usize;
    let mut last_uri = main_uri;
    for i in 0..count {
        // 2 to 5 KB, spread evenly; every tenth has an error for the diagnostics store.
        let size = 2000 + (i * 6007) % 3000;
        let code = c_source(i + 1, size, i % 10 == 0);
        bytes += code.text.len();
        last_uri = file_uri(&workspace.join(format!("src/m{}.fk", i + 1)))?;
        let open = json!({
            "textDocument": { "uri": last_uri, "languageId": "fake", "version": 1, "text": code.text }
        })
        .to_string();
        tack.notify("textDocument/didOpen", &open).await?;
    }
    // Answered only after every didOpen before it was handled, by tack and by the server.
    tack.request("textDocument/hover", &position_params(&last_uri, (0, 3)))
        .await?;
    let after = ProcessMemory::read(tack_pid)?;
    let child = child_pids(tack_pid)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("tack's language server process was not found"))
        .and_then(ProcessMemory::read)?;

    println!();
    println!(
        "== memory: {count} documents opened through tack ({:.2} MB of text, 2-5 KB each) ==",
        bytes as f64 / 1e6
    );
    println!(
        "tack RSS after initialize:        {:>7.1} MB",
        before.rss_mb
    );
    println!(
        "tack RSS with {count} documents open: {:>7.1} MB   peak (VmHWM) {:.1} MB   target <= {TARGET_RSS_MB} MB: {}",
        after.rss_mb,
        after.peak_mb,
        meets(after.rss_mb <= TARGET_RSS_MB && after.peak_mb <= TARGET_RSS_MB)
    );
    println!(
        "fake server RSS (reference):      {:>7.1} MB   peak (VmHWM) {:.1} MB",
        child.rss_mb, child.peak_mb
    );
    tack.shutdown().await?;
    Ok(())
}

struct ProcessMemory {
    rss_mb: f64,
    peak_mb: f64,
}

impl ProcessMemory {
    /// `VmRSS` and `VmHWM` from `/proc/<pid>/status`.
    fn read(pid: u32) -> Result<ProcessMemory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        let field = |name: &str| -> Result<f64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .map(|kb| kb / 1024.0)
                .ok_or_else(|| anyhow!("/proc/{pid}/status has no {name}"))
        };
        Ok(ProcessMemory {
            rss_mb: field("VmRSS:")?,
            peak_mb: field("VmHWM:")?,
        })
    }
}

/// CPU time and context switches of a process so far.
struct ProcessCounters {
    cpu_seconds: f64,
    context_switches: u64,
}

impl ProcessCounters {
    /// Summed over its live threads: time on a CPU (`/proc/<pid>/task/*/schedstat`, in
    /// nanoseconds) and context switches (`/proc/<pid>/task/*/status`).
    fn read(pid: u32) -> Result<ProcessCounters> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .with_context(|| format!("cannot list /proc/{pid}/task"))?;
        let mut counters = ProcessCounters {
            cpu_seconds: 0.0,
            context_switches: 0,
        };
        for task in tasks.flatten() {
            // A thread that has just exited has no files left; it is skipped.
            if let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat")) {
                let nanoseconds = schedstat
                    .split_whitespace()
                    .next()
                    .and_then(|field| field.parse::<u64>().ok())
                    .unwrap_or(0);
                counters.cpu_seconds += nanoseconds as f64 / 1e9;
            }
            if let Ok(status) = std::fs::read_to_string(task.path().join("status")) {
                counters.context_switches += status
                    .lines()
                    .filter(|line| line.contains("ctxt_switches:"))
                    .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum::<u64>();
            }
        }
        Ok(counters)
    }

    fn since(&self, earlier: &ProcessCounters) -> ProcessCounters {
        ProcessCounters {
            cpu_seconds: self.cpu_seconds - earlier.cpu_seconds,
            context_switches: self
                .context_switches
                .saturating_sub(earlier.context_switches),
        }
    }
}

/// The processes whose parent is `parent`.
fn child_pids(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may hold spaces and parentheses: fields follow the last ')'.
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
