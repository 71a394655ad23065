//! The checkpoint's stat cache, like git's index: per file its stat data and the blob id its
//! tree entry points at, per directory its tree id and entry count, and when the scan that
//! made it started. Kept in memory by the store and, between processes, in the store's
//! `stat-cache` file: a small binary format ending in a checksum and its own length, written
//! in place (creating a file per checkpoint costs more than the whole scan on a busy
//! filesystem); a torn or stale-tailed file fails the check and is ignored, which only costs
//! one full reread.

use std::collections::HashMap;
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::path::Path;

use git2::Oid;

use super::SnapshotError;

const MAGIC: &[u8] = b"TACKSTAT2\n";

/// rustc's FxHash: much faster than the default SipHash on 100k path keys; the keys are our
/// own workspace paths, so hash flooding is not a concern.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PathHasher(u64);

impl PathHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
}

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in words.by_ref() {
            self.add(u64::from_le_bytes([
                word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
            ]));
        }
        let mut last = [0u8; 8];
        last[..words.remainder().len()].copy_from_slice(words.remainder());
        self.add(u64::from_le_bytes(last) ^ (words.remainder().len() as u64) << 56);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by workspace-relative path.
pub(super) type PathMap<V> = HashMap<String, V, BuildHasherDefault<PathHasher>>;

/// What the cache remembers of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CachedFile {
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub size: u64,
    pub ino: u64,
    pub st_mode: u32,
    /// The id the tree entry points at (a placeholder's id for files not stored).
    pub entry: Oid,
    pub not_stored: bool,
}

impl CachedFile {
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
}

/// What the cache remembers of one directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CachedTree {
    pub oid: Oid,
    /// Files plus non-empty subdirectories.
    pub entries: u32,
}

#[derive(Debug, Default)]
pub(super) struct StatCache {
    /// When the scan that produced this cache started (ns since the Unix epoch). A file
    /// modified at or after it may have changed unseen within the same timestamp ("racy
    /// clean"), so it is read again next time.
    pub scan_started_ns: i128,
    pub files: PathMap<CachedFile>,
    /// Keyed by workspace-relative directory, `""` for the root.
    pub trees: PathMap<CachedTree>,
    pub root: Option<Oid>,
}

impl StatCache {
    /// Whether `now` (fresh stat data of the same path) may reuse `cached` without rereading.
    pub fn trusts(&self, cached: &CachedFile, now: &CachedFile) -> bool {
        cached.same_stat(now)
            && cached.mtime_ns < self.scan_started_ns
            && cached.ctime_ns < self.scan_started_ns
    }

    /// Reads the cache file; a missing or unreadable one is an empty cache.
    pub fn load(path: &Path) -> StatCache {
        match fs::read(path) {
            Ok(bytes) => Self::decode(&bytes).unwrap_or_else(|| {
                tracing::warn!(path = %path.display(), "unreadable stat cache ignored");
                StatCache::default()
            }),
            Err(_) => StatCache::default(),
        }
    }

    /// The root tree named by the cache file, read from its header only (unchecked).
    pub fn root_on_disk(path: &Path) -> Option<Oid> {
        let mut header = [0u8; MAGIC.len() + 16 + 20];
        fs::File::open(path).ok()?.read_exact(&mut header).ok()?;
        let rest = header.strip_prefix(MAGIC)?;
        Oid::from_bytes(&rest[16..])
            .ok()
            .filter(|oid| !oid.is_zero())
    }

    /// Writes the cache file in place (see the module docs).
    pub fn save(&self, path: &Path) -> Result<(), SnapshotError> {
        let bytes = self.encode();
        let write = || -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?;
            file.write_all(&bytes)?;
            file.set_len(bytes.len() as u64)
        };
        write().map_err(|e| SnapshotError::io(path, e))
    }

    fn encode(&self) -> Vec<u8> {
        fn put_path(out: &mut Vec<u8>, path: &str) {
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path.as_bytes());
        }
        let mut out = Vec::with_capacity(64 + self.files.len() * 96 + self.trees.len() * 48);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.scan_started_ns.to_le_bytes());
        out.extend_from_slice(self.root.unwrap_or(Oid::ZERO_SHA1).as_bytes());
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for (path, file) in &self.files {
            put_path(&mut out, path);
            out.extend_from_slice(&file.mtime_ns.to_le_bytes());
            out.extend_from_slice(&file.ctime_ns.to_le_bytes());
            out.extend_from_slice(&file.size.to_le_bytes());
            out.extend_from_slice(&file.ino.to_le_bytes());
            out.extend_from_slice(&file.st_mode.to_le_bytes());
            out.extend_from_slice(file.entry.as_bytes());
            out.push(u8::from(file.not_stored));
        }
        out.extend_from_slice(&(self.trees.len() as u32).to_le_bytes());
        for (path, tree) in &self.trees {
            put_path(&mut out, path);
            out.extend_from_slice(tree.oid.as_bytes());
            out.extend_from_slice(&tree.entries.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(&(out.len() as u64 + 8).to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<StatCache> {
        let (body, trailer) = bytes.split_at_checked(bytes.len().checked_sub(16)?)?;
        let (sum, len) = trailer.split_at(8);
        let sum = u64::from_le_bytes(sum.try_into().ok()?);
        let len = u64::from_le_bytes(len.try_into().ok()?);
        if len != bytes.len() as u64 || sum != checksum(body) {
            return None;
        }
        let mut reader = Reader(body.strip_prefix(MAGIC)?);
        let scan_started_ns = i128::from_le_bytes(reader.array()?);
        let root = reader.oid().filter(|oid| !oid.is_zero());
        let file_count = u32::from_le_bytes(reader.array()?) as usize;
        let mut files = PathMap::with_capacity_and_hasher(file_count, Default::default());
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
        let mut trees = PathMap::with_capacity_and_hasher(tree_count, Default::default());
        for _ in 0..tree_count {
            let path = reader.path()?;
            let tree = CachedTree {
                oid: reader.oid()?,
                entries: u32::from_le_bytes(reader.array()?),
            };
            trees.insert(path, tree);
        }
        reader.0.is_empty().then_some(StatCache {
            scan_started_ns,
            files,
            trees,
            root,
        })
    }
}

/// A fast 64-bit checksum (word-wise multiply-rotate), enough to catch torn writes.
fn checksum(bytes: &[u8]) -> u64 {
    let mut hash = 0x9E37_79B9_7F4A_7C15u64 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in words.by_ref() {
        let word = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        hash = (hash ^ word)
            .wrapping_mul(0x0100_0000_01B3_u64.wrapping_mul(0xFF51_AFD7_ED55_8CCD))
            .rotate_left(29);
    }
    for &byte in words.remainder() {
        hash = (hash ^ u64::from(byte))
            .wrapping_mul(0xC4CE_B9FE_1A85_EC53)
            .rotate_left(29);
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

    fn path(&mut self) -> Option<String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_round_trips_and_a_truncated_one_is_ignored() {
        let oid = Oid::hash_object(git2::ObjectType::Blob, b"x").unwrap();
        let file = CachedFile {
            mtime_ns: 5,
            ctime_ns: 6,
            size: 7,
            ino: 8,
            st_mode: 0o100644,
            entry: oid,
            not_stored: true,
        };
        let mut cache = StatCache {
            scan_started_ns: 42,
            root: Some(oid),
            ..StatCache::default()
        };
        cache.files.insert("a/b.txt".into(), file);
        cache
            .trees
            .insert(String::new(), CachedTree { oid, entries: 3 });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat-cache");
        cache.save(&path).unwrap();
        let loaded = StatCache::load(&path);
        assert_eq!(loaded.scan_started_ns, 42);
        assert_eq!(loaded.root, Some(oid));
        assert_eq!(loaded.files.get("a/b.txt"), Some(&file));
        assert_eq!(loaded.trees.get(""), Some(&CachedTree { oid, entries: 3 }));

        // A save cut short, or a shorter save over a longer file that kept its old tail,
        // is detected.
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(StatCache::load(&path).files.is_empty());
        let mut mixed = bytes.clone();
        mixed[20] ^= 1;
        fs::write(&path, &mixed).unwrap();
        assert!(StatCache::load(&path).files.is_empty());
        let mut longer = bytes.clone();
        longer.extend_from_slice(&bytes[..40]);
        fs::write(&path, &longer).unwrap();
        assert!(StatCache::load(&path).files.is_empty());
        // Saving over a longer file truncates it.
        StatCache::default().save(&path).unwrap();
        assert!(StatCache::load(&path).root.is_none());
        cache.save(&path).unwrap();
        assert_eq!(StatCache::load(&path).files.len(), 1);
    }

    #[test]
    fn a_file_changed_during_the_previous_scan_is_not_trusted() {
        let oid = Oid::ZERO_SHA1;
        let cached = CachedFile {
            mtime_ns: 100,
            ctime_ns: 100,
            size: 1,
            ino: 1,
            st_mode: 0,
            entry: oid,
            not_stored: false,
        };
        let early = StatCache {
            scan_started_ns: 101,
            ..StatCache::default()
        };
        let racy = StatCache {
            scan_started_ns: 100,
            ..StatCache::default()
        };
        assert!(early.trusts(&cached, &cached));
        assert!(!racy.trusts(&cached, &cached));
        assert!(!early.trusts(&cached, &CachedFile { size: 2, ..cached }));
    }
}
