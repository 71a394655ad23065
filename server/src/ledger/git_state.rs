//! The workspace repository's state when a session starts: HEAD's commit and branch, and
//! whether anything differs from it. Read only: the user's repository is opened, never
//! written (no index refresh is written back).

use std::path::Path;

use crate::agent::protocol::GitState;

/// `None` when `root` is not inside a git repository (or it cannot be read).
pub fn git_state(root: &Path) -> Option<GitState> {
    let repo = git2::Repository::discover(root).ok()?;
    if repo.is_bare() {
        return None;
    }
    let head = repo.head().ok();
    let commit = head
        .as_ref()
        .and_then(|head| head.peel_to_commit().ok())
        .map(|commit| commit.id().to_string());
    let branch = head
        .as_ref()
        .filter(|head| head.is_branch())
        .and_then(|head| head.shorthand().ok().map(str::to_owned));
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let dirty = repo
        .statuses(Some(&mut options))
        .map(|statuses| !statuses.is_empty())
        .unwrap_or(false);
    Some(GitState {
        head: commit,
        branch,
        dirty,
    })
}
