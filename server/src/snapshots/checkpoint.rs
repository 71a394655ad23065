//! The session checkpoint: the whole worktree recorded as a git tree in the store, for
//! "restore everything to how it was at the start of the session" (see [`super::scan`] for
//! how it is built incrementally from the stat cache, about what `git status` costs), and
//! reading checkpoint trees back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::Oid;

use super::log::{self, Event};
use super::scan::{self, ScanOutcome};
use super::stat_cache::StatCache;
use super::{FileMode, FileVersion, SnapshotError, SnapshotStore, now_ms};

/// A checkpoint as the session log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Number within the session, from 1.
    pub id: u32,
    pub time_ms: u64,
    /// The worktree's git tree id in the store.
    pub tree: String,
    /// The undo stack's position when it was taken.
    pub position: usize,
    /// Changes begun in the session before it (their ids are `1..=changes_before`).
    pub changes_before: u32,
    pub files: u64,
    /// Files recorded by hash and size only (large or binary).
    pub not_stored: u64,
}

/// How long each phase of one checkpoint took (the snapshot benchmark prints them).
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckpointPhases {
    /// Taking the stat cache: reusing the one in memory or reading and decoding the file.
    pub cache_load: Duration,
    /// The walk: reading directories, `lstat` of every file, ignore matching, cache lookups,
    /// and storing the files that changed.
    pub walk: Duration,
    /// Of the walk, the time spent reading and storing changed files, summed over threads.
    pub blob_writes: Duration,
    /// Writing the trees of changed directories.
    pub trees: Duration,
    /// Turning the walk's findings into the new cache.
    pub cache_update: Duration,
    /// Under the store lock: checking the root exists, appending the log line.
    pub record: Duration,
    /// Writing the stat cache file.
    pub cache_save: Duration,
    /// Files read afresh (not taken from the cache).
    pub files_read: u64,
}

/// A file that differs between two checkpoint trees (`None`: absent on that side).
pub(super) struct TreeDifference {
    pub path: String,
    pub old: Option<FileVersion>,
    pub new: Option<FileVersion>,
}

impl SnapshotStore {
    /// Records the whole worktree as checkpoint of `session` (see the module docs).
    pub fn checkpoint(&self, session: &str) -> Result<CheckpointRecord, SnapshotError> {
        Ok(self.checkpoint_with_phases(session)?.0)
    }

    /// [`SnapshotStore::checkpoint`], also saying how long each phase took.
    pub fn checkpoint_with_phases(
        &self,
        session: &str,
    ) -> Result<(CheckpointRecord, CheckpointPhases), SnapshotError> {
        let started = Instant::now();
        let log_path = self.log_path(session)?;
        let mut cache_slot = self.stat_cache.lock().unwrap_or_else(|p| p.into_inner());
        // The cache in memory is used only while it is the one on disk: a prune protects the
        // objects of the cache on disk, and a delta is appended only onto the state it was
        // computed from.
        let cache_path = self.stat_cache_path();
        let mut cache = match cache_slot.take() {
            Some(cache) if cache.is_on_disk(&cache_path) => cache,
            _ => StatCache::load(&cache_path),
        };
        let cache_load = started.elapsed();
        let result = self.scan_and_record(session, &log_path, &cache_path, &mut cache);
        *cache_slot = Some(cache);
        let (record, mut phases) = result?;
        phases.cache_load = cache_load;
        Ok((record, phases))
    }

    /// The checkpoint after the cache is taken: scan, log line, cache update.
    fn scan_and_record(
        &self,
        session: &str,
        log_path: &Path,
        cache_path: &Path,
        cache: &mut StatCache,
    ) -> Result<(CheckpointRecord, CheckpointPhases), SnapshotError> {
        let ScanOutcome {
            root,
            delta,
            files,
            not_stored,
            mut phases,
        } = scan::scan(self, cache, now_ns())?;
        let started = Instant::now();
        let _lock = self.lock()?;
        if !self.has_object(&root.to_string())? {
            return Err(SnapshotError::MissingObject(root.to_string()));
        }
        let log = self.read_log(session)?;
        let record = CheckpointRecord {
            id: log.next_checkpoint_id(),
            time_ms: now_ms(),
            tree: root.to_string(),
            position: log.applied,
            changes_before: log.next_change_id().0 - 1,
            files,
            not_stored,
        };
        log::append(
            log_path,
            &Event::Checkpoint {
                checkpoint: record.id,
                time_ms: record.time_ms,
                tree: record.tree.clone(),
                position: record.position,
                changes_before: record.changes_before,
                files,
                not_stored,
            },
        )?;
        phases.record = started.elapsed();
        let started = Instant::now();
        // An empty delta: nothing changed, the cache on disk is still right.
        if !delta.is_empty()
            && let Err(error) = cache.commit(cache_path, delta)
        {
            tracing::warn!(%error, "cannot save the checkpoint stat cache; the next checkpoint rereads what changed since the last one saved");
        }
        phases.cache_save = started.elapsed();
        Ok((record, phases))
    }

    /// The checkpoints of `session`, oldest first.
    pub fn checkpoints(&self, session: &str) -> Result<Vec<CheckpointRecord>, SnapshotError> {
        Ok(self.read_existing_log(session)?.checkpoints)
    }

    /// The root trees of the stat cache in memory and on disk (roots for pruning).
    pub(super) fn stat_cache_roots(&self) -> Vec<Oid> {
        let in_memory = self
            .stat_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|c| c.root);
        in_memory
            .into_iter()
            .chain(StatCache::load(&self.stat_cache_path()).root)
            .collect()
    }

    fn stat_cache_path(&self) -> PathBuf {
        self.store_dir().join("stat-cache")
    }

    /// The version of `path` in a checkpoint tree, `None` if absent.
    pub(super) fn tree_entry(
        &self,
        tree: &str,
        path: &str,
    ) -> Result<Option<FileVersion>, SnapshotError> {
        let entry = {
            let repo = self.repo();
            let tree = repo.find_tree(Oid::from_str(tree)?)?;
            match tree.get_path(Path::new(path)) {
                Ok(entry) => Some((entry.id(), entry.filemode())),
                Err(e) if e.code() == git2::ErrorCode::NotFound => None,
                Err(e) => return Err(e.into()),
            }
        };
        entry
            .map(|(oid, mode)| self.version_from_entry(oid, mode))
            .transpose()
            .map(Option::flatten)
    }

    /// Every file that differs between two checkpoint trees: (path, in `old`, in `new`).
    pub(super) fn diff_trees(
        &self,
        old: &str,
        new: &str,
    ) -> Result<Vec<TreeDifference>, SnapshotError> {
        let mut raw = Vec::new();
        {
            let repo = self.repo();
            let old_tree = repo.find_tree(Oid::from_str(old)?)?;
            let new_tree = repo.find_tree(Oid::from_str(new)?)?;
            let mut options = git2::DiffOptions::new();
            options.include_typechange(true).ignore_submodules(true);
            let diff =
                repo.diff_tree_to_tree(Some(&old_tree), Some(&new_tree), Some(&mut options))?;
            for delta in diff.deltas() {
                let side = |file: git2::DiffFile<'_>| {
                    (!file.id().is_zero()).then(|| (file.id(), i32::from(file.mode())))
                };
                let path = delta
                    .new_file()
                    .path()
                    .or(delta.old_file().path())
                    .map(Path::to_path_buf);
                let Some(path) = path.and_then(|p| p.to_str().map(str::to_string)) else {
                    continue;
                };
                raw.push((path, side(delta.old_file()), side(delta.new_file())));
            }
        }
        let mut out = Vec::with_capacity(raw.len());
        for (path, old, new) in raw {
            let convert = |side: Option<(Oid, i32)>| -> Result<Option<FileVersion>, SnapshotError> {
                Ok(match side {
                    Some((oid, mode)) => self.version_from_entry(oid, mode)?,
                    None => None,
                })
            };
            out.push(TreeDifference {
                path,
                old: convert(old)?,
                new: convert(new)?,
            });
        }
        Ok(out)
    }

    /// Reads a tree entry as a file version, decoding placeholders. Submodule entries and
    /// trees are `None`.
    fn version_from_entry(
        &self,
        oid: Oid,
        git_mode: i32,
    ) -> Result<Option<FileVersion>, SnapshotError> {
        let mode = match git_mode {
            0o100755 => FileMode::Executable,
            0o120000 => FileMode::Symlink,
            0o100644 | 0o100664 => FileMode::File,
            _ => return Ok(None),
        };
        let repo = self.repo();
        let odb = repo.odb()?;
        let (size, _) = odb.read_header(oid)?;
        if size < 128 {
            let object = odb.read(oid)?;
            if let Some(version) = scan::decode_placeholder(object.data(), mode) {
                return Ok(Some(version));
            }
        }
        Ok(Some(FileVersion {
            blob: oid.to_string(),
            mode,
            size: size as u64,
            not_stored: None,
        }))
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
