//! Snapshot benchmark: tack's per-change snapshot and session checkpoint, side by side in one
//! run with the way OpenCode snapshots (a separate `GIT_DIR` over the worktree, `git add -A`
//! then `git write-tree`) and with `git status --porcelain`, on the same tree.
//!
//! The tree is generated: `TACK_BENCH_FILES` files (default 100000) of a few hundred bytes,
//! 100 per directory, a root `.gitignore` of common patterns and some ignored build output,
//! committed to a git repository so `git status` has an index. If `TACK_BENCH_CHECKOUT` names a
//! real checkout, it is measured too, read-only (no file of it is changed: the snapshots record
//! files as they are, and `git status` runs without taking optional locks).
//!
//! The checkpoint is measured in this process (the stat cache in memory) and in a new process
//! (this program run again as a child, timed from spawn to exit like `git status`, reading the
//! cache from disk); each round of each is followed by a `git status`, so both see the same load.
//! It prints medians over the rounds, the checkpoint's phases (medians), and CPU time per run
//! (user + system, from `/proc/self/stat`; children's for the child processes and git), which
//! a busy machine disturbs less than wall time; and the load average at the start and end.
//!
//! Run: `cargo bench --bench snapshots` (from `server/`). It prints figures; it asserts none.

#![allow(clippy::print_stdout)]

use std::error::Error;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tack::snapshots::{CheckpointPhases, SnapshotStore, no_overlay};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Rounds of each checkpoint measurement (each followed by a `git status`).
const ROUNDS: usize = 21;
/// Set in the child that takes one checkpoint: `<data dir>\n<workspace>`.
const CHILD_VAR: &str = "TACK_BENCH_CHECKPOINT_CHILD";

fn main() -> BenchResult<()> {
    if let Ok(dirs) = std::env::var(CHILD_VAR) {
        return checkpoint_child(&dirs);
    }
    let files: usize = std::env::var("TACK_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    println!("load average at start: {}", load_average());
    let scratch = tempfile::tempdir()?;
    let workspace = scratch.path().join("workspace");
    println!("generating {files} files…");
    let started = Instant::now();
    generate(&workspace, files)?;
    git(&workspace, None, &["init", "-q"])?;
    git(&workspace, None, &["add", "-A"])?;
    git(&workspace, None, &["commit", "-q", "-m", "base"])?;
    println!(
        "generated and committed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let generated = measure(
        &workspace,
        &scratch.path().join("data"),
        &scratch.path().join("opencode.git"),
        true,
    )?;
    print_table(&format!("generated tree, {files} files"), &generated);

    if let Some(checkout) = std::env::var_os("TACK_BENCH_CHECKOUT").map(PathBuf::from) {
        let data = scratch.path().join("data-checkout");
        let real = measure(
            &checkout,
            &data,
            &scratch.path().join("opencode-checkout.git"),
            false,
        )?;
        print_table(
            &format!("real checkout {} (read-only)", checkout.display()),
            &real,
        );
    }
    println!("load average at end: {}", load_average());
    Ok(())
}

/// The child: one checkpoint with the cache from disk; prints its phases for the parent.
fn checkpoint_child(dirs: &str) -> BenchResult<()> {
    let (data, workspace) = dirs.split_once('\n').ok_or("bad child arguments")?;
    let store = SnapshotStore::open(Path::new(data), Path::new(workspace))?;
    let (_, phases) = store.checkpoint_with_phases("bench")?;
    let p = phases;
    let ns = [
        p.cache_load,
        p.walk,
        p.blob_writes,
        p.trees,
        p.cache_update,
        p.record,
        p.cache_save,
    ]
    .map(|d| d.as_nanos().to_string());
    println!("phases {} {}", ns.join(" "), p.files_read);
    Ok(())
}

/// Figures of one tree.
struct Figures {
    files: u64,
    snapshot_1: Stats,
    snapshot_100: Stats,
    checkpoint_first: Duration,
    opencode_first: Duration,
    in_process: Round,
    new_process: Round,
    opencode_after_change: Stats,
    tack_store_bytes: u64,
    opencode_store_bytes: u64,
    prune: Duration,
    tack_store_bytes_pruned: u64,
}

/// One interleaved series: tack's checkpoint and `git status` after it, each round.
struct Round {
    tack: Stats,
    tack_cpu: Duration,
    phases: Vec<CheckpointPhases>,
    git_status: Stats,
    git_status_cpu: Duration,
}

struct Stats {
    median: Duration,
    p95: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p95: at(0.95),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(
    workspace: &Path,
    data: &Path,
    opencode_dir: &Path,
    may_write: bool,
) -> BenchResult<Figures> {
    let store = SnapshotStore::open(data, workspace)?;
    let touched = touched_files(workspace, 100)?;

    // One agent step touching one file: pre-image, (the edit), post-image.
    let mut samples = Vec::new();
    for round in 0..50 {
        let path = &touched[round % touched.len()];
        let started = Instant::now();
        let pending = store.begin_change(
            "bench",
            round as u32,
            "one file",
            std::slice::from_ref(path),
            &no_overlay,
        )?;
        let snapshot_before = started.elapsed();
        if may_write {
            append_line(path, round)?;
        }
        let started = Instant::now();
        store.commit_change(pending, &no_overlay)?;
        samples.push(snapshot_before + started.elapsed());
    }
    let snapshot_1 = stats(samples);

    let mut samples = Vec::new();
    for round in 0..10 {
        let started = Instant::now();
        let pending = store.begin_change(
            "bench",
            1000 + round,
            "hundred files",
            &touched,
            &no_overlay,
        )?;
        let snapshot_before = started.elapsed();
        if may_write {
            for path in &touched {
                append_line(path, round as usize)?;
            }
        }
        let started = Instant::now();
        store.commit_change(pending, &no_overlay)?;
        samples.push(snapshot_before + started.elapsed());
    }
    let snapshot_100 = stats(samples);

    let started = Instant::now();
    let first = store.checkpoint("bench")?;
    let checkpoint_first = started.elapsed();
    git_status(workspace)?; // warm the index and caches once, like the other measurements

    let mut edits = touched.iter().cycle().enumerate();
    let mut change = || -> BenchResult<()> {
        if let Some((round, path)) = edits.next()
            && may_write
        {
            append_line(path, 9000 + round)?;
        }
        Ok(())
    };

    // In this process: the stat cache in memory.
    let mut in_process = Series::default();
    for _ in 0..ROUNDS {
        change()?;
        let cpu = own_cpu();
        let started = Instant::now();
        let (_, phases) = store.checkpoint_with_phases("bench")?;
        in_process.tack.push(started.elapsed());
        in_process.tack_cpu += own_cpu() - cpu;
        in_process.phases.push(phases);
        in_process.git_status(workspace)?;
    }

    // In a new process each time: the stat cache read from disk.
    let mut new_process = Series::default();
    let child_dirs = format!("{}\n{}", data.display(), workspace.display());
    for _ in 0..ROUNDS {
        change()?;
        let cpu = children_cpu();
        let started = Instant::now();
        let output = Command::new(std::env::current_exe()?)
            .env(CHILD_VAR, &child_dirs)
            .stderr(Stdio::inherit())
            .output()?;
        new_process.tack.push(started.elapsed());
        new_process.tack_cpu += children_cpu() - cpu;
        if !output.status.success() {
            return Err("the checkpoint child failed".into());
        }
        new_process
            .phases
            .push(parse_phases(&String::from_utf8_lossy(&output.stdout))?);
        new_process.git_status(workspace)?;
    }

    let opencode_first = {
        git(workspace, Some(opencode_dir), &["init", "-q"])?;
        let started = Instant::now();
        git(workspace, Some(opencode_dir), &["add", "-A", "."])?;
        git(workspace, Some(opencode_dir), &["write-tree"])?;
        started.elapsed()
    };
    let mut opencode_samples = Vec::new();
    for _ in 0..5 {
        change()?;
        let started = Instant::now();
        git(workspace, Some(opencode_dir), &["add", "-A", "."])?;
        git(workspace, Some(opencode_dir), &["write-tree"])?;
        opencode_samples.push(started.elapsed());
    }

    let tack_store_bytes = store.object_bytes()?;
    let started = Instant::now();
    let pruned = store.prune(Some("bench"))?;
    let prune = started.elapsed();

    Ok(Figures {
        files: first.files,
        snapshot_1,
        snapshot_100,
        checkpoint_first,
        opencode_first,
        in_process: in_process.finish(),
        new_process: new_process.finish(),
        opencode_after_change: stats(opencode_samples),
        tack_store_bytes,
        opencode_store_bytes: disk_usage(opencode_dir),
        prune,
        tack_store_bytes_pruned: pruned.bytes_after,
    })
}

/// Samples of one interleaved series.
#[derive(Default)]
struct Series {
    tack: Vec<Duration>,
    tack_cpu: Duration,
    phases: Vec<CheckpointPhases>,
    git_status: Vec<Duration>,
    git_status_cpu: Duration,
}

impl Series {
    fn git_status(&mut self, workspace: &Path) -> BenchResult<()> {
        let cpu = children_cpu();
        let started = Instant::now();
        git_status(workspace)?;
        self.git_status.push(started.elapsed());
        self.git_status_cpu += children_cpu() - cpu;
        Ok(())
    }

    fn finish(self) -> Round {
        let runs = self.tack.len() as u32;
        Round {
            tack: stats(self.tack),
            tack_cpu: self.tack_cpu / runs,
            phases: self.phases,
            git_status: stats(self.git_status),
            git_status_cpu: self.git_status_cpu / runs,
        }
    }
}

fn parse_phases(output: &str) -> BenchResult<CheckpointPhases> {
    let line = output
        .lines()
        .find_map(|line| line.strip_prefix("phases "))
        .ok_or("the checkpoint child printed no phases")?;
    let numbers: Vec<u64> = line.split(' ').map(str::parse).collect::<Result<_, _>>()?;
    let [load, walk, blobs, trees, update, record, save, files_read] = numbers[..] else {
        return Err("the checkpoint child printed bad phases".into());
    };
    let ns = Duration::from_nanos;
    Ok(CheckpointPhases {
        cache_load: ns(load),
        walk: ns(walk),
        blob_writes: ns(blobs),
        trees: ns(trees),
        cache_update: ns(update),
        record: ns(record),
        cache_save: ns(save),
        files_read,
    })
}

fn print_table(title: &str, f: &Figures) {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let stat = |s: &Stats| format!("{} (p95 {})", ms(s.median), ms(s.p95));
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    let row = |label: &str, tack: String, baseline: String| {
        println!("{label:<46} {tack:<30} {baseline}");
    };
    println!();
    println!("== {title}: {} files in the checkpoint ==", f.files);
    row("", "tack".into(), "baseline, same tree".into());
    row(
        "agent snapshot, 1 file touched",
        stat(&f.snapshot_1),
        "-".into(),
    );
    row(
        "agent snapshot, 100 files touched",
        stat(&f.snapshot_100),
        "-".into(),
    );
    row(
        "whole-tree snapshot, first",
        ms(f.checkpoint_first),
        format!("{} (OpenCode: add -A + write-tree)", ms(f.opencode_first)),
    );
    row(
        "whole-tree snapshot after 1 change",
        stat(&f.in_process.tack),
        format!("{} (OpenCode)", stat(&f.opencode_after_change)),
    );
    for (label, round) in [
        ("checkpoint after 1 change, in process", &f.in_process),
        ("checkpoint after 1 change, new process", &f.new_process),
    ] {
        row(
            label,
            stat(&round.tack),
            format!("{} (git status, same rounds)", stat(&round.git_status)),
        );
        row(
            "  CPU per run (user + system)",
            ms(round.tack_cpu),
            format!("{} (git status)", ms(round.git_status_cpu)),
        );
        let phase = |pick: fn(&CheckpointPhases) -> Duration| {
            ms(median(round.phases.iter().map(pick).collect()))
        };
        let files_read = {
            let mut read: Vec<u64> = round.phases.iter().map(|p| p.files_read).collect();
            read.sort_unstable();
            read[read.len() / 2]
        };
        println!(
            "  phases (medians): cache load {}, walk {} (of it storing {} changed file(s) {}), \
             trees {}, cache delta {}, log record {}, cache save {}",
            phase(|p| p.cache_load),
            phase(|p| p.walk),
            files_read,
            phase(|p| p.blob_writes),
            phase(|p| p.trees),
            phase(|p| p.cache_update),
            phase(|p| p.record),
            phase(|p| p.cache_save),
        );
    }
    row(
        "store size",
        mib(f.tack_store_bytes),
        format!("{} (OpenCode GIT_DIR)", mib(f.opencode_store_bytes)),
    );
    row(
        "store size after prune (packed), prune time",
        format!("{}, {}", mib(f.tack_store_bytes_pruned), ms(f.prune)),
        "-".into(),
    );
    let snapshot_target = if f.snapshot_1.median <= Duration::from_millis(5) {
        "met"
    } else {
        "MISSED"
    };
    let versus = |round: &Round| {
        round.tack.median.as_secs_f64() / round.git_status.median.as_secs_f64().max(1e-9)
    };
    let (in_process, new_process) = (versus(&f.in_process), versus(&f.new_process));
    let checkpoint_target = if in_process <= 1.0 && new_process <= 1.0 {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "target ≤ 5 ms per 1-file snapshot: {snapshot_target}; checkpoint no slower than git \
         status: {checkpoint_target} (in process {in_process:.2}×, new process {new_process:.2}× \
         git status)"
    );
}

/// Writes `files` small source files, 100 per directory, a root `.gitignore` of common
/// patterns, and ignored build output.
fn generate(root: &Path, files: usize) -> BenchResult<()> {
    for i in 0..files {
        let dir = root.join(format!("pkg{:03}/src/mod{:02}", i / 1000, (i / 100) % 10));
        if i % 100 == 0 {
            fs::create_dir_all(&dir)?;
        }
        let mut body = format!("//! file {i}\n\npub fn f{i}(x: u64) -> u64 {{\n");
        for line in 0..(i % 20) {
            body.push_str(&format!(
                "    let x = x.wrapping_mul({line}).wrapping_add({i});\n"
            ));
        }
        body.push_str("    x\n}\n");
        fs::write(dir.join(format!("f{i}.rs")), body)?;
    }
    fs::write(
        root.join(".gitignore"),
        "/target/\n*.o\n*.so\n*.tmp\n*.swp\n.DS_Store\nnode_modules/\n__pycache__/\n*.pyc\n\
         /dist/\ncoverage/\n.idea/\n*.log\n!keep.log\n",
    )?;
    let build = root.join("target/debug/deps");
    fs::create_dir_all(&build)?;
    for i in 0..500 {
        fs::write(build.join(format!("unit{i}.o")), "object code\n")?;
    }
    Ok(())
}

/// `count` regular files of the tree, spread over it (deterministically).
fn touched_files(root: &Path, count: usize) -> BenchResult<Vec<PathBuf>> {
    let mut all = Vec::new();
    collect(root, &mut all, count * 50)?;
    let step = (all.len() / count).max(1);
    Ok(all.into_iter().step_by(step).take(count).collect())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>, limit: usize) -> BenchResult<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if out.len() >= limit || name == ".git" || name == "target" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), out, limit)?;
        } else if kind.is_file() && name != ".gitignore" {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn append_line(path: &Path, round: usize) -> BenchResult<()> {
    let mut text = fs::read(path)?;
    text.extend_from_slice(format!("// edit {round}\n").as_bytes());
    fs::write(path, text)?;
    Ok(())
}

fn git(workspace: &Path, git_dir: Option<&Path>, args: &[&str]) -> BenchResult<()> {
    let mut command = Command::new("git");
    if let Some(git_dir) = git_dir {
        command
            .arg("--git-dir")
            .arg(git_dir)
            .arg("--work-tree")
            .arg(workspace);
    }
    let status = command
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "core.autocrlf=false",
        ])
        .args(args)
        .current_dir(workspace)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("git {args:?} failed").into());
    }
    Ok(())
}

fn git_status(workspace: &Path) -> BenchResult<()> {
    let status = Command::new("git")
        .args(["--no-optional-locks", "status", "--porcelain"])
        .current_dir(workspace)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err("git status failed".into());
    }
    Ok(())
}

/// (this process's CPU time, its waited-for children's), user + system.
fn cpu_times() -> (Duration, Duration) {
    let Ok(stat) = fs::read_to_string("/proc/self/stat") else {
        return (Duration::ZERO, Duration::ZERO);
    };
    // After the command name in parentheses come the state (index 0 here) and numbered
    // fields; utime, stime, cutime and cstime are at 11 to 14, in clock ticks (USER_HZ, 100).
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let tick = |i: usize| Duration::from_millis(10 * fields.get(i).copied().unwrap_or(0));
    (tick(11) + tick(12), tick(13) + tick(14))
}

fn own_cpu() -> Duration {
    cpu_times().0
}

fn children_cpu() -> Duration {
    cpu_times().1
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
