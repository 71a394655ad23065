//! Shared support for the integration tests: where the binaries under test are, file URIs,
//! temporary workspaces, and the LSP [`TestClient`].
//!
//! Not every test module uses every helper, hence `dead_code` is allowed here.
#![allow(dead_code)]

pub mod client;
pub mod fake_model;

pub use client::TestClient;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The `tack` binary cargo built for this test run.
pub fn tack_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tack"))
}

/// `tack` with `args`, run in `workspace` with its own config, data and state folders
/// (`.home` inside it), quiet logs, and no provider keys from the environment.
pub fn tack_in(workspace: &Workspace, args: &[&str]) -> Command {
    let home = workspace.path(".home").display().to_string();
    let mut command = Command::new(tack_path());
    command
        .args(args)
        .current_dir(workspace.root())
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_DATA_HOME", &home)
        .env("XDG_STATE_HOME", &home)
        .env("TACK_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY");
    command
}

/// The fake language server (the `fake-lsp` example), next to the `tack` binary.
///
/// `cargo test` / `cargo nextest run` build examples, but a run narrowed with `--test all` does
/// not; so when the example is missing or older than its sources (or tack's library sources),
/// it is built here, once per test process, with the same cargo, profile and target folder.
pub fn fake_lsp_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let profile_dir = tack_path()
            .parent()
            .expect("the tack binary lives in a profile folder")
            .to_path_buf();
        let path = profile_dir
            .join("examples")
            .join(format!("fake-lsp{}", std::env::consts::EXE_SUFFIX));
        if fake_lsp_is_stale(&path) {
            build_fake_lsp(&profile_dir);
        }
        assert!(path.is_file(), "{} was not built", path.display());
        path
    })
    .clone()
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fake_lsp_is_stale(binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    let sources = [
        manifest_dir().join("src"),
        manifest_dir().join("../tests/fake_lsp"),
        manifest_dir().join("Cargo.toml"),
    ];
    sources
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

fn build_fake_lsp(profile_dir: &Path) {
    let target_dir = profile_dir
        .parent()
        .expect("a profile folder lives in the target folder");
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("the profile folder has a name");
    let mut command = Command::new(env!("CARGO"));
    command
        .args([
            "build",
            "--quiet",
            "--example",
            "fake-lsp",
            "--manifest-path",
        ])
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
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the fake-lsp example failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `file://` URI of an absolute path.
pub fn file_uri(path: &Path) -> String {
    url::Url::from_file_path(path)
        .unwrap_or_else(|()| panic!("{} is not an absolute path", path.display()))
        .to_string()
}

/// The path of a `file://` URI.
pub fn path_of_uri(uri: &str) -> PathBuf {
    url::Url::parse(uri)
        .ok()
        .and_then(|url| url.to_file_path().ok())
        .unwrap_or_else(|| panic!("{uri} is not a file URI"))
}

/// A temporary folder to run a server in; removed when dropped.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tack-test-")
            .tempdir()
            .expect("create a temporary folder");
        Self { dir }
    }

    /// The workspace folder, canonicalized (so URIs the server sends back compare equal).
    pub fn root(&self) -> PathBuf {
        self.dir
            .path()
            .canonicalize()
            .expect("the temporary folder exists")
    }

    /// The absolute path of `relative` inside the workspace (which need not exist).
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn uri(&self, relative: &str) -> String {
        file_uri(&self.path(relative))
    }

    /// Writes a file (creating its folders) and returns its absolute path.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&path, text).expect("write a workspace file");
        path
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}
