//! The repository-map benchmark: tack's map built cold, warm and after one changed file, on
//! two real trees of ~1.5–2k files — this machine's Rust standard library sources (rust-src)
//! and the Python standard library — next to Aider's repository map on the same files, in
//! the same run. Also: one keystroke's incremental reparse of a large open document.
//!
//! The trees are copied once to `~/.cache/tack-bench/trees/` (Aider writes its tags cache into
//! the tree, and the change step edits a file). Aider is installed from PyPI into a venv at
//! `~/.cache/tack-aider` if it is not there; when that fails the benchmark says so and prints
//! tack's figures alone. `TACK_BENCH_SKIP_AIDER=1` skips Aider (said so in the output).
//!
//! Targets (tack): cold ≤ 1 s, warm ≤ 50 ms, update after a one-file change ≤ 10 ms.
//!
//! Run: `cargo bench --bench context` (release).

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tack::documents::{ContentChange, Document, Position, Range, TextEdits};
use tack::syntax::repo_map::Focus;
use tack::syntax::{Language, MapOptions, OpenTrees, RepoIndex};

const MAP_TOKENS: usize = 1024;

fn main() {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let bench = home.join(".cache/tack-bench");
    println!("machine: {} cores, load average {}", cores(), load());
    let trees = [
        ("rust-library", rust_library(), "rs"),
        ("python-stdlib", python_stdlib(), "py"),
    ];
    let aider = if std::env::var_os("TACK_BENCH_SKIP_AIDER").is_some() {
        Err("skipped (TACK_BENCH_SKIP_AIDER is set)".to_owned())
    } else {
        aider_python(&home)
    };
    if let Err(why) = &aider {
        println!("aider: not measured: {why}");
    }
    for (name, source, extension) in trees {
        let Some(source) = source else {
            println!("\ntree {name}: not found on this machine; skipped");
            continue;
        };
        let root = match copy_tree(&source, &bench.join("trees").join(name)) {
            Ok(root) => root,
            Err(error) => {
                println!("\ntree {name}: cannot copy {}: {error}", source.display());
                continue;
            }
        };
        bench_tree(name, &root, extension, &bench, aider.as_ref().ok());
    }
    println!("\nmachine load average at the end: {}", load());
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `rustc --print sysroot`/lib/rustlib/src/rust/library, installing rust-src if needed.
fn rust_library() -> Option<PathBuf> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(sysroot.stdout).ok()?;
    let library = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library");
    if !library.is_dir() {
        println!("rust-src is not installed: rustup component add rust-src");
        let _ = Command::new("rustup")
            .args(["component", "add", "rust-src"])
            .status();
    }
    library.is_dir().then_some(library)
}

/// The pyenv Python 3.11 standard library, else the system's.
fn python_stdlib() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(home.join(".pyenv/versions"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("3.11"))
        })
        .map(|p| p.join("lib/python3.11"))
        .collect();
    candidates.push(PathBuf::from("/usr/lib/python3.11"));
    candidates.into_iter().find(|p| p.join("os.py").is_file())
}

/// Copies `source` to `target` once (without `site-packages`); the copy is what both tools
/// read.
fn copy_tree(source: &Path, target: &Path) -> std::io::Result<PathBuf> {
    let stamp = target.join(".tack-bench-copied");
    if !stamp.is_file() {
        let _ = std::fs::remove_dir_all(target);
        std::fs::create_dir_all(target)?;
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", source.display()))
            .arg(target)
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other("cp failed"));
        }
        let _ = std::fs::remove_dir_all(target.join("site-packages"));
        std::fs::write(&stamp, source.display().to_string())?;
    }
    target.canonicalize()
}

/// CPU time this process has used (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// One thread's time to parse every indexed file, and to take the tags from those trees.
fn cold_breakdown(index: &RepoIndex, root: &Path, max_bytes: u64) -> (Duration, Duration) {
    let mut parse = Duration::ZERO;
    let mut tags = Duration::ZERO;
    for file in index.files().iter().filter(|f| f.stamp.size <= max_bytes) {
        let Ok(text) = std::fs::read(root.join(&file.path)) else {
            continue;
        };
        let started = Instant::now();
        let Ok(tree) = tack::syntax::tags::parse(file.language, &text, None) else {
            continue;
        };
        parse += started.elapsed();
        let started = Instant::now();
        let _ = tack::syntax::tags::extract(file.language, &tree, &text);
        tags += started.elapsed();
    }
    (parse, tags)
}

/// Wall time to parse every indexed file on `threads` threads, texts read beforehand: the
/// floor of a cold build on this machine, which parses them all and does more.
fn parallel_parse_wall(index: &RepoIndex, root: &Path, max_bytes: u64, threads: usize) -> Duration {
    let texts: Vec<(Language, Vec<u8>)> = index
        .files()
        .iter()
        .filter(|f| f.stamp.size <= max_bytes)
        .filter_map(|f| Some((f.language, std::fs::read(root.join(&f.path)).ok()?)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some((language, text)) =
                    texts.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    let _ = tack::syntax::tags::parse(*language, text, None);
                }
            });
        }
    });
    started.elapsed()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn bench_tree(name: &str, root: &Path, extension: &str, bench: &Path, aider: Option<&PathBuf>) {
    let cache_dir = bench.join("tack-cache").join(name);
    let cache_file = cache_dir.join("tags.bin");
    let options = MapOptions {
        cache_file: Some(cache_file.clone()),
        ..MapOptions::for_root(root)
    };

    // Cold: no cache on disk, nothing in memory.
    let mut colds = Vec::new();
    let mut cold_cpu = Vec::new();
    let mut index = None;
    let mut save = Duration::ZERO;
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(&cache_dir);
        let started = Instant::now();
        let cpu = cpu_time();
        let built = RepoIndex::build(root, options.clone());
        let map = built.render(&Focus::default(), MAP_TOKENS);
        colds.push(started.elapsed());
        cold_cpu.push(cpu_time().saturating_sub(cpu));
        assert!(!map.text.is_empty());
        let mut built = built;
        let saving = Instant::now();
        let _ = built.save_cache();
        save = saving.elapsed();
        index = Some(built);
    }
    let Some(mut index) = index else { return };
    let stats = index.last_stats();
    let parsed_bytes: u64 = index
        .files()
        .iter()
        .filter(|f| f.stamp.size <= options.max_file_bytes)
        .map(|f| f.stamp.size)
        .sum();
    let large_bytes: u64 = index
        .files()
        .iter()
        .filter(|f| f.stamp.size > options.max_file_bytes)
        .map(|f| f.stamp.size)
        .sum();
    println!(
        "\ntree {name} ({}): {} .{extension}-and-other source files, {:.1} MB parsed; {} files over {} KiB ({:.1} MB, generated code) not parsed",
        root.display(),
        stats.files,
        parsed_bytes as f64 / 1e6,
        stats.too_large,
        options.max_file_bytes / 1024,
        large_bytes as f64 / 1e6
    );

    // Cold with no size limit, once, for comparison.
    let unlimited = {
        let started = Instant::now();
        let all = RepoIndex::build(
            root,
            MapOptions {
                max_file_bytes: u64::MAX,
                cache_file: None,
                ..options.clone()
            },
        );
        let _ = all.render(&Focus::default(), MAP_TOKENS);
        started.elapsed()
    };

    // Warm, new process: a new index over the cache file.
    let mut warm_new = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let warm = RepoIndex::build(root, options.clone());
        let map = warm.render(&Focus::default(), MAP_TOKENS);
        warm_new.push(started.elapsed());
        assert_eq!(warm.last_stats().parsed, 0);
        assert!(!map.text.is_empty());
    }
    // Warm, same process: the walk and stat again, then the map.
    let mut warm_same = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        index.refresh();
        let _ = index.render(&Focus::default(), MAP_TOKENS);
        warm_same.push(started.elapsed());
    }
    // The map alone (ranking and rendering over the index in memory).
    let mut render_only = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let _ = index.render(&Focus::default(), MAP_TOKENS);
        render_only.push(started.elapsed());
    }

    // One file changed on disk: its tags again, then the map.
    let changed = pick_changed_file(&index);
    let changed_path = root.join(&changed);
    let original = std::fs::read(&changed_path).unwrap_or_default();
    let mut updates = Vec::new();
    let mut update_only = Vec::new();
    for round in 0..10 {
        let mut text = original.clone();
        text.extend_from_slice(format!("\n{}\n", comment(extension, round)).as_bytes());
        let _ = std::fs::write(&changed_path, &text);
        let started = Instant::now();
        let _ = index.update_file(&changed);
        update_only.push(started.elapsed());
        let _ = index.render(&Focus::default(), MAP_TOKENS);
        updates.push(started.elapsed());
    }
    let _ = std::fs::write(&changed_path, &original);
    let _ = index.update_file(&changed);

    // One keystroke in a large open document: edit the tree, reparse incrementally.
    let (keystroke, keystroke_file) = keystroke(&index, root);
    let (parse_cpu, tags_cpu) = cold_breakdown(&index, root, options.max_file_bytes);
    let parse_walls: Vec<Duration> = (0..3)
        .map(|_| parallel_parse_wall(&index, root, options.max_file_bytes, cores()))
        .collect();

    println!(
        "  tack  cold (empty cache, {} threads)           median {} of 3 (min {}; CPU time {}); saving the cache {}; with no size limit {}",
        cores(),
        ms(median(colds.clone())),
        ms(*colds.iter().min().unwrap_or(&Duration::ZERO)),
        ms(median(cold_cpu)),
        ms(save),
        ms(unlimited)
    );
    println!(
        "  tack  cold, where the CPU goes (one thread):   tree-sitter parsing {}, tags from the trees {}",
        ms(parse_cpu),
        ms(tags_cpu),
    );
    println!(
        "  floor: tree-sitter parsing alone, {} threads    median {} of 3 wall (texts in memory; no walk, tags, ranking or cache) — {:.2}x the speed of one thread",
        cores(),
        ms(median(parse_walls.clone())),
        parse_cpu.as_secs_f64() / median(parse_walls).as_secs_f64()
    );
    println!(
        "  tack  warm, new index over the disk cache      median {} of 5",
        ms(median(warm_new))
    );
    println!(
        "  tack  warm, same index: walk + stat + map      median {} of 5 (the map alone {})",
        ms(median(warm_same)),
        ms(median(render_only))
    );
    println!(
        "  tack  one file changed: update + map           median {} of 10 (the update alone {}) — {changed}",
        ms(median(updates)),
        ms(median(update_only))
    );
    println!(
        "  tack  one keystroke in an open document        median {} of 20 (tree edit and incremental reparse of {keystroke_file})",
        ms(keystroke)
    );
    println!("  targets: cold <= 1 s, warm <= 50 ms, update after a one-file change <= 10 ms");

    match aider {
        None => println!("  aider not measured (see above)"),
        Some(python) => match run_aider(python, root, &index, &changed, bench) {
            Ok(figures) => println!("  aider {figures}"),
            Err(error) => println!("  aider failed on this tree: {error}"),
        },
    }
}

fn comment(extension: &str, round: usize) -> String {
    match extension {
        "py" => format!("# benchmark edit {round}"),
        _ => format!("// benchmark edit {round}"),
    }
}

/// A mid-sized file with definitions (the change step's file).
fn pick_changed_file(index: &RepoIndex) -> String {
    let mut files: Vec<_> = index
        .files()
        .iter()
        .filter(|f| !f.tags.symbols.is_empty())
        .collect();
    files.sort_by_key(|f| f.stamp.size);
    files
        .get(files.len() / 2)
        .map(|f| f.path.clone())
        .unwrap_or_default()
}

/// Median time of 20 one-character edits in the largest parsed file, each reparsed.
fn keystroke(index: &RepoIndex, root: &Path) -> (Duration, String) {
    let Some(file) = index
        .files()
        .iter()
        .filter(|f| !f.tags.symbols.is_empty())
        .max_by_key(|f| f.stamp.size)
    else {
        return (Duration::ZERO, String::new());
    };
    let text = std::fs::read_to_string(root.join(&file.path)).unwrap_or_default();
    let language = Language::from_path(Path::new(&file.path)).unwrap_or(Language::Rust);
    let mut document = Document::new(
        format!("file:///{}", file.path),
        language.id().to_owned(),
        1,
        &text,
    );
    let mut trees = OpenTrees::new();
    trees.open(&document);
    let middle = (document.line_count() / 2) as u32;
    let mut times = Vec::new();
    for round in 0..20 {
        let at = Position {
            line: middle,
            character: 0,
        };
        let change = ContentChange {
            range: Some(Range { start: at, end: at }),
            text: if round % 2 == 0 {
                " ".to_owned()
            } else {
                "x".to_owned()
            },
        };
        let edits = TextEdits::Ranges(document.apply_change(&change).into_iter().collect());
        document.version += 1;
        let started = Instant::now();
        trees.change(&edits, &document);
        // The tree is edited on the change and reparsed when next asked for.
        let _ = trees.current(&document);
        times.push(started.elapsed());
    }
    (
        median(times),
        format!("{}, {} KB", file.path, file.stamp.size / 1000),
    )
}

/// The venv's Python with aider-chat, installing it from PyPI when missing.
fn aider_python(home: &Path) -> Result<PathBuf, String> {
    let venv = home.join(".cache/tack-aider");
    let python = venv.join("bin/python");
    let has_aider = |python: &Path| {
        Command::new(python)
            .args(["-c", "import aider.repomap"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.is_file() && has_aider(&python) {
        return Ok(python);
    }
    println!(
        "aider: installing aider-chat from PyPI into {} (once; a few minutes)",
        venv.display()
    );
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !created.success() {
        return Err("python3 -m venv failed (is python3-venv installed?)".to_owned());
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "aider-chat"])
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !installed.success() || !has_aider(&python) {
        return Err("pip install aider-chat failed".to_owned());
    }
    Ok(python)
}

/// Aider's RepoMap on the files tack parsed, through `aider_repomap.py`.
fn run_aider(
    python: &Path,
    root: &Path,
    index: &RepoIndex,
    changed: &str,
    bench: &Path,
) -> Result<String, String> {
    let listing = bench.join(format!("files-{}.txt", index.files().len()));
    let files: Vec<&str> = index
        .files()
        .iter()
        .filter(|f| f.stamp.size <= tack::syntax::repo_map::DEFAULT_MAX_FILE_BYTES)
        .map(|f| f.path.as_str())
        .collect();
    std::fs::write(&listing, files.join("\n")).map_err(|e| e.to_string())?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bench/aider_repomap.py");
    let aider_home = bench.join("aider-home");
    let _ = std::fs::create_dir_all(&aider_home);
    let output = Command::new(python)
        .arg(script)
        .arg(root)
        .arg(&listing)
        .arg(changed)
        .env("HOME", &aider_home)
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("no output")
            .to_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let figures: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let seconds = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
    Ok(format!(
        "cold {:.1} s, warm (new RepoMap over its cache) {:.2} s, after one change {:.2} s — same {} files",
        seconds("cold"),
        seconds("warm"),
        seconds("changed"),
        figures["files"]
    ))
}
