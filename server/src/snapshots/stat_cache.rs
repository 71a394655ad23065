//! The checkpoint's stat cache, like git's index: per directory its tree id and entry count
//! and, per file in it, the stat data and the blob id its tree entry points at; and when the
//! scan that made it started.
//!
//! # Format
//!
//! The cache in memory is the bytes of its file plus an index of where each directory's
//! record is, so loading it in a new process is one read, one checksum pass and one map entry
//! per directory (no allocation per file), and a scan reads a directory's files straight from
//! the bytes. The file is `MAGIC` then batches, each `len u32, kind u8, scan_started_ns i64,
//! records, removed directories, root tree, checksum u64`:
//!
//! - a *base* batch holds every directory's record;
//! - a *delta* batch, appended by a later checkpoint, holds only the records of directories
//!   whose files or tree changed and the directories that are gone (one changed file costs its
//!   directory's and its ancestors' records, not the whole cache).
//!
//! Each checksum chains the one before it, so the last eight bytes name the whole state: a
//! process uses its cache in memory only while the file ends with the same bytes at the same
//! length. A batch cut short (a process killed while appending) fails its check; loading
//! stops before it, which is the previous consistent state. A delta is appended (under the
//! store lock) only onto the state it was computed from; otherwise, or once dead records make
//! up over half the file, the whole state is written to a temporary file renamed over the old
//! one (atomic, and rare).

use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;

use git2::Oid;

use super::SnapshotError;
use crate::fast_hash::FastMap;

const MAGIC: &[u8] = b"TACKSTAT4\n";
const BASE: u8 = 0;
const DELTA: u8 = 1;
/// Seed of a base batch's checksum.
const BASE_SEED: u64 = 0x7461_636B_7374_6174;
/// Bytes of a file record after its name.
const FILE_FIXED: usize = 8 + 8 + 8 + 8 + 4 + 20 + 1;
/// A batch's bytes before its records: len, kind, scan_started_ns, record count.
const BATCH_HEAD: usize = 4 + 1 + 8 + 4;
/// Compaction is not worth it below this many dead bytes.
const COMPACT_SLACK: usize = 256 * 1024;

/// How much older than the scan's start a file's times must be for its stat data to be
/// trusted: file times come from the kernel's coarse clock, which lags the clock the scan
/// start is read from by up to a tick, so a write just after the start can carry a time just
/// before it. Filesystems keeping whole seconds (no nanoseconds) get two seconds.
const RACY_MARGIN_NS: i64 = 20_000_000;
const COARSE_RACY_MARGIN_NS: i64 = 2_000_000_000;

/// What the cache remembers of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CachedFile {
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub size: u64,
    pub ino: u64,
    pub st_mode: u32,
    /// The id the tree entry points at (a placeholder's id for files not stored).
    pub entry: Oid,
    pub not_stored: bool,
}

impl CachedFile {
    /// The stat data of `stat`, with no id yet.
    // The field types of `struct stat` differ between platforms; on some the casts are no-ops.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat_of(stat: &rustix::fs::Stat) -> CachedFile {
        let ns = |seconds, nanoseconds| seconds as i64 * 1_000_000_000 + nanoseconds as i64;
        CachedFile {
            mtime_ns: ns(stat.st_mtime, stat.st_mtime_nsec),
            ctime_ns: ns(stat.st_ctime, stat.st_ctime_nsec),
            size: stat.st_size as u64,
            ino: stat.st_ino as u64,
            st_mode: stat.st_mode as u32,
            entry: Oid::ZERO_SHA1,
            not_stored: false,
        }
    }

    /// Same stat data as `other` (the ids are not compared).
    pub fn same_stat(&self, other: &CachedFile) -> bool {
        (
            self.mtime_ns,
            self.ctime_ns,
            self.size,
            self.ino,
            self.st_mode,
        ) == (
            other.mtime_ns,
            other.ctime_ns,
            other.size,
            other.ino,
            other.st_mode,
        )
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.mtime_ns.to_le_bytes());
        out.extend_from_slice(&self.ctime_ns.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.ino.to_le_bytes());
        out.extend_from_slice(&self.st_mode.to_le_bytes());
        out.extend_from_slice(self.entry.as_bytes());
        out.push(u8::from(self.not_stored));
    }

    /// Decodes the `FILE_FIXED` bytes of `fixed` (the caller checked the length).
    fn decode(fixed: &[u8]) -> Option<CachedFile> {
        let mut reader = Reader(fixed);
        Some(CachedFile {
            mtime_ns: i64::from_le_bytes(reader.array()?),
            ctime_ns: i64::from_le_bytes(reader.array()?),
            size: u64::from_le_bytes(reader.array()?),
            ino: u64::from_le_bytes(reader.array()?),
            st_mode: u32::from_le_bytes(reader.array()?),
            entry: reader.oid()?,
            not_stored: reader.take(1)?[0] != 0,
        })
    }
}

/// Where one directory's record is in the cache's bytes, and what it says of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CachedDir {
    /// The record's start and length.
    record: (usize, usize),
    /// Where its file records start.
    files_at: usize,
    pub tree: Oid,
    /// Files plus non-empty subdirectories.
    pub entries: u32,
    pub files: u32,
    pub not_stored: u32,
    /// Fingerprint of the ignore rules its files and subdirectories were matched against.
    pub rules: u64,
}

/// One directory's new record, for [`Delta::push_dir`].
pub(super) struct DirRecord<'a> {
    pub path: &'a str,
    pub tree: Oid,
    pub entries: u32,
    pub files: u32,
    pub not_stored: u32,
    pub rules: u64,
}

/// What a checkpoint changes in the cache: new directory records and the directories gone.
pub(super) struct Delta {
    scan_started_ns: i64,
    root: Oid,
    records: Vec<u8>,
    record_count: u32,
    removed: Vec<String>,
}

impl Delta {
    pub fn new(scan_started_ns: i64, root: Oid) -> Delta {
        Delta {
            scan_started_ns,
            root,
            records: Vec::new(),
            record_count: 0,
            removed: Vec::new(),
        }
    }

    /// Adds a directory's record; its files follow through [`Delta::push_file`] (in name
    /// order) or [`Delta::copy_files`], then [`Delta::end_dir`].
    pub fn push_dir(&mut self, dir: &DirRecord<'_>) -> usize {
        let start = self.records.len();
        self.records.extend_from_slice(&[0; 4]);
        put_str(&mut self.records, dir.path);
        self.records.extend_from_slice(dir.tree.as_bytes());
        for n in [dir.entries, dir.files, dir.not_stored] {
            self.records.extend_from_slice(&n.to_le_bytes());
        }
        self.records.extend_from_slice(&dir.rules.to_le_bytes());
        self.record_count += 1;
        start
    }

    pub fn push_file(&mut self, name: &str, file: &CachedFile) {
        self.records
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.records.extend_from_slice(name.as_bytes());
        file.encode(&mut self.records);
    }

    /// Copies a cached directory's file records unchanged.
    pub fn copy_files(&mut self, cache: &StatCache, dir: &CachedDir) {
        let (start, len) = dir.record;
        self.records
            .extend_from_slice(&cache.bytes[dir.files_at..start + len]);
    }

    /// Closes the record [`Delta::push_dir`] began at `start`.
    pub fn end_dir(&mut self, start: usize) {
        let len = (self.records.len() - start) as u32;
        self.records[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }

    pub fn remove_dir(&mut self, path: &str) {
        self.removed.push(path.to_string());
    }

    /// Whether it only moves the scan's start (nothing in it changed).
    pub fn is_empty(&self) -> bool {
        self.record_count == 0 && self.removed.is_empty()
    }
}

/// The stat cache (see the module docs).
#[derive(Debug, Default)]
pub(super) struct StatCache {
    /// The file's bytes (everything up to the last valid batch).
    bytes: Vec<u8>,
    dirs: FastMap<String, CachedDir>,
    /// Bytes of the records `dirs` points at.
    live_bytes: usize,
    /// When the scan that produced this state started (ns since the Unix epoch). A file
    /// modified at or after it (less [`RACY_MARGIN_NS`]) may have changed unseen within the
    /// same timestamp ("racy clean"), so it is read again next time.
    pub scan_started_ns: i64,
    pub root: Option<Oid>,
    /// The last batch's checksum.
    tail: u64,
}

impl StatCache {
    /// Whether `now` (fresh stat data of the same path) may reuse `cached` without rereading.
    pub fn trusts(&self, cached: &CachedFile, now: &CachedFile) -> bool {
        let coarse = now.mtime_ns % 1_000_000_000 == 0 && now.ctime_ns % 1_000_000_000 == 0;
        let margin = if coarse {
            COARSE_RACY_MARGIN_NS
        } else {
            RACY_MARGIN_NS
        };
        let trusted_before = self.scan_started_ns.saturating_sub(margin);
        cached.same_stat(now)
            && cached.mtime_ns < trusted_before
            && cached.ctime_ns < trusted_before
    }

    pub fn dir(&self, path: &str) -> Option<&CachedDir> {
        self.dirs.get(path)
    }

    pub fn dir_count(&self) -> usize {
        self.dirs.len()
    }

    pub fn dir_paths(&self) -> impl Iterator<Item = &str> {
        self.dirs.keys().map(String::as_str)
    }

    /// A directory's files in name order: (name, cached data); the names are UTF-8 (they were
    /// written from `&str`). A record that does not decode ends the iteration (loading checked
    /// every batch's checksum, so only a bug could).
    pub fn files<'c>(&'c self, dir: &CachedDir) -> impl Iterator<Item = (&'c [u8], CachedFile)> {
        let (start, len) = dir.record;
        let mut reader = Reader(&self.bytes[dir.files_at..start + len]);
        std::iter::from_fn(move || {
            let name_len = u16::from_le_bytes(reader.array()?) as usize;
            let name = reader.take(name_len)?;
            let file = CachedFile::decode(reader.take(FILE_FIXED)?)?;
            Some((name, file))
        })
    }

    /// Reads the cache file; a missing one is empty, and so is an unreadable one (which costs
    /// one full reread).
    pub fn load(path: &Path) -> StatCache {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == ErrorKind::NotFound => return StatCache::default(),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "unreadable stat cache ignored");
                return StatCache::default();
            }
        };
        let cache = Self::decode(bytes);
        if cache.root.is_none() {
            tracing::warn!(path = %path.display(), "unreadable stat cache ignored");
        }
        cache
    }

    fn decode(mut bytes: Vec<u8>) -> StatCache {
        let mut cache = StatCache::default();
        if !bytes.starts_with(MAGIC) {
            return cache;
        }
        let mut at = MAGIC.len();
        while at < bytes.len() {
            let Some(len) = batch_len(&bytes, at) else {
                break;
            };
            let seed = if at == MAGIC.len() {
                BASE_SEED
            } else {
                cache.tail
            };
            let body = &bytes[at..at + len - 8];
            let stored =
                u64::from_le_bytes(bytes[at + len - 8..at + len].try_into().unwrap_or([0; 8]));
            let kind_ok = (at == MAGIC.len()) == (body[4] == BASE);
            if !kind_ok || checksum(seed, body) != stored || cache.apply(&bytes, at, len).is_none()
            {
                break;
            }
            cache.tail = stored;
            at += len;
        }
        if cache.root.is_none() {
            return StatCache::default();
        }
        if at < bytes.len() {
            tracing::warn!("stat cache: a batch cut short is ignored");
            bytes.truncate(at);
        }
        cache.bytes = bytes;
        cache
    }

    /// Applies the (checked) batch at `at` of `bytes` to the index.
    fn apply(&mut self, bytes: &[u8], at: usize, len: usize) -> Option<()> {
        let mut reader = Reader(&bytes[at + 4..at + len - 8]);
        let kind = reader.take(1)?[0];
        let scan_started_ns = i64::from_le_bytes(reader.array()?);
        if kind == BASE {
            self.dirs.clear();
            self.live_bytes = 0;
        }
        let records = u32::from_le_bytes(reader.array()?);
        for _ in 0..records {
            let start = at + len - 8 - reader.0.len();
            let record_len = u32::from_le_bytes(reader.0.get(..4)?.try_into().ok()?) as usize;
            let mut record = Reader(reader.take(record_len)?.get(4..)?);
            let path = record.str()?.to_string();
            let tree = record.oid()?;
            let entries = u32::from_le_bytes(record.array()?);
            let files = u32::from_le_bytes(record.array()?);
            let not_stored = u32::from_le_bytes(record.array()?);
            let rules = u64::from_le_bytes(record.array()?);
            let files_at = start + record_len - record.0.len();
            let dir = CachedDir {
                record: (start, record_len),
                files_at,
                tree,
                entries,
                files,
                not_stored,
                rules,
            };
            self.live_bytes += record_len;
            if let Some(old) = self.dirs.insert(path, dir) {
                self.live_bytes -= old.record.1;
            }
        }
        let removed = u32::from_le_bytes(reader.array()?);
        for _ in 0..removed {
            if let Some(old) = self.dirs.remove(reader.str()?) {
                self.live_bytes -= old.record.1;
            }
        }
        let root = reader.oid()?;
        if !reader.0.is_empty() {
            return None;
        }
        self.scan_started_ns = scan_started_ns;
        self.root = Some(root);
        Some(())
    }

    /// Whether the cache file on disk holds exactly this state.
    pub fn is_on_disk(&self, path: &Path) -> bool {
        if self.root.is_none() {
            return false;
        }
        let read_tail = || -> std::io::Result<bool> {
            let mut file = fs::File::open(path)?;
            if file.metadata()?.len() != self.bytes.len() as u64 {
                return Ok(false);
            }
            let mut tail = [0u8; 8];
            file.seek(SeekFrom::End(-8))?;
            file.read_exact(&mut tail)?;
            Ok(u64::from_le_bytes(tail) == self.tail)
        };
        read_tail().unwrap_or(false)
    }

    /// Applies `delta` and writes it to `path`: appended when the file still holds the state
    /// the delta was computed from, else (or when compaction is due) the whole state written
    /// anew. The caller holds the store lock.
    pub fn commit(&mut self, path: &Path, delta: Delta) -> Result<(), SnapshotError> {
        let appendable = self.is_on_disk(path);
        let previous_len = self.bytes.len();
        if self.bytes.is_empty() {
            self.bytes.extend_from_slice(MAGIC);
        }
        let at = self.bytes.len();
        let (kind, seed) = if at == MAGIC.len() {
            (BASE, BASE_SEED)
        } else {
            (DELTA, self.tail)
        };
        encode_batch(&mut self.bytes, kind, &delta, seed);
        let len = self.bytes.len() - at;
        self.tail = u64::from_le_bytes(
            self.bytes[self.bytes.len() - 8..]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let bytes = std::mem::take(&mut self.bytes);
        let applied = self.apply(&bytes, at, len);
        self.bytes = bytes;
        if applied.is_none() {
            // Only a bug could make a batch we just encoded unreadable: start over.
            *self = StatCache::default();
            return Ok(());
        }
        let dead = self.bytes.len() - MAGIC.len() - self.live_bytes;
        if dead > self.live_bytes.max(COMPACT_SLACK) {
            self.compact();
        } else if appendable && kind == DELTA {
            let append = || -> std::io::Result<()> {
                let mut file = fs::OpenOptions::new().append(true).open(path)?;
                file.write_all(&self.bytes[previous_len..])
            };
            return append().map_err(|e| SnapshotError::io(path, e));
        }
        self.write_whole(path)
    }

    /// Rewrites the bytes as one base batch of the live records.
    fn compact(&mut self) {
        let mut base = Delta::new(self.scan_started_ns, self.root.unwrap_or(Oid::ZERO_SHA1));
        let mut records: Vec<&CachedDir> = self.dirs.values().collect();
        records.sort_by_key(|dir| dir.record.0);
        for dir in records {
            let (start, len) = dir.record;
            base.records
                .extend_from_slice(&self.bytes[start..start + len]);
            base.record_count += 1;
        }
        let mut bytes = Vec::with_capacity(MAGIC.len() + base.records.len() + 64);
        bytes.extend_from_slice(MAGIC);
        encode_batch(&mut bytes, BASE, &base, BASE_SEED);
        *self = Self::decode(bytes);
    }

    /// Writes the whole state to a temporary file renamed over `path`.
    fn write_whole(&mut self, path: &Path) -> Result<(), SnapshotError> {
        if self.bytes.get(MAGIC.len() + 4) != Some(&BASE)
            || self.bytes.len() > MAGIC.len() + batch_len(&self.bytes, MAGIC.len()).unwrap_or(0)
        {
            self.compact();
        }
        let temporary = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            fs::write(&temporary, &self.bytes)?;
            fs::rename(&temporary, path)
        };
        write().map_err(|e| SnapshotError::io(path, e))
    }
}

/// The length of a complete batch at `at`, if `bytes` holds one there.
fn batch_len(bytes: &[u8], at: usize) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
    (len >= BATCH_HEAD + 4 + 20 + 8 && at + len <= bytes.len()).then_some(len)
}

fn encode_batch(out: &mut Vec<u8>, kind: u8, delta: &Delta, seed: u64) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    out.extend_from_slice(&delta.scan_started_ns.to_le_bytes());
    out.extend_from_slice(&delta.record_count.to_le_bytes());
    out.extend_from_slice(&delta.records);
    out.extend_from_slice(&(delta.removed.len() as u32).to_le_bytes());
    for path in &delta.removed {
        put_str(out, path);
    }
    out.extend_from_slice(delta.root.as_bytes());
    let len = (out.len() - at + 8) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    let sum = checksum(seed, &out[at..]);
    out.extend_from_slice(&sum.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A fast 64-bit checksum (four independent multiply-rotate lanes over 32-byte blocks, then
/// the tail), enough to catch torn and stale writes; `seed` chains batches.
pub(super) fn checksum(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mix = |lane: u64, word: u64| (lane ^ word).wrapping_mul(K).rotate_left(29);
    let word = |chunk: &[u8]| {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        u64::from_le_bytes(w)
    };
    let mut lanes = [
        seed ^ bytes.len() as u64,
        seed.rotate_left(16),
        seed.rotate_left(32),
        seed.rotate_left(48) ^ K,
    ];
    let mut blocks = bytes.chunks_exact(32);
    for block in blocks.by_ref() {
        for (lane, chunk) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = mix(*lane, word(chunk));
        }
    }
    let mut hash = lanes
        .iter()
        .fold(0u64, |acc, &lane| mix(acc.rotate_left(17), lane));
    for chunk in blocks.remainder().chunks(8) {
        hash = mix(hash, word(chunk) ^ chunk.len() as u64);
    }
    hash
}

/// Reads fields off the front of a byte slice.
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

    fn str(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(n: u8) -> CachedFile {
        CachedFile {
            mtime_ns: i64::from(n),
            ctime_ns: 6,
            size: 7,
            ino: 8,
            st_mode: 0o100644,
            entry: Oid::hash_object(git2::ObjectType::Blob, &[n]).unwrap(),
            not_stored: n.is_multiple_of(2),
        }
    }

    fn oid(n: u8) -> Oid {
        Oid::hash_object(git2::ObjectType::Tree, &[n]).unwrap()
    }

    /// A delta of directory `path` with files named by `files`.
    fn delta_with(root: u8, dirs: &[(&str, &[(&str, u8)])], removed: &[&str]) -> Delta {
        let mut delta = Delta::new(1000 + i64::from(root), oid(root));
        for (path, files) in dirs {
            let start = delta.push_dir(&DirRecord {
                path,
                tree: oid(files.len() as u8),
                entries: files.len() as u32,
                files: files.len() as u32,
                not_stored: 0,
                rules: 0,
            });
            for (name, n) in *files {
                delta.push_file(name, &file(*n));
            }
            delta.end_dir(start);
        }
        for path in removed {
            delta.remove_dir(path);
        }
        delta
    }

    fn names(cache: &StatCache, dir: &str) -> Vec<(String, CachedFile)> {
        let dir = cache.dir(dir).unwrap();
        cache
            .files(dir)
            .map(|(name, file)| (String::from_utf8(name.to_vec()).unwrap(), file))
            .collect()
    }

    /// A cache file in a new folder, holding a base of `dirs` (root tree `oid(1)`).
    fn cache_with(dirs: &[(&str, &[(&str, u8)])]) -> (tempfile::TempDir, PathBuf, StatCache) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat-cache");
        let mut cache = StatCache::default();
        cache.commit(&path, delta_with(1, dirs, &[])).unwrap();
        (dir, path, cache)
    }

    #[test]
    fn deltas_are_appended_and_a_new_process_reads_the_same_state() {
        let (_dir, path, mut cache) =
            cache_with(&[("", &[("a", 1)]), ("d", &[("x", 2), ("y", 3)])]);
        let base_len = fs::metadata(&path).unwrap().len();
        assert!(cache.is_on_disk(&path));

        cache
            .commit(
                &path,
                delta_with(2, &[("d", &[("x", 4)]), ("e", &[("z", 5)])], &[""]),
            )
            .unwrap();
        let len = fs::metadata(&path).unwrap().len();
        assert!(
            len > base_len && len < 2 * base_len,
            "the delta is appended"
        );
        assert!(cache.is_on_disk(&path));

        let loaded = StatCache::load(&path);
        for state in [&cache, &loaded] {
            assert_eq!(state.root, Some(oid(2)));
            assert_eq!(state.scan_started_ns, 1002);
            assert_eq!(state.dir_count(), 2);
            assert!(state.dir("").is_none(), "a removed directory is gone");
            assert_eq!(names(state, "d"), vec![("x".to_string(), file(4))]);
            assert_eq!(names(state, "e"), vec![("z".to_string(), file(5))]);
            assert_eq!(state.dir("d").unwrap().tree, oid(1));
        }
        assert!(loaded.is_on_disk(&path));
    }

    #[test]
    fn a_batch_cut_short_leaves_the_state_before_it_and_is_then_overwritten() {
        let (_dir, path, mut cache) = cache_with(&[("", &[("a", 1)])]);
        cache
            .commit(&path, delta_with(2, &[("", &[("a", 3)])], &[]))
            .unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(!cache.is_on_disk(&path));
        let mut loaded = StatCache::load(&path);
        assert_eq!(loaded.root, Some(oid(1)));
        assert_eq!(names(&loaded, ""), vec![("a".to_string(), file(1))]);

        // The torn tail is not appended to: the whole state is written anew.
        loaded
            .commit(&path, delta_with(3, &[("", &[("b", 5)])], &[]))
            .unwrap();
        let reloaded = StatCache::load(&path);
        assert_eq!(reloaded.root, Some(oid(3)));
        assert_eq!(names(&reloaded, ""), vec![("b".to_string(), file(5))]);
        assert!(reloaded.is_on_disk(&path) && loaded.is_on_disk(&path));

        // A base that does not check out is an empty cache.
        let mut bytes = fs::read(&path).unwrap();
        bytes[MAGIC.len() + 20] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(StatCache::load(&path).root.is_none());
    }

    #[test]
    fn a_delta_is_not_appended_onto_a_state_another_process_wrote() {
        let (_dir, path, mut first) = cache_with(&[("", &[("a", 1)]), ("d", &[("x", 2)])]);
        let mut second = StatCache::load(&path);
        second
            .commit(&path, delta_with(2, &[("d", &[("x", 4)])], &[]))
            .unwrap();
        assert!(!first.is_on_disk(&path));
        first
            .commit(&path, delta_with(3, &[("", &[("b", 5)])], &[]))
            .unwrap();
        let loaded = StatCache::load(&path);
        assert_eq!(loaded.root, Some(oid(3)));
        assert_eq!(
            names(&loaded, "d"),
            vec![("x".to_string(), file(2))],
            "only the writer's own state, none of the other's delta"
        );
        assert_eq!(names(&loaded, ""), vec![("b".to_string(), file(5))]);
    }

    #[test]
    fn dead_records_are_compacted_away() {
        let many: Vec<(String, u8)> = (0..2000).map(|i| (format!("f{i:05}"), 1)).collect();
        let many: Vec<(&str, u8)> = many.iter().map(|(n, i)| (n.as_str(), *i)).collect();
        let (_dir, path, mut cache) = cache_with(&[("d", &many)]);
        let full = fs::metadata(&path).unwrap().len();
        for round in 0..200u8 {
            cache
                .commit(&path, delta_with(round, &[("d", &many)], &[]))
                .unwrap();
            assert!(fs::metadata(&path).unwrap().len() <= 2 * full + COMPACT_SLACK as u64 + 1024);
        }
        let loaded = StatCache::load(&path);
        assert_eq!(loaded.files(loaded.dir("d").unwrap()).count(), 2000);
        assert!(loaded.is_on_disk(&path) && cache.is_on_disk(&path));
    }

    #[test]
    fn a_file_changed_during_the_previous_scan_is_not_trusted() {
        let second = 1_000_000_000;
        let cached = CachedFile {
            mtime_ns: 100 * second + 5,
            ctime_ns: 100 * second + 5,
            ..file(1)
        };
        let cache_at = |scan_started_ns| StatCache {
            scan_started_ns,
            ..StatCache::default()
        };
        assert!(cache_at(101 * second).trusts(&cached, &cached));
        assert!(!cache_at(101 * second).trusts(&cached, &CachedFile { size: 2, ..cached }));
        // Within the coarse clock's lag of the scan's start: read again.
        assert!(!cache_at(100 * second + 5).trusts(&cached, &cached));
        assert!(!cache_at(100 * second + 10_000_000).trusts(&cached, &cached));
        // Whole-second timestamps get a wider margin.
        let coarse = CachedFile {
            mtime_ns: 100 * second,
            ctime_ns: 100 * second,
            ..cached
        };
        assert!(!cache_at(101 * second).trusts(&coarse, &coarse));
        assert!(cache_at(103 * second).trusts(&coarse, &coarse));
    }
}
