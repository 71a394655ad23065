//! Retention: keeping the store within an age limit and a size cap, incrementally.
//!
//! A prune drops whole sessions (older than the age limit; then, while the store is over its
//! size cap, the least recently written ones, a few per call), computes which objects the
//! remaining sessions and the checkpoint stat cache still reach, and deletes the loose objects
//! nobody reaches that are older than a grace period. When enough loose objects piled up, or
//! sessions were dropped, it packs every reachable object into one new pack (git's deltas
//! make successive versions of a file cheap) and removes the loose copies and the packs it
//! supersedes.
//!
//! Nothing here holds a long lock: the reachability walk and pack building hold none (packing
//! uses its own repository handle), and deletions run in small batches, each under the store
//! lock for a moment, re-checking age just before removing. Writers take the same lock to
//! check, through a fresh handle, that the objects a new log line names exist on disk
//! (rewriting any that vanished), and git's object writes refresh the mtime of an object (or
//! pack) they reuse, so what is being reused is never old enough to go. There is no
//! pause-the-world gc: a call does bounded work and later calls continue. The checkpoint's
//! stat cache on disk is a root too, and a process uses its cache in memory only while it is
//! the one on disk.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{ObjectType, Oid};

use super::{SnapshotError, SnapshotStore};

/// How much history a store keeps.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Sessions not written for longer than this are dropped (default 30 days).
    pub max_age: Duration,
    /// Disk used by objects above which the oldest sessions are dropped (default 2 GiB).
    pub max_bytes: u64,
    /// Unreachable objects younger than this are kept: a concurrent writer may be about to
    /// name them (default 1 hour).
    pub grace: Duration,
    /// At most this many sessions are dropped for size in one call (default 4).
    pub max_sessions_per_prune: usize,
    /// Loose objects are packed (git deltas and compression) once at least this many
    /// piled up (default 256).
    pub pack_after_loose: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(30 * 24 * 3600),
            max_bytes: 2 * 1024 * 1024 * 1024,
            grace: Duration::from_secs(3600),
            max_sessions_per_prune: 4,
            pack_after_loose: 256,
        }
    }
}

/// What one prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub sessions_removed: Vec<String>,
    pub objects_removed: u64,
    /// Objects written into a new pack (0 when no repack was due).
    pub objects_packed: u64,
    /// Disk used by objects before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

const DELETE_BATCH: usize = 256;

impl SnapshotStore {
    /// Drops sessions past retention and deletes objects nothing reaches any more. The session
    /// `keep` (the running one) and the most recently written session are never dropped.
    pub fn prune(&self, keep: Option<&str>) -> Result<PruneReport, SnapshotError> {
        let retention = self.options.retention.clone();
        let mut report = PruneReport {
            bytes_before: self.object_bytes()?,
            ..PruneReport::default()
        };
        let now = SystemTime::now();
        let mut sessions = self.sessions()?;
        let newest = sessions.last().map(|s| s.name.clone());
        let protected = |name: &str| Some(name) == keep || Some(name) == newest.as_deref();
        let age_of = |modified_ms: u64| {
            now.duration_since(SystemTime::UNIX_EPOCH + Duration::from_millis(modified_ms))
                .unwrap_or(Duration::ZERO)
        };
        let (expired, kept): (Vec<_>, Vec<_>) = sessions
            .drain(..)
            .partition(|s| !protected(&s.name) && age_of(s.modified_ms) > retention.max_age);
        for session in expired {
            self.remove_session(&session.name)?;
            report.sessions_removed.push(session.name);
        }
        report.objects_removed += self.delete_unreachable(retention.grace)?;
        report.objects_packed += self.repack(&retention, !report.sessions_removed.is_empty())?;
        let mut bytes = self.object_bytes()?;
        let mut droppable = kept
            .into_iter()
            .filter(|s| !protected(&s.name) && age_of(s.modified_ms) > retention.grace);
        let mut dropped_for_size = 0;
        while bytes > retention.max_bytes && dropped_for_size < retention.max_sessions_per_prune {
            let Some(session) = droppable.next() else {
                break;
            };
            self.remove_session(&session.name)?;
            report.sessions_removed.push(session.name);
            dropped_for_size += 1;
            report.objects_removed += self.delete_unreachable(retention.grace)?;
            report.objects_packed += self.repack(&retention, true)?;
            bytes = self.object_bytes()?;
        }
        report.bytes_after = bytes;
        tracing::info!(?report, "snapshot store pruned");
        Ok(report)
    }

    /// Runs [`SnapshotStore::prune`] if the last prune of this store (by any process) was
    /// more than `every` ago; for callers to invoke at session start or after a session ends.
    pub fn prune_if_due(
        &self,
        keep: Option<&str>,
        every: Duration,
    ) -> Result<Option<PruneReport>, SnapshotError> {
        let stamp = self.store_dir().join("last-prune");
        let due = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_none_or(|age| age > every);
        if !due {
            return Ok(None);
        }
        fs::write(&stamp, b"").map_err(|e| SnapshotError::io(&stamp, e))?;
        self.prune(keep).map(Some)
    }

    fn remove_session(&self, session: &str) -> Result<(), SnapshotError> {
        let path = self.log_path(session)?;
        let _lock = self.lock()?;
        fs::remove_file(&path).map_err(|e| SnapshotError::io(&path, e))
    }

    fn objects_dir(&self) -> PathBuf {
        self.store_dir().join("objects.git").join("objects")
    }

    /// Disk used by the object database (allocated blocks, so small loose objects count as
    /// what they really cost).
    pub fn object_bytes(&self) -> Result<u64, SnapshotError> {
        let mut total = 0;
        visit_files(&self.objects_dir(), &mut |_, meta| {
            total += meta.blocks() * 512
        })?;
        Ok(total)
    }

    /// Every object the remaining sessions and the stat cache reach.
    fn reachable(&self) -> Result<HashSet<Oid>, SnapshotError> {
        let mut reachable = HashSet::new();
        let mut trees = Vec::new();
        for session in self.sessions()? {
            let log = self.read_log(&session.name)?;
            for change in &log.changes {
                for file in &change.files {
                    for version in [&file.before, &file.after].into_iter().flatten() {
                        reachable.insert(Oid::from_str(&version.blob)?);
                    }
                }
            }
            for checkpoint in &log.checkpoints {
                trees.push(Oid::from_str(&checkpoint.tree)?);
            }
        }
        trees.extend(self.stat_cache_roots());
        let repo = self.repo();
        let odb = repo.odb()?;
        while let Some(tree) = trees.pop() {
            if !reachable.insert(tree) {
                continue;
            }
            let object = match odb.read(tree) {
                Ok(object) => object,
                Err(e) if e.code() == git2::ErrorCode::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if object.kind() != ObjectType::Tree {
                continue;
            }
            for (mode, oid) in tree_entries(object.data()) {
                if mode == b"40000" {
                    trees.push(oid);
                } else if mode != b"160000" {
                    reachable.insert(oid);
                }
            }
        }
        Ok(reachable)
    }

    fn delete_unreachable(&self, grace: Duration) -> Result<u64, SnapshotError> {
        let reachable = self.reachable()?;
        let mut candidates = Vec::new();
        visit_files(&self.objects_dir(), &mut |path, _| {
            if let Some(oid) = loose_object_id(path)
                && !reachable.contains(&oid)
            {
                candidates.push(path.to_path_buf());
            }
        })?;
        let mut removed = 0;
        for batch in candidates.chunks(DELETE_BATCH) {
            let _lock = self.lock()?;
            for path in batch {
                let old_enough = fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age > grace);
                if old_enough && fs::remove_file(path).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

impl SnapshotStore {
    /// Packs every reachable object into one new pack, then removes the loose copies and the
    /// older packs it supersedes. Runs when enough loose objects piled up, or when sessions
    /// were dropped and packs may hold objects nothing reaches any more. Packing uses its own
    /// repository handle, so other work on this store goes on meanwhile; an old pack is removed
    /// only if older than the grace period (a concurrent writer reusing one of its objects
    /// refreshes its mtime), under the lock.
    fn repack(&self, retention: &Retention, sessions_dropped: bool) -> Result<u64, SnapshotError> {
        let objects = self.objects_dir();
        let pack_dir = objects.join("pack");
        let mut loose = Vec::new();
        visit_files(&objects, &mut |path, _| {
            if let Some(oid) = loose_object_id(path) {
                loose.push((path.to_path_buf(), oid));
            }
        })?;
        let old_packs = pack_files(&pack_dir)?;
        let has_packs = !old_packs.is_empty();
        if loose.len() < retention.pack_after_loose && !(sessions_dropped && has_packs) {
            return Ok(0);
        }
        let reachable = self.reachable()?;
        let (packed, new_pack) = {
            let repo = git2::Repository::open_bare(self.store_dir().join("objects.git"))?;
            let odb = repo.odb()?;
            let mut builder = repo.packbuilder()?;
            builder.set_threads(0);
            for oid in &reachable {
                if odb.exists(*oid) {
                    builder.insert_object(*oid, None)?;
                }
            }
            if builder.object_count() == 0 {
                return Ok(0);
            }
            builder.write(&pack_dir, 0)?;
            let name = builder.name()?.map(|name| format!("pack-{name}"));
            (builder.object_count() as u64, name)
        };
        self.repo().odb()?.refresh()?;
        // Loose copies of packed objects can go at once: the pack has them.
        let packed_loose: Vec<PathBuf> = loose
            .into_iter()
            .filter(|(_, oid)| reachable.contains(oid))
            .map(|(path, _)| path)
            .collect();
        for batch in packed_loose.chunks(DELETE_BATCH) {
            let _lock = self.lock()?;
            batch.iter().for_each(|path| drop(fs::remove_file(path)));
        }
        for pack in old_packs {
            let stem = pack
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string);
            if stem.is_none() || stem == new_pack {
                continue;
            }
            let _lock = self.lock()?;
            let old_enough = fs::metadata(&pack)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > retention.grace);
            if old_enough {
                for extension in ["keep", "pack", "idx", "rev", "mtimes"] {
                    let _ = fs::remove_file(pack.with_extension(extension));
                }
            }
        }
        self.reopen_repo()?;
        Ok(packed)
    }
}

/// The `.pack` files of a pack directory.
fn pack_files(dir: &Path) -> Result<Vec<PathBuf>, SnapshotError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SnapshotError::io(dir, e)),
    };
    Ok(entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "pack"))
        .collect())
}

/// The (mode, id) of each entry of a raw git tree.
fn tree_entries(mut data: &[u8]) -> Vec<(&[u8], Oid)> {
    let mut entries = Vec::new();
    while let Some(space) = data.iter().position(|&b| b == b' ') {
        let mode = &data[..space];
        let Some(nul) = data[space..]
            .iter()
            .position(|&b| b == 0)
            .map(|n| space + n)
        else {
            break;
        };
        let Some(id) = data
            .get(nul + 1..nul + 21)
            .and_then(|id| Oid::from_bytes(id).ok())
        else {
            break;
        };
        entries.push((mode, id));
        data = &data[nul + 21..];
    }
    entries
}

/// `objects/ab/cdef…` → the id `abcdef…`.
fn loose_object_id(path: &Path) -> Option<Oid> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?.file_name()?.to_str()?;
    if dir.len() != 2 || name.len() != 38 {
        return None;
    }
    Oid::from_str(&format!("{dir}{name}")).ok()
}

fn visit_files(
    dir: &Path,
    visit: &mut dyn FnMut(&Path, &fs::Metadata),
) -> Result<(), SnapshotError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SnapshotError::io(dir, e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            visit_files(&path, visit)?;
        } else {
            visit(&path, &meta);
        }
    }
    Ok(())
}
