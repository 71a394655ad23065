//! Scanning the worktree for a checkpoint: a parallel walk over directories (each listed
//! once, each file `lstat`ed relative to its open directory, as cheap as the kernel allows)
//! that honours the ignore rules ([`super::ignore_rules`]) and never enters `.git` or the
//! store itself; per directory, the listing is merged in name order with the stat cache's
//! record, so a file whose stat data is unchanged is neither read nor allocated for; then
//! trees written bottom-up, only for directories whose content changed (the others keep their
//! cached tree id); and the cache [`Delta`]: the records of the directories that changed.
//!
//! Files the policy keeps by hash only (large or binary) appear in the tree as a small
//! placeholder blob naming their real blob id, size and reason, so the tree stays a valid git
//! tree and a restore knows exactly what it lacks.

use std::cmp::{Ordering, Reverse};
use std::ffi::CStr;
use std::fs;
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use git2::{ObjectType, Oid, Repository};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RawDir, openat, statat};
use rustix::io::Errno;

use super::checkpoint::CheckpointPhases;
use super::ignore_rules::{self, GlobalExcludes, IgnoreFilesFound, Rules};
use super::stat_cache::{CachedDir, CachedFile, Delta, DirRecord, StatCache};
use super::{FileMode, FileVersion, NotStoredReason, SnapshotError, SnapshotStore};
use crate::fast_hash::{FastMap, FastSet};

const PLACEHOLDER_MAGIC: &[u8] = b"tack-not-stored\0";

/// The result of one scan.
pub(super) struct ScanOutcome {
    /// The worktree's root tree.
    pub root: Oid,
    /// What to write to the stat cache (empty: it is still right).
    pub delta: Delta,
    pub files: u64,
    pub not_stored: u64,
    /// The walk's, the trees' and the delta's (the caller fills in the rest).
    pub phases: CheckpointPhases,
}

/// A directory to list, with the ignore rules in force in it.
struct Job {
    relative: String,
    /// Its parent, open (`None` for the workspace root): the directory is opened relative to
    /// it, without following a symlink put in its place.
    parent: Option<Arc<OwnedFd>>,
    rules: Arc<Rules>,
    depth: u32,
}

/// The directories waiting to be listed.
struct Queue {
    jobs: Vec<Job>,
    /// Jobs being worked on (their subdirectories may still come).
    busy: usize,
    stop: bool,
}

/// One directory as the walk found it.
struct ScannedDir {
    relative: String,
    depth: u32,
    /// Subdirectories walked (not ignored), in name order.
    subdirs: Vec<String>,
    /// Its files in name order, when they differ from the cached record; `None` when the
    /// record holds exactly them.
    changed_files: Option<Vec<(String, CachedFile)>>,
    files: u32,
    not_stored: u32,
    files_read: u32,
    /// Fingerprint of the ignore rules in force in it.
    rules: u64,
}

/// What the walking threads share.
struct Walk<'s> {
    store: &'s SnapshotStore,
    old: &'s StatCache,
    global: GlobalExcludes,
    /// The store's directory relative to the workspace root, when it is inside it.
    store_relative: Option<String>,
    queue: Mutex<Queue>,
    wake: Condvar,
    scanned: Mutex<Vec<ScannedDir>>,
    error: Mutex<Option<SnapshotError>>,
    /// Nanoseconds spent storing changed files, summed over threads.
    blob_write_ns: AtomicU64,
}

impl Walk<'_> {
    /// One thread: takes directories off the queue until none are left (or one failed).
    fn work(&self) {
        // Opened when this thread first stores a file: a fresh handle (see
        // [`SnapshotStore::fresh_repo`]), since an object that only a pack removed by another
        // process's prune still holds must be written again.
        let mut writer = None;
        let mut buffers = Buffers::new();
        let mut scanned = Vec::new();
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if queue.stop {
                        break None;
                    }
                    if let Some(job) = queue.jobs.pop() {
                        queue.busy += 1;
                        break Some(job);
                    }
                    if queue.busy == 0 {
                        break None;
                    }
                    queue = self.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some(job) = job else {
                break;
            };
            let mut children = Vec::new();
            let result = self.scan_dir(job, &mut buffers, &mut writer, &mut children);
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.busy -= 1;
            match result {
                Ok(Some(dir)) => scanned.push(dir),
                Ok(None) => {}
                Err(error) => {
                    let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(error);
                    queue.stop = true;
                }
            }
            let wake = !children.is_empty() || queue.busy == 0 || queue.stop;
            queue.jobs.append(&mut children);
            drop(queue);
            if wake {
                self.wake.notify_all();
            }
        }
        self.wake.notify_all();
        let mut all = self.scanned.lock().unwrap_or_else(|p| p.into_inner());
        all.append(&mut scanned);
    }

    /// Lists one directory, queues its subdirectories and takes its files (see the module
    /// docs). `None` if it vanished or cannot be read (then it is left out, with a warning).
    fn scan_dir(
        &self,
        job: Job,
        buffers: &mut Buffers,
        writer: &mut Option<Repository>,
        children: &mut Vec<Job>,
    ) -> Result<Option<ScannedDir>, SnapshotError> {
        let root = self.store.workspace_root();
        let path = || {
            if job.relative.is_empty() {
                root.to_path_buf()
            } else {
                root.join(&job.relative)
            }
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let opened = match &job.parent {
            None => openat(CWD, root, flags, Mode::empty()),
            Some(parent) => {
                let name = job.relative.rsplit('/').next().unwrap_or_default();
                openat(parent, name, flags, Mode::empty())
            }
        };
        let dir = match opened {
            Ok(dir) => Arc::new(dir),
            Err(error) if job.parent.is_none() => {
                return Err(SnapshotError::io(root, error.into()));
            }
            Err(error) => {
                leave_out(path, error)?;
                return Ok(None);
            }
        };

        // The listing: names in one buffer (with their NUL, for `statat`), sorted.
        let Buffers {
            listing,
            names,
            entries,
        } = buffers;
        names.clear();
        entries.clear();
        let mut found = IgnoreFilesFound::default();
        let mut raw = RawDir::new(&*dir, listing);
        while let Some(entry) = raw.next() {
            // A listing cut short would record its missing files as deleted.
            let entry = entry.map_err(|error| SnapshotError::io(&path(), error.into()))?;
            let name = entry.file_name().to_bytes();
            match name {
                b"." | b".." => continue,
                b".git" => {
                    found.git = true;
                    continue;
                }
                b".gitignore" => found.git_ignore = true,
                b".ignore" => found.dot_ignore = true,
                _ => {}
            }
            if std::str::from_utf8(name).is_err() {
                let name = std::ffi::OsStr::from_bytes(name);
                tracing::warn!(path = %path().join(name).display(), "checkpoint skipped a non-UTF-8 path");
                continue;
            }
            let start = names.len();
            names.extend_from_slice(entry.file_name().to_bytes_with_nul());
            entries.push(ListedEntry {
                start: start as u32,
                len: name.len() as u16,
                kind: entry.file_type(),
            });
        }
        let names: &[u8] = names;
        let bytes_of = |entry: &ListedEntry| {
            let start = entry.start as usize;
            &names[start..start + entry.len as usize]
        };
        // Checked UTF-8 above.
        let name_of =
            |entry: &ListedEntry| std::str::from_utf8(bytes_of(entry)).unwrap_or_default();
        let c_name_of = |entry: &ListedEntry| {
            let start = entry.start as usize;
            CStr::from_bytes_with_nul(&names[start..=start + entry.len as usize])
                .unwrap_or_default()
        };
        entries.sort_unstable_by(|a, b| bytes_of(a).cmp(bytes_of(b)));
        let rules = if found.any() {
            Rules::child(&job.rules, &path(), &job.relative, found)
        } else {
            Arc::clone(&job.rules)
        };
        let join = |name: &str| child_path(&job.relative, name);

        let cached_dir = self.old.dir(&job.relative);
        // What the cached record holds was matched against these same rules: no need again.
        let rules_known = cached_dir.is_some_and(|d| d.rules == rules.fingerprint());
        let mut cached = cached_dir
            .into_iter()
            .flat_map(|d| self.old.files(d))
            .peekable();
        // The cached record holds exactly these files (so far).
        let mut same = cached_dir.is_some();
        // (listing entry, data) of each file taken.
        let mut files: Vec<(&ListedEntry, CachedFile)> = Vec::with_capacity(entries.len());
        let mut subdirs = Vec::new();
        let (mut not_stored, mut files_read) = (0, 0);
        for entry in entries.iter() {
            let name = bytes_of(entry);
            let mut stat = None;
            let mut kind = entry.kind;
            if kind == FileType::Unknown {
                // The filesystem does not say in its listing: ask.
                match statat(&*dir, c_name_of(entry), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(found) => {
                        kind = FileType::from_raw_mode(found.st_mode);
                        stat = Some(found);
                    }
                    Err(error) => {
                        leave_out(|| path().join(name_of(entry)), error)?;
                        continue;
                    }
                }
            }
            if kind == FileType::Directory {
                let name = name_of(entry);
                let relative = join(name);
                let known = rules_known && self.old.dir(&relative).is_some();
                if self.store_relative.as_deref() == Some(relative.as_str())
                    || (!known && rules.ignores(&relative, true, &self.global))
                {
                    continue;
                }
                children.push(Job {
                    relative,
                    parent: Some(Arc::clone(&dir)),
                    rules: Arc::clone(&rules),
                    depth: job.depth + 1,
                });
                subdirs.push(name.to_string());
                continue;
            }
            if !matches!(kind, FileType::RegularFile | FileType::Symlink) {
                continue;
            }
            // The cached file of this name; cached files passed over are gone.
            let mut known = None;
            while let Some((cached_name, file)) = cached.peek() {
                match (*cached_name).cmp(name) {
                    Ordering::Less => same = false,
                    Ordering::Equal => known = Some(*file),
                    Ordering::Greater => break,
                }
                cached.next();
                if known.is_some() {
                    break;
                }
            }
            if rules.any_patterns()
                && !(rules_known && known.is_some())
                && rules.ignores(&join(name_of(entry)), false, &self.global)
            {
                same &= known.is_none();
                continue;
            }
            let stat = match stat.map_or_else(
                || statat(&*dir, c_name_of(entry), AtFlags::SYMLINK_NOFOLLOW),
                Ok,
            ) {
                Ok(stat) => stat,
                Err(error) => {
                    leave_out(|| path().join(name_of(entry)), error)?;
                    same &= known.is_none();
                    continue;
                }
            };
            let kind = FileType::from_raw_mode(stat.st_mode);
            if !matches!(kind, FileType::RegularFile | FileType::Symlink) {
                same &= known.is_none();
                continue;
            }
            let stat = CachedFile::stat_of(&stat);
            let file = match known {
                Some(known) if self.old.trusts(&known, &stat) => known,
                _ => {
                    files_read += 1;
                    let started = Instant::now();
                    let repo = match writer {
                        Some(repo) => repo,
                        None => writer.insert(self.store.fresh_repo()?),
                    };
                    let file_path = path().join(name_of(entry));
                    let is_symlink = kind == FileType::Symlink;
                    let stored = store_file(self.store, repo, &file_path, is_symlink, stat.size);
                    self.blob_write_ns
                        .fetch_add(started.elapsed().as_nanos() as u64, AtomicOrdering::Relaxed);
                    let Some((entry, not_stored)) = stored? else {
                        same &= known.is_none();
                        continue;
                    };
                    CachedFile {
                        entry,
                        not_stored,
                        ..stat
                    }
                }
            };
            same &= known == Some(file);
            not_stored += u32::from(file.not_stored);
            files.push((entry, file));
        }
        same &= cached.next().is_none();
        let changed_files = (!same).then(|| {
            files
                .iter()
                .map(|&(entry, file)| (name_of(entry).to_string(), file))
                .collect()
        });
        Ok(Some(ScannedDir {
            files: files.len() as u32,
            changed_files,
            relative: job.relative,
            depth: job.depth,
            subdirs,
            not_stored,
            files_read,
            rules: rules.fingerprint(),
        }))
    }
}

/// A walking thread's buffers, reused from one directory to the next.
struct Buffers {
    /// What `getdents` fills.
    listing: Vec<MaybeUninit<u8>>,
    /// The names listed, each with its NUL.
    names: Vec<u8>,
    entries: Vec<ListedEntry>,
}

impl Buffers {
    fn new() -> Buffers {
        Buffers {
            listing: vec![MaybeUninit::uninit(); 64 * 1024],
            names: Vec::new(),
            entries: Vec::new(),
        }
    }
}

/// One name of a directory listing, in [`Buffers::names`].
struct ListedEntry {
    start: u32,
    len: u16,
    kind: FileType,
}

/// Whether an entry the walk cannot open or stat is left out of the checkpoint: one that
/// vanished or was replaced meanwhile (silently), or one tack may not read (with a warning).
/// Any other error fails the checkpoint: a tree that silently lacks files would have a restore
/// treat them as deleted.
fn leave_out(path: impl FnOnce() -> PathBuf, error: Errno) -> Result<(), SnapshotError> {
    match error {
        Errno::NOENT | Errno::NOTDIR | Errno::LOOP => Ok(()),
        Errno::ACCESS | Errno::PERM => {
            tracing::warn!(path = %path().display(), %error, "checkpoint left out an entry it may not read");
            Ok(())
        }
        error => Err(SnapshotError::io(&path(), error.into())),
    }
}

fn child_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Puts one file's content (or its placeholder) in the store: (tree entry id, not stored).
/// `None` if the file vanished meanwhile.
fn store_file(
    store: &SnapshotStore,
    repo: &Repository,
    path: &Path,
    is_symlink: bool,
    size: u64,
) -> Result<Option<(Oid, bool)>, SnapshotError> {
    if is_symlink {
        return match fs::read_link(path) {
            Ok(target) => Ok(Some((
                repo.odb()?
                    .write(ObjectType::Blob, target.as_os_str().as_bytes())?,
                false,
            ))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SnapshotError::io(path, e)),
        };
    }
    if size > store.options.large_file_cap && !store.options.store_large_and_binary {
        let blob = match Oid::hash_file(ObjectType::Blob, path) {
            Ok(blob) => blob,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        return Ok(Some((
            repo.odb()?.write(
                ObjectType::Blob,
                &placeholder(blob, size, NotStoredReason::Large),
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
            None => (repo.odb()?.write(ObjectType::Blob, &bytes)?, false),
            Some(reason) => {
                let blob = Oid::hash_object(ObjectType::Blob, &bytes)?;
                (
                    repo.odb()?.write(
                        ObjectType::Blob,
                        &placeholder(blob, bytes.len() as u64, reason),
                    )?,
                    true,
                )
            }
        },
    ))
}

/// Walks the worktree, writes its trees and computes the cache delta (see the module docs).
pub(super) fn scan(
    store: &SnapshotStore,
    old: &StatCache,
    scan_started_ns: i64,
) -> Result<ScanOutcome, SnapshotError> {
    let root = store.workspace_root();
    let store_dir = store
        .store_dir()
        .canonicalize()
        .unwrap_or_else(|_| store.store_dir().to_path_buf());
    let store_relative = store_dir
        .strip_prefix(root)
        .ok()
        .and_then(Path::to_str)
        .map(str::to_string);
    let global = ignore_rules::global_excludes(root);
    let rules = Rules::above_workspace(root, &global);
    let walk = Walk {
        store,
        old,
        global,
        store_relative,
        queue: Mutex::new(Queue {
            jobs: vec![Job {
                relative: String::new(),
                parent: None,
                rules,
                depth: 0,
            }],
            busy: 0,
            stop: false,
        }),
        wake: Condvar::new(),
        scanned: Mutex::new(Vec::new()),
        error: Mutex::new(None),
        blob_write_ns: AtomicU64::new(0),
    };
    let mut phases = CheckpointPhases::default();
    let started = Instant::now();
    let threads = walk_threads(old);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| walk.work());
        }
    });
    phases.walk = started.elapsed();
    phases.blob_writes = Duration::from_nanos(walk.blob_write_ns.load(AtomicOrdering::Relaxed));
    if let Some(error) = walk.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    let scanned = walk.scanned.into_inner().unwrap_or_else(|p| p.into_inner());
    phases.files_read = scanned.iter().map(|dir| u64::from(dir.files_read)).sum();

    let started = Instant::now();
    let repo = store.fresh_repo()?;
    let trees = write_trees(&repo, old, &scanned)?;
    phases.trees = started.elapsed();

    let started = Instant::now();
    let root_index = scanned
        .iter()
        .position(|dir| dir.relative.is_empty())
        .ok_or_else(|| SnapshotError::io(root, ErrorKind::NotFound.into()))?;
    let root = trees[root_index].map_or(Oid::ZERO_SHA1, |(oid, _)| oid);
    let delta = cache_delta(old, &scanned, &trees, scan_started_ns, root);
    phases.cache_update = started.elapsed();
    Ok(ScanOutcome {
        root,
        delta,
        files: scanned.iter().map(|dir| u64::from(dir.files)).sum(),
        not_stored: scanned.iter().map(|dir| u64::from(dir.not_stored)).sum(),
        phases,
    })
}

/// How many threads walk. A scan with a cache is bound by `statat` and directory listings,
/// system calls that block (on a cold cache, a network filesystem, a busy machine), so more
/// threads than cores keep more of them in flight; like git's preload of the index for
/// `git status` (a thread per 500 entries, at most 20): one per 8 directories the cache knows,
/// 2 to 16. The first scan reads and stores every file: one thread per core, at most 8.
fn walk_threads(old: &StatCache) -> usize {
    if old.dir_count() == 0 {
        return std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    }
    (old.dir_count() / 8).clamp(2, 16)
}

/// Per scanned directory, its tree and entry count (`None`: empty, so not in its parent's
/// tree; the root always has one). Trees are written deepest first, only where the content
/// changed.
fn write_trees(
    repo: &Repository,
    old: &StatCache,
    scanned: &[ScannedDir],
) -> Result<Vec<Option<(Oid, u32)>>, SnapshotError> {
    let index: FastMap<&str, usize> = scanned
        .iter()
        .enumerate()
        .map(|(i, dir)| (dir.relative.as_str(), i))
        .collect();
    let mut order: Vec<usize> = (0..scanned.len()).collect();
    order.sort_by_key(|&i| Reverse(scanned[i].depth));
    let mut trees = vec![None; scanned.len()];
    for i in order {
        let dir = &scanned[i];
        let cached = old.dir(&dir.relative);
        let mut subtrees = Vec::with_capacity(dir.subdirs.len());
        let mut subtrees_same = true;
        for name in &dir.subdirs {
            let relative = child_path(&dir.relative, name);
            let tree = index.get(relative.as_str()).and_then(|&j| trees[j]);
            subtrees_same &= tree.map(|(oid, _)| oid) == old.dir(&relative).map(|d| d.tree);
            if let Some((oid, _)) = tree {
                subtrees.push((name.as_str(), oid));
            }
        }
        let entries = dir.files + subtrees.len() as u32;
        if entries == 0 && !dir.relative.is_empty() {
            continue;
        }
        let tree = match cached {
            Some(cached)
                if dir.changed_files.is_none() && subtrees_same && cached.entries == entries =>
            {
                cached.tree
            }
            _ => write_tree(repo, old, dir, cached, &subtrees)?,
        };
        trees[i] = Some((tree, entries));
    }
    Ok(trees)
}

/// Writes one directory's tree (unless it is the cached one already).
fn write_tree(
    repo: &Repository,
    old: &StatCache,
    dir: &ScannedDir,
    cached: Option<&CachedDir>,
    subtrees: &[(&str, Oid)],
) -> Result<Oid, SnapshotError> {
    let mut items: Vec<(&str, bool, &'static str, Oid)> =
        Vec::with_capacity(dir.files as usize + subtrees.len());
    let file_item = |name, file: &CachedFile| (name, false, git_mode(file.st_mode), file.entry);
    match (&dir.changed_files, cached) {
        (Some(files), _) => items.extend(
            files
                .iter()
                .map(|(name, file)| file_item(name.as_str(), file)),
        ),
        (None, Some(cached)) => {
            items.extend(old.files(cached).map(|(name, file)| {
                file_item(std::str::from_utf8(name).unwrap_or_default(), &file)
            }))
        }
        (None, None) => {}
    }
    items.extend(
        subtrees
            .iter()
            .map(|&(name, oid)| (name, true, "40000", oid)),
    );
    items.sort_by(|a, b| git_order(a.0, a.1, b.0, b.1));
    let mut body = Vec::with_capacity(items.len() * 48);
    for (name, _, mode, oid) in &items {
        body.extend_from_slice(mode.as_bytes());
        body.push(b' ');
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(oid.as_bytes());
    }
    let oid = Oid::hash_object(ObjectType::Tree, &body)?;
    if cached.map(|c| c.tree) != Some(oid) {
        repo.odb()?.write(ObjectType::Tree, &body)?;
    }
    Ok(oid)
}

/// Git's order of tree entries: by name, a directory's name as if it ended in `/`.
fn git_order(a: &str, a_dir: bool, b: &str, b_dir: bool) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let common = a.len().min(b.len());
    a[..common].cmp(&b[..common]).then_with(|| {
        let next = |name: &[u8], dir: bool| name.get(common).copied().or(dir.then_some(b'/'));
        next(a, a_dir).cmp(&next(b, b_dir))
    })
}

/// The tree entry mode of a file with `st_mode`.
fn git_mode(st_mode: u32) -> &'static str {
    if st_mode & 0o170000 == 0o120000 {
        FileMode::Symlink.git_mode()
    } else if st_mode & 0o111 != 0 {
        FileMode::Executable.git_mode()
    } else {
        FileMode::File.git_mode()
    }
}

/// The records of the directories whose files or tree changed, and the directories gone.
fn cache_delta(
    old: &StatCache,
    scanned: &[ScannedDir],
    trees: &[Option<(Oid, u32)>],
    scan_started_ns: i64,
    root: Oid,
) -> Delta {
    let mut delta = Delta::new(scan_started_ns, root);
    let mut kept = 0;
    for (dir, tree) in scanned.iter().zip(trees) {
        let Some((tree, entries)) = *tree else {
            continue;
        };
        let cached = old.dir(&dir.relative);
        kept += usize::from(cached.is_some());
        let record_same =
            cached.is_some_and(|c| c.tree == tree && c.entries == entries && c.rules == dir.rules);
        let files = match (&dir.changed_files, cached) {
            (None, _) if record_same => continue,
            (None, None) => continue,
            (files, cached) => (files, cached),
        };
        let start = delta.push_dir(&DirRecord {
            path: &dir.relative,
            tree,
            entries,
            files: dir.files,
            not_stored: dir.not_stored,
            rules: dir.rules,
        });
        match files {
            (Some(files), _) => {
                for (name, file) in files {
                    delta.push_file(name, file);
                }
            }
            (None, Some(cached)) => delta.copy_files(old, cached),
            (None, None) => {}
        }
        delta.end_dir(start);
    }
    if kept != old.dir_count() {
        let live: FastSet<&str> = scanned
            .iter()
            .zip(trees)
            .filter(|(_, tree)| tree.is_some())
            .map(|(dir, _)| dir.relative.as_str())
            .collect();
        let gone: Vec<&str> = old
            .dir_paths()
            .filter(|path| !live.contains(path))
            .collect();
        for path in gone {
            delta.remove_dir(path);
        }
    }
    delta
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_vanished_or_unreadable_entries_are_left_out_other_errors_fail_the_checkpoint() {
        let path = || PathBuf::from("/w/x");
        for vanished in [Errno::NOENT, Errno::NOTDIR, Errno::LOOP, Errno::ACCESS] {
            assert!(leave_out(path, vanished).is_ok(), "{vanished}");
        }
        for fatal in [Errno::MFILE, Errno::IO, Errno::NOMEM] {
            let error = leave_out(path, fatal).unwrap_err();
            assert!(error.to_string().contains("/w/x"), "{error}");
        }
    }

    #[test]
    fn tree_entries_sort_as_git_sorts_them() {
        let mut names = [
            ("a", true),
            ("a-b", false),
            ("a.c", false),
            ("ab", false),
            ("a", false),
        ];
        names.sort_by(|a, b| git_order(a.0, a.1, b.0, b.1));
        assert_eq!(
            names,
            [
                ("a", false),
                ("a-b", false),
                ("a.c", false),
                ("a", true),
                ("ab", false)
            ]
        );
    }
}
