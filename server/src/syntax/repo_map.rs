//! The repository map: an index of every source file's tags (files → definitions, and the
//! names each file uses), a ranking of definitions, and the map rendered within a token
//! budget.
//!
//! Ranking: files are nodes; a file that uses a name points at every other file defining it,
//! weighted by how often it uses it (square root) and by how telling the name is (mentioned
//! in the conversation ×10; long compound names ×10; `_private` names and names defined in
//! many files ×0.1; uses from the focus files ×50). PageRank, restarting at the focus files
//! (the current document and the files of the conversation; uniformly when there are none),
//! ranks files; each file's rank is then shared out over the definitions it points at, in
//! proportion to the edge weights. The map shows the best-ranked definitions' signature
//! lines (with the lines of the definitions around them), file by file, as many as fit.
//! Focus files are left out: their text is in the context already.
//!
//! Building: the walk honours `.gitignore`, `.ignore` and hidden files (the `ignore` crate),
//! and skips `__pycache__` folders;
//! files are parsed in parallel, one parser per thread; files larger than
//! [`MapOptions::max_file_bytes`] (generated code, data) are not parsed. The tags cache
//! ([`TagCache`]) makes a build after the first one a walk and a stat per file. One changed
//! file is [`RepoIndex::update_file`]: its tags again, nothing else.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fast_hash::FastMap;

use super::rank::pagerank_by;
use super::tag_cache::{CachedTags, FileStamp, TagCache};
use super::tags::FileTags;
use super::{Language, SyntaxError};
use crate::context::tokens::estimate_tokens;

/// How the index is built.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Larger files are indexed without tags.
    pub max_file_bytes: u64,
    /// Parser threads for a build (at least 1).
    pub threads: usize,
    /// The on-disk tags cache; `None` keeps it in memory only.
    pub cache_file: Option<PathBuf>,
}

/// Files over this size are usually generated; they are not parsed.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024;

impl MapOptions {
    /// The defaults for a workspace: every core, the default cache file.
    pub fn for_root(root: &Path) -> MapOptions {
        MapOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            cache_file: super::tag_cache::cache_file_for(root),
        }
    }

    /// The same, with no cache on disk.
    pub fn in_memory() -> MapOptions {
        MapOptions {
            cache_file: None,
            ..MapOptions::for_root(Path::new("/"))
        }
    }
}

/// One indexed file.
#[derive(Debug, Clone)]
pub struct IndexedFile {
    /// Workspace-relative, `/`-separated.
    pub path: String,
    pub language: Language,
    pub stamp: FileStamp,
    pub tags: Arc<FileTags>,
    /// Interned name of each symbol (`u32::MAX` for symbols that define no name).
    symbol_names: Vec<u32>,
    /// (interned name, uses) of every name used, in the order of the tags (by name text).
    uses: Vec<(u32, u32)>,
}

/// What a build did, for logs and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStats {
    pub files: usize,
    pub parsed: usize,
    pub from_cache: usize,
    pub too_large: usize,
    pub failed: usize,
}

/// Every source file of a workspace with its tags.
#[derive(Debug)]
pub struct RepoIndex {
    root: PathBuf,
    options: MapOptions,
    files: Vec<IndexedFile>,
    by_path: FastMap<String, usize>,
    names: NameTable,
    cache: TagCache,
    last_stats: BuildStats,
    /// The file ranks of the last ranking: the next one starts from them (after a small
    /// change it converges in a few iterations).
    last_ranks: std::sync::Mutex<Vec<f64>>,
}

/// What the map is ranked toward.
#[derive(Debug, Clone, Default)]
pub struct Focus {
    /// Workspace-relative paths of the current document and the files of the conversation.
    pub files: Vec<String>,
    /// Identifiers mentioned in the conversation.
    pub mentioned: Vec<String>,
}

/// One definition the ranking scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedSymbol {
    pub file: usize,
    pub symbol: usize,
    pub score: f64,
}

/// A rendered map.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoMap {
    pub text: String,
    pub tokens: usize,
    /// Definitions shown.
    pub symbols: usize,
    /// Files shown, in the order shown.
    pub files: Vec<String>,
}

impl RepoIndex {
    /// An empty index of `root` (no files yet): [`RepoIndex::refresh`] fills it.
    pub fn new(root: &Path, options: MapOptions) -> RepoIndex {
        let cache = load_cache(&options);
        RepoIndex::with_cache(root, options, cache)
    }

    fn with_cache(root: &Path, options: MapOptions, cache: TagCache) -> RepoIndex {
        RepoIndex {
            root: root.to_path_buf(),
            options,
            files: Vec::new(),
            by_path: FastMap::default(),
            names: NameTable::default(),
            cache,
            last_stats: BuildStats::default(),
            last_ranks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Builds the index of `root`: walk, then tags from the cache or parsed in parallel.
    /// The cache file is read while the workspace is walked.
    pub fn build(root: &Path, options: MapOptions) -> RepoIndex {
        let (cache, found) = std::thread::scope(|scope| {
            let loading = scope.spawn(|| load_cache(&options));
            let found = walk(root, options.threads);
            (
                loading.join().unwrap_or_else(|_| TagCache::in_memory()),
                found,
            )
        });
        let mut index = RepoIndex::with_cache(root, options, cache);
        index.refresh_from(found);
        index
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn files(&self) -> &[IndexedFile] {
        &self.files
    }

    pub fn file(&self, path: &str) -> Option<&IndexedFile> {
        self.by_path.get(path).map(|i| &self.files[*i])
    }

    pub fn last_stats(&self) -> BuildStats {
        self.last_stats
    }

    /// Walks the workspace again: new and changed files are parsed, removed ones dropped.
    pub fn refresh(&mut self) -> BuildStats {
        let found = walk(&self.root, self.options.threads);
        self.refresh_from(found)
    }

    /// [`RepoIndex::refresh`] over a walk made already.
    fn refresh_from(&mut self, found: Vec<(String, Language, FileStamp)>) -> BuildStats {
        let mut stats = BuildStats {
            files: found.len(),
            ..BuildStats::default()
        };
        let mut to_parse = Vec::new();
        let mut entries: Vec<(String, Language, FileStamp, Option<Arc<FileTags>>)> =
            Vec::with_capacity(found.len());
        for (relative, language, stamp) in found {
            if stamp.size > self.options.max_file_bytes {
                stats.too_large += 1;
                entries.push((
                    relative,
                    language,
                    stamp,
                    Some(Arc::new(FileTags::default())),
                ));
                continue;
            }
            if let Some(file) = self.file(&relative).filter(|f| f.stamp == stamp) {
                stats.from_cache += 1;
                entries.push((relative, language, stamp, Some(file.tags.clone())));
            } else if let Some(cached) = self.cache.get(&relative, stamp) {
                stats.from_cache += 1;
                entries.push((relative, language, stamp, Some(cached.tags.clone())));
            } else {
                to_parse.push(entries.len());
                entries.push((relative, language, stamp, None));
            }
        }
        let parsed = parse_all(
            &self.root,
            &to_parse
                .iter()
                .map(|&i| (entries[i].0.as_str(), entries[i].1))
                .collect::<Vec<_>>(),
            self.options.threads,
        );
        for (&i, tags) in to_parse.iter().zip(parsed) {
            match tags {
                Some(tags) => {
                    stats.parsed += 1;
                    let tags = Arc::new(tags);
                    let (path, language, stamp, slot) = &mut entries[i];
                    self.cache.insert(
                        path.clone(),
                        CachedTags {
                            stamp: *stamp,
                            language: *language,
                            tags: tags.clone(),
                        },
                    );
                    *slot = Some(tags);
                }
                None => stats.failed += 1,
            }
        }
        // Files whose tags did not change keep their interned names.
        let mut previous: Vec<Option<IndexedFile>> = self.files.drain(..).map(Some).collect();
        let previous_at = std::mem::take(&mut self.by_path);
        if self.names.is_empty() {
            let names: usize = entries
                .iter()
                .filter_map(|(_, _, _, tags)| tags.as_ref())
                .map(|t| t.symbols.len() + t.references.len())
                .sum();
            self.names.reserve(names / 2);
        }
        for (path, language, stamp, tags) in entries {
            let Some(tags) = tags else { continue };
            let before = previous_at
                .get(&path)
                .and_then(|&i| previous.get_mut(i))
                .and_then(Option::take);
            match before {
                Some(file) if file.stamp == stamp && Arc::ptr_eq(&file.tags, &tags) => {
                    self.by_path.insert(file.path.clone(), self.files.len());
                    self.files.push(file);
                }
                _ => self.push_file(path, language, stamp, tags),
            }
        }
        let present: std::collections::HashSet<&str> =
            self.files.iter().map(|f| f.path.as_str()).collect();
        self.cache.retain(|path| present.contains(path));
        self.last_stats = stats;
        stats
    }

    fn intern(&mut self, name: &str) -> u32 {
        self.names.intern(name)
    }

    fn indexed(
        &mut self,
        path: String,
        language: Language,
        stamp: FileStamp,
        tags: Arc<FileTags>,
    ) -> IndexedFile {
        let symbol_names = tags
            .symbols
            .iter()
            .map(|s| {
                if s.kind.defines_name() {
                    self.intern(&s.name)
                } else {
                    u32::MAX
                }
            })
            .collect();
        let uses = tags
            .references
            .iter()
            .map(|r| {
                (
                    self.intern(&r.name),
                    u32::try_from(r.lines.len()).unwrap_or(u32::MAX),
                )
            })
            .collect();
        IndexedFile {
            path,
            language,
            stamp,
            tags,
            symbol_names,
            uses,
        }
    }

    fn push_file(
        &mut self,
        path: String,
        language: Language,
        stamp: FileStamp,
        tags: Arc<FileTags>,
    ) {
        let file = self.indexed(path, language, stamp, tags);
        self.by_path.insert(file.path.clone(), self.files.len());
        self.files.push(file);
    }

    /// One file changed (or appeared, or went away) on disk: its tags again.
    pub fn update_file(&mut self, relative: &str) -> Result<(), SyntaxError> {
        let path = self.root.join(relative);
        let Some(language) = Language::from_path(&path) else {
            return Ok(());
        };
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.remove_file(relative);
                return Ok(());
            }
            Err(error) => {
                return Err(SyntaxError::Io {
                    path: path.display().to_string(),
                    message: error.to_string(),
                });
            }
        };
        let stamp = FileStamp::of(&metadata);
        if self.file(relative).is_some_and(|f| f.stamp == stamp) {
            return Ok(());
        }
        let tags = if stamp.size > self.options.max_file_bytes {
            Arc::new(FileTags::default())
        } else {
            let text = std::fs::read(&path).map_err(|error| SyntaxError::Io {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
            let tags = Arc::new(super::tags::tag_text(language, &text)?);
            self.cache.insert(
                relative.to_owned(),
                CachedTags {
                    stamp,
                    language,
                    tags: tags.clone(),
                },
            );
            tags
        };
        self.set_file(relative, language, stamp, tags);
        Ok(())
    }

    /// An open document's tags replace the file's (unsaved text counts).
    pub fn update_tags(&mut self, relative: &str, language: Language, tags: Arc<FileTags>) {
        let stamp = self.file(relative).map_or(
            FileStamp {
                mtime_ns: 0,
                size: 0,
            },
            |f| f.stamp,
        );
        self.set_file(relative, language, stamp, tags);
    }

    fn set_file(
        &mut self,
        relative: &str,
        language: Language,
        stamp: FileStamp,
        tags: Arc<FileTags>,
    ) {
        let file = self.indexed(relative.to_owned(), language, stamp, tags);
        match self.by_path.get(relative) {
            Some(&i) => self.files[i] = file,
            None => {
                self.by_path.insert(file.path.clone(), self.files.len());
                self.files.push(file);
            }
        }
    }

    pub fn remove_file(&mut self, relative: &str) {
        let Some(i) = self.by_path.remove(relative) else {
            return;
        };
        self.files.swap_remove(i);
        if let Some(moved) = self.files.get(i) {
            self.by_path.insert(moved.path.clone(), i);
        }
        self.cache.retain(|path| path != relative);
    }

    /// Writes the tags cache to disk if it changed.
    pub fn save_cache(&mut self) -> Result<(), SyntaxError> {
        self.cache.save()
    }

    /// Every definition named `name`: (file, symbol index).
    pub fn definitions(&self, name: &str) -> Vec<(&IndexedFile, usize)> {
        let Some(id) = self.names.get(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for file in &self.files {
            for (i, symbol_name) in file.symbol_names.iter().enumerate() {
                if *symbol_name == id {
                    out.push((file, i));
                }
            }
        }
        out.sort_by(|a, b| (&a.0.path, a.1).cmp(&(&b.0.path, b.1)));
        out
    }

    /// Every use of `name`: (file, 0-based line), by path and line.
    pub fn references(&self, name: &str) -> Vec<(&IndexedFile, u32)> {
        let mut out = Vec::new();
        for file in &self.files {
            if let Ok(i) = file
                .tags
                .references
                .binary_search_by(|r| r.name.as_str().cmp(name))
            {
                for line in &file.tags.references[i].lines {
                    out.push((file, *line));
                }
            }
        }
        out.sort_by(|a, b| (&a.0.path, a.1).cmp(&(&b.0.path, b.1)));
        out
    }

    /// Definitions by score, best first (focus files' own definitions left out).
    pub fn rank(&self, focus: &Focus) -> Vec<RankedSymbol> {
        self.rank_top(focus, usize::MAX)
    }

    /// The best `limit` definitions by score, best first.
    ///
    /// Every sum is over dense arrays (no hashing) and over uses and definitions, never over
    /// file-to-file edges: since a file's share of rank for a name goes alike to every other
    /// file defining it, what a file receives, and a definition's score, is the name's total
    /// share less what its own file gave.
    pub fn rank_top(&self, focus: &Focus, limit: usize) -> Vec<RankedSymbol> {
        let n = self.files.len();
        let mut is_focus = vec![false; n];
        for path in &focus.files {
            if let Some(&f) = self.by_path.get(path) {
                is_focus[f] = true;
            }
        }
        let mut mentioned = vec![false; self.names.len()];
        for name in &focus.mentioned {
            if let Some(id) = self.names.get(name) {
                mentioned[id as usize] = true;
            }
        }
        // How many files define each name, and each file's defined names once each.
        let mut definers = vec![0u32; self.names.len()];
        let mut last_definer = vec![u32::MAX; self.names.len()];
        let mut defines: Vec<Vec<u32>> = Vec::with_capacity(n);
        for (f, file) in self.files.iter().enumerate() {
            let mut names = Vec::new();
            for &name in &file.symbol_names {
                if let Some(last) = last_definer.get_mut(name as usize)
                    && *last != f as u32
                {
                    *last = f as u32;
                    definers[name as usize] += 1;
                    names.push(name);
                }
            }
            defines.push(names);
        }
        // How telling each defined name is (0 for names nobody defines).
        let weights: Vec<f64> = definers
            .iter()
            .enumerate()
            .map(|(id, &count)| {
                if count == 0 {
                    return 0.0;
                }
                let text = self.names.text(id);
                let mut weight = 1.0;
                if mentioned[id] {
                    weight *= 10.0;
                }
                let compound = text.contains('_') || text.chars().skip(1).any(char::is_uppercase);
                if text.len() >= 8 && compound {
                    weight *= 10.0;
                }
                if text.starts_with('_') {
                    weight *= 0.1;
                }
                if count > 5 {
                    weight *= 0.1;
                }
                weight
            })
            .collect();
        let use_weight = |src: usize, name: u32, uses: u32| -> f64 {
            let from_focus = if is_focus[src] { 50.0 } else { 1.0 };
            from_focus * weights[name as usize] * f64::from(uses).sqrt()
        };
        // The file graph has an edge from each user of a name to each other file defining it,
        // which for names like `new` is users × definers edges. It is never listed: a file's
        // uses, weighted, and each file's definitions, with what the file itself gave the
        // name (a file has no edge to itself), carry the same sums.
        let uses: Vec<Vec<(u32, f64)>> = self
            .files
            .iter()
            .enumerate()
            .map(|(src, file)| {
                file.uses
                    .iter()
                    .map(|&(name, count)| (name, use_weight(src, name, count)))
                    .filter(|&(_, weight)| weight != 0.0)
                    .collect()
            })
            .collect();
        // Per file, each name it defines with the weight of its own use of it.
        let mut used_here = vec![(u32::MAX, 0.0f64); self.names.len()];
        let own_uses: Vec<Vec<(u32, f64)>> = defines
            .iter()
            .zip(&uses)
            .enumerate()
            .map(|(f, (names, used))| {
                for &(name, weight) in used {
                    used_here[name as usize] = (f as u32, weight);
                }
                names
                    .iter()
                    .map(|&name| match used_here[name as usize] {
                        (file, weight) if file == f as u32 => (name, weight),
                        _ => (name, 0.0),
                    })
                    .collect()
            })
            .collect();
        // A file's out-edges: each use to every file defining the name but itself, counted in
        // whole files so a file whose names only it defines has exactly none.
        let mut defined_here = vec![u32::MAX; self.names.len()];
        let out_weight: Vec<f64> = uses
            .iter()
            .zip(&defines)
            .enumerate()
            .map(|(src, (used, names))| {
                for &name in names {
                    defined_here[name as usize] = src as u32;
                }
                used.iter()
                    .map(|&(name, weight)| {
                        let own = u32::from(defined_here[name as usize] == src as u32);
                        weight * f64::from(definers[name as usize] - own)
                    })
                    .sum()
            })
            .collect();
        let mut name_flow = vec![0.0f64; self.names.len()];
        // Adds to `into[dst]` what every other file's `share` sends it through its names.
        let mut spread = |share: &[f64], into: &mut [f64]| {
            name_flow.iter_mut().for_each(|x| *x = 0.0);
            for (src, used) in uses.iter().enumerate() {
                if share[src] == 0.0 {
                    continue;
                }
                for &(name, weight) in used {
                    name_flow[name as usize] += share[src] * weight;
                }
            }
            for (dst, names) in own_uses.iter().enumerate() {
                for &(name, own) in names {
                    into[dst] += name_flow[name as usize] - share[dst] * own;
                }
            }
        };
        let personalization: Vec<(u32, f64)> = is_focus
            .iter()
            .enumerate()
            .filter(|(_, focus)| **focus)
            .map(|(f, _)| (f as u32, 1.0))
            .collect();
        let file_rank = {
            let mut last = self
                .last_ranks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ranks = pagerank_by(&out_weight, &personalization, Some(&last), &mut spread);
            last.clone_from(&ranks);
            ranks
        };
        // Each file's share per name, summed over the files using it.
        let share_of = |src: usize| -> f64 {
            if out_weight[src] <= 0.0 {
                0.0
            } else {
                file_rank[src] / out_weight[src]
            }
        };
        let mut name_share = vec![0.0f64; self.names.len()];
        for (src, used) in uses.iter().enumerate() {
            for &(name, weight) in used {
                name_share[name as usize] += share_of(src) * weight;
            }
        }
        let mut ranked = Vec::new();
        for (f, file) in self.files.iter().enumerate() {
            if is_focus[f] {
                continue;
            }
            for &(name, weight) in &own_uses[f] {
                used_here[name as usize] = (f as u32, weight);
            }
            for (s, &name) in file.symbol_names.iter().enumerate() {
                if name == u32::MAX {
                    continue;
                }
                let own = match used_here[name as usize] {
                    (file, weight) if file == f as u32 => share_of(f) * weight,
                    _ => 0.0,
                };
                // Unused definitions still order by their file's rank.
                let score = (name_share[name as usize] - own).max(0.0) + file_rank[f] * 1e-3;
                ranked.push(RankedSymbol {
                    file: f,
                    symbol: s,
                    score,
                });
            }
        }
        let order = |a: &RankedSymbol, b: &RankedSymbol| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| self.files[a.file].path.cmp(&self.files[b.file].path))
                .then(a.symbol.cmp(&b.symbol))
        };
        if limit < ranked.len() {
            ranked.select_nth_unstable_by(limit, order);
            ranked.truncate(limit);
        }
        ranked.sort_by(order);
        ranked
    }

    /// The map of the best-ranked definitions that fits in `budget` tokens.
    pub fn render(&self, focus: &Focus, budget: usize) -> RepoMap {
        // Each definition shown costs a few tokens at least.
        let ranked = self.rank_top(focus, budget / 4 + 1);
        self.render_ranked(&ranked, budget)
    }

    /// [`RepoIndex::render`] over a ranking already made.
    pub fn render_ranked(&self, ranked: &[RankedSymbol], budget: usize) -> RepoMap {
        let empty = RepoMap {
            text: String::new(),
            tokens: 0,
            symbols: 0,
            files: Vec::new(),
        };
        if budget == 0 || ranked.is_empty() {
            return empty;
        }
        // The most definitions whose map fits: a binary search over how many to show.
        let (mut low, mut high) = (0usize, ranked.len());
        let mut best = empty;
        // An upper bound to start from: each shown definition costs at least a few tokens.
        high = high.min(budget / 4 + 1);
        while low < high {
            let middle = (low + high).div_ceil(2);
            let map = self.render_top(&ranked[..middle]);
            if map.tokens <= budget {
                low = middle;
                best = map;
            } else {
                high = middle - 1;
            }
        }
        best
    }

    fn render_top(&self, chosen: &[RankedSymbol]) -> RepoMap {
        // Files in the order of their best definition; definitions in source order.
        let mut order: Vec<usize> = Vec::new();
        let mut by_file: HashMap<usize, Vec<usize>> = HashMap::new();
        for ranked in chosen {
            let list = by_file.entry(ranked.file).or_insert_with(|| {
                order.push(ranked.file);
                Vec::new()
            });
            list.push(ranked.symbol);
        }
        let mut text = String::new();
        for &f in &order {
            let file = &self.files[f];
            let mut symbols = by_file.remove(&f).unwrap_or_default();
            // With the definitions around each, once.
            let mut shown: Vec<usize> = Vec::new();
            for &s in &symbols {
                let mut chain = vec![s];
                let mut parent = file.tags.symbols[s].parent;
                while let Some(p) = parent {
                    chain.push(p as usize);
                    parent = file.tags.symbols.get(p as usize).and_then(|x| x.parent);
                }
                shown.extend(chain);
            }
            shown.sort_unstable();
            shown.dedup();
            symbols.clear();
            let _ = writeln!(text, "{}:", file.path);
            let mut previous: Option<(u32, &str)> = None;
            for s in shown {
                let symbol = &file.tags.symbols[s];
                // Two definitions on the same lines (a typedef and its struct) show once.
                if previous == Some((symbol.start_line, symbol.signature.as_str())) {
                    continue;
                }
                previous = Some((symbol.start_line, symbol.signature.as_str()));
                let mut lines = symbol.signature.lines();
                if let Some(first) = lines.next() {
                    let _ = writeln!(text, "{}: {first}", symbol.start_line + 1);
                }
                for line in lines {
                    let _ = writeln!(text, "{line}");
                }
            }
        }
        RepoMap {
            tokens: estimate_tokens(&text),
            text,
            symbols: chosen.len(),
            files: order.iter().map(|&f| self.files[f].path.clone()).collect(),
        }
    }
}

/// Interned identifiers: each text stored once, looked up by text or by id.
#[derive(Debug, Default)]
struct NameTable {
    texts: Vec<Box<str>>,
    /// Ids, hashed by their text.
    ids: hashbrown::HashTable<u32>,
}

impl NameTable {
    fn hash(text: &str) -> u64 {
        std::hash::BuildHasher::hash_one(
            &std::hash::BuildHasherDefault::<crate::fast_hash::FastHasher>::default(),
            text,
        )
    }

    /// The id of `text`, whose hash is `hash`.
    fn find(&self, hash: u64, text: &str) -> Option<u32> {
        self.ids
            .find(hash, |&id| &*self.texts[id as usize] == text)
            .copied()
    }

    fn len(&self) -> usize {
        self.texts.len()
    }

    fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    fn reserve(&mut self, additional: usize) {
        self.texts.reserve(additional);
        let texts = &self.texts;
        self.ids
            .reserve(additional, |&id| NameTable::hash(&texts[id as usize]));
    }

    fn get(&self, text: &str) -> Option<u32> {
        self.find(NameTable::hash(text), text)
    }

    fn text(&self, id: usize) -> &str {
        &self.texts[id]
    }

    fn intern(&mut self, text: &str) -> u32 {
        let hash = NameTable::hash(text);
        if let Some(id) = self.find(hash, text) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        self.texts.push(text.into());
        let texts = &self.texts;
        self.ids
            .insert_unique(hash, id, |&id| NameTable::hash(&texts[id as usize]));
        id
    }
}

/// The tags cache the options name (empty in memory when none).
fn load_cache(options: &MapOptions) -> TagCache {
    match &options.cache_file {
        Some(file) => TagCache::load(file.clone()),
        None => TagCache::in_memory(),
    }
}

/// Every source file under `root` that tack parses: (relative path, language, stamp).
fn walk(root: &Path, threads: usize) -> Vec<(String, Language, FileStamp)> {
    let found = std::sync::Mutex::new(Vec::new());
    ignore::WalkBuilder::new(root)
        .require_git(false)
        .threads(threads.max(1))
        // Compiled bytecode only (often most of a Python tree's files): never source.
        .filter_entry(|entry| entry.file_name() != "__pycache__")
        .build_parallel()
        .run(|| {
            Box::new(|entry| {
                let Ok(entry) = entry else {
                    return ignore::WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return ignore::WalkState::Continue;
                }
                let Some(language) = Language::from_path(entry.path()) else {
                    return ignore::WalkState::Continue;
                };
                let Ok(metadata) = entry.metadata() else {
                    return ignore::WalkState::Continue;
                };
                let Some(relative) = relative_path(root, entry.path()) else {
                    return ignore::WalkState::Continue;
                };
                found
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((relative, language, FileStamp::of(&metadata)));
                ignore::WalkState::Continue
            })
        });
    let mut found = found
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// `path` relative to `root`, `/`-separated.
pub fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

/// Parses `files` on `threads` threads; `None` for a file that could not be read or parsed.
fn parse_all(root: &Path, files: &[(&str, Language)], threads: usize) -> Vec<Option<FileTags>> {
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<FileTags>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(files.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((relative, language)) = files.get(i) else {
                        break;
                    };
                    let path = root.join(relative);
                    let tags = match std::fs::read(&path) {
                        Ok(text) => {
                            super::tags::tag_text(*language, &text).map_err(|e| e.to_string())
                        }
                        Err(error) => Err(error.to_string()),
                    };
                    match tags {
                        Ok(tags) => {
                            *results[i]
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tags);
                        }
                        Err(error) => {
                            tracing::debug!(%error, file = relative, "not indexed");
                        }
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .collect()
}
