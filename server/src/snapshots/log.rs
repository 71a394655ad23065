//! A session's append-only log (`sessions/<session>.jsonl`): the events, appending one, and
//! replaying the file into the session's changes, undo stack and checkpoints.
//!
//! Each event is one JSON line written with a single `write` on a file opened for append,
//! under the store lock. Objects an event refers to are written before the event, so a
//! process killed at any point leaves either no event or an event whose objects exist. A line
//! that does not parse (torn by a crash) is skipped with a warning, never fatal.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::change::{ChangeRecord, ChangeStatus, FileChange};
use super::checkpoint::CheckpointRecord;
use super::restore::RestoreKind;
use super::{ChangeId, FileVersion, SnapshotError};

/// One line of a session log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(super) enum Event {
    /// Pre-images are stored; the agent is about to write these files.
    Begin {
        change: ChangeId,
        step: u32,
        label: String,
        time_ms: u64,
        files: Vec<BeforeImage>,
    },
    /// The agent's step finished; these are the post-images.
    Commit {
        change: ChangeId,
        time_ms: u64,
        files: Vec<AfterImage>,
    },
    /// The agent's step wrote nothing after all; the change leaves the undo stack.
    Abandon { change: ChangeId, time_ms: u64 },
    /// The whole worktree, as a tree in the object store.
    Checkpoint {
        checkpoint: u32,
        time_ms: u64,
        tree: String,
        position: usize,
        changes_before: u32,
        files: u64,
        not_stored: u64,
    },
    /// An undo, redo or restore was applied: the undo stack's position went from `from` to `to`.
    Move {
        kind: RestoreKind,
        from: usize,
        to: usize,
        time_ms: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct BeforeImage {
    pub path: String,
    pub before: Option<FileVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AfterImage {
    pub path: String,
    pub after: Option<FileVersion>,
}

/// A session replayed from its log.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionLog {
    /// Every change ever begun, in id order, with its status.
    pub changes: Vec<ChangeRecord>,
    /// The undo stack: changes `stack[..applied]` are applied, `stack[applied..]` can be redone.
    pub stack: Vec<ChangeId>,
    pub applied: usize,
    pub checkpoints: Vec<CheckpointRecord>,
}

impl SessionLog {
    pub fn change(&self, id: ChangeId) -> Option<&ChangeRecord> {
        self.changes.iter().find(|c| c.id == id)
    }

    pub fn next_change_id(&self) -> ChangeId {
        ChangeId(self.changes.iter().map(|c| c.id.0).max().unwrap_or(0) + 1)
    }

    pub fn next_checkpoint_id(&self) -> u32 {
        self.checkpoints.iter().map(|c| c.id).max().unwrap_or(0) + 1
    }

    fn apply(&mut self, event: Event, path: &Path, offset: u64) {
        match event {
            Event::Begin {
                change,
                step,
                label,
                time_ms,
                files,
            } => {
                self.stack.truncate(self.applied);
                self.stack.push(change);
                self.applied = self.stack.len();
                self.changes.push(ChangeRecord {
                    id: change,
                    step,
                    label,
                    time_ms,
                    committed: false,
                    status: ChangeStatus::Applied,
                    files: files
                        .into_iter()
                        .map(|f| FileChange {
                            path: f.path,
                            before: f.before,
                            after: None,
                        })
                        .collect(),
                });
            }
            Event::Commit { change, files, .. } => {
                let Some(record) = self.changes.iter_mut().find(|c| c.id == change) else {
                    tracing::warn!(log = %path.display(), offset, %change, "commit of an unknown change; skipped");
                    return;
                };
                for after in files {
                    match record.files.iter_mut().find(|f| f.path == after.path) {
                        Some(file) => file.after = after.after,
                        None => record.files.push(FileChange {
                            path: after.path,
                            before: None,
                            after: after.after,
                        }),
                    }
                }
                record.committed = true;
            }
            Event::Abandon { change, .. } => {
                if let Some(index) = self.stack.iter().position(|&c| c == change) {
                    self.stack.remove(index);
                    if index < self.applied {
                        self.applied -= 1;
                    }
                }
                if let Some(record) = self.changes.iter_mut().find(|c| c.id == change) {
                    record.committed = true;
                }
            }
            Event::Checkpoint {
                checkpoint,
                time_ms,
                tree,
                position,
                changes_before,
                files,
                not_stored,
            } => {
                self.checkpoints.push(CheckpointRecord {
                    id: checkpoint,
                    time_ms,
                    tree,
                    position,
                    changes_before,
                    files,
                    not_stored,
                });
            }
            Event::Move { to, .. } => {
                self.applied = to.min(self.stack.len());
            }
        }
    }

    fn finish(&mut self) {
        for record in &mut self.changes {
            record.status = match self.stack.iter().position(|&c| c == record.id) {
                Some(index) if index < self.applied => ChangeStatus::Applied,
                Some(_) => ChangeStatus::Undone,
                None => ChangeStatus::Discarded,
            };
        }
    }
}

/// A session log read up to some point; [`LogTail::refresh`] reads only what was appended
/// since (the log is append-only), so recording a change stays cheap in a long session.
#[derive(Debug, Default)]
pub(super) struct LogTail {
    inode: u64,
    consumed: u64,
    log: SessionLog,
}

impl LogTail {
    /// The session as the log tells it now. A missing file is an empty session; a file
    /// replaced or shortened since (a pruned session started again) is read from the start.
    /// Only complete lines are taken; an unparsable one is skipped with a warning.
    pub fn refresh(&mut self, path: &Path) -> Result<SessionLog, SnapshotError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                *self = LogTail::default();
                return Ok(SessionLog::default());
            }
            Err(e) => return Err(SnapshotError::io(path, e)),
        };
        let meta = file.metadata().map_err(|e| SnapshotError::io(path, e))?;
        if meta.ino() != self.inode || meta.len() < self.consumed {
            *self = LogTail {
                inode: meta.ino(),
                ..LogTail::default()
            };
        }
        if meta.len() > self.consumed {
            let mut appended = Vec::with_capacity((meta.len() - self.consumed) as usize);
            file.seek(SeekFrom::Start(self.consumed))
                .map_err(|e| SnapshotError::io(path, e))?;
            file.read_to_end(&mut appended)
                .map_err(|e| SnapshotError::io(path, e))?;
            let complete = appended
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |end| end + 1);
            let mut offset = self.consumed;
            for line in appended[..complete].split_inclusive(|&b| b == b'\n') {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    match serde_json::from_slice::<Event>(line) {
                        Ok(event) => self.log.apply(event, path, offset),
                        Err(error) => {
                            tracing::warn!(log = %path.display(), offset, %error, "unreadable session log line skipped");
                        }
                    }
                }
                offset += line.len() as u64;
            }
            self.consumed += complete as u64;
        }
        let mut log = self.log.clone();
        log.finish();
        Ok(log)
    }
}

/// Replays a whole session log. A missing file is an empty session.
#[cfg(test)]
pub(super) fn read(path: &Path) -> Result<SessionLog, SnapshotError> {
    LogTail::default().refresh(path)
}

/// Appends one event. The caller holds the store lock. A torn last line (a crash mid-write
/// on power loss or a full disk) is sealed with a newline first, so it stays one skipped line
/// instead of swallowing this event.
pub(super) fn append(path: &Path, event: &Event) -> Result<(), SnapshotError> {
    let mut line = serde_json::to_vec(event).map_err(|e| SnapshotError::CorruptLog {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot encode event: {e}"),
    })?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| SnapshotError::io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| SnapshotError::io(path, e))?
        .len();
    if len > 0 {
        let mut last = [0u8];
        file.read_exact_at(&mut last, len - 1)
            .map_err(|e| SnapshotError::io(path, e))?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line)
        .map_err(|e| SnapshotError::io(path, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn begin(id: u32) -> Event {
        Event::Begin {
            change: ChangeId(id),
            step: id,
            label: format!("step {id}"),
            time_ms: 0,
            files: vec![],
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_rest_replays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        append(&path, &begin(1)).unwrap();
        append(
            &path,
            &Event::Commit {
                change: ChangeId(1),
                time_ms: 0,
                files: vec![],
            },
        )
        .unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"event":"begin","change":2,"st"#)
            .unwrap();
        let log = read(&path).unwrap();
        assert_eq!(log.changes.len(), 1);
        assert!(log.changes[0].committed);
        assert_eq!(log.applied, 1);
    }

    #[test]
    fn an_append_after_a_torn_line_seals_it_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        append(&path, &begin(1)).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"event":"beg"#).unwrap();
        let mut tail = LogTail::default();
        assert_eq!(tail.refresh(&path).unwrap().changes.len(), 1);
        append(&path, &begin(2)).unwrap();
        let log = tail.refresh(&path).unwrap();
        assert_eq!(
            log.changes.iter().map(|c| c.id.0).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(read(&path).unwrap().changes.len(), 2);
        // A log removed and started again is read from its start.
        std::fs::remove_file(&path).unwrap();
        append(&path, &begin(1)).unwrap();
        assert_eq!(tail.refresh(&path).unwrap().changes.len(), 1);
    }

    #[test]
    fn a_new_change_after_undo_discards_the_redo_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        append(&path, &begin(1)).unwrap();
        append(&path, &begin(2)).unwrap();
        append(
            &path,
            &Event::Move {
                kind: RestoreKind::Undo,
                from: 2,
                to: 1,
                time_ms: 0,
            },
        )
        .unwrap();
        append(&path, &begin(3)).unwrap();
        let log = read(&path).unwrap();
        assert_eq!(log.stack, vec![ChangeId(1), ChangeId(3)]);
        assert_eq!(log.applied, 2);
        assert_eq!(
            log.change(ChangeId(2)).unwrap().status,
            ChangeStatus::Discarded
        );
        assert_eq!(log.next_change_id(), ChangeId(4));
    }

    #[test]
    fn an_abandoned_change_leaves_the_stack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        append(&path, &begin(1)).unwrap();
        append(&path, &begin(2)).unwrap();
        append(
            &path,
            &Event::Abandon {
                change: ChangeId(2),
                time_ms: 0,
            },
        )
        .unwrap();
        let log = read(&path).unwrap();
        assert_eq!(log.stack, vec![ChangeId(1)]);
        assert_eq!(log.applied, 1);
        assert_eq!(
            log.change(ChangeId(2)).unwrap().status,
            ChangeStatus::Discarded
        );
    }
}
