//! Reading ledger files back. A line that does not parse — the torn last line a crash leaves,
//! or a line damaged by hand — is skipped with a warning naming the file and line, never
//! fatal (invariant 8); everything before and after it is read.

use std::path::{Path, PathBuf};

use super::LedgerError;
use super::record::Line;

/// One session's file in the ledger folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFile {
    pub session: String,
    pub path: PathBuf,
}

/// Every session file in `dir`, sorted by session id (ids sort by start time). A missing
/// folder has none.
pub fn session_files(dir: &Path) -> Result<Vec<LedgerFile>, LedgerError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(LedgerError::io(dir, error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LedgerError::io(dir, e))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(session) = name.strip_suffix(".jsonl")
            && !session.starts_with('.')
        {
            files.push(LedgerFile {
                session: session.to_owned(),
                path,
            });
        }
    }
    files.sort_by(|a, b| a.session.cmp(&b.session));
    Ok(files)
}

/// The raw bytes of a file's lines, each without its newline, blank lines left out; calls
/// `each` with the 1-based line number and the bytes.
pub fn for_each_line(path: &Path, mut each: impl FnMut(usize, &[u8])) -> Result<(), LedgerError> {
    let bytes = std::fs::read(path).map_err(|e| LedgerError::io(path, e))?;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', &bytes).chain(std::iter::once(bytes.len()));
    for (index, end) in ends.enumerate() {
        let line = &bytes[start..end];
        start = end + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        each(index + 1, line);
    }
    Ok(())
}

/// Every readable line of a file, in order; unreadable ones are skipped with a warning.
pub fn read_lines(path: &Path) -> Result<Vec<Line>, LedgerError> {
    let mut lines = Vec::new();
    for_each_line(path, |number, bytes| match Line::parse(bytes) {
        Ok(line) => lines.push(line),
        Err(error) => skipped(path, number, &error),
    })?;
    Ok(lines)
}

/// The warning for a line that cannot be read.
pub fn skipped(path: &Path, number: usize, error: &dyn std::fmt::Display) {
    tracing::warn!(
        file = %path.display(),
        line = number,
        %error,
        "unreadable ledger line skipped (a torn last line is what a crash leaves)"
    );
}

/// The session whose id is `id` or starts with it (`last`: the newest).
pub fn find_session(dir: &Path, id: &str) -> Result<LedgerFile, LedgerError> {
    let files = session_files(dir)?;
    if id == "last" {
        return files
            .into_iter()
            .last()
            .ok_or_else(|| LedgerError::UnknownSession(id.to_owned()));
    }
    if let Some(exact) = files.iter().find(|f| f.session == id) {
        return Ok(exact.clone());
    }
    let matching: Vec<&LedgerFile> = files.iter().filter(|f| f.session.starts_with(id)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(LedgerError::UnknownSession(id.to_owned())),
        many => Err(LedgerError::AmbiguousSession(
            id.to_owned(),
            many.iter()
                .take(5)
                .map(|f| f.session.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}
