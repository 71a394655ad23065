//! Snapshots: a git2 shadow store that backs every agent change, so any change can be undone,
//! redone, or rolled back to any point of a session without ever touching the user's own
//! repository.
//!
//! # Layout on disk
//!
//! One store per workspace, under `<data dir>/snapshots/<key>/`, where `<key>` is a hash of the
//! canonical workspace path (the data dir is `$XDG_DATA_HOME/tack` or `~/.local/share/tack`):
//!
//! - `objects.git/` — a bare git repository used only as a content-addressed object database
//!   (loose objects, packed by pruning). Blobs are git blobs, so identical content is stored
//!   once. No refs, no index, no worktree.
//! - `sessions/<session>.jsonl` — one append-only log per session: change begun, change
//!   committed, change abandoned, checkpoint taken, undo/redo/restore applied. A torn last line
//!   (a process killed mid-write) is skipped.
//! - `lock` — an advisory file lock held for the microseconds it takes to append to a log or
//!   a stat cache delta, or to delete a batch of unreachable objects during pruning.
//! - `stat-cache` — the session checkpoint's cache of file stat data and hashes per directory,
//!   like git's index: a base and appended deltas holding only the directories that changed
//!   (see `stat_cache.rs`), so a checkpoint costs what `git status` costs or less.
//! - `workspace` — the workspace path the key stands for; `last-prune` — when
//!   [`SnapshotStore::prune_if_due`] last ran.
//!
//! # Model
//!
//! A *change* is what one mutating agent step did to an explicit list of files: the pre-image
//! of each (taken from the editor's unsaved buffer when one is open, else from disk) and the
//! post-image. Cost is O(files touched), independent of tree size. Changes form an undo stack
//! per session; undo, redo and "restore to a point" produce a [`RestorePlan`]: per file the
//! content to write or a delete, obtained by a three-way merge against what is there now, so a
//! user edit made after the agent's change is kept, or the plan refuses with the conflicting
//! line ranges. Applying a plan is a separate step: open buffers go through the editor, closed
//! files are written atomically ([`RestorePlan::apply_to_disk`]); then
//! [`SnapshotStore::record_applied`] moves the session's position.
//!
//! A *checkpoint* records the whole worktree (honouring `.gitignore`, `.ignore`, the
//! repository's `info/exclude` and the global excludes file) as a git tree, built
//! incrementally from a stat cache, for "put everything back as it was at the start". The
//! walk (`scan.rs`) lists each directory once and `statat`s each file relative to it; files
//! whose stat data the cache trusts are neither read nor matched against ignore rules again;
//! only the trees of directories whose content changed are written. The trees equal what
//! `git add -A && git write-tree` writes for the same files
//! (`tests::checkpoint_trees_equal_gits_own_through_deletes_renames_and_ignore_changes`).
//!
//! The user's repository is never opened: the store is a separate repository, nothing here
//! runs git commands or reads the user's index; the checkpoint walk only reads ignore files.
//!
//! # Invariants and the tests that hold them
//!
//! - Invariant 4, no agent change without a snapshot, and undo never silently overwrites a
//!   user edit: `begin_change` returns only after the pre-images are stored and logged
//!   (`tests::an_interrupted_change_is_undone_to_its_pre_image_with_a_note`); undo merges
//!   (`tests::undo_merges_a_user_edit_elsewhere_in_the_file`,
//!   `tests::user_edits_made_between_agent_changes_survive_a_multi_step_restore`) or refuses
//!   with ranges and changes nothing
//!   (`tests::undo_refuses_on_the_same_lines_lists_them_and_changes_nothing`,
//!   `tests::a_plan_is_refused_when_the_disk_changed_after_it_was_made`).
//! - Invariant 5, the user's repository is never touched:
//!   `tests::a_git_repository_is_byte_identical_after_a_whole_session`; folders that are not
//!   git repositories work (every other test runs in one).
//! - The store stays consistent with two processes on it and after a SIGKILL:
//!   `tests::two_processes_record_into_one_session_without_loss`,
//!   `tests::a_process_killed_mid_snapshot_leaves_a_consistent_store`; the stat cache keeps
//!   the state before a delta cut short and never appends onto a state it did not compute
//!   from (`stat_cache::tests::a_batch_cut_short_leaves_the_state_before_it_and_is_then_overwritten`,
//!   `stat_cache::tests::a_delta_is_not_appended_onto_a_state_another_process_wrote`).

mod change;
mod checkpoint;
pub mod cli;
mod ignore_rules;
mod log;
mod merge;
mod prune;
mod restore;
mod scan;
mod stat_cache;
mod store;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use change::{ChangeRecord, ChangeStatus, FileChange, PendingChange};
pub use checkpoint::{CheckpointPhases, CheckpointRecord};
pub use merge::LineRange;
pub use prune::{PruneReport, Retention};
pub use restore::{
    Conflict, ConflictKind, ContentSource, FileAction, FileRestore, RestoreKind, RestorePlan,
    RestorePoint,
};
pub use store::{SessionSummary, SnapshotStore};

/// What the editor holds for a file that is open with unsaved changes: given an absolute path,
/// the buffer's text, or `None` when the file is not open (then the disk is the truth).
pub type Overlay<'a> = &'a dyn Fn(&Path) -> Option<String>;

/// An overlay for callers with no editor buffers (the command line, tests).
pub fn no_overlay(_path: &Path) -> Option<String> {
    None
}

/// A change's number within its session, starting at 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ChangeId(pub u32);

impl std::fmt::Display for ChangeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The kind of a file system entry as git records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileMode {
    /// A regular file.
    File,
    /// A regular file with the executable bit.
    Executable,
    /// A symbolic link; the content is the link target.
    Symlink,
}

impl FileMode {
    fn git_mode(self) -> &'static str {
        match self {
            FileMode::File => "100644",
            FileMode::Executable => "100755",
            FileMode::Symlink => "120000",
        }
    }
}

/// Why a file's content was not copied into the store (only its hash and size were).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotStoredReason {
    /// Larger than [`SnapshotOptions::large_file_cap`].
    Large,
    /// Looks binary (a NUL byte in its first 8000 bytes, git's rule).
    Binary,
}

/// The content of one path at one moment, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileVersion {
    /// Git blob id (hex) of the content.
    pub blob: String,
    pub mode: FileMode,
    pub size: u64,
    /// `None` when the content is in the store; otherwise why only the hash was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_stored: Option<NotStoredReason>,
}

impl FileVersion {
    /// Same content and mode (whether or not the content itself was kept).
    fn same_as(&self, other: &FileVersion) -> bool {
        self.blob == other.blob && self.mode == other.mode
    }
}

/// Store policy. [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Files larger than this are recorded by hash and size only (default 2 MiB).
    pub large_file_cap: u64,
    /// Copy large and binary files into the store anyway (default off).
    pub store_large_and_binary: bool,
    /// How much history to keep.
    pub retention: Retention,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            large_file_cap: 2 * 1024 * 1024,
            store_large_and_binary: false,
            retention: Retention::default(),
        }
    }
}

/// Everything that can go wrong in the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path} is outside the workspace {root}")]
    OutsideWorkspace { path: PathBuf, root: PathBuf },
    #[error("{0} is not valid UTF-8; snapshots need UTF-8 paths")]
    NonUtf8Path(PathBuf),
    #[error("{0} is a directory; a change lists the files it touches")]
    IsDirectory(PathBuf),
    #[error("{0} is the workspace root, not a file in it")]
    WorkspaceRootIsNotAFile(PathBuf),
    #[error("invalid session name {0:?}: use 1 to 128 of A-Z a-z 0-9 . _ - (not starting with .)")]
    InvalidSessionName(String),
    #[error("no session {0:?} in this workspace's snapshot store")]
    UnknownSession(String),
    #[error("no change {change} in session {session:?}")]
    UnknownChange { session: String, change: ChangeId },
    #[error("no checkpoint {checkpoint} in session {session:?}")]
    UnknownCheckpoint { session: String, checkpoint: u32 },
    #[error(
        "change {change} in session {session:?} is not on the undo stack (it was abandoned or replaced)"
    )]
    ChangeNotOnStack { session: String, change: ChangeId },
    #[error("change {change} in session {session:?} is already committed or abandoned")]
    ChangeAlreadyClosed { session: String, change: ChangeId },
    #[error("nothing to undo in session {0:?}")]
    NothingToUndo(String),
    #[error("nothing to redo in session {0:?}")]
    NothingToRedo(String),
    #[error("the plan has conflicts in {count} file(s); nothing was changed")]
    PlanHasConflicts { count: usize },
    #[error("{0} changed since the plan was made; nothing was changed")]
    ChangedSincePlan(PathBuf),
    #[error("{0} is open in the editor with unsaved changes; apply it through the editor")]
    OpenInEditor(PathBuf),
    #[error("session {0:?} moved (another undo, redo or change) since the plan was made")]
    StalePlan(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot store object database: {0}")]
    Git(#[from] git2::Error),
    #[error("session log {path} line {line}: {message}")]
    CorruptLog {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("stored object {0} is missing from the snapshot store")]
    MissingObject(String),
    #[error("{0}")]
    RestoreRefused(String),
    #[error("no snapshot session for the workspace {0}")]
    NoSession(PathBuf),
    #[error("no data directory: neither XDG_DATA_HOME nor HOME is set")]
    NoDataDir,
}

impl SnapshotError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// tack's data directory: `$XDG_DATA_HOME/tack`, else `$HOME/.local/share/tack`.
pub fn default_data_dir() -> Result<PathBuf, SnapshotError> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(xdg) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("tack"));
    }
    non_empty("HOME")
        .map(|home| PathBuf::from(home).join(".local/share/tack"))
        .ok_or(SnapshotError::NoDataDir)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}
