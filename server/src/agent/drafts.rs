//! A run's working copy in the editor: the agent's edits kept in memory, not written to disk
//! or to the editor's buffers, until the user accepts them as a proposal.
//!
//! The session records each mutating step here instead of writing files; the editor-side
//! [`super::LanguageFeedback`] reads through it, so the agent's next `read` and the language
//! servers see the drafted text. When the run ends, [`DraftSet::take`] hands the change set
//! (each file's text before the run and its drafted text) to whoever builds the proposal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One drafted file: what it held when the run first touched it, and what the agent made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftFile {
    pub path: PathBuf,
    /// `None`: the file did not exist.
    pub original: Option<String>,
    pub text: String,
}

/// The drafted files of the running turn. Shared by the session (writer) and the editor
/// feedback (reader).
#[derive(Debug, Default)]
pub struct DraftSet {
    files: Mutex<BTreeMap<PathBuf, DraftFile>>,
}

impl DraftSet {
    fn files(&self) -> MutexGuard<'_, BTreeMap<PathBuf, DraftFile>> {
        // Every mutation below is a single map operation, so a poisoned map is consistent.
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The drafted text of a file, if the run changed it.
    pub fn text(&self, path: &Path) -> Option<String> {
        self.files().get(path).map(|file| file.text.clone())
    }

    /// Records a step's new text; the first step on a file also records its original.
    pub fn record(&self, path: &Path, original: Option<String>, text: String) {
        self.files()
            .entry(path.to_path_buf())
            .and_modify(|file| file.text.clone_from(&text))
            .or_insert_with(|| DraftFile {
                path: path.to_path_buf(),
                original,
                text,
            });
    }

    pub fn is_empty(&self) -> bool {
        self.files().is_empty()
    }

    /// The change set so far, leaving the set empty for the next run. Files the run changed
    /// back to their original are left out.
    pub fn take(&self) -> Vec<DraftFile> {
        std::mem::take(&mut *self.files())
            .into_values()
            .filter(|file| file.original.as_deref() != Some(file.text.as_str()))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_first_original_is_kept_and_the_last_text_wins() {
        let drafts = DraftSet::default();
        let path = Path::new("/w/a.c");
        drafts.record(path, Some("one".into()), "two".into());
        drafts.record(path, Some("two".into()), "three".into());
        assert_eq!(drafts.text(path).as_deref(), Some("three"));
        let files = drafts.take();
        assert_eq!(
            files,
            vec![DraftFile {
                path: path.to_path_buf(),
                original: Some("one".into()),
                text: "three".into()
            }]
        );
        assert!(drafts.is_empty());
    }

    #[test]
    fn a_file_changed_back_is_not_in_the_change_set() {
        let drafts = DraftSet::default();
        drafts.record(Path::new("/w/a.c"), Some("x".into()), "y".into());
        drafts.record(Path::new("/w/a.c"), Some("y".into()), "x".into());
        drafts.record(Path::new("/w/new.c"), None, "".into());
        let files = drafts.take();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, Path::new("/w/new.c"));
    }
}
