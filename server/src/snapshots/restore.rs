//! Undo, redo and restore: computing a [`RestorePlan`] (per file, the content to write or a
//! delete, merged three-way against what is there now), writing a plan to disk atomically, and
//! recording that it was applied.
//!
//! Moving the undo stack over several changes folds them one at a time, newest first when
//! going back: for each change, base = the state the change left, theirs = the state it
//! started from, ours = the working content. A user edit made between two agent changes is
//! therefore kept too, not only one made after the last. A file renamed by a change (a path
//! removed and another created with the same content) moves back with the user's edits.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::change::ChangeStatus;
use super::log::{self, Event, SessionLog};
use super::merge::{self, LineRange};
use super::store::{hash_blob, is_binary};
use super::{
    ChangeId, FileMode, FileVersion, NotStoredReason, Overlay, SnapshotError, SnapshotStore,
    no_overlay, now_ms,
};

/// Where to move a session's undo stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePoint {
    /// Before the session's first change.
    Start,
    /// Just before the change: it and every later change undone.
    Before(ChangeId),
    /// Just after the change: every later change undone (or earlier ones redone).
    After(ChangeId),
}

/// What kind of move a plan makes (also recorded in the session log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreKind {
    Undo,
    Redo,
    Restore,
    Checkpoint,
}

/// The outcome of an undo, redo or restore: file edits to apply, or conflicts that refuse.
/// A plan with conflicts has no files and changes nothing.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub session: String,
    pub kind: RestoreKind,
    /// The undo stack's position (changes applied) before and after.
    pub from: usize,
    pub to: usize,
    /// The changes undone (newest first) or redone (oldest first).
    pub changes: Vec<ChangeId>,
    pub files: Vec<FileRestore>,
    pub conflicts: Vec<Conflict>,
    /// Things the user should know (for example a change whose process died mid-step).
    pub notes: Vec<String>,
    stack: Vec<ChangeId>,
}

/// One file's edit.
#[derive(Debug, Clone)]
pub struct FileRestore {
    pub path: PathBuf,
    /// Workspace-relative, `/`-separated.
    pub relative_path: String,
    pub action: FileAction,
    /// Where the current content the plan was merged against came from.
    pub source: ContentSource,
    /// The version the plan was computed against; writing checks the disk still has it.
    expected: Option<FileVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    Write { content: Vec<u8>, mode: FileMode },
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentSource {
    Disk,
    /// An unsaved editor buffer: apply through the editor, not the disk.
    Buffer,
}

/// A file the plan refuses to touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: PathBuf,
    pub relative_path: String,
    pub kind: ConflictKind,
    /// Lines of the current content involved (empty when the kind has no lines).
    pub ranges: Vec<LineRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// The user changed the same (or adjacent) lines the restore would change.
    SameLines,
    /// The user edited the file; the restore would delete it.
    EditedButRestoreDeletes,
    /// The user deleted the file; the restore would change it.
    DeletedButRestoreChanges,
    /// The file exists now with other content than the restore would create.
    BothCreated,
    /// Binary content differs on both sides; no line merge.
    Binary,
    /// A version needed was kept by hash and size only.
    NotStored(NotStoredReason),
}

impl RestorePlan {
    pub fn has_conflicts(&self) -> bool {
        !self.conflicts.is_empty()
    }

    /// Writes every file of the plan to disk: all are checked first (each must still be what
    /// the plan was computed against, and none may come from an unsaved buffer), then each is
    /// written to a temporary file beside it and renamed into place; deletes come last, with
    /// directories left empty by them removed. A plan with conflicts writes nothing.
    pub fn apply_to_disk(&self, store: &SnapshotStore) -> Result<(), SnapshotError> {
        if self.has_conflicts() {
            return Err(SnapshotError::PlanHasConflicts {
                count: self.conflicts.len(),
            });
        }
        for file in &self.files {
            if file.source == ContentSource::Buffer {
                return Err(SnapshotError::OpenInEditor(file.path.clone()));
            }
            let now = store
                .capture(&file.relative_path, &no_overlay, false)?
                .version;
            let unchanged = match (&now, &file.expected) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same_as(b),
                _ => false,
            };
            if !unchanged {
                return Err(SnapshotError::ChangedSincePlan(file.path.clone()));
            }
        }
        let mut staged = Vec::new();
        for file in &self.files {
            if let FileAction::Write { content, mode } = &file.action {
                match stage(&file.path, content, *mode) {
                    Ok(temporary) => staged.push((temporary, &file.path)),
                    Err(error) => {
                        staged
                            .iter()
                            .for_each(|(temporary, _)| drop(fs::remove_file(temporary)));
                        return Err(error);
                    }
                }
            }
        }
        for (temporary, target) in staged {
            fs::rename(&temporary, target).map_err(|e| {
                let _ = fs::remove_file(&temporary);
                SnapshotError::io(target, e)
            })?;
        }
        for file in &self.files {
            if file.action == FileAction::Delete {
                match fs::remove_file(&file.path) {
                    Ok(()) => remove_empty_parents(&file.path, store.workspace_root()),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(SnapshotError::io(&file.path, e)),
                }
            }
        }
        Ok(())
    }
}

/// Writes `content` to a new temporary file in `target`'s directory (created if missing).
fn stage(target: &Path, content: &[u8], mode: FileMode) -> Result<PathBuf, SnapshotError> {
    let parent = target.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent).map_err(|e| SnapshotError::io(parent, e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = parent.join(format!(
        ".{name}.tack-{}-{}.tmp",
        std::process::id(),
        now_ms()
    ));
    let _ = fs::remove_file(&temporary);
    if mode == FileMode::Symlink {
        use std::os::unix::ffi::OsStrExt;
        let link = std::ffi::OsStr::from_bytes(content);
        std::os::unix::fs::symlink(link, &temporary)
            .map_err(|e| SnapshotError::io(&temporary, e))?;
        return Ok(temporary);
    }
    // Keep the permission bits the file has now (a new file gets the umask's), with the
    // executable bits as the restored version has them.
    let current_bits = fs::metadata(target)
        .ok()
        .filter(fs::Metadata::is_file)
        .map(|meta| meta.permissions().mode() & 0o7777);
    let result = (|| {
        let mut file = fs::File::create_new(&temporary)?;
        file.write_all(content)?;
        let created_bits = file.metadata()?.permissions().mode() & 0o7777;
        let base = current_bits.unwrap_or(created_bits);
        let bits = if mode == FileMode::Executable {
            base | ((base & 0o444) >> 2)
        } else {
            base & !0o111
        };
        if bits != created_bits {
            file.set_permissions(fs::Permissions::from_mode(bits))?;
        }
        file.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temporary);
        SnapshotError::io(&temporary, e)
    })?;
    Ok(temporary)
}

fn remove_empty_parents(path: &Path, root: &Path) {
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == root || !current.starts_with(root) || fs::remove_dir(current).is_err() {
            break;
        }
        dir = current.parent();
    }
}

/// Content being worked on during planning; bytes are loaded only when a merge needs them.
#[derive(Debug, Clone)]
struct Content {
    version: FileVersion,
    bytes: Option<Vec<u8>>,
}

struct Slot {
    original: Option<FileVersion>,
    source: ContentSource,
    current: Option<Content>,
    conflict: bool,
}

/// One file of one step: the state the step starts from (base) and the state it wants.
struct StepFile {
    path: String,
    base: Option<FileVersion>,
    theirs: Option<FileVersion>,
}

enum Merged {
    Resolved(Option<Content>),
    Refused(ConflictKind, Vec<LineRange>),
}

/// Folds steps over the working content of the files they touch.
struct Planner<'a> {
    store: &'a SnapshotStore,
    overlay: Overlay<'a>,
    slots: BTreeMap<String, Slot>,
    conflicts: Vec<Conflict>,
}

impl<'a> Planner<'a> {
    fn new(store: &'a SnapshotStore, overlay: Overlay<'a>) -> Self {
        Planner {
            store,
            overlay,
            slots: BTreeMap::new(),
            conflicts: Vec::new(),
        }
    }

    fn slot(&mut self, path: &str) -> Result<&mut Slot, SnapshotError> {
        if !self.slots.contains_key(path) {
            let captured = self.store.capture(path, self.overlay, false)?;
            let source = if captured.from_buffer {
                ContentSource::Buffer
            } else {
                ContentSource::Disk
            };
            let current = captured.version.clone().map(|version| Content {
                version,
                bytes: captured.bytes,
            });
            self.slots.insert(
                path.to_string(),
                Slot {
                    original: captured.version,
                    source,
                    current,
                    conflict: false,
                },
            );
        }
        self.slots
            .get_mut(path)
            .ok_or_else(|| SnapshotError::MissingObject(path.to_string()))
    }

    fn refuse(
        &mut self,
        path: &str,
        kind: ConflictKind,
        ranges: Vec<LineRange>,
    ) -> Result<(), SnapshotError> {
        self.slot(path)?.conflict = true;
        self.conflicts.push(Conflict {
            path: self.store.absolute_path(path),
            relative_path: path.to_string(),
            kind,
            ranges,
        });
        Ok(())
    }

    fn step(&mut self, files: Vec<StepFile>) -> Result<(), SnapshotError> {
        let mut rest = Vec::new();
        let (mut removed, mut created): (Vec<StepFile>, Vec<StepFile>) = (Vec::new(), Vec::new());
        for file in files {
            match (&file.base, &file.theirs) {
                (Some(_), None) => removed.push(file),
                (None, Some(_)) => created.push(file),
                _ => rest.push(file),
            }
        }
        // Exact renames: the content removed from one path appears at another.
        for from in removed {
            let partner = created.iter().position(
                |to| matches!((&from.base, &to.theirs), (Some(a), Some(b)) if a.blob == b.blob),
            );
            match partner {
                Some(index) => {
                    let to = created.remove(index);
                    if !self.rename(&from, &to)? {
                        rest.push(from);
                        rest.push(to);
                    }
                }
                None => rest.push(from),
            }
        }
        rest.extend(created);
        for file in rest {
            if self.slot(&file.path)?.conflict {
                continue;
            }
            let ours = self.slot(&file.path)?.current.take();
            match self.merge(&file, ours.clone())? {
                Merged::Resolved(content) => self.slot(&file.path)?.current = content,
                Merged::Refused(kind, ranges) => {
                    self.slot(&file.path)?.current = ours;
                    self.refuse(&file.path, kind, ranges)?;
                }
            }
        }
        Ok(())
    }

    /// Moves `from`'s working content (with the user's edits) to `to`. False when the
    /// working state does not fit a rename (then each path is merged on its own).
    fn rename(&mut self, from: &StepFile, to: &StepFile) -> Result<bool, SnapshotError> {
        if self.slot(&from.path)?.conflict
            || self.slot(&to.path)?.conflict
            || self.slot(&to.path)?.current.is_some()
        {
            return Ok(false);
        }
        let Some(ours) = self.slot(&from.path)?.current.clone() else {
            return Ok(false);
        };
        let moved = StepFile {
            path: to.path.clone(),
            base: from.base.clone(),
            theirs: to.theirs.clone(),
        };
        match self.merge(&moved, Some(ours))? {
            Merged::Resolved(content) => {
                self.slot(&to.path)?.current = content;
                self.slot(&from.path)?.current = None;
                Ok(true)
            }
            Merged::Refused(..) => Ok(false),
        }
    }

    fn load(&self, content: &mut Content) -> Result<Result<(), NotStoredReason>, SnapshotError> {
        if content.bytes.is_none() {
            if let Some(reason) = content.version.not_stored {
                return Ok(Err(reason));
            }
            content.bytes = Some(self.store.read_blob(&content.version.blob)?);
        }
        Ok(Ok(()))
    }

    fn merge(&mut self, file: &StepFile, ours: Option<Content>) -> Result<Merged, SnapshotError> {
        let same = |a: Option<&FileVersion>, b: Option<&FileVersion>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_as(b),
            _ => false,
        };
        let ours_version = ours.as_ref().map(|c| &c.version);
        let theirs_content = || {
            file.theirs.clone().map(|version| Content {
                version,
                bytes: None,
            })
        };
        if same(ours_version, file.theirs.as_ref())
            || same(file.base.as_ref(), file.theirs.as_ref())
        {
            return Ok(Merged::Resolved(ours));
        }
        if same(ours_version, file.base.as_ref()) {
            return Ok(Merged::Resolved(theirs_content()));
        }
        let base = file.base.clone().map(|version| Content {
            version,
            bytes: None,
        });
        let mut theirs = theirs_content();
        match (base, ours, &mut theirs) {
            (None, Some(mut ours), Some(theirs)) => {
                let ranges = match (self.load(&mut ours)?, self.load(theirs)?) {
                    (Ok(()), Ok(())) => line_changes(theirs, &ours),
                    _ => Vec::new(),
                };
                Ok(Merged::Refused(ConflictKind::BothCreated, ranges))
            }
            (Some(mut base), Some(mut ours), None) => {
                let ranges = match (self.load(&mut base)?, self.load(&mut ours)?) {
                    (Ok(()), Ok(())) => line_changes(&base, &ours),
                    _ => Vec::new(),
                };
                Ok(Merged::Refused(
                    ConflictKind::EditedButRestoreDeletes,
                    ranges,
                ))
            }
            (Some(_), None, Some(_)) => Ok(Merged::Refused(
                ConflictKind::DeletedButRestoreChanges,
                Vec::new(),
            )),
            (Some(mut base), Some(mut ours), Some(theirs)) => {
                for content in [&mut base, &mut ours, &mut *theirs] {
                    if let Err(reason) = self.load(content)? {
                        return Ok(Merged::Refused(ConflictKind::NotStored(reason), Vec::new()));
                    }
                }
                let (b, o, t) = (bytes(&base), bytes(&ours), bytes(theirs));
                if is_binary(b) || is_binary(o) || is_binary(t) {
                    return Ok(Merged::Refused(ConflictKind::Binary, Vec::new()));
                }
                let mode = if ours.version.mode == base.version.mode {
                    theirs.version.mode
                } else {
                    ours.version.mode
                };
                match merge::merge3(b, o, t) {
                    Ok(merged) => {
                        let version = FileVersion {
                            blob: hash_blob(&merged)?.to_string(),
                            mode,
                            size: merged.len() as u64,
                            not_stored: None,
                        };
                        Ok(Merged::Resolved(Some(Content {
                            version,
                            bytes: Some(merged),
                        })))
                    }
                    Err(ranges) => Ok(Merged::Refused(ConflictKind::SameLines, ranges)),
                }
            }
            // Every remaining shape has ours equal to base or theirs, handled above.
            (_, ours, _) => Ok(Merged::Resolved(ours)),
        }
    }

    fn finish(mut self, mut plan: RestorePlan) -> Result<RestorePlan, SnapshotError> {
        if !self.conflicts.is_empty() {
            plan.conflicts = std::mem::take(&mut self.conflicts);
            return Ok(plan);
        }
        let slots = std::mem::take(&mut self.slots);
        for (path, slot) in slots {
            let current_version = slot.current.as_ref().map(|c| &c.version);
            let unchanged = match (current_version, &slot.original) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same_as(b),
                _ => false,
            };
            if unchanged {
                continue;
            }
            let action = match slot.current {
                None => FileAction::Delete,
                Some(mut content) => {
                    if let Err(reason) = self.load(&mut content)? {
                        self.refuse(&path, ConflictKind::NotStored(reason), Vec::new())?;
                        continue;
                    }
                    let mode = content.version.mode;
                    FileAction::Write {
                        content: content.bytes.unwrap_or_default(),
                        mode,
                    }
                }
            };
            plan.files.push(FileRestore {
                path: self.store.absolute_path(&path),
                relative_path: path,
                action,
                source: slot.source,
                expected: slot.original,
            });
        }
        if !self.conflicts.is_empty() {
            plan.files.clear();
            plan.conflicts = self.conflicts;
        }
        Ok(plan)
    }
}

fn bytes(content: &Content) -> &[u8] {
    content.bytes.as_deref().unwrap_or_default()
}

fn line_changes(old: &Content, new: &Content) -> Vec<LineRange> {
    if is_binary(bytes(old)) || is_binary(bytes(new)) {
        Vec::new()
    } else {
        merge::changed_ranges(bytes(old), bytes(new))
    }
}

impl SnapshotStore {
    /// Plans undoing the session's latest applied change.
    pub fn undo(&self, session: &str, overlay: Overlay<'_>) -> Result<RestorePlan, SnapshotError> {
        let log = self.read_existing_log(session)?;
        if log.applied == 0 {
            return Err(SnapshotError::NothingToUndo(session.to_string()));
        }
        self.plan_move(session, &log, log.applied - 1, RestoreKind::Undo, overlay)
    }

    /// Plans redoing the session's most recently undone change.
    pub fn redo(&self, session: &str, overlay: Overlay<'_>) -> Result<RestorePlan, SnapshotError> {
        let log = self.read_existing_log(session)?;
        if log.applied >= log.stack.len() {
            return Err(SnapshotError::NothingToRedo(session.to_string()));
        }
        self.plan_move(session, &log, log.applied + 1, RestoreKind::Redo, overlay)
    }

    /// Plans moving the session to `point`, undoing or redoing every change in between.
    pub fn restore_to(
        &self,
        session: &str,
        point: RestorePoint,
        overlay: Overlay<'_>,
    ) -> Result<RestorePlan, SnapshotError> {
        let log = self.read_existing_log(session)?;
        let index_of = |change: ChangeId| {
            log.stack.iter().position(|&c| c == change).ok_or_else(|| {
                if log.change(change).is_some() {
                    SnapshotError::ChangeNotOnStack {
                        session: session.to_string(),
                        change,
                    }
                } else {
                    SnapshotError::UnknownChange {
                        session: session.to_string(),
                        change,
                    }
                }
            })
        };
        let target = match point {
            RestorePoint::Start => 0,
            RestorePoint::Before(change) => index_of(change)?,
            RestorePoint::After(change) => index_of(change)? + 1,
        };
        self.plan_move(session, &log, target, RestoreKind::Restore, overlay)
    }

    fn plan_move(
        &self,
        session: &str,
        log: &SessionLog,
        target: usize,
        kind: RestoreKind,
        overlay: Overlay<'_>,
    ) -> Result<RestorePlan, SnapshotError> {
        let mut plan = RestorePlan {
            session: session.to_string(),
            kind,
            from: log.applied,
            to: target,
            changes: Vec::new(),
            files: Vec::new(),
            conflicts: Vec::new(),
            notes: Vec::new(),
            stack: log.stack.clone(),
        };
        let mut planner = Planner::new(self, overlay);
        let backwards = target < log.applied;
        let steps: Vec<ChangeId> = if backwards {
            log.stack[target..log.applied]
                .iter()
                .rev()
                .copied()
                .collect()
        } else {
            log.stack[log.applied..target].to_vec()
        };
        for id in steps {
            let change = log.change(id).ok_or_else(|| SnapshotError::UnknownChange {
                session: session.to_string(),
                change: id,
            })?;
            let mut files = Vec::new();
            for file in &change.files {
                // An uncommitted change's post-image is unknown: take what is there now as
                // its base, so undo restores the pre-image over it.
                let after = if change.committed {
                    file.after.clone()
                } else {
                    planner
                        .slot(&file.path)?
                        .current
                        .as_ref()
                        .map(|c| c.version.clone())
                };
                let (base, theirs) = if backwards {
                    (after, file.before.clone())
                } else {
                    (file.before.clone(), after)
                };
                files.push(StepFile {
                    path: file.path.clone(),
                    base,
                    theirs,
                });
            }
            if !change.committed {
                plan.notes.push(format!(
                    "change {id} ({}) never recorded its result (its process was interrupted or is still running); \
                     its files are restored to their state before it",
                    change.label
                ));
            }
            planner.step(files)?;
            plan.changes.push(id);
        }
        planner.finish(plan)
    }

    /// Records that `plan` was applied (by [`RestorePlan::apply_to_disk`] or through the
    /// editor), moving the session's undo stack. Fails, recording nothing, if the session moved
    /// since the plan was made.
    pub fn record_applied(&self, plan: &RestorePlan) -> Result<(), SnapshotError> {
        if plan.has_conflicts() {
            return Err(SnapshotError::PlanHasConflicts {
                count: plan.conflicts.len(),
            });
        }
        let log_path = self.log_path(&plan.session)?;
        let _lock = self.lock()?;
        let log = self.read_log(&plan.session)?;
        if log.stack != plan.stack || log.applied != plan.from {
            return Err(SnapshotError::StalePlan(plan.session.clone()));
        }
        log::append(
            &log_path,
            &Event::Move {
                kind: plan.kind,
                from: plan.from,
                to: plan.to,
                time_ms: now_ms(),
            },
        )
    }

    /// Applies `plan` to disk and records it: the command line's way.
    pub fn apply(&self, plan: &RestorePlan) -> Result<(), SnapshotError> {
        plan.apply_to_disk(self)?;
        self.record_applied(plan)
    }

    /// Plans restoring the whole worktree to `checkpoint` of `session`. The base is the
    /// session's latest checkpoint with every change recorded after it laid over, so files the
    /// user changed since are merged, not overwritten.
    pub fn restore_checkpoint(
        &self,
        session: &str,
        checkpoint: u32,
        overlay: Overlay<'_>,
    ) -> Result<RestorePlan, SnapshotError> {
        let log = self.read_existing_log(session)?;
        let target = log
            .checkpoints
            .iter()
            .find(|c| c.id == checkpoint)
            .ok_or_else(|| SnapshotError::UnknownCheckpoint {
                session: session.to_string(),
                checkpoint,
            })?;
        let latest = log
            .checkpoints
            .iter()
            .max_by_key(|c| c.id)
            .unwrap_or(target);
        let mut files: BTreeMap<String, (Option<FileVersion>, Option<FileVersion>)> =
            BTreeMap::new();
        for difference in self.diff_trees(&latest.tree, &target.tree)? {
            files.insert(difference.path, (difference.old, difference.new));
        }
        // Changes after the latest checkpoint: the state they left is their post-image if
        // applied, their pre-image if undone or abandoned.
        let later_changes = log
            .changes
            .iter()
            .filter(|c| c.id.0 > latest.changes_before);
        for change in later_changes {
            for file in &change.files {
                let left = if change.status == ChangeStatus::Applied && change.committed {
                    file.after.clone()
                } else if change.status == ChangeStatus::Applied {
                    continue;
                } else {
                    file.before.clone()
                };
                let theirs = match files.get(&file.path) {
                    Some((_, theirs)) => theirs.clone(),
                    None => self.tree_entry(&target.tree, &file.path)?,
                };
                files.insert(file.path.clone(), (left, theirs));
            }
        }
        let mut plan = RestorePlan {
            session: session.to_string(),
            kind: RestoreKind::Checkpoint,
            from: log.applied,
            to: target.position.min(log.stack.len()),
            changes: Vec::new(),
            files: Vec::new(),
            conflicts: Vec::new(),
            notes: Vec::new(),
            stack: log.stack.clone(),
        };
        if target.not_stored > 0 {
            plan.notes.push(format!(
                "{} file(s) of checkpoint {checkpoint} were recorded by hash only (large or binary)",
                target.not_stored
            ));
        }
        let mut planner = Planner::new(self, overlay);
        planner.step(
            files
                .into_iter()
                .map(|(path, (base, theirs))| StepFile { path, base, theirs })
                .collect(),
        )?;
        planner.finish(plan)
    }
}
