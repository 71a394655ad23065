//! The folder the agent works in: every path a tool receives is resolved and confined here,
//! and file text is read through here, so an editor's unsaved buffer wins over the disk.
//!
//! Accepted: workspace-relative paths and absolute paths inside the workspace. Refused, with
//! an error naming the path: `..` that climbs out, absolute paths elsewhere, and paths that
//! leave through a symbolic link.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::feedback::LanguageFeedback;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("{path}: outside the workspace {root}; use a path inside it")]
    Outside { path: String, root: PathBuf },
    #[error("{path}: leads through a symbolic link to {target}, outside the workspace {root}")]
    SymlinkOut {
        path: String,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("empty path")]
    Empty,
}

/// The workspace root (canonical) and the source of unsaved buffers.
#[derive(Clone)]
pub struct Workspace {
    root: PathBuf,
    feedback: Arc<dyn LanguageFeedback>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("root", &self.root)
            .finish()
    }
}

impl Workspace {
    /// `root` is canonicalized; it must exist.
    pub fn new(root: &Path, feedback: Arc<dyn LanguageFeedback>) -> std::io::Result<Workspace> {
        Ok(Workspace {
            root: root.canonicalize()?,
            feedback,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn feedback(&self) -> &Arc<dyn LanguageFeedback> {
        &self.feedback
    }

    /// The absolute path `raw` names, if it stays inside the workspace. The path need not
    /// exist; its existing part is resolved through symbolic links.
    pub fn resolve(&self, raw: &str) -> Result<PathBuf, PathError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PathError::Empty);
        }
        let given = Path::new(trimmed);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.root.join(given)
        };
        let outside = || PathError::Outside {
            path: raw.to_owned(),
            root: self.root.clone(),
        };
        let lexical = normalize(&joined).ok_or_else(outside)?;
        let resolved = resolve_existing_prefix(&lexical);
        if resolved.starts_with(&self.root) {
            return Ok(resolved);
        }
        if lexical.starts_with(&self.root) {
            return Err(PathError::SymlinkOut {
                path: raw.to_owned(),
                target: resolved,
                root: self.root.clone(),
            });
        }
        Err(outside())
    }

    /// `path` relative to the root, `/`-separated (`.` for the root itself); paths outside
    /// are shown whole.
    pub fn relative(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
            Ok(rel) => rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => path.display().to_string(),
        }
    }

    /// The text of a file: the editor's buffer when one is open, else the disk.
    pub fn read_text(&self, path: &Path) -> std::io::Result<String> {
        if let Some(text) = self.feedback.buffer_text(path) {
            return Ok(text);
        }
        let bytes = std::fs::read(path)?;
        String::from_utf8(bytes).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not UTF-8 text (binary file?)",
            )
        })
    }

    /// Whether a file exists (as a buffer or on disk).
    pub fn exists(&self, path: &Path) -> bool {
        self.feedback.buffer_text(path).is_some() || path.exists()
    }
}

/// Removes `.` and resolves `..` lexically; `None` when `..` climbs above the filesystem root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// Canonicalizes the longest existing ancestor of `path` (following symbolic links) and
/// appends the rest. A dangling symlink is followed to where it points.
fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut out = canonical;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        if let Ok(target) = std::fs::read_link(&existing) {
            // A dangling link: judge it by where it points.
            let target = match existing.parent() {
                Some(parent) if target.is_relative() => parent.join(target),
                _ => target,
            };
            let mut out = normalize(&target).unwrap_or(target);
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::agent::feedback::NoFeedback;

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.c"), "int main;\n").unwrap();
        let ws = Workspace::new(dir.path(), Arc::new(NoFeedback)).unwrap();
        (dir, ws)
    }

    #[test]
    fn relative_and_absolute_paths_inside_are_accepted() {
        let (_dir, ws) = workspace();
        let main = ws.root().join("src/main.c");
        assert_eq!(ws.resolve("src/main.c").unwrap(), main);
        assert_eq!(ws.resolve("./src/../src/main.c").unwrap(), main);
        assert_eq!(ws.resolve(main.to_str().unwrap()).unwrap(), main);
        assert_eq!(
            ws.resolve("new/dir/file.txt").unwrap(),
            ws.root().join("new/dir/file.txt")
        );
        assert_eq!(ws.resolve(".").unwrap(), ws.root());
        assert_eq!(ws.relative(&main), "src/main.c");
    }

    #[test]
    fn escapes_are_refused_naming_the_path() {
        let (_dir, ws) = workspace();
        let error = ws.resolve("../secret").unwrap_err();
        assert!(matches!(error, PathError::Outside { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("../secret: outside the workspace")
        );
        assert!(matches!(
            ws.resolve("src/../../x").unwrap_err(),
            PathError::Outside { .. }
        ));
        assert!(matches!(
            ws.resolve("/etc/passwd").unwrap_err(),
            PathError::Outside { .. }
        ));
        assert_eq!(ws.resolve("  ").unwrap_err(), PathError::Empty);
    }

    #[test]
    fn symlinks_pointing_out_are_refused_and_inside_ones_followed() {
        let (_dir, ws) = workspace();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("key"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.root().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("nothing"), ws.root().join("dangling"))
            .unwrap();
        std::os::unix::fs::symlink(ws.root().join("src"), ws.root().join("inner")).unwrap();
        let error = ws.resolve("link/key").unwrap_err();
        assert!(matches!(error, PathError::SymlinkOut { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("link/key: leads through a symbolic link")
        );
        assert!(matches!(
            ws.resolve("link/new-file").unwrap_err(),
            PathError::SymlinkOut { .. }
        ));
        assert!(matches!(
            ws.resolve("dangling").unwrap_err(),
            PathError::SymlinkOut { .. }
        ));
        assert_eq!(
            ws.resolve("inner/main.c").unwrap(),
            ws.root().join("src/main.c")
        );
    }
}
