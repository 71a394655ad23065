//! Recording a change: the pre-image of exactly the files an agent step is about to touch
//! ([`SnapshotStore::begin_change`]), then their post-image
//! ([`SnapshotStore::commit_change`]). Cost is O(files touched), independent of tree size.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::log::{self, AfterImage, BeforeImage, Event};
use super::store::Captured;
use super::{ChangeId, FileVersion, Overlay, SnapshotError, SnapshotStore, now_ms};

/// One recorded change, as the session's log tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub id: ChangeId,
    /// The agent step that made it.
    pub step: u32,
    pub label: String,
    /// When it began (ms since the Unix epoch).
    pub time_ms: u64,
    /// False while the step is running, or if its process died before the post-image.
    pub committed: bool,
    pub status: ChangeStatus,
    pub files: Vec<FileChange>,
}

/// Where a change stands on its session's undo stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    /// In effect (below the stack's position).
    Applied,
    /// Undone; `redo` brings it back.
    Undone,
    /// Off the stack: abandoned, or undone and then replaced by a newer change.
    Discarded,
}

/// One file of a change. `None` means the file did not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Workspace-relative, `/`-separated.
    pub path: String,
    pub before: Option<FileVersion>,
    /// Meaningless until the change is committed.
    pub after: Option<FileVersion>,
}

/// A change whose pre-images are stored; hand it back to [`SnapshotStore::commit_change`]
/// after the agent's step wrote the files, or to [`SnapshotStore::abandon_change`] if it wrote
/// nothing.
#[derive(Debug)]
#[must_use = "a begun change must be committed or abandoned"]
pub struct PendingChange {
    session: String,
    id: ChangeId,
    paths: Vec<String>,
}

impl PendingChange {
    pub fn id(&self) -> ChangeId {
        self.id
    }

    pub fn session(&self) -> &str {
        &self.session
    }
}

impl SnapshotStore {
    /// Stores the pre-image of `paths` (absolute or workspace-relative; the editor's unsaved
    /// buffer when `overlay` has one) and records that change `step`/`label` of `session` is
    /// about to write them. After this returns, the pre-images are safe on disk.
    pub fn begin_change(
        &self,
        session: &str,
        step: u32,
        label: &str,
        paths: &[PathBuf],
        overlay: Overlay<'_>,
    ) -> Result<PendingChange, SnapshotError> {
        let log_path = self.log_path(session)?;
        let relative: BTreeSet<String> = paths
            .iter()
            .map(|p| self.relative_path(p))
            .collect::<Result<_, _>>()?;
        let mut captured = Vec::with_capacity(relative.len());
        for path in &relative {
            captured.push((path.clone(), self.capture(path, overlay, true)?));
        }
        let _lock = self.lock()?;
        self.ensure_stored(&captured)?;
        let id = self.read_log(session)?.next_change_id();
        let files = captured
            .into_iter()
            .map(|(path, c)| BeforeImage {
                path,
                before: c.version,
            })
            .collect();
        log::append(
            &log_path,
            &Event::Begin {
                change: id,
                step,
                label: label.to_string(),
                time_ms: now_ms(),
                files,
            },
        )?;
        Ok(PendingChange {
            session: session.to_string(),
            id,
            paths: relative.into_iter().collect(),
        })
    }

    /// Stores the post-image of the change's files (from `overlay` or disk) and records the
    /// change as complete. Returns its id.
    pub fn commit_change(
        &self,
        pending: PendingChange,
        overlay: Overlay<'_>,
    ) -> Result<ChangeId, SnapshotError> {
        let log_path = self.log_path(&pending.session)?;
        let mut captured = Vec::with_capacity(pending.paths.len());
        for path in &pending.paths {
            captured.push((path.clone(), self.capture(path, overlay, true)?));
        }
        let _lock = self.lock()?;
        self.ensure_stored(&captured)?;
        let session_log = self.read_log(&pending.session)?;
        self.check_open(&session_log, &pending)?;
        let files = captured
            .into_iter()
            .map(|(path, c)| AfterImage {
                path,
                after: c.version,
            })
            .collect();
        log::append(
            &log_path,
            &Event::Commit {
                change: pending.id,
                time_ms: now_ms(),
                files,
            },
        )?;
        Ok(pending.id)
    }

    /// Records that the change's step wrote nothing after all: it leaves the undo stack.
    pub fn abandon_change(&self, pending: PendingChange) -> Result<(), SnapshotError> {
        let log_path = self.log_path(&pending.session)?;
        let _lock = self.lock()?;
        let session_log = self.read_log(&pending.session)?;
        self.check_open(&session_log, &pending)?;
        log::append(
            &log_path,
            &Event::Abandon {
                change: pending.id,
                time_ms: now_ms(),
            },
        )
    }

    /// Every change of `session`, oldest first.
    pub fn changes(&self, session: &str) -> Result<Vec<ChangeRecord>, SnapshotError> {
        Ok(self.read_existing_log(session)?.changes)
    }

    fn check_open(
        &self,
        session_log: &log::SessionLog,
        pending: &PendingChange,
    ) -> Result<(), SnapshotError> {
        match session_log.change(pending.id) {
            Some(record) if !record.committed => Ok(()),
            Some(_) => Err(SnapshotError::ChangeAlreadyClosed {
                session: pending.session.clone(),
                change: pending.id,
            }),
            None => Err(SnapshotError::UnknownChange {
                session: pending.session.clone(),
                change: pending.id,
            }),
        }
    }

    /// Under the lock, before a log line refers to them: every stored object still exists
    /// (a concurrent prune may have removed an old unreachable copy just as we reused it).
    fn ensure_stored(&self, captured: &[(String, Captured)]) -> Result<(), SnapshotError> {
        let repo = self.fresh_repo()?;
        let odb = repo.odb()?;
        for (_, c) in captured {
            let (Some(version), Some(bytes)) = (&c.version, &c.bytes) else {
                continue;
            };
            if version.not_stored.is_none() && !odb.exists(git2::Oid::from_str(&version.blob)?) {
                odb.write(git2::ObjectType::Blob, bytes)?;
            }
        }
        Ok(())
    }
}
