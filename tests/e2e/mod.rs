//! End-to-end tests against real tools: real editors and real language servers, installed by
//! `tests/e2e/setup.sh`. A test whose tool is missing fails and says to run that script; none
//! is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nvim;
mod servers;
mod vscode;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The folder `tests/e2e/setup.sh` installs into: `$E2E_TOOLS_DIR`, else `~/.cache/tack-tools`.
fn tools_dir() -> Option<PathBuf> {
    match std::env::var_os("E2E_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/tack-tools")),
    }
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Finds an executable the end-to-end tests need: first among the pinned tools in the tools
/// folder's `bin/`, then on `PATH`. Panics, telling how to install it, when it is nowhere.
pub fn tool(name: &str) -> PathBuf {
    let pinned = tools_dir().map(|dir| dir.join("bin").join(name));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    pinned
        .into_iter()
        .chain(on_path)
        .find(|candidate| is_executable_file(candidate))
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (looked in {} and on PATH): run tests/e2e/setup.sh",
                tools_dir().map_or_else(
                    || "$E2E_TOOLS_DIR/bin".to_owned(),
                    |dir| dir.join("bin").display().to_string()
                )
            )
        })
}

/// What a finished child process left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to completion with its output captured, killing it and panicking (with what
/// it printed) when it outlives `limit`.
pub fn run_with_limit(command: &mut Command, limit: Duration) -> Finished {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    match status {
        Some(status) => Finished {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{command:?} still running after {limit:?}; killed it.\nstdout:\n{stdout}\nstderr:\n{stderr}"
        ),
    }
}

/// The first line `tool --version` prints (some tools print it on stderr).
fn version_line(tool_path: &Path) -> String {
    let finished = run_with_limit(
        Command::new(tool_path).arg("--version"),
        Duration::from_secs(30),
    );
    assert!(
        finished.status.success(),
        "{} --version failed: {}",
        tool_path.display(),
        finished.stderr
    );
    let text = if finished.stdout.trim().is_empty() {
        finished.stderr
    } else {
        finished.stdout
    };
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn setup_installed_every_tool_at_its_pinned_version() {
    let expectations = [
        ("clangd", "clangd version 14."),
        ("nvim", "NVIM v0.11."),
        ("tsc", "Version 7."),
        ("pyright", "pyright 1.1."),
        ("pylsp", "pylsp v1."),
        ("typescript-language-server", "5.1.3"),
        ("bash-language-server", "5.8.1"),
        ("git", "git version 2."),
    ];
    for (name, expected) in expectations {
        let line = version_line(&tool(name));
        assert!(
            line.contains(expected),
            "{name} --version says {line:?}, expected {expected:?}"
        );
    }
    assert!(is_executable_file(&tool("pyright-langserver")));
}

#[test]
#[should_panic(expected = "run tests/e2e/setup.sh")]
fn a_missing_tool_fails_with_the_install_hint() {
    tool("tack-e2e-no-such-tool");
}
