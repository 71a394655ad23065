//! Snapshot benchmark: tack's per-change snapshot and session checkpoint, side by side in one
//! run with the way OpenCode snapshots (a separate `GIT_DIR` over the worktree, `git add -A`
//! then `git write-tree`) and with `git status`, on the same tree.
//!
//! The tree is generated: `TACK_BENCH_FILES` files (default 100000) of a few hundred bytes,
//! 100 per directory, committed to a git repository so `git status` has an index. If
//! `TACK_BENCH_CHECKOUT` names a real checkout, it is measured too, read-only (no file of it is
//! changed: the snapshots record files as they are, and `git status` runs without taking
//! optional locks).
//!
//! Run: `cargo bench --bench snapshots` (from `server/`). It prints figures; it asserts none.

#![allow(clippy::print_stdout)]

use std::error::Error;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tack::snapshots::{SnapshotStore, no_overlay};

type BenchResult<T> = Result<T, Box<dyn Error>>;

fn main() -> BenchResult<()> {
    let files: usize = std::env::var("TACK_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
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
    Ok(())
}

/// Figures of one tree.
struct Figures {
    files: u64,
    snapshot_1: Stats,
    snapshot_100: Stats,
    checkpoint_first: Duration,
    checkpoint_after_change: Stats,
    checkpoint_new_process: Stats,
    git_status: Stats,
    opencode_first: Duration,
    opencode_after_change: Stats,
    tack_store_bytes: u64,
    opencode_store_bytes: u64,
    prune: Duration,
    tack_store_bytes_pruned: u64,
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

    let mut checkpoint_samples = Vec::new();
    let mut new_process_samples = Vec::new();
    let mut status_samples = Vec::new();
    let mut opencode_samples = Vec::new();

    git_status(workspace)?; // warm the index and caches once, like the other measurements
    let opencode_first = {
        git(workspace, Some(opencode_dir), &["init", "-q"])?;
        let started = Instant::now();
        git(workspace, Some(opencode_dir), &["add", "-A", "."])?;
        git(workspace, Some(opencode_dir), &["write-tree"])?;
        started.elapsed()
    };
    for (round, path) in touched.iter().take(5).enumerate() {
        if may_write {
            append_line(path, 9000 + round)?;
        }
        let started = Instant::now();
        store.checkpoint("bench")?;
        checkpoint_samples.push(started.elapsed());

        let started = Instant::now();
        SnapshotStore::open(data, workspace)?.checkpoint("bench")?;
        new_process_samples.push(started.elapsed());

        let started = Instant::now();
        git_status(workspace)?;
        status_samples.push(started.elapsed());

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
        checkpoint_after_change: stats(checkpoint_samples),
        checkpoint_new_process: stats(new_process_samples),
        git_status: stats(status_samples),
        opencode_first,
        opencode_after_change: stats(opencode_samples),
        tack_store_bytes,
        opencode_store_bytes: disk_usage(opencode_dir),
        prune,
        tack_store_bytes_pruned: pruned.bytes_after,
    })
}

fn print_table(title: &str, f: &Figures) {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let stat = |s: &Stats| format!("{} (p95 {})", ms(s.median), ms(s.p95));
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    println!();
    println!("== {title}: {} files in the checkpoint ==", f.files);
    println!("{:<44} {:<28} {:<28}", "", "tack", "baseline, same tree");
    println!(
        "{:<44} {:<28} {:<28}",
        "agent snapshot, 1 file touched",
        stat(&f.snapshot_1),
        "-"
    );
    println!(
        "{:<44} {:<28} {:<28}",
        "agent snapshot, 100 files touched",
        stat(&f.snapshot_100),
        "-"
    );
    println!(
        "{:<44} {:<28} {:<28}",
        "whole-tree snapshot, first",
        ms(f.checkpoint_first),
        format!("{} (OpenCode: add -A + write-tree)", ms(f.opencode_first))
    );
    println!(
        "{:<44} {:<28} {:<28}",
        "whole-tree snapshot after 1 change",
        stat(&f.checkpoint_after_change),
        format!("{} (OpenCode)", stat(&f.opencode_after_change))
    );
    println!(
        "{:<44} {:<28} {:<28}",
        "  same, new process (stat cache from disk)",
        stat(&f.checkpoint_new_process),
        format!("{} (git status)", stat(&f.git_status))
    );
    println!(
        "{:<44} {:<28} {:<28}",
        "store size",
        mib(f.tack_store_bytes),
        format!("{} (OpenCode GIT_DIR)", mib(f.opencode_store_bytes))
    );
    println!(
        "{:<44} {:<28} {:<28}",
        "store size after prune (packed), prune time",
        format!("{}, {}", mib(f.tack_store_bytes_pruned), ms(f.prune)),
        "-"
    );
    let target = if f.snapshot_1.median <= Duration::from_millis(5) {
        "met"
    } else {
        "MISSED"
    };
    let versus = f.checkpoint_after_change.median.as_secs_f64()
        / f.git_status.median.as_secs_f64().max(1e-9);
    println!(
        "target ≤ 5 ms per 1-file snapshot: {target}; checkpoint after 1 change = {versus:.2}× git status"
    );
}

/// Writes `files` small source files, 100 per directory.
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
        if out.len() >= limit || entry.file_name() == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), out, limit)?;
        } else if kind.is_file() {
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
