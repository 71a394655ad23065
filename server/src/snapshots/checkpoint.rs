//! The session checkpoint: the whole worktree (honouring `.gitignore`, `.ignore` and
//! `.git/info/exclude`; never descending into `.git`) recorded as a git tree in the store, for
//! "restore everything to how it was at the start of the session".
//!
//! It is built incrementally, the way git's index makes `git status` cheap: a stat cache keeps
//! each file's stat data and blob id, and each directory's tree id. A file whose stat data is
//! unchanged (and was not modified in the instant the previous scan ran: git's "racy clean"
//! rule) is not read again; a directory whose entries are unchanged is not written again. So
//! after the first checkpoint the cost is a directory walk plus `lstat` of every file.
//!
//! Files the policy keeps by hash only (large or binary) appear in the tree as a small
//! placeholder blob naming their real blob id, size and reason, so the tree stays a valid git
//! tree and a restore knows exactly what it lacks.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid};

use super::log::{self, Event};
use super::store::mode_of;
use super::{FileMode, FileVersion, NotStoredReason, SnapshotError, SnapshotStore, now_ms};

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

/// A file that differs between two checkpoint trees (`None`: absent on that side).
pub(super) struct TreeDifference {
    pub path: String,
    pub old: Option<FileVersion>,
    pub new: Option<FileVersion>,
}

const PLACEHOLDER_MAGIC: &[u8] = b"tack-not-stored\0";
const CACHE_MAGIC: &[u8] = b"TACKSTAT1\n";

/// What the stat cache remembers of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CachedFile {
    mtime_ns: i128,
    ctime_ns: i128,
    size: u64,
    ino: u64,
    st_mode: u32,
    /// The id the tree entry points at (a placeholder's id for files not stored).
    entry: Oid,
    not_stored: bool,
}

/// The checkpoint's stat cache (see the module docs). Kept in memory by the store and in the
/// `stat-cache` file between processes.
#[derive(Debug, Default)]
pub(super) struct StatCache {
    /// When the scan that produced this cache started (ns since the Unix epoch).
    scan_started_ns: i128,
    files: HashMap<String, CachedFile>,
    trees: HashMap<String, Oid>,
    pub root: Option<Oid>,
}

/// A directory being assembled into a tree.
#[derive(Default)]
struct DirNode {
    files: Vec<(String, FileMode, Oid)>,
    dirs: BTreeMap<String, DirNode>,
}

struct Scan<'a> {
    store: &'a SnapshotStore,
    old: StatCache,
    new: StatCache,
    files: u64,
    not_stored: u64,
}

impl SnapshotStore {
    /// Records the whole worktree as checkpoint of `session` (see the module docs).
    pub fn checkpoint(&self, session: &str) -> Result<CheckpointRecord, SnapshotError> {
        let log_path = self.log_path(session)?;
        let mut cache_slot = self.stat_cache.lock().unwrap_or_else(|p| p.into_inner());
        let old = match cache_slot.take() {
            Some(cache) => cache,
            None => self.load_stat_cache(),
        };
        let scan_started_ns = now_ns();
        let mut scan = Scan {
            store: self,
            old,
            new: StatCache {
                scan_started_ns,
                ..StatCache::default()
            },
            files: 0,
            not_stored: 0,
        };
        let root = scan.walk()?;
        let (files, not_stored) = (scan.files, scan.not_stored);
        let mut cache = scan.new;
        cache.root = Some(root);
        let record = {
            let _lock = self.lock()?;
            if !self.has_object(&root.to_string())? {
                return Err(SnapshotError::MissingObject(root.to_string()));
            }
            let log = log::read(&log_path)?;
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
                &log_path,
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
            record
        };
        if let Err(error) = self.save_stat_cache(&cache) {
            tracing::warn!(%error, "cannot save the checkpoint stat cache; the next checkpoint rereads every file");
        }
        *cache_slot = Some(cache);
        Ok(record)
    }

    /// The checkpoints of `session`, oldest first.
    pub fn checkpoints(&self, session: &str) -> Result<Vec<CheckpointRecord>, SnapshotError> {
        Ok(self.read_existing_log(session)?.checkpoints)
    }

    /// The root tree of the stat cache on disk, if any (a root for pruning).
    pub(super) fn stat_cache_root(&self) -> Option<Oid> {
        let cached = self
            .stat_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|c| c.root);
        cached.or_else(|| self.load_stat_cache().root)
    }

    fn stat_cache_path(&self) -> PathBuf {
        self.store_dir().join("stat-cache")
    }

    fn load_stat_cache(&self) -> StatCache {
        let path = self.stat_cache_path();
        match fs::read(&path) {
            Ok(bytes) => decode_cache(&bytes).unwrap_or_else(|| {
                tracing::warn!(path = %path.display(), "unreadable stat cache ignored");
                StatCache::default()
            }),
            Err(_) => StatCache::default(),
        }
    }

    fn save_stat_cache(&self, cache: &StatCache) -> Result<(), SnapshotError> {
        let path = self.stat_cache_path();
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        fs::write(&temporary, encode_cache(cache)).map_err(|e| SnapshotError::io(&temporary, e))?;
        fs::rename(&temporary, &path).map_err(|e| SnapshotError::io(&path, e))
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
            out.push(TreeDifference { path, old: convert(old)?, new: convert(new)? });
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
            if let Some(version) = decode_placeholder(object.data(), mode) {
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

impl Scan<'_> {
    fn walk(&mut self) -> Result<Oid, SnapshotError> {
        let root = self.store.workspace_root().to_path_buf();
        let store_dir = self
            .store
            .store_dir()
            .canonicalize()
            .unwrap_or_else(|_| self.store.store_dir().to_path_buf());
        let mut builder = ignore::WalkBuilder::new(&root);
        builder
            .hidden(false)
            .parents(true)
            .ignore(true)
            .git_ignore(true)
            .git_global(true)
            .git_exclude(true)
            .require_git(false)
            .follow_links(false)
            .filter_entry(move |entry| entry.file_name() != ".git" && entry.path() != store_dir);
        let mut tree = DirNode::default();
        for entry in builder.build() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::warn!(%error, "checkpoint skipped an unreadable entry");
                    continue;
                }
            };
            if entry.depth() == 0 || entry.file_type().is_some_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(&root) else {
                continue;
            };
            let Some(relative) = relative.to_str() else {
                tracing::warn!(path = %entry.path().display(), "checkpoint skipped a non-UTF-8 path");
                continue;
            };
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(error) => {
                    tracing::warn!(%error, "checkpoint skipped a file it cannot stat");
                    continue;
                }
            };
            let Some(cached) = self.file_entry(relative, entry.path(), &meta)? else {
                continue;
            };
            self.files += 1;
            if cached.not_stored {
                self.not_stored += 1;
            }
            let mut node = &mut tree;
            let mut parts = relative.split('/').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    node.files
                        .push((part.to_string(), mode_of(&meta), cached.entry));
                } else {
                    node = node.dirs.entry(part.to_string()).or_default();
                }
            }
            self.new.files.insert(relative.to_string(), cached);
        }
        match self.write_tree(&tree, "")? {
            Some(oid) => Ok(oid),
            None => Ok(self.store.repo().odb()?.write(ObjectType::Tree, &[])?),
        }
    }

    /// The cache entry of one file: reused when its stat data is unchanged, else read again.
    fn file_entry(
        &mut self,
        relative: &str,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<Option<CachedFile>, SnapshotError> {
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
        if let Some(old) = self.old.files.get(relative) {
            let same_stat = CachedFile {
                entry: old.entry,
                not_stored: old.not_stored,
                ..stat
            } == *old;
            if same_stat
                && old.mtime_ns < self.old.scan_started_ns
                && old.ctime_ns < self.old.scan_started_ns
            {
                return Ok(Some(*old));
            }
        }
        let store = self.store;
        let read = |e| SnapshotError::io(path, e);
        let (entry, not_stored) = if meta.file_type().is_symlink() {
            let target = fs::read_link(path).map_err(read)?;
            (store.write_blob(target.as_os_str().as_bytes())?, false)
        } else if meta.size() > store.options.large_file_cap
            && !store.options.store_large_and_binary
        {
            let blob = match Oid::hash_file(ObjectType::Blob, path) {
                Ok(blob) => blob,
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            (
                store.write_blob(&placeholder(blob, meta.size(), NotStoredReason::Large))?,
                true,
            )
        } else {
            let bytes = match fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(read(e)),
            };
            match store.not_stored_reason(bytes.len() as u64, &bytes) {
                None => (store.write_blob(&bytes)?, false),
                Some(reason) => {
                    let blob = Oid::hash_object(ObjectType::Blob, &bytes)?;
                    (
                        store.write_blob(&placeholder(blob, bytes.len() as u64, reason))?,
                        true,
                    )
                }
            }
        };
        Ok(Some(CachedFile {
            entry,
            not_stored,
            ..stat
        }))
    }

    /// Writes the tree of `node` (unless the cache already has that exact tree); `None` for a
    /// directory with no files (git has no empty trees).
    fn write_tree(&mut self, node: &DirNode, relative: &str) -> Result<Option<Oid>, SnapshotError> {
        let mut entries: Vec<(Vec<u8>, &'static str, &str, Oid)> =
            Vec::with_capacity(node.files.len() + node.dirs.len());
        for (name, mode, oid) in &node.files {
            entries.push((name.as_bytes().to_vec(), mode.git_mode(), name, *oid));
        }
        for (name, child) in &node.dirs {
            let child_path = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            if let Some(oid) = self.write_tree(child, &child_path)? {
                let mut key = name.as_bytes().to_vec();
                key.push(b'/');
                entries.push((key, "40000", name, oid));
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut body = Vec::with_capacity(entries.len() * 48);
        for (_, mode, name, oid) in &entries {
            body.extend_from_slice(mode.as_bytes());
            body.push(b' ');
            body.extend_from_slice(name.as_bytes());
            body.push(0);
            body.extend_from_slice(oid.as_bytes());
        }
        let oid = Oid::hash_object(ObjectType::Tree, &body)?;
        if self.old.trees.get(relative) != Some(&oid) {
            self.store.repo().odb()?.write(ObjectType::Tree, &body)?;
        }
        self.new.trees.insert(relative.to_string(), oid);
        Ok(Some(oid))
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
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

fn decode_placeholder(data: &[u8], mode: FileMode) -> Option<FileVersion> {
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

fn encode_cache(cache: &StatCache) -> Vec<u8> {
    fn put_path(out: &mut Vec<u8>, path: &str) {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
    }
    let mut out = Vec::with_capacity(64 + cache.files.len() * 96);
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&cache.scan_started_ns.to_le_bytes());
    out.extend_from_slice(cache.root.unwrap_or(Oid::ZERO_SHA1).as_bytes());
    out.extend_from_slice(&(cache.files.len() as u32).to_le_bytes());
    for (path, file) in &cache.files {
        put_path(&mut out, path);
        out.extend_from_slice(&file.mtime_ns.to_le_bytes());
        out.extend_from_slice(&file.ctime_ns.to_le_bytes());
        out.extend_from_slice(&file.size.to_le_bytes());
        out.extend_from_slice(&file.ino.to_le_bytes());
        out.extend_from_slice(&file.st_mode.to_le_bytes());
        out.extend_from_slice(file.entry.as_bytes());
        out.push(u8::from(file.not_stored));
    }
    out.extend_from_slice(&(cache.trees.len() as u32).to_le_bytes());
    for (path, oid) in &cache.trees {
        put_path(&mut out, path);
        out.extend_from_slice(oid.as_bytes());
    }
    out
}

/// Reads bytes off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn oid(&mut self) -> Option<Oid> {
        Oid::from_bytes(self.take(20)?).ok()
    }
    fn path(&mut self) -> Option<String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

fn decode_cache(bytes: &[u8]) -> Option<StatCache> {
    let mut reader = Reader(bytes.strip_prefix(CACHE_MAGIC)?);
    let scan_started_ns = i128::from_le_bytes(reader.array()?);
    let root = reader.oid().filter(|oid| !oid.is_zero());
    let file_count = u32::from_le_bytes(reader.array()?) as usize;
    let mut files = HashMap::with_capacity(file_count);
    for _ in 0..file_count {
        let path = reader.path()?;
        let file = CachedFile {
            mtime_ns: i128::from_le_bytes(reader.array()?),
            ctime_ns: i128::from_le_bytes(reader.array()?),
            size: u64::from_le_bytes(reader.array()?),
            ino: u64::from_le_bytes(reader.array()?),
            st_mode: u32::from_le_bytes(reader.array()?),
            entry: reader.oid()?,
            not_stored: reader.take(1)?[0] != 0,
        };
        files.insert(path, file);
    }
    let tree_count = u32::from_le_bytes(reader.array()?) as usize;
    let mut trees = HashMap::with_capacity(tree_count);
    for _ in 0..tree_count {
        let path = reader.path()?;
        trees.insert(path, reader.oid()?);
    }
    Some(StatCache {
        scan_started_ns,
        files,
        trees,
        root,
    })
}
