//! The store itself: where it lives, its object database, its lock, resolving workspace paths,
//! and reading a file's current version (from the editor's buffer or from disk).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use git2::{ObjectType, Oid, Repository};

use super::log::{LogTail, SessionLog};
use super::stat_cache::StatCache;
use super::{FileMode, FileVersion, NotStoredReason, Overlay, SnapshotError, SnapshotOptions};

/// A workspace's snapshot store. Cheap operations take `&self`; the type is `Send + Sync`, so
/// one handle can be shared (for example in an `Arc`). Every operation is blocking file I/O:
/// async callers use `spawn_blocking`.
pub struct SnapshotStore {
    workspace_root: PathBuf,
    dir: PathBuf,
    repo: Mutex<Repository>,
    pub(super) options: SnapshotOptions,
    pub(super) stat_cache: Mutex<Option<StatCache>>,
    logs: Mutex<HashMap<String, LogTail>>,
}

/// One session as `tack snapshots` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub name: String,
    /// Last time the session's log was written (ms since the Unix epoch).
    pub modified_ms: u64,
    /// Changes recorded, applied (under the undo stack's position), and checkpoints.
    pub changes: usize,
    pub applied: usize,
    pub checkpoints: usize,
}

/// A file's version right now, with its bytes when they were read (not for large files).
pub(super) struct Captured {
    pub version: Option<FileVersion>,
    pub bytes: Option<Vec<u8>>,
    pub from_buffer: bool,
}

/// The store lock, released on drop.
pub(super) struct StoreLock {
    _file: File,
}

impl SnapshotStore {
    /// Opens (creating if needed) the store of `workspace_root` under `data_dir`, with the
    /// default options.
    pub fn open(data_dir: &Path, workspace_root: &Path) -> Result<SnapshotStore, SnapshotError> {
        Self::open_with(data_dir, workspace_root, SnapshotOptions::default())
    }

    /// Opens (creating if needed) the store of `workspace_root` under `data_dir`.
    pub fn open_with(
        data_dir: &Path,
        workspace_root: &Path,
        options: SnapshotOptions,
    ) -> Result<SnapshotStore, SnapshotError> {
        let workspace_root = workspace_root
            .canonicalize()
            .map_err(|source| SnapshotError::io(workspace_root, source))?;
        if !workspace_root.is_dir() {
            return Err(SnapshotError::io(
                &workspace_root,
                std::io::Error::new(
                    ErrorKind::NotADirectory,
                    "workspace root is not a directory",
                ),
            ));
        }
        let key = Oid::hash_object(ObjectType::Blob, workspace_root.as_os_str().as_bytes())?;
        let dir = data_dir.join("snapshots").join(&key.to_string()[..16]);
        fs::create_dir_all(dir.join("sessions")).map_err(|e| SnapshotError::io(&dir, e))?;
        let lock = lock_file(&dir)?;
        let objects = dir.join("objects.git");
        let repo = if objects.join("HEAD").exists() {
            Repository::open_bare(&objects)?
        } else {
            let repo = Repository::init_bare(&objects)?;
            let workspace_file = dir.join("workspace");
            fs::write(&workspace_file, workspace_root.as_os_str().as_bytes())
                .map_err(|e| SnapshotError::io(&workspace_file, e))?;
            repo
        };
        drop(lock);
        Ok(SnapshotStore {
            workspace_root,
            dir,
            repo: Mutex::new(repo),
            options,
            stat_cache: Mutex::new(None),
            logs: Mutex::new(HashMap::new()),
        })
    }

    /// The canonical workspace root this store belongs to.
    pub fn workspace_root(&self) -> &Path {
        &self.workspace_root
    }

    /// The store's own directory (under the data dir).
    pub fn store_dir(&self) -> &Path {
        &self.dir
    }

    /// Every session with a log in this store, most recently written last.
    pub fn sessions(&self) -> Result<Vec<SessionSummary>, SnapshotError> {
        let mut sessions = Vec::new();
        for (name, modified_ms) in self.session_files()? {
            let log = self.read_log(&name)?;
            sessions.push(SessionSummary {
                name,
                modified_ms,
                changes: log.changes.len(),
                applied: log.applied,
                checkpoints: log.checkpoints.len(),
            });
        }
        Ok(sessions)
    }

    /// The session written most recently, if any.
    pub fn latest_session(&self) -> Result<Option<String>, SnapshotError> {
        Ok(self.session_files()?.pop().map(|(name, _)| name))
    }

    /// (session, last written in ms since the Unix epoch), most recently written last.
    pub(super) fn session_files(&self) -> Result<Vec<(String, u64)>, SnapshotError> {
        let sessions_dir = self.dir.join("sessions");
        let entries =
            fs::read_dir(&sessions_dir).map_err(|e| SnapshotError::io(&sessions_dir, e))?;
        let mut sessions = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SnapshotError::io(&sessions_dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            if validate_session_name(name).is_err() {
                continue;
            }
            let modified_ms = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64);
            sessions.push((name.to_string(), modified_ms));
        }
        sessions.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(sessions)
    }

    /// Takes the store lock (blocking). Hold it only for short appends and deletions.
    pub(super) fn lock(&self) -> Result<StoreLock, SnapshotError> {
        lock_file(&self.dir)
    }

    pub(super) fn repo(&self) -> MutexGuard<'_, Repository> {
        self.repo
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn log_path(&self, session: &str) -> Result<PathBuf, SnapshotError> {
        validate_session_name(session)?;
        Ok(self.dir.join("sessions").join(format!("{session}.jsonl")))
    }

    /// Reads a session's log (only what was appended since the last read); a session with
    /// no log yet is empty.
    pub(super) fn read_log(&self, session: &str) -> Result<SessionLog, SnapshotError> {
        let path = self.log_path(session)?;
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.entry(session.to_string()).or_default().refresh(&path)
    }

    /// Reads a session's log, failing if the session has none.
    pub(super) fn read_existing_log(&self, session: &str) -> Result<SessionLog, SnapshotError> {
        let path = self.log_path(session)?;
        if !path.exists() {
            return Err(SnapshotError::UnknownSession(session.to_string()));
        }
        self.read_log(session)
    }

    /// Turns a path given by a caller (absolute, or relative to the workspace root) into the
    /// workspace-relative `/`-separated form the store records. A path that leaves the
    /// workspace, lexically or through a symlinked directory, is an error naming it.
    pub(super) fn relative_path(&self, path: &Path) -> Result<String, SnapshotError> {
        let outside = || SnapshotError::OutsideWorkspace {
            path: path.to_path_buf(),
            root: self.workspace_root.clone(),
        };
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.workspace_root.join(path)
        };
        let mut normal = PathBuf::new();
        for component in joined.components() {
            match component {
                Component::ParentDir => {
                    if !normal.pop() {
                        return Err(outside());
                    }
                }
                Component::CurDir => {}
                other => normal.push(other),
            }
        }
        // Resolve symlinks in the directories above the file (not the file itself: a symlink
        // is recorded as a link) by canonicalizing the deepest directory that exists.
        let file_name = normal.file_name().map(|n| n.to_os_string());
        let mut existing = normal.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut missing = Vec::new();
        let canonical_parent = loop {
            match existing.canonicalize() {
                Ok(canonical) => break canonical,
                Err(_) => match (existing.file_name(), existing.parent()) {
                    (Some(name), Some(parent)) => {
                        missing.push(name.to_os_string());
                        existing = parent.to_path_buf();
                    }
                    _ => return Err(outside()),
                },
            }
        };
        let mut resolved = canonical_parent;
        resolved.extend(missing.iter().rev());
        if let Some(name) = file_name {
            resolved.push(name);
        }
        let relative = resolved
            .strip_prefix(&self.workspace_root)
            .map_err(|_| outside())?;
        if relative.as_os_str().is_empty() {
            return Err(SnapshotError::WorkspaceRootIsNotAFile(path.to_path_buf()));
        }
        let text = relative
            .to_str()
            .ok_or_else(|| SnapshotError::NonUtf8Path(path.to_path_buf()))?;
        Ok(text.to_string())
    }

    /// The absolute path of a workspace-relative path.
    pub(super) fn absolute_path(&self, relative: &str) -> PathBuf {
        self.workspace_root.join(relative)
    }

    /// Reads the current version of `relative`: the editor's buffer if `overlay` has one,
    /// otherwise the disk. With `write_objects`, the content is also put in the store (unless
    /// policy keeps only its hash).
    pub(super) fn capture(
        &self,
        relative: &str,
        overlay: Overlay<'_>,
        write_objects: bool,
    ) -> Result<Captured, SnapshotError> {
        let absolute = self.absolute_path(relative);
        let on_disk = match fs::symlink_metadata(&absolute) {
            Ok(meta) => Some(meta),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => None,
            Err(e) => return Err(SnapshotError::io(&absolute, e)),
        };
        if let Some(text) = overlay(&absolute) {
            let mode = on_disk
                .as_ref()
                .map_or(FileMode::File, |meta| match mode_of(meta) {
                    FileMode::Symlink => FileMode::File,
                    mode => mode,
                });
            let bytes = text.into_bytes();
            let version = self.version_of(&bytes, mode, write_objects)?;
            return Ok(Captured {
                version: Some(version),
                bytes: Some(bytes),
                from_buffer: true,
            });
        }
        let Some(meta) = on_disk else {
            return Ok(Captured {
                version: None,
                bytes: None,
                from_buffer: false,
            });
        };
        if meta.is_dir() {
            return Err(SnapshotError::IsDirectory(absolute));
        }
        let mode = mode_of(&meta);
        if mode == FileMode::Symlink {
            let target = fs::read_link(&absolute).map_err(|e| SnapshotError::io(&absolute, e))?;
            let bytes = target.as_os_str().as_bytes().to_vec();
            let oid = if write_objects {
                self.write_blob(&bytes)?
            } else {
                hash_blob(&bytes)?
            };
            let version = FileVersion {
                blob: oid.to_string(),
                mode,
                size: bytes.len() as u64,
                not_stored: None,
            };
            return Ok(Captured {
                version: Some(version),
                bytes: Some(bytes),
                from_buffer: false,
            });
        }
        if meta.len() > self.options.large_file_cap && !self.options.store_large_and_binary {
            let oid = Oid::hash_file(ObjectType::Blob, &absolute)?;
            let version = FileVersion {
                blob: oid.to_string(),
                mode,
                size: meta.len(),
                not_stored: Some(NotStoredReason::Large),
            };
            return Ok(Captured {
                version: Some(version),
                bytes: None,
                from_buffer: false,
            });
        }
        let bytes = fs::read(&absolute).map_err(|e| SnapshotError::io(&absolute, e))?;
        let version = self.version_of(&bytes, mode, write_objects)?;
        Ok(Captured {
            version: Some(version),
            bytes: Some(bytes),
            from_buffer: false,
        })
    }

    /// The version of some content, storing it if `write_objects` and policy allow.
    pub(super) fn version_of(
        &self,
        bytes: &[u8],
        mode: FileMode,
        write_objects: bool,
    ) -> Result<FileVersion, SnapshotError> {
        let not_stored = self.not_stored_reason(bytes.len() as u64, bytes);
        let oid = if write_objects && not_stored.is_none() {
            self.write_blob(bytes)?
        } else {
            hash_blob(bytes)?
        };
        Ok(FileVersion {
            blob: oid.to_string(),
            mode,
            size: bytes.len() as u64,
            not_stored,
        })
    }

    /// Why content of this size and head would be kept by hash only, under the store's policy.
    pub(super) fn not_stored_reason(&self, size: u64, bytes: &[u8]) -> Option<NotStoredReason> {
        if self.options.store_large_and_binary {
            None
        } else if size > self.options.large_file_cap {
            Some(NotStoredReason::Large)
        } else if is_binary(bytes) {
            Some(NotStoredReason::Binary)
        } else {
            None
        }
    }

    pub(super) fn write_blob(&self, bytes: &[u8]) -> Result<Oid, SnapshotError> {
        Ok(self.repo().odb()?.write(ObjectType::Blob, bytes)?)
    }

    /// The content of a recorded file version; `None` when only its hash was kept.
    pub fn version_bytes(&self, version: &FileVersion) -> Result<Option<Vec<u8>>, SnapshotError> {
        if version.not_stored.is_some() {
            return Ok(None);
        }
        self.read_blob(&version.blob).map(Some)
    }

    pub(super) fn read_blob(&self, blob: &str) -> Result<Vec<u8>, SnapshotError> {
        let oid = Oid::from_str(blob)?;
        let repo = self.repo();
        let odb = repo.odb()?;
        match odb.read(oid) {
            Ok(object) => Ok(object.data().to_vec()),
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                Err(SnapshotError::MissingObject(blob.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A new handle on the object database, seeing exactly the loose objects and packs on
    /// disk now: a long-lived handle keeps a pack mapped after a prune (maybe in another
    /// process) removed it, and would wrongly find objects in it.
    pub(super) fn fresh_repo(&self) -> Result<Repository, SnapshotError> {
        Ok(Repository::open_bare(self.dir.join("objects.git"))?)
    }

    /// Replaces this handle's repository with a fresh one (after a repack removed packs).
    pub(super) fn reopen_repo(&self) -> Result<(), SnapshotError> {
        *self.repo() = self.fresh_repo()?;
        Ok(())
    }

    /// Whether an object is in the store as it is on disk now (checked under the lock before
    /// a log line refers to it, so a concurrent prune cannot have removed it in between).
    pub(super) fn has_object(&self, blob: &str) -> Result<bool, SnapshotError> {
        let oid = Oid::from_str(blob)?;
        Ok(self.fresh_repo()?.odb()?.exists(oid))
    }
}

/// Git's rule: a NUL byte in the first 8000 bytes means binary.
pub(super) fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8000)].contains(&0)
}

pub(super) fn hash_blob(bytes: &[u8]) -> Result<Oid, SnapshotError> {
    Ok(Oid::hash_object(ObjectType::Blob, bytes)?)
}

pub(super) fn mode_of(meta: &fs::Metadata) -> FileMode {
    if meta.file_type().is_symlink() {
        FileMode::Symlink
    } else if meta.permissions().mode() & 0o111 != 0 {
        FileMode::Executable
    } else {
        FileMode::File
    }
}

fn lock_file(dir: &Path) -> Result<StoreLock, SnapshotError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SnapshotError::io(&path, e))?;
    file.lock().map_err(|e| SnapshotError::io(&path, e))?;
    Ok(StoreLock { _file: file })
}

pub(super) fn validate_session_name(session: &str) -> Result<(), SnapshotError> {
    let valid = !session.is_empty()
        && session.len() <= 128
        && !session.starts_with('.')
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(SnapshotError::InvalidSessionName(session.to_string()))
    }
}
