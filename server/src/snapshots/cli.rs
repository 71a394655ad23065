//! The command line's snapshot commands, as functions returning the text to print, each on
//! the current folder's latest session: `tack snapshots [list|show N|diff N]`, `tack undo [N]`
//! (`N`: undo change N and everything after it), `tack redo`.

use std::fmt::Write as _;

use super::change::{ChangeRecord, ChangeStatus, FileChange};
use super::restore::{ConflictKind, FileAction, RestorePlan, RestorePoint};
use super::{
    ChangeId, FileVersion, LineRange, NotStoredReason, SnapshotError, SnapshotStore, no_overlay,
};

fn latest_session(store: &SnapshotStore) -> Result<String, SnapshotError> {
    store
        .latest_session()?
        .ok_or_else(|| SnapshotError::NoSession(store.workspace_root().to_path_buf()))
}

fn find_change(
    store: &SnapshotStore,
    session: &str,
    change: u32,
) -> Result<ChangeRecord, SnapshotError> {
    store
        .changes(session)?
        .into_iter()
        .find(|c| c.id == ChangeId(change))
        .ok_or_else(|| SnapshotError::UnknownChange {
            session: session.to_string(),
            change: ChangeId(change),
        })
}

fn status_word(change: &ChangeRecord) -> &'static str {
    match (change.status, change.committed) {
        (ChangeStatus::Applied, false) => "running",
        (ChangeStatus::Applied, true) => "applied",
        (ChangeStatus::Undone, _) => "undone",
        (ChangeStatus::Discarded, _) => "discarded",
    }
}

fn file_kind(file: &FileChange) -> &'static str {
    match (&file.before, &file.after) {
        (None, Some(_)) => "created",
        (Some(_), None) => "deleted",
        (Some(a), Some(b)) if a.same_as(b) => "unchanged",
        _ => "modified",
    }
}

fn not_stored_note(version: Option<&FileVersion>) -> Option<String> {
    let version = version?;
    let reason = match version.not_stored? {
        NotStoredReason::Large => "large",
        NotStoredReason::Binary => "binary",
    };
    Some(format!(
        "{reason}, {} bytes, recorded by hash only",
        version.size
    ))
}

/// `tack snapshots list`: the changes of the latest session.
pub fn list(store: &SnapshotStore) -> Result<String, SnapshotError> {
    let session = latest_session(store)?;
    let changes = store.changes(&session)?;
    let mut out = format!("session {session}: {} change(s)\n", changes.len());
    for change in &changes {
        let _ = writeln!(
            out,
            "{:>4}  {:<9}  step {:<4} {} file(s)  {}",
            change.id,
            status_word(change),
            change.step,
            change.files.len(),
            change.label
        );
    }
    Ok(out)
}

/// `tack snapshots show N`: one change's files.
pub fn show(store: &SnapshotStore, change: u32) -> Result<String, SnapshotError> {
    let session = latest_session(store)?;
    let record = find_change(store, &session, change)?;
    let mut out = format!(
        "change {} of session {session}: {} (step {}, {})\n",
        record.id,
        record.label,
        record.step,
        status_word(&record)
    );
    for file in &record.files {
        let kind = if record.committed {
            file_kind(file)
        } else {
            "about to change"
        };
        let _ = write!(out, "  {kind:<10} {}", file.path);
        let notes: Vec<String> = [file.before.as_ref(), file.after.as_ref()]
            .into_iter()
            .filter_map(not_stored_note)
            .collect();
        if let Some(note) = notes.first() {
            let _ = write!(out, "  ({note})");
        }
        out.push('\n');
    }
    Ok(out)
}

/// `tack snapshots diff N`: a unified diff of what change N did.
pub fn diff(store: &SnapshotStore, change: u32) -> Result<String, SnapshotError> {
    let session = latest_session(store)?;
    let record = find_change(store, &session, change)?;
    let mut out = String::new();
    for file in &record.files {
        let text = |version: Option<&FileVersion>| -> Result<Option<String>, SnapshotError> {
            match version {
                None => Ok(Some(String::new())),
                Some(v) if v.not_stored.is_some() => Ok(None),
                Some(v) => Ok(String::from_utf8(store.read_blob(&v.blob)?).ok()),
            }
        };
        let after = if record.committed {
            file.after.as_ref()
        } else {
            file.before.as_ref()
        };
        match (text(file.before.as_ref())?, text(after)?) {
            (Some(old), Some(new)) => {
                let old_name = if file.before.is_some() {
                    format!("a/{}", file.path)
                } else {
                    "/dev/null".into()
                };
                let new_name = if after.is_some() {
                    format!("b/{}", file.path)
                } else {
                    "/dev/null".into()
                };
                let _ = write!(
                    out,
                    "{}",
                    similar::TextDiff::from_lines(&old, &new)
                        .unified_diff()
                        .header(&old_name, &new_name)
                );
            }
            _ => {
                let _ = writeln!(out, "Binary or unstored content differs: {}", file.path);
            }
        }
    }
    Ok(out)
}

/// `tack undo [N]`: undo the latest change, or change N and every change after it.
pub fn undo(store: &SnapshotStore, change: Option<u32>) -> Result<String, SnapshotError> {
    undo_in(store, &latest_session(store)?, change)
}

/// [`undo`] in a named session.
pub fn undo_in(
    store: &SnapshotStore,
    session: &str,
    change: Option<u32>,
) -> Result<String, SnapshotError> {
    let session = session.to_owned();
    let plan = match change {
        None => store.undo(&session, &no_overlay)?,
        Some(n) => {
            let record = find_change(store, &session, n)?;
            if record.status != ChangeStatus::Applied {
                return Err(SnapshotError::RestoreRefused(format!(
                    "change {n} is {}, not applied: nothing to undo",
                    status_word(&record)
                )));
            }
            store.restore_to(&session, RestorePoint::Before(ChangeId(n)), &no_overlay)?
        }
    };
    apply(store, &plan, "undo")
}

/// `tack redo`: redo the most recently undone change.
pub fn redo(store: &SnapshotStore) -> Result<String, SnapshotError> {
    redo_in(store, &latest_session(store)?)
}

/// [`redo`] in a named session.
pub fn redo_in(store: &SnapshotStore, session: &str) -> Result<String, SnapshotError> {
    let plan = store.redo(session, &no_overlay)?;
    apply(store, &plan, "redo")
}

fn apply(store: &SnapshotStore, plan: &RestorePlan, verb: &str) -> Result<String, SnapshotError> {
    if plan.has_conflicts() {
        return Err(SnapshotError::RestoreRefused(render_conflicts(plan, verb)));
    }
    store.apply(plan)?;
    let ids: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
    let mut out = format!("{verb} of change(s) {} done", ids.join(", "));
    if plan.files.is_empty() {
        out.push_str(" (the files were already in that state)");
    }
    out.push('\n');
    for file in &plan.files {
        let action = match file.action {
            FileAction::Write { .. } => "wrote",
            FileAction::Delete => "deleted",
        };
        let _ = writeln!(out, "  {action:<7} {}", file.relative_path);
    }
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    Ok(out)
}

/// The refusal text: which files, which lines (1-based), and why.
pub fn render_conflicts(plan: &RestorePlan, verb: &str) -> String {
    let mut out = format!(
        "{verb} refused, nothing was changed: files were edited after the agent's change\n"
    );
    for conflict in &plan.conflicts {
        let why = match conflict.kind {
            ConflictKind::SameLines => "you changed the same lines".to_string(),
            ConflictKind::EditedButRestoreDeletes => {
                "you edited it; this would delete it".to_string()
            }
            ConflictKind::DeletedButRestoreChanges => {
                "you deleted it; this would change it".to_string()
            }
            ConflictKind::BothCreated => {
                "it exists with other content than this would create".to_string()
            }
            ConflictKind::Binary => "binary content changed on both sides".to_string(),
            ConflictKind::NotStored(reason) => format!(
                "the content needed was not stored ({} file, recorded by hash only)",
                if reason == NotStoredReason::Large {
                    "large"
                } else {
                    "binary"
                }
            ),
        };
        let _ = write!(out, "  {}: {why}", conflict.relative_path);
        if !conflict.ranges.is_empty() {
            let ranges: Vec<String> = conflict.ranges.iter().map(render_range).collect();
            let _ = write!(out, "; lines {}", ranges.join(", "));
        }
        out.push('\n');
    }
    out
}

fn render_range(range: &LineRange) -> String {
    match range.end - range.start {
        0 => format!("(deleted before {})", range.start + 1),
        1 => format!("{}", range.start + 1),
        _ => format!("{}-{}", range.start + 1, range.end),
    }
}
