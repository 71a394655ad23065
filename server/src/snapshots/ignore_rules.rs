//! Which paths a checkpoint leaves out, the way git and ripgrep decide it: `.ignore` files
//! (any level, deepest first) take precedence over `.gitignore` files (deepest first, up to the
//! root of the repository the path is in), then that repository's `info/exclude`, then the
//! global excludes file (`core.excludesFile`). Ignore files in directories above the workspace
//! root count only up to the root of the repository that holds the workspace.
//!
//! Rules form a chain, one level per directory that has ignore files, shared by the
//! directories below it; a directory without any shares its parent's level. Each level has a
//! fingerprint of every ignore file in force (path and content): the stat cache records it per
//! directory, and while it is unchanged the files and subdirectories a directory's record holds
//! need no matching (git likewise matches only paths its index does not track). Only reading
//! is done here: ignore files and the repository's `info/exclude`, never anything else of
//! `.git`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::stat_cache::checksum;

/// The global excludes file's patterns and fingerprint.
pub(super) struct GlobalExcludes {
    pub matcher: Gitignore,
    fingerprint: u64,
}

/// The ignore files a directory listing showed.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct IgnoreFilesFound {
    pub dot_ignore: bool,
    pub git_ignore: bool,
    /// A `.git` directory or file: the directory is a repository's root.
    pub git: bool,
}

impl IgnoreFilesFound {
    pub fn any(self) -> bool {
        self.dot_ignore || self.git_ignore || self.git
    }
}

/// One level of rules and the levels above it.
pub(super) struct Rules {
    parent: Option<Arc<Rules>>,
    /// How a workspace-relative path is made relative to this level's directory.
    place: Place,
    dot_ignore: Option<Gitignore>,
    git_ignore: Option<Gitignore>,
    /// The repository's `info/exclude`, on the level of a repository's root.
    exclude: Option<Gitignore>,
    repository_root: bool,
    /// Some level of the chain, or the global excludes, has a pattern.
    any_patterns: bool,
    /// Of the ignore files in force here (see the module docs).
    fingerprint: u64,
}

enum Place {
    /// A directory of the workspace; the length of its relative path ("" is the root).
    Workspace(usize),
    /// A directory above the workspace root; the workspace root relative to it, ending in `/`.
    Above(String),
}

impl Rules {
    /// The rules in force at the workspace root before its own ignore files are read: those of
    /// the directories between it and the root of the repository holding it, if any.
    pub fn above_workspace(root: &Path, global: &GlobalExcludes) -> Arc<Rules> {
        let mut top = Arc::new(Rules {
            parent: None,
            place: Place::Workspace(0),
            dot_ignore: None,
            git_ignore: None,
            exclude: None,
            repository_root: false,
            any_patterns: !global.matcher.is_empty(),
            fingerprint: global.fingerprint,
        });
        if root.join(".git").symlink_metadata().is_ok() {
            return top;
        }
        let Some(repository) = root
            .ancestors()
            .skip(1)
            .find(|dir| dir.join(".git").symlink_metadata().is_ok())
        else {
            return top;
        };
        let mut between: Vec<&Path> = root
            .ancestors()
            .skip(1)
            .take_while(|dir| *dir != repository)
            .collect();
        between.push(repository);
        for dir in between.into_iter().rev() {
            let Ok(below) = root.strip_prefix(dir) else {
                continue;
            };
            let Some(below) = below.to_str() else {
                continue;
            };
            let found = IgnoreFilesFound {
                dot_ignore: dir.join(".ignore").is_file(),
                git_ignore: dir.join(".gitignore").is_file(),
                git: dir == repository,
            };
            top = Rules::level(&top, dir, Place::Above(format!("{below}/")), found);
        }
        top
    }

    /// The rules for a workspace directory whose listing showed `found`.
    pub fn child(
        parent: &Arc<Rules>,
        dir: &Path,
        relative: &str,
        found: IgnoreFilesFound,
    ) -> Arc<Rules> {
        if !found.any() {
            return Arc::clone(parent);
        }
        Rules::level(parent, dir, Place::Workspace(relative.len()), found)
    }

    fn level(parent: &Arc<Rules>, dir: &Path, place: Place, found: IgnoreFilesFound) -> Arc<Rules> {
        let mut fingerprint = parent.fingerprint;
        let mut read = |wanted: bool, file: PathBuf| {
            let (matcher, of_file) = wanted.then(|| matcher(dir, &file))?;
            fingerprint = checksum(fingerprint, &of_file.to_le_bytes());
            Some(matcher)
        };
        let dot_ignore = read(found.dot_ignore, dir.join(".ignore"));
        let git_ignore = read(found.git_ignore, dir.join(".gitignore"));
        let exclude = found
            .git
            .then(|| git_common_dir(dir))
            .flatten()
            .map(|common| common.join("info").join("exclude"))
            .and_then(|path| read(path.is_file(), path));
        let has = |m: &Option<Gitignore>| m.as_ref().is_some_and(|m| !m.is_empty());
        let any_patterns =
            parent.any_patterns || has(&dot_ignore) || has(&git_ignore) || has(&exclude);
        Arc::new(Rules {
            parent: Some(Arc::clone(parent)),
            place,
            dot_ignore,
            git_ignore,
            exclude,
            repository_root: found.git,
            any_patterns,
            fingerprint,
        })
    }

    /// Of the ignore files in force (see the module docs).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether some rule could ignore something (else matching is skipped).
    pub fn any_patterns(&self) -> bool {
        self.any_patterns
    }

    /// Whether the workspace-relative `path` is left out.
    pub fn ignores(&self, path: &str, is_dir: bool, global: &GlobalExcludes) -> bool {
        if !self.any_patterns {
            return false;
        }
        let levels = || std::iter::successors(Some(self), |level| level.parent.as_deref());
        for level in levels() {
            if let Some(decided) = level.decide(level.dot_ignore.as_ref(), path, is_dir) {
                return decided;
            }
        }
        let mut exclude = None;
        for level in levels() {
            if let Some(decided) = level.decide(level.git_ignore.as_ref(), path, is_dir) {
                return decided;
            }
            if level.repository_root {
                exclude = Some(level);
                break;
            }
        }
        if let Some(level) = exclude
            && let Some(decided) = level.decide(level.exclude.as_ref(), path, is_dir)
        {
            return decided;
        }
        match global.matcher.matched(path, is_dir) {
            Match::Ignore(_) => true,
            Match::Whitelist(_) | Match::None => false,
        }
    }

    /// `Some(ignored)` if `matcher` has a say on `path`.
    fn decide(&self, matcher: Option<&Gitignore>, path: &str, is_dir: bool) -> Option<bool> {
        let matcher = matcher.filter(|m| !m.is_empty())?;
        let decision = match &self.place {
            Place::Workspace(0) => matcher.matched(path, is_dir),
            Place::Workspace(len) => matcher.matched(path.get(len + 1..)?, is_dir),
            Place::Above(prefix) => matcher.matched(format!("{prefix}{path}"), is_dir),
        };
        match decision {
            Match::Ignore(_) => Some(true),
            Match::Whitelist(_) => Some(false),
            Match::None => None,
        }
    }
}

/// The global excludes file (`core.excludesFile`, else `$XDG_CONFIG_HOME/git/ignore`); empty
/// if there is none.
pub(super) fn global_excludes(root: &Path) -> GlobalExcludes {
    match ignore::gitignore::gitconfig_excludes_path().filter(|path| path.is_file()) {
        Some(path) => {
            let (matcher, fingerprint) = matcher(root, &path);
            GlobalExcludes {
                matcher,
                fingerprint,
            }
        }
        None => GlobalExcludes {
            matcher: Gitignore::empty(),
            fingerprint: 0,
        },
    }
}

/// The patterns of the ignore `file` that applies in `dir`, and a fingerprint of its path
/// and content. An unreadable file has no patterns (with a warning); so has a bad line.
fn matcher(dir: &Path, file: &Path) -> (Gitignore, u64) {
    let content = fs::read(file).unwrap_or_else(|error| {
        tracing::warn!(path = %file.display(), %error, "checkpoint: an ignore file is unreadable");
        Vec::new()
    });
    let fingerprint = checksum(checksum(0, file.as_os_str().as_encoded_bytes()), &content);
    let mut builder = GitignoreBuilder::new(dir);
    let text = String::from_utf8_lossy(&content);
    for (number, line) in text.lines().enumerate() {
        // Like git, a byte order mark at the start is not part of the first pattern.
        let line = if number == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if let Err(error) = builder.add_line(Some(file.to_path_buf()), line) {
            tracing::warn!(path = %file.display(), line = number + 1, %error, "checkpoint: a bad ignore pattern is skipped");
        }
    }
    let matcher = builder.build().unwrap_or_else(|error| {
        tracing::warn!(path = %file.display(), %error, "checkpoint: an ignore file is ignored");
        Gitignore::empty()
    });
    (matcher, fingerprint)
}

/// The git directory whose `info/exclude` applies in `dir`: `dir/.git`, or for a linked
/// worktree (a `.git` file naming its git directory) the repository's common directory.
fn git_common_dir(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    let meta = dot_git.symlink_metadata().ok()?;
    if meta.is_dir() {
        return Some(dot_git);
    }
    let text = fs::read_to_string(&dot_git).ok()?;
    let git_dir = dir.join(text.strip_prefix("gitdir:")?.trim());
    match fs::read_to_string(git_dir.join("commondir")) {
        Ok(common) => Some(git_dir.join(common.trim())),
        Err(_) => Some(git_dir),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn global(fingerprint: u64) -> GlobalExcludes {
        GlobalExcludes {
            matcher: Gitignore::empty(),
            fingerprint,
        }
    }

    /// The rules of `workspace` and of its `sub` directory, as a walk builds them.
    fn workspace_and_sub(workspace: &Path, global: &GlobalExcludes) -> (Arc<Rules>, Arc<Rules>) {
        let found = |dir: &Path| IgnoreFilesFound {
            dot_ignore: dir.join(".ignore").exists(),
            git_ignore: dir.join(".gitignore").exists(),
            git: dir.join(".git").exists(),
        };
        let above = Rules::above_workspace(workspace, global);
        let root = Rules::child(&above, workspace, "", found(workspace));
        let sub_dir = workspace.join("sub");
        let sub = Rules::child(&root, &sub_dir, "sub", found(&sub_dir));
        (root, sub)
    }

    fn write_files(root: &Path, files: &[(&str, &str)]) {
        for (path, content) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
    }

    #[test]
    fn deeper_files_win_ignore_files_beat_gitignore_and_exclude_applies_at_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        write_files(
            dir.path(),
            &[
                ("repo/.gitignore", "*.log\nbuild/\n"),
                ("repo/.git/info/exclude", "secret.txt\n"),
                ("repo/ws/.gitignore", "!keep.log\n/top-only\n"),
                ("repo/ws/sub/.gitignore", "keep.log\n"),
                ("repo/ws/sub/.ignore", "!kept-by-ignore.log\n"),
            ],
        );
        let global = global(0);
        let (root, sub) = workspace_and_sub(&dir.path().join("repo/ws"), &global);
        let cases = [
            (&root, "x.log", false, true, "a parent's .gitignore applies"),
            (&root, "keep.log", false, false, "a deeper negation wins"),
            (
                &root,
                "build",
                true,
                true,
                "directory patterns match directories",
            ),
            (&root, "build", false, false, "and not files"),
            (&root, "top-only", false, true, "anchored at its directory"),
            (&root, "secret.txt", false, true, "info/exclude applies"),
            (&sub, "sub/top-only", false, false, "not below it"),
            (
                &sub,
                "sub/keep.log",
                false,
                true,
                "the deepest .gitignore wins",
            ),
            (
                &sub,
                "sub/kept-by-ignore.log",
                false,
                false,
                ".ignore beats every .gitignore",
            ),
            (&sub, "sub/main.rs", false, false, "nothing matches"),
        ];
        for (rules, path, is_dir, ignored, why) in cases {
            assert_eq!(
                rules.ignores(path, is_dir, &global),
                ignored,
                "{path}: {why}"
            );
        }
    }

    #[test]
    fn without_a_repository_only_the_workspace_own_files_count() {
        let dir = tempfile::tempdir().unwrap();
        write_files(
            dir.path(),
            &[(".gitignore", "*.rs\n"), ("ws/.gitignore", "*.tmp\n")],
        );
        let workspace = dir.path().join("ws");
        let global = global(0);
        assert!(!Rules::above_workspace(&workspace, &global).any_patterns());
        let (root, _) = workspace_and_sub(&workspace, &global);
        assert!(!root.ignores("main.rs", false, &global));
        assert!(root.ignores("x.tmp", false, &global));
    }

    #[test]
    fn the_fingerprint_follows_the_content_of_every_ignore_file_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        write_files(&workspace, &[(".gitignore", "*.tmp\n"), ("sub/f", "")]);
        let global = global(7);
        let chain = || {
            let (root, sub) = workspace_and_sub(&workspace, &global);
            (root.fingerprint(), sub.fingerprint())
        };
        let before = chain();
        assert_eq!(
            before.0, before.1,
            "a directory without ignore files shares its parent's"
        );
        assert_eq!(chain(), before, "same files, same fingerprint");
        fs::write(workspace.join(".gitignore"), "*.bak\n").unwrap();
        let after = chain();
        assert!(after.0 != before.0 && after.1 != before.1);
        fs::write(workspace.join("sub/.ignore"), "x\n").unwrap();
        let deeper = chain();
        assert_eq!(deeper.0, after.0);
        assert_ne!(deeper.1, after.1);
    }
}
