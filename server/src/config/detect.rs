//! Looking at the machine and the workspace: finding a server's program on `PATH`, and
//! finding which languages a workspace holds with a bounded walk.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use super::Config;

/// A sensible bound for [`detect_languages`]: enough to see a real project, quick on a huge one.
pub const DEFAULT_DETECTION_LIMIT: usize = 10_000;

/// Directory names never walked into (hidden directories, `.git` among them, are skipped too).
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", "build", "__pycache__"];

/// The program `command` names: a path (absolute, or relative with a separator) is used as
/// given when it is an executable file; a bare name is searched in `PATH`.
pub fn find_in_path(command: &str) -> Option<PathBuf> {
    if command.is_empty() {
        return None;
    }
    let as_path = Path::new(command);
    if as_path.is_absolute() || as_path.components().count() > 1 {
        return is_executable_file(as_path).then(|| as_path.to_path_buf());
    }
    let search_path = std::env::var_os("PATH")?;
    std::env::split_paths(&search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable_file(candidate))
}

#[cfg(unix)]
fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable_file(path: &Path) -> bool {
    path.is_file()
}

/// The language ids present under `root`: a breadth-first walk that looks at no more than
/// `limit` directory entries (skipping hidden directories, `target`, `node_modules`, `build`,
/// `__pycache__`, and never following symbolic links), then the root markers. A root marker
/// at `root` (for example `Cargo.toml`) stands for its server's first language when the walk
/// found none of that server's languages.
pub fn detect_languages(root: &Path, config: &Config, limit: usize) -> BTreeSet<String> {
    let mut languages = BTreeSet::new();
    let mut pending_dirs = VecDeque::from([root.to_path_buf()]);
    let mut entries_seen = 0usize;
    'walk: while let Some(dir) = pending_dirs.pop_front() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entries_seen >= limit {
                break 'walk;
            }
            entries_seen += 1;
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if file_type.is_dir() {
                let skipped = name
                    .to_str()
                    .is_none_or(|name| name.starts_with('.') || SKIPPED_DIRS.contains(&name));
                if !skipped {
                    pending_dirs.push_back(entry.path());
                }
            } else if let Some(language) = config.language_of_path(Path::new(&name)) {
                languages.insert(language.to_owned());
            }
        }
    }
    for server in config.servers.values().filter(|server| server.enabled) {
        let already_found = server.languages.iter().any(|id| languages.contains(id));
        if already_found {
            continue;
        }
        let marked = server
            .root_markers
            .iter()
            .any(|marker| root.join(marker).exists());
        if let (true, Some(first)) = (marked, server.languages.first()) {
            languages.insert(first.clone());
        }
    }
    languages
}
