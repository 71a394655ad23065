//! Scanning the worktree for a checkpoint: a parallel walk that honours `.gitignore`,
//! `.ignore` and `.git/info/exclude` and never enters `.git` or the store itself, reusing the
//! stat cache for files whose stat data is unchanged; then trees written bottom-up, only for
//! directories whose content changed (the others keep their cached tree id).
//!
//! Files the policy keeps by hash only (large or binary) appear in the tree as a small
//! placeholder blob naming their real blob id, size and reason, so the tree stays a valid git
//! tree and a restore knows exactly what it lacks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::hash::BuildHasherDefault;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use git2::{ObjectType, Oid};
use ignore::{DirEntry, ParallelVisitor, ParallelVisitorBuilder, WalkState};

use super::stat_cache::{CachedFile, CachedTree, PathHasher, PathMap, StatCache};
use super::store::mode_of;
use super::{FileMode, FileVersion, NotStoredReason, SnapshotError, SnapshotStore};

const PLACEHOLDER_MAGIC: &[u8] = b"tack-not-stored\0";

/// The result of one scan: the worktree's root tree and the cache to keep.
pub(super) struct ScanOutcome {
    pub root: Oid,
    pub cache: StatCache,
    pub files: u64,
    pub not_stored: u64,
    /// Some file was read afresh or disappeared (else the cache on disk is still right).
    pub changed: bool,
}

/// Writes objects through one repository handle shared by the walking threads.
struct ObjectWriter(Mutex<git2::Repository>);

impl ObjectWriter {
    fn write(&self, kind: ObjectType, bytes: &[u8]) -> Result<Oid, SnapshotError> {
        let repo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(repo.odb()?.write(kind, bytes)?)
    }
}

/// One file found by the walk.
struct ScannedFile<'s> {
    /// Borrowed from the old cache's key when the file was there (no allocation per file).
    relative: Cow<'s, str>,
    /// Where the file name starts in `relative`.
    name_start: usize,
    mode: FileMode,
    cached: CachedFile,
    /// Taken from the cache without reading the file.
    reused: bool,
    /// The old cache had this path.
    known: bool,
}

/// What the walk shares between its threads.
struct Shared<'s> {
    store: &'s SnapshotStore,
    /// A fresh handle for writing (see [`SnapshotStore::fresh_repo`]): an object that only a
    /// pack removed by another process's prune still holds must be written again.
    objects: &'s ObjectWriter,
    old: &'s StatCache,
    found: Mutex<Vec<ScannedFile<'s>>>,
    error: Mutex<Option<SnapshotError>>,
}

/// One walking thread's visitor; hands its files over when the walk drops it.
struct Visitor<'v, 's> {
    shared: &'v Shared<'s>,
    found: Vec<ScannedFile<'s>>,
}

struct Builder<'v, 's>(&'v Shared<'s>);

impl<'v, 's: 'v> ParallelVisitorBuilder<'v> for Builder<'v, 's> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 'v> {
        Box::new(Visitor {
            shared: self.0,
            found: Vec::new(),
        })
    }
}

impl ParallelVisitor for Visitor<'_, '_> {
    fn visit(&mut self, entry: Result<DirEntry, ignore::Error>) -> WalkState {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%error, "checkpoint skipped an unreadable entry");
                return WalkState::Continue;
            }
        };
        if entry.depth() == 0 || entry.file_type().is_none_or(|t| t.is_dir()) {
            return WalkState::Continue;
        }
        match self.scan_file(&entry) {
            Ok(Some(file)) => self.found.push(file),
            Ok(None) => {}
            Err(error) => {
                let mut slot = self.shared.error.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(error);
                return WalkState::Quit;
            }
        }
        WalkState::Continue
    }
}

impl Drop for Visitor<'_, '_> {
    fn drop(&mut self) {
        let mut found = self.shared.found.lock().unwrap_or_else(|p| p.into_inner());
        found.append(&mut self.found);
    }
}

impl<'s> Visitor<'_, 's> {
    fn scan_file(&self, entry: &DirEntry) -> Result<Option<ScannedFile<'s>>, SnapshotError> {
        let store = self.shared.store;
        let Ok(relative) = entry.path().strip_prefix(store.workspace_root()) else {
            return Ok(None);
        };
        let Some(relative) = relative.to_str() else {
            tracing::warn!(path = %entry.path().display(), "checkpoint skipped a non-UTF-8 path");
            return Ok(None);
        };
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(error) => {
                tracing::warn!(%error, "checkpoint skipped a file it cannot stat");
                return Ok(None);
            }
        };
        if !(meta.is_file() || meta.file_type().is_symlink()) {
            return Ok(None);
        }
        let stat = CachedFile {
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            size: meta.size(),
            ino: meta.ino(),
            st_mode: meta.mode(),
            entry: Oid::ZERO_SHA1,
            not_stored: false,
        };
        let name_start = relative.rfind('/').map_or(0, |slash| slash + 1);
        let mode = mode_of(&meta);
        let old: &'s StatCache = self.shared.old;
        let known = old.files.get_key_value(relative);
        if let Some((key, cached)) = known.filter(|(_, cached)| old.trusts(cached, &stat)) {
            let relative = Cow::Borrowed(key.as_str());
            return Ok(Some(ScannedFile {
                relative,
                name_start,
                mode,
                cached: *cached,
                reused: true,
                known: true,
            }));
        }
        let Some((entry_id, not_stored)) =
            store_file(store, self.shared.objects, entry.path(), &meta)?
        else {
            return Ok(None);
        };
        let cached = CachedFile {
            entry: entry_id,
            not_stored,
            ..stat
        };
        let relative = Cow::Owned(relative.to_string());
        Ok(Some(ScannedFile {
            relative,
            name_start,
            mode,
            cached,
            reused: false,
            known: known.is_some(),
        }))
    }
}

/// Puts one file's content (or its placeholder) in the store: (tree entry id, not stored).
/// `None` if the file vanished meanwhile.
fn store_file(
    store: &SnapshotStore,
    objects: &ObjectWriter,
    path: &Path,
    meta: &fs::Metadata,
) -> Result<Option<(Oid, bool)>, SnapshotError> {
    if meta.file_type().is_symlink() {
        return match fs::read_link(path) {
            Ok(target) => Ok(Some((
                objects.write(ObjectType::Blob, target.as_os_str().as_bytes())?,
                false,
            ))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SnapshotError::io(path, e)),
        };
    }
    if meta.size() > store.options.large_file_cap && !store.options.store_large_and_binary {
        let blob = match Oid::hash_file(ObjectType::Blob, path) {
            Ok(blob) => blob,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        return Ok(Some((
            objects.write(
                ObjectType::Blob,
                &placeholder(blob, meta.size(), NotStoredReason::Large),
            )?,
            true,
        )));
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SnapshotError::io(path, e)),
    };
    Ok(Some(
        match store.not_stored_reason(bytes.len() as u64, &bytes) {
            None => (objects.write(ObjectType::Blob, &bytes)?, false),
            Some(reason) => {
                let blob = Oid::hash_object(ObjectType::Blob, &bytes)?;
                (
                    objects.write(
                        ObjectType::Blob,
                        &placeholder(blob, bytes.len() as u64, reason),
                    )?,
                    true,
                )
            }
        },
    ))
}

/// Walks the worktree and writes its tree (see the module docs); `old` becomes the new cache.
pub(super) fn scan(
    store: &SnapshotStore,
    old: StatCache,
    scan_started_ns: i128,
) -> Result<ScanOutcome, SnapshotError> {
    let root = store.workspace_root();
    let store_dir = store
        .store_dir()
        .canonicalize()
        .unwrap_or_else(|_| store.store_dir().to_path_buf());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(true)
        .ignore(true)
        .git_ignore(true)
        .git_global(true)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(move |entry| entry.file_name() != ".git" && entry.path() != store_dir);
    let objects = ObjectWriter(Mutex::new(store.fresh_repo()?));
    let shared = Shared {
        store,
        objects: &objects,
        old: &old,
        found: Mutex::new(Vec::new()),
        error: Mutex::new(None),
    };
    builder.build_parallel().visit(&mut Builder(&shared));
    if let Some(error) = shared.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    let found = shared.found.into_inner().unwrap_or_else(|p| p.into_inner());
    let (root, trees) = write_trees(&objects, &old, &found)?;
    let not_stored = found.iter().filter(|file| file.cached.not_stored).count() as u64;
    let files = found.len() as u64;

    // The new cache: the old one updated in place when no file disappeared (the usual case),
    // else rebuilt from what the walk found.
    let still_there = found.iter().filter(|file| file.known).count();
    let changed = still_there != old.files.len() || found.iter().any(|file| !file.reused);
    let cache_files = if still_there == old.files.len() {
        let updates: Vec<(String, CachedFile)> = found
            .into_iter()
            .filter(|file| !file.reused)
            .map(|file| (file.relative.into_owned(), file.cached))
            .collect();
        let mut files = old.files;
        files.extend(updates);
        files
    } else {
        found
            .into_iter()
            .map(|file| (file.relative.into_owned(), file.cached))
            .collect()
    };
    let cache = StatCache {
        scan_started_ns,
        files: cache_files,
        trees,
        root: Some(root),
    };
    Ok(ScanOutcome {
        root,
        cache,
        files,
        not_stored,
        changed,
    })
}

/// A directory's contents during tree building.
#[derive(Default)]
struct Dir {
    /// Indexes into the scanned files.
    files: Vec<usize>,
    subdirs: Vec<String>,
    /// Some file in it was read afresh.
    dirty: bool,
}

fn parent_and_name(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => ("", path),
    }
}

fn ensure_dir(dirs: &mut PathMap<Dir>, path: &str) {
    if dirs.contains_key(path) {
        return;
    }
    dirs.insert(path.to_string(), Dir::default());
    if !path.is_empty() {
        let (parent, name) = parent_and_name(path);
        ensure_dir(dirs, parent);
        if let Some(parent) = dirs.get_mut(parent) {
            parent.subdirs.push(name.to_string());
        }
    }
}

/// Writes the trees of every directory whose content changed; returns the root tree and the
/// tree cache.
fn write_trees(
    objects: &ObjectWriter,
    old: &StatCache,
    found: &[ScannedFile<'_>],
) -> Result<(Oid, PathMap<CachedTree>), SnapshotError> {
    let mut dirs: PathMap<Dir> = PathMap::default();
    ensure_dir(&mut dirs, "");
    for (index, file) in found.iter().enumerate() {
        let dir = &file.relative[..file.name_start.saturating_sub(1)];
        if !dirs.contains_key(dir) {
            ensure_dir(&mut dirs, dir);
        }
        if let Some(entry) = dirs.get_mut(dir) {
            entry.files.push(index);
            entry.dirty |= !file.reused;
        }
    }
    let mut order: Vec<&String> = dirs.keys().collect();
    order.sort_by_key(|path| {
        std::cmp::Reverse(if path.is_empty() {
            0
        } else {
            path.matches('/').count() + 1
        })
    });

    let mut trees: PathMap<CachedTree> =
        PathMap::with_capacity_and_hasher(dirs.len(), Default::default());
    let mut changed: HashMap<&str, bool, BuildHasherDefault<PathHasher>> =
        HashMap::with_capacity_and_hasher(dirs.len(), Default::default());
    for path in order {
        let dir = &dirs[path];
        let child_path = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            }
        };
        let entries = (dir.files.len() + dir.subdirs.len()) as u32;
        let children_changed = dir
            .subdirs
            .iter()
            .any(|name| changed.get(child_path(name).as_str()) != Some(&false));
        let previous = old.trees.get(path.as_str());
        let oid = match previous {
            Some(tree) if !dir.dirty && !children_changed && tree.entries == entries => tree.oid,
            _ => {
                let mut items: Vec<(Vec<u8>, &str, &str, Oid)> =
                    Vec::with_capacity(entries as usize);
                for &index in &dir.files {
                    let file = &found[index];
                    let name = &file.relative[file.name_start..];
                    items.push((
                        name.as_bytes().to_vec(),
                        file.mode.git_mode(),
                        name,
                        file.cached.entry,
                    ));
                }
                for name in &dir.subdirs {
                    let Some(subtree) = trees.get(&child_path(name)) else {
                        continue;
                    };
                    let mut key = name.as_bytes().to_vec();
                    key.push(b'/');
                    items.push((key, "40000", name, subtree.oid));
                }
                items.sort_by(|a, b| a.0.cmp(&b.0));
                let mut body = Vec::with_capacity(items.len() * 48);
                for (_, mode, name, oid) in &items {
                    body.extend_from_slice(mode.as_bytes());
                    body.push(b' ');
                    body.extend_from_slice(name.as_bytes());
                    body.push(0);
                    body.extend_from_slice(oid.as_bytes());
                }
                let oid = Oid::hash_object(ObjectType::Tree, &body)?;
                if previous.map(|tree| tree.oid) != Some(oid) {
                    objects.write(ObjectType::Tree, &body)?;
                }
                oid
            }
        };
        changed.insert(path.as_str(), previous.map(|tree| tree.oid) != Some(oid));
        trees.insert(path.clone(), CachedTree { oid, entries });
    }
    let root = trees.get("").map(|tree| tree.oid).unwrap_or(Oid::ZERO_SHA1);
    Ok((root, trees))
}

fn placeholder(blob: Oid, size: u64, reason: NotStoredReason) -> Vec<u8> {
    let reason = match reason {
        NotStoredReason::Large => "large",
        NotStoredReason::Binary => "binary",
    };
    let mut bytes = PLACEHOLDER_MAGIC.to_vec();
    bytes.extend_from_slice(format!("{reason} {size} {blob}\n").as_bytes());
    bytes
}

/// The version a placeholder blob stands for; `None` if `data` is not a placeholder.
pub(super) fn decode_placeholder(data: &[u8], mode: FileMode) -> Option<FileVersion> {
    let rest = std::str::from_utf8(data.strip_prefix(PLACEHOLDER_MAGIC)?).ok()?;
    let mut fields = rest.trim_end().split(' ');
    let reason = match fields.next()? {
        "large" => NotStoredReason::Large,
        "binary" => NotStoredReason::Binary,
        _ => return None,
    };
    let size = fields.next()?.parse().ok()?;
    let blob = Oid::from_str(fields.next()?).ok()?.to_string();
    Some(FileVersion {
        blob,
        mode,
        size,
        not_stored: Some(reason),
    })
}
