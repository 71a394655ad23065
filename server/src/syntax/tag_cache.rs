//! Tags of files on disk, parsed on demand and cached by (mtime, size): in memory, and in
//! one file per workspace in tack's cache folder (`<cache>/tags/<hash of the root>.bin`), so
//! a new process starts warm. The file is a compact binary of our own (varints, one header
//! with a hash of every `tags.scm`, so changed queries invalidate it); a file that does not
//! read back is ignored with a warning and rewritten, never fatal. Writes are atomic (a
//! temporary file renamed over the old one).

use crate::fast_hash::FastMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::tags::{FileTags, Reference, Symbol, SymbolKind};
use super::{Language, SyntaxError};

const MAGIC: &[u8; 8] = b"TACKTAG1";

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub mtime_ns: u64,
    pub size: u64,
}

impl FileStamp {
    pub fn of(metadata: &std::fs::Metadata) -> FileStamp {
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        FileStamp {
            mtime_ns,
            size: metadata.len(),
        }
    }
}

/// One cached file.
#[derive(Debug, Clone)]
pub struct CachedTags {
    pub stamp: FileStamp,
    pub language: Language,
    pub tags: Arc<FileTags>,
}

/// The tags cache of one workspace, by workspace-relative path (`/`-separated).
#[derive(Debug, Default)]
pub struct TagCache {
    entries: FastMap<String, CachedTags>,
    file: Option<PathBuf>,
    /// Changed since loaded or saved.
    dirty: bool,
}

/// The cache file of a workspace root in the default cache folder.
pub fn cache_file_for(root: &Path) -> Option<PathBuf> {
    let name = format!("{:016x}.bin", fnv1a(root.to_string_lossy().as_bytes()));
    Some(super::default_cache_dir()?.join("tags").join(name))
}

impl TagCache {
    /// A cache that lives in memory only.
    pub fn in_memory() -> TagCache {
        TagCache::default()
    }

    /// The cache saved in `file` (empty when there is none or it does not read back).
    pub fn load(file: PathBuf) -> TagCache {
        let entries = match std::fs::read(&file) {
            Ok(bytes) => match decode(&bytes) {
                Some(entries) => entries,
                None => {
                    tracing::warn!(file = %file.display(), "tags cache unreadable or from other queries; starting anew");
                    FastMap::default()
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => FastMap::default(),
            Err(error) => {
                tracing::warn!(%error, file = %file.display(), "tags cache not read");
                FastMap::default()
            }
        };
        TagCache {
            entries,
            file: Some(file),
            dirty: false,
        }
    }

    pub fn get(&self, path: &str, stamp: FileStamp) -> Option<&CachedTags> {
        self.entries
            .get(path)
            .filter(|cached| cached.stamp == stamp)
    }

    pub fn insert(&mut self, path: String, cached: CachedTags) {
        self.entries.insert(path, cached);
        self.dirty = true;
    }

    /// Keeps only the paths `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|path, _| keep(path));
        self.dirty |= self.entries.len() != before;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Writes the cache to its file when it changed (atomically).
    pub fn save(&mut self) -> Result<(), SyntaxError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let io = |error: std::io::Error| SyntaxError::Io {
            path: file.display().to_string(),
            message: error.to_string(),
        };
        if let Some(folder) = file.parent() {
            std::fs::create_dir_all(folder).map_err(io)?;
        }
        let temporary = file.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, encode(&self.entries)).map_err(io)?;
        std::fs::rename(&temporary, file).map_err(io)?;
        self.dirty = false;
        Ok(())
    }

    /// The tags of `root`/`relative`, from the cache when its stamp matches, else parsed now
    /// (and cached). `None` for a language tack does not parse.
    pub fn tags_of(
        &mut self,
        root: &Path,
        relative: &str,
    ) -> Result<Option<Arc<FileTags>>, SyntaxError> {
        let path = root.join(relative);
        let Some(language) = Language::from_path(&path) else {
            return Ok(None);
        };
        let io = |error: std::io::Error| SyntaxError::Io {
            path: path.display().to_string(),
            message: error.to_string(),
        };
        let metadata = std::fs::metadata(&path).map_err(io)?;
        let stamp = FileStamp::of(&metadata);
        if let Some(cached) = self.get(relative, stamp) {
            return Ok(Some(cached.tags.clone()));
        }
        let text = std::fs::read(&path).map_err(io)?;
        let tags = Arc::new(super::tags::tag_text(language, &text)?);
        self.insert(
            relative.to_owned(),
            CachedTags {
                stamp,
                language,
                tags: tags.clone(),
            },
        );
        Ok(Some(tags))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &CachedTags)> {
        self.entries.iter()
    }
}

/// FNV-1a, 64 bits: a stable hash for file names and the queries' fingerprint.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A fingerprint of every tags query: a cache written with other queries is not used.
fn queries_fingerprint() -> u64 {
    let mut all = Vec::new();
    for language in Language::ALL {
        all.extend_from_slice(language.tags_source().as_bytes());
    }
    fnv1a(&all)
}

fn encode(entries: &FastMap<String, CachedTags>) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 512);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&queries_fingerprint().to_le_bytes());
    put(&mut out, entries.len() as u64);
    for (path, cached) in entries {
        put_str(&mut out, path);
        put(&mut out, cached.stamp.mtime_ns);
        put(&mut out, cached.stamp.size);
        let language = Language::ALL
            .iter()
            .position(|l| *l == cached.language)
            .unwrap_or(0);
        put(&mut out, language as u64);
        put(&mut out, cached.tags.symbols.len() as u64);
        for symbol in &cached.tags.symbols {
            put_str(&mut out, &symbol.name);
            put(&mut out, u64::from(symbol.kind.code()));
            for value in [
                symbol.start_byte,
                symbol.end_byte,
                symbol.start_line,
                symbol.end_line,
                symbol.name_line,
                symbol.name_column,
            ] {
                put(&mut out, u64::from(value));
            }
            put_str(&mut out, &symbol.signature);
            put(&mut out, symbol.parent.map_or(0, |p| u64::from(p) + 1));
        }
        put(&mut out, cached.tags.references.len() as u64);
        for reference in &cached.tags.references {
            put_str(&mut out, &reference.name);
            put(&mut out, reference.lines.len() as u64);
            let mut previous = 0u32;
            for line in &reference.lines {
                put(&mut out, u64::from(line.saturating_sub(previous)));
                previous = *line;
            }
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Option<FastMap<String, CachedTags>> {
    let mut input = Input { bytes, at: 0 };
    if input.take(8)? != MAGIC || input.take(8)? != queries_fingerprint().to_le_bytes() {
        return None;
    }
    let files = input.count()?;
    let mut entries = FastMap::with_capacity_and_hasher(files, Default::default());
    for _ in 0..files {
        let path = input.string()?;
        let stamp = FileStamp {
            mtime_ns: input.varint()?,
            size: input.varint()?,
        };
        let language = *Language::ALL.get(input.count()?)?;
        let symbol_count = input.count()?;
        let mut symbols = Vec::with_capacity(symbol_count);
        for _ in 0..symbol_count {
            let name = input.string()?;
            let kind = SymbolKind::from_code(u8::try_from(input.varint()?).ok()?);
            let mut numbers = [0u32; 6];
            for number in &mut numbers {
                *number = input.u32()?;
            }
            let signature = input.string()?;
            let parent = match input.u32()? {
                0 => None,
                p => Some(p - 1),
            };
            let [
                start_byte,
                end_byte,
                start_line,
                end_line,
                name_line,
                name_column,
            ] = numbers;
            symbols.push(Symbol {
                name,
                kind,
                start_byte,
                end_byte,
                start_line,
                end_line,
                name_line,
                name_column,
                signature,
                parent,
            });
        }
        let reference_count = input.count()?;
        let mut references = Vec::with_capacity(reference_count);
        for _ in 0..reference_count {
            let name = input.string()?;
            let line_count = input.count()?;
            let mut lines = Vec::with_capacity(line_count);
            let mut line = 0u32;
            for _ in 0..line_count {
                line = line.checked_add(input.u32()?)?;
                lines.push(line);
            }
            references.push(Reference { name, lines });
        }
        entries.insert(
            path,
            CachedTags {
                stamp,
                language,
                tags: Arc::new(FileTags {
                    symbols,
                    references,
                }),
            },
        );
    }
    (input.at == bytes.len()).then_some(entries)
}

fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    /// A count that cannot exceed the bytes left (so a corrupt file cannot ask for huge
    /// allocations).
    fn count(&mut self) -> Option<usize> {
        let count = usize::try_from(self.varint()?).ok()?;
        (count <= self.bytes.len() - self.at).then_some(count)
    }

    fn string(&mut self) -> Option<String> {
        let len = self.count()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_cache_reads_back_and_a_damaged_one_is_ignored() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(
            folder.path().join("a.rs"),
            "struct S;\nimpl S {\n    fn go(&self) { helper(1); }\n}\n",
        )
        .unwrap();
        let file = folder.path().join("cache/tags.bin");
        let mut cache = TagCache::load(file.clone());
        assert!(cache.is_empty());
        let tags = cache.tags_of(folder.path(), "a.rs").unwrap().unwrap();
        assert_eq!(tags.symbols.len(), 3);
        cache.save().unwrap();

        let reloaded = TagCache::load(file.clone());
        let stamp = FileStamp::of(&std::fs::metadata(folder.path().join("a.rs")).unwrap());
        let cached = reloaded.get("a.rs", stamp).unwrap();
        assert_eq!(*cached.tags, *tags);
        assert_eq!(cached.language, Language::Rust);
        // A different stamp is a miss.
        assert!(
            reloaded
                .get(
                    "a.rs",
                    FileStamp {
                        mtime_ns: 1,
                        size: stamp.size
                    }
                )
                .is_none()
        );

        let mut bytes = std::fs::read(&file).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&file, &bytes).unwrap();
        assert!(TagCache::load(file.clone()).is_empty());
        std::fs::write(&file, b"not a cache").unwrap();
        assert!(TagCache::load(file).is_empty());
    }

    #[test]
    fn a_file_changed_on_disk_is_parsed_again() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("m.py");
        std::fs::write(&path, "def one():\n    pass\n").unwrap();
        let mut cache = TagCache::in_memory();
        let first = cache.tags_of(folder.path(), "m.py").unwrap().unwrap();
        assert_eq!(first.symbols[0].name, "one");
        std::fs::write(&path, "def two_and_more():\n    pass\n").unwrap();
        let second = cache.tags_of(folder.path(), "m.py").unwrap().unwrap();
        assert_eq!(second.symbols[0].name, "two_and_more");
        assert!(cache.tags_of(folder.path(), "notes.txt").unwrap().is_none());
        let missing = cache.tags_of(folder.path(), "gone.py").unwrap_err();
        assert!(missing.to_string().contains("gone.py"), "{missing}");
    }
}
