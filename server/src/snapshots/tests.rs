//! Behaviour tests of the snapshot store: whole sessions of changes, undos, redos and restores
//! on real temporary folders (plain folders unless a test makes a git repository), including
//! two processes on one store and a process killed with SIGKILL mid-snapshot. Child processes
//! are this test binary re-run on one test with `TACK_SNAPSHOT_CHILD` set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    store: SnapshotStore,
}

fn fixture() -> Fixture {
    fixture_with(SnapshotOptions::default())
}

fn fixture_with(options: SnapshotOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspace");
    let data = dir.path().join("data");
    fs::create_dir_all(&root).unwrap();
    let store = SnapshotStore::open_with(&data, &root, options).unwrap();
    let root = root.canonicalize().unwrap();
    Fixture {
        _dir: dir,
        root,
        data,
        store,
    }
}

impl Fixture {
    fn write(&self, path: &str, content: &str) {
        self.write_bytes(path, content.as_bytes());
    }

    fn write_bytes(&self, path: &str, content: &[u8]) {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn read(&self, path: &str) -> Option<String> {
        fs::read_to_string(self.root.join(path)).ok()
    }

    fn remove(&self, path: &str) {
        fs::remove_file(self.root.join(path)).unwrap();
    }

    /// One agent step: snapshot `paths`, run `edit`, record the post-image.
    fn agent(&self, session: &str, paths: &[&str], edit: impl FnOnce(&Self)) -> ChangeId {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        let step = self.store.read_log(session).unwrap().next_change_id().0;
        let pending = self
            .store
            .begin_change(session, step, &format!("step {step}"), &paths, &no_overlay)
            .unwrap();
        edit(self);
        self.store.commit_change(pending, &no_overlay).unwrap()
    }

    fn apply(&self, plan: RestorePlan) -> RestorePlan {
        assert!(
            plan.conflicts.is_empty(),
            "unexpected conflicts: {:?}",
            plan.conflicts
        );
        self.store.apply(&plan).unwrap();
        plan
    }

    fn undo(&self, session: &str) -> RestorePlan {
        self.apply(self.store.undo(session, &no_overlay).unwrap())
    }

    fn redo(&self, session: &str) -> RestorePlan {
        self.apply(self.store.redo(session, &no_overlay).unwrap())
    }

    /// Every file under the workspace (relative path → content), skipping `.git`.
    fn tree(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        collect_files(&self.root, &self.root, &mut files, true);
        files
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>, skip_git: bool) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if skip_git && entry.file_name() == ".git" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            collect_files(root, &path, out, skip_git);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(relative, fs::read(&path).unwrap());
        }
    }
}

const TEN_LINES: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n";

#[test]
fn undo_and_redo_round_trip_create_modify_delete_and_rename() {
    let f = fixture();
    f.write("src/modified.rs", "fn a() {}\n");
    f.write("src/deleted.rs", "fn gone() {}\n");
    f.write("src/old_name.rs", "fn moved() {}\n");
    let before = f.tree();
    let paths = [
        "src/modified.rs",
        "src/deleted.rs",
        "src/new/created.rs",
        "src/old_name.rs",
        "src/new_name.rs",
    ];
    f.agent("s1", &paths, |f| {
        f.write("src/modified.rs", "fn a() { changed() }\n");
        f.remove("src/deleted.rs");
        f.write("src/new/created.rs", "fn new() {}\n");
        fs::rename(
            f.root.join("src/old_name.rs"),
            f.root.join("src/new_name.rs"),
        )
        .unwrap();
    });
    let after = f.tree();
    assert_ne!(before, after);

    let plan = f.undo("s1");
    assert_eq!(plan.changes, vec![ChangeId(1)]);
    assert_eq!(f.tree(), before);
    assert!(
        !f.root.join("src/new").exists(),
        "a directory the undo emptied is removed"
    );

    f.redo("s1");
    assert_eq!(f.tree(), after);
    f.undo("s1");
    assert_eq!(f.tree(), before);
    assert!(matches!(
        f.store.undo("s1", &no_overlay),
        Err(SnapshotError::NothingToUndo(_))
    ));
}

#[test]
fn restore_to_any_point_and_back() {
    let f = fixture();
    f.write("a.txt", "v0\n");
    let c1 = f.agent("s", &["a.txt"], |f| f.write("a.txt", "v1\n"));
    let c2 = f.agent("s", &["a.txt", "b.txt"], |f| {
        f.write("a.txt", "v2\n");
        f.write("b.txt", "b2\n");
    });
    let _c3 = f.agent("s", &["a.txt"], |f| f.write("a.txt", "v3\n"));

    let plan = f.apply(
        f.store
            .restore_to("s", RestorePoint::After(c1), &no_overlay)
            .unwrap(),
    );
    assert_eq!(plan.changes.len(), 2);
    assert_eq!(f.read("a.txt").as_deref(), Some("v1\n"));
    assert_eq!(f.read("b.txt"), None);

    f.apply(
        f.store
            .restore_to("s", RestorePoint::Start, &no_overlay)
            .unwrap(),
    );
    assert_eq!(f.read("a.txt").as_deref(), Some("v0\n"));

    f.apply(
        f.store
            .restore_to("s", RestorePoint::After(c2), &no_overlay)
            .unwrap(),
    );
    assert_eq!(
        (f.read("a.txt").unwrap(), f.read("b.txt").unwrap()),
        ("v2\n".into(), "b2\n".into())
    );
    f.redo("s");
    assert_eq!(f.read("a.txt").as_deref(), Some("v3\n"));
    let statuses: Vec<ChangeStatus> = f
        .store
        .changes("s")
        .unwrap()
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![ChangeStatus::Applied; 3]);
}

#[test]
fn a_new_change_after_undo_replaces_the_redo_tail() {
    let f = fixture();
    f.write("a.txt", "0\n");
    f.agent("s", &["a.txt"], |f| f.write("a.txt", "1\n"));
    f.undo("s");
    f.agent("s", &["a.txt"], |f| f.write("a.txt", "2\n"));
    assert!(matches!(
        f.store.redo("s", &no_overlay),
        Err(SnapshotError::NothingToRedo(_))
    ));
    let changes = f.store.changes("s").unwrap();
    assert_eq!(changes[0].status, ChangeStatus::Discarded);
    assert_eq!(changes[1].status, ChangeStatus::Applied);
    assert!(matches!(
        f.store
            .restore_to("s", RestorePoint::After(ChangeId(1)), &no_overlay),
        Err(SnapshotError::ChangeNotOnStack { .. })
    ));
    f.undo("s");
    assert_eq!(f.read("a.txt").as_deref(), Some("0\n"));
}

#[test]
fn the_pre_image_comes_from_the_unsaved_buffer() {
    let f = fixture();
    f.write("a.txt", "saved\n");
    let buffer_path = f.root.join("a.txt");
    let overlay = |path: &Path| (path == buffer_path).then(|| "unsaved buffer\n".to_string());
    let pending = f
        .store
        .begin_change("s", 1, "edit", &[PathBuf::from("a.txt")], &overlay)
        .unwrap();
    f.write("a.txt", "agent\n");
    f.store.commit_change(pending, &no_overlay).unwrap();

    let change = &f.store.changes("s").unwrap()[0];
    let before = change.files[0].before.as_ref().unwrap();
    assert_eq!(
        f.store.read_blob(&before.blob).unwrap(),
        b"unsaved buffer\n"
    );

    // Undo with the file closed writes the buffer's text back to disk.
    let plan = f.store.undo("s", &no_overlay).unwrap();
    assert_eq!(
        plan.files[0].action,
        FileAction::Write {
            content: b"unsaved buffer\n".to_vec(),
            mode: FileMode::File
        }
    );
    assert_eq!(plan.files[0].source, ContentSource::Disk);

    // With the file open, the plan merges against the buffer and must go through the editor.
    let open = |path: &Path| (path == buffer_path).then(|| "agent\n".to_string());
    let plan = f.store.undo("s", &open).unwrap();
    assert_eq!(plan.files[0].source, ContentSource::Buffer);
    assert!(matches!(
        plan.apply_to_disk(&f.store),
        Err(SnapshotError::OpenInEditor(_))
    ));
    assert_eq!(f.read("a.txt").as_deref(), Some("agent\n"));
}

#[test]
fn undo_merges_a_user_edit_elsewhere_in_the_file() {
    let f = fixture();
    f.write("a.txt", TEN_LINES);
    f.agent("s", &["a.txt"], |f| {
        f.write("a.txt", &TEN_LINES.replace("two", "TWO by agent"))
    });
    f.write(
        "a.txt",
        &TEN_LINES
            .replace("two", "TWO by agent")
            .replace("nine", "NINE by user"),
    );
    f.undo("s");
    assert_eq!(
        f.read("a.txt").unwrap(),
        TEN_LINES.replace("nine", "NINE by user")
    );
    // Redo merges the same way.
    f.redo("s");
    assert_eq!(
        f.read("a.txt").unwrap(),
        TEN_LINES
            .replace("two", "TWO by agent")
            .replace("nine", "NINE by user")
    );
}

#[test]
fn undo_refuses_on_the_same_lines_lists_them_and_changes_nothing() {
    let f = fixture();
    f.write("a.txt", TEN_LINES);
    f.write("b.txt", "b\n");
    f.agent("s", &["a.txt", "b.txt"], |f| {
        f.write("a.txt", &TEN_LINES.replace("three", "THREE by agent"));
        f.write("b.txt", "b by agent\n");
    });
    let user = TEN_LINES
        .replace("three", "three and user")
        .replace("four", "four and user");
    f.write("a.txt", &user);
    let snapshot_of_disk = f.tree();

    let plan = f.store.undo("s", &no_overlay).unwrap();
    assert!(plan.files.is_empty(), "a refused plan carries no edits");
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].relative_path, "a.txt");
    assert_eq!(plan.conflicts[0].kind, ConflictKind::SameLines);
    assert_eq!(
        plan.conflicts[0].ranges,
        vec![LineRange { start: 2, end: 4 }]
    );
    assert!(matches!(
        plan.apply_to_disk(&f.store),
        Err(SnapshotError::PlanHasConflicts { count: 1 })
    ));
    assert!(matches!(
        f.store.record_applied(&plan),
        Err(SnapshotError::PlanHasConflicts { .. })
    ));
    assert_eq!(f.tree(), snapshot_of_disk);

    let refusal = cli::undo(&f.store, None).unwrap_err().to_string();
    assert!(
        refusal.contains("a.txt") && refusal.contains("lines 3-4"),
        "{refusal}"
    );
    assert_eq!(f.tree(), snapshot_of_disk);
    assert_eq!(
        f.store.changes("s").unwrap()[0].status,
        ChangeStatus::Applied
    );
}

#[test]
fn user_edits_made_between_agent_changes_survive_a_multi_step_restore() {
    let f = fixture();
    f.write("a.txt", TEN_LINES);
    f.agent("s", &["a.txt"], |f| {
        f.write("a.txt", &TEN_LINES.replace("one", "ONE agent"))
    });
    let with_user = f.read("a.txt").unwrap().replace("five", "FIVE user");
    f.write("a.txt", &with_user);
    f.agent("s", &["a.txt"], |f| {
        f.write("a.txt", &with_user.replace("ten", "TEN agent"))
    });
    f.apply(
        f.store
            .restore_to("s", RestorePoint::Start, &no_overlay)
            .unwrap(),
    );
    assert_eq!(
        f.read("a.txt").unwrap(),
        TEN_LINES.replace("five", "FIVE user")
    );
}

#[test]
fn undoing_a_rename_carries_the_users_edit_back_to_the_old_name() {
    let f = fixture();
    f.write("old.rs", TEN_LINES);
    f.agent("s", &["old.rs", "new.rs"], |f| {
        fs::rename(f.root.join("old.rs"), f.root.join("new.rs")).unwrap()
    });
    f.write("new.rs", &TEN_LINES.replace("six", "six edited by user"));
    f.undo("s");
    assert_eq!(f.read("new.rs"), None);
    assert_eq!(
        f.read("old.rs").unwrap(),
        TEN_LINES.replace("six", "six edited by user")
    );
    f.redo("s");
    assert_eq!(f.read("old.rs"), None);
    assert_eq!(
        f.read("new.rs").unwrap(),
        TEN_LINES.replace("six", "six edited by user")
    );
}

#[test]
fn undoing_a_creation_the_user_then_edited_refuses() {
    let f = fixture();
    f.agent("s", &["new.txt"], |f| f.write("new.txt", "agent\nwrote\n"));
    f.write("new.txt", "agent\nwrote\nuser added\n");
    let plan = f.store.undo("s", &no_overlay).unwrap();
    assert_eq!(
        plan.conflicts[0].kind,
        ConflictKind::EditedButRestoreDeletes
    );
    assert_eq!(
        plan.conflicts[0].ranges,
        vec![LineRange { start: 2, end: 3 }]
    );
    // Undoing a deletion the user already reverted by hand is a no-op, not a conflict.
    f.write("gone.txt", "x\n");
    f.agent("s2", &["gone.txt"], |f| f.remove("gone.txt"));
    f.write("gone.txt", "x\n");
    let plan = f.store.undo("s2", &no_overlay).unwrap();
    assert!(plan.conflicts.is_empty() && plan.files.is_empty());
}

#[test]
fn a_plan_is_refused_when_the_disk_changed_after_it_was_made() {
    let f = fixture();
    f.write("a.txt", "0\n");
    f.agent("s", &["a.txt"], |f| f.write("a.txt", "1\n"));
    let plan = f.store.undo("s", &no_overlay).unwrap();
    f.write("a.txt", "user typed this meanwhile\n");
    assert!(matches!(
        plan.apply_to_disk(&f.store),
        Err(SnapshotError::ChangedSincePlan(_))
    ));
    assert_eq!(
        f.read("a.txt").as_deref(),
        Some("user typed this meanwhile\n")
    );
}

#[test]
fn a_stale_plan_is_not_recorded() {
    let f = fixture();
    f.write("a.txt", "0\n");
    f.agent("s", &["a.txt"], |f| f.write("a.txt", "1\n"));
    f.agent("s", &["a.txt"], |f| f.write("a.txt", "2\n"));
    let first = f.store.undo("s", &no_overlay).unwrap();
    let second = f.store.undo("s", &no_overlay).unwrap();
    f.apply(first);
    assert!(matches!(
        f.store.record_applied(&second),
        Err(SnapshotError::StalePlan(_))
    ));
}

#[test]
fn an_interrupted_change_is_undone_to_its_pre_image_with_a_note() {
    let f = fixture();
    f.write("a.txt", "before\n");
    let pending = f
        .store
        .begin_change(
            "s",
            1,
            "crashed step",
            &[PathBuf::from("a.txt")],
            &no_overlay,
        )
        .unwrap();
    f.write("a.txt", "half written");
    drop(pending);
    let change = &f.store.changes("s").unwrap()[0];
    assert!(!change.committed);
    let plan = f.undo("s");
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert_eq!(f.read("a.txt").as_deref(), Some("before\n"));
}

#[test]
fn an_abandoned_change_leaves_the_undo_stack() {
    let f = fixture();
    f.write("a.txt", "0\n");
    f.agent("s", &["a.txt"], |f| f.write("a.txt", "1\n"));
    let pending = f
        .store
        .begin_change("s", 2, "nothing", &[PathBuf::from("a.txt")], &no_overlay)
        .unwrap();
    f.store.abandon_change(pending).unwrap();
    let plan = f.undo("s");
    assert_eq!(plan.changes, vec![ChangeId(1)]);
    assert_eq!(f.read("a.txt").as_deref(), Some("0\n"));
}

#[test]
fn paths_outside_the_workspace_are_refused_by_name() {
    let f = fixture();
    let outside = f.root.parent().unwrap().join("outside");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, f.root.join("escape")).unwrap();
    for path in [
        PathBuf::from("../outside/x"),
        outside.join("x"),
        PathBuf::from("escape/x"),
        PathBuf::from("/etc/passwd"),
    ] {
        let error = f
            .store
            .begin_change("s", 1, "bad", std::slice::from_ref(&path), &no_overlay)
            .unwrap_err();
        assert!(
            matches!(error, SnapshotError::OutsideWorkspace { .. }),
            "{path:?}: {error}"
        );
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
    assert!(matches!(
        f.store
            .begin_change("s", 1, "bad", &[PathBuf::from("..")], &no_overlay),
        Err(SnapshotError::OutsideWorkspace { .. } | SnapshotError::WorkspaceRootIsNotAFile(_))
    ));
    assert!(matches!(
        f.store
            .begin_change("../evil", 1, "bad", &[PathBuf::from("a")], &no_overlay),
        Err(SnapshotError::InvalidSessionName(_))
    ));
    // Inside paths given absolutely or with `..` that stays inside are fine.
    f.write("dir/a.txt", "a\n");
    let ok = [f.root.join("dir/a.txt"), PathBuf::from("dir/../dir/a.txt")];
    let pending = f
        .store
        .begin_change("s", 1, "ok", &ok, &no_overlay)
        .unwrap();
    assert_eq!(
        f.store.changes("s").unwrap()[0].files.len(),
        1,
        "the same file given twice is recorded once"
    );
    f.store.abandon_change(pending).unwrap();
}

#[test]
fn large_and_binary_files_are_kept_by_hash_with_a_note() {
    let f = fixture();
    let large = vec![b'x'; 3 * 1024 * 1024];
    let binary = b"\x00\x01binary\xff".to_vec();
    f.write_bytes("large.txt", &large);
    f.write_bytes("image.bin", &binary);
    f.agent("s", &["large.txt", "image.bin"], |f| {
        f.write_bytes("large.txt", b"small now\n");
        f.write_bytes("image.bin", b"\x00changed");
    });
    let change = &f.store.changes("s").unwrap()[0];
    let large_before = change
        .files
        .iter()
        .find(|c| c.path == "large.txt")
        .unwrap()
        .before
        .clone()
        .unwrap();
    assert_eq!(large_before.not_stored, Some(NotStoredReason::Large));
    assert_eq!(large_before.size, large.len() as u64);
    assert_eq!(
        large_before.blob,
        git2::Oid::hash_object(git2::ObjectType::Blob, &large)
            .unwrap()
            .to_string()
    );
    assert!(matches!(
        f.store.read_blob(&large_before.blob),
        Err(SnapshotError::MissingObject(_))
    ));
    let binary_before = change
        .files
        .iter()
        .find(|c| c.path == "image.bin")
        .unwrap()
        .before
        .clone()
        .unwrap();
    assert_eq!(binary_before.not_stored, Some(NotStoredReason::Binary));

    let shown = cli::show(&f.store, 1).unwrap();
    assert!(
        shown.contains("large, 3145728 bytes, recorded by hash only"),
        "{shown}"
    );

    let plan = f.store.undo("s", &no_overlay).unwrap();
    let kinds: Vec<ConflictKind> = plan.conflicts.iter().map(|c| c.kind).collect();
    assert!(
        kinds.contains(&ConflictKind::NotStored(NotStoredReason::Large)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&ConflictKind::NotStored(NotStoredReason::Binary)),
        "{kinds:?}"
    );
}

#[test]
fn large_and_binary_files_round_trip_when_copying_is_opted_in() {
    let f = fixture_with(SnapshotOptions {
        store_large_and_binary: true,
        ..SnapshotOptions::default()
    });
    let large: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let binary = b"\x00\x01binary\xff".to_vec();
    f.write_bytes("large.bin", &large);
    f.write_bytes("image.bin", &binary);
    f.agent("s", &["large.bin", "image.bin"], |f| {
        f.write_bytes("large.bin", b"small");
        f.remove("image.bin");
    });
    f.undo("s");
    assert_eq!(fs::read(f.root.join("large.bin")).unwrap(), large);
    assert_eq!(fs::read(f.root.join("image.bin")).unwrap(), binary);
}

#[test]
fn executable_bits_and_symlinks_round_trip() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    f.write("run.sh", "#!/bin/sh\n");
    fs::set_permissions(f.root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("run.sh", f.root.join("link")).unwrap();
    f.agent("s", &["run.sh", "link"], |f| {
        f.remove("run.sh");
        f.remove("link");
    });
    f.undo("s");
    let mode = fs::metadata(f.root.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    assert_eq!(
        fs::read_link(f.root.join("link")).unwrap(),
        PathBuf::from("run.sh")
    );
}

#[test]
fn checkpoint_restore_brings_back_the_start_and_keeps_user_edits() {
    let f = fixture();
    f.write(".gitignore", "target/\n");
    f.write("src/a.rs", TEN_LINES);
    f.write("src/b.rs", "b\n");
    f.write("notes.txt", TEN_LINES);
    f.write("target/debug/big", "build output\n");
    let start = f.store.checkpoint("s").unwrap();
    assert_eq!(
        start.files, 4,
        "ignored files are not part of the checkpoint"
    );
    assert_eq!(
        f.store.tree_entry(&start.tree, "target/debug/big").unwrap(),
        None
    );

    // The agent runs a shell command: no change records, then a checkpoint after the step.
    f.write("src/a.rs", &TEN_LINES.replace("one", "ONE agent"));
    f.remove("src/b.rs");
    f.write("src/generated.rs", "generated\n");
    f.store.checkpoint("s").unwrap();
    // Then a recorded change, and the user edits.
    f.agent("s", &["notes.txt"], |f| {
        f.write("notes.txt", &TEN_LINES.replace("two", "TWO agent"))
    });
    f.write(
        "src/a.rs",
        &TEN_LINES
            .replace("one", "ONE agent")
            .replace("nine", "NINE user"),
    );
    f.write("target/debug/big", "rebuilt\n");

    let plan = f.apply(
        f.store
            .restore_checkpoint("s", start.id, &no_overlay)
            .unwrap(),
    );
    assert_eq!(plan.kind, RestoreKind::Checkpoint);
    assert_eq!(
        f.read("src/a.rs").unwrap(),
        TEN_LINES.replace("nine", "NINE user")
    );
    assert_eq!(f.read("src/b.rs").as_deref(), Some("b\n"));
    assert_eq!(f.read("src/generated.rs"), None);
    assert_eq!(f.read("notes.txt").as_deref(), Some(TEN_LINES));
    assert_eq!(f.read("target/debug/big").as_deref(), Some("rebuilt\n"));
    assert_eq!(
        f.store.changes("s").unwrap()[0].status,
        ChangeStatus::Undone
    );
}

#[test]
fn checkpoints_reuse_the_stat_cache_and_still_see_every_change() {
    let f = fixture();
    for i in 0..20 {
        f.write(&format!("d{}/f{i}.txt", i % 4), &format!("file {i}\n"));
    }
    // Files written within the clock's lag before a scan are read again by the next one.
    std::thread::sleep(Duration::from_millis(50));
    let (first, phases) = f.store.checkpoint_with_phases("s").unwrap();
    assert_eq!(phases.files_read, 20);
    let cache_file = f.store.store_dir().join("stat-cache");
    let cache_written = fs::metadata(&cache_file).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    // Nothing changed: the same tree, nothing read, and the cache file is left as it is.
    let (second, phases) = f.store.checkpoint_with_phases("s").unwrap();
    assert_eq!(first.tree, second.tree);
    assert_eq!(phases.files_read, 0);
    assert_eq!(
        fs::metadata(&cache_file).unwrap().modified().unwrap(),
        cache_written
    );

    // Same size, same mtime (set back by hand): the ctime still tells.
    let path = f.root.join("d1/f1.txt");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, "FILE 1\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // A new process (no cache in memory) reads the cache from disk, and only the changed file.
    let reopened = SnapshotStore::open(&f.data, &f.root).unwrap();
    let (third, phases) = reopened.checkpoint_with_phases("s").unwrap();
    assert_eq!(phases.files_read, 1);
    assert_ne!(third.tree, second.tree);
    let diff = reopened.diff_trees(&second.tree, &third.tree).unwrap();
    assert_eq!(diff.len(), 1);
    assert_eq!(diff[0].path, "d1/f1.txt");
    assert_eq!(
        reopened
            .read_blob(&diff[0].new.as_ref().unwrap().blob)
            .unwrap(),
        b"FILE 1\n"
    );

    // A tree built from the cache equals a tree built from scratch.
    fs::remove_file(f.store.store_dir().join("stat-cache")).unwrap();
    let fresh = SnapshotStore::open(&f.data, &f.root)
        .unwrap()
        .checkpoint("s")
        .unwrap();
    assert_eq!(fresh.tree, third.tree);
    assert_eq!(reopened.checkpoints("s").unwrap().len(), 4);
}

/// The tree git itself writes for the workspace (`add -A` into an empty index, then
/// `write-tree`, with a git directory outside the workspace, which stays a plain folder).
fn git_write_tree(f: &Fixture, git_dir: &Path) -> String {
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        if args[0] != "init" {
            command
                .arg("--git-dir")
                .arg(git_dir)
                .arg("--work-tree")
                .arg(&f.root);
        }
        let output = command
            .args(args)
            .current_dir(&f.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    if !git_dir.exists() {
        git(&["init", "-q", "--bare", git_dir.to_str().unwrap()]);
    }
    // From an empty index: git keeps files it tracks even once they are ignored.
    git(&["read-tree", "--empty"]);
    git(&["add", "-A", "."]);
    git(&["write-tree"])
}

#[test]
fn checkpoint_trees_equal_gits_own_through_deletes_renames_and_ignore_changes() {
    let f = fixture();
    let git_dir = f._dir.path().join("check.git");
    for (path, content) in [
        (".gitignore", "*.log\nbuild/\n"),
        ("src/main.rs", "fn main() {}\n"),
        ("src/util/mod.rs", "pub mod a;\n"),
        ("src/util/a.rs", "pub fn a() {}\n"),
        ("src/util/keep.log", "kept by a negation\n"),
        ("src/util/.gitignore", "!keep.log\n"),
        ("docs/guide/intro.md", "# intro\n"),
        ("docs/guide/setup.md", "# setup\n"),
        ("build/out.o", "ignored\n"),
        ("debug.log", "ignored\n"),
        ("a-b", "sorts before a/ in git's order\n"),
        ("a/x", "x\n"),
    ] {
        f.write(path, content);
    }
    std::os::unix::fs::symlink("src/main.rs", f.root.join("link")).unwrap();

    type Step = Box<dyn Fn(&Fixture)>;
    let steps: Vec<(&str, Step)> = vec![
        ("start", Box::new(|_| {})),
        (
            "edit",
            Box::new(|f| f.write("src/util/a.rs", "pub fn a() { 1 }\n")),
        ),
        (
            "delete a directory",
            Box::new(|f| {
                fs::remove_dir_all(f.root.join("docs/guide")).unwrap();
            }),
        ),
        (
            "rename a directory",
            Box::new(|f| {
                fs::rename(f.root.join("src/util"), f.root.join("src/tools")).unwrap();
            }),
        ),
        (
            "ignore a directory",
            Box::new(|f| f.write(".gitignore", "*.log\nbuild/\nsrc/tools/\n")),
        ),
        (
            "stop ignoring",
            Box::new(|f| f.write(".gitignore", "build/\n")),
        ),
        (
            "new nested files",
            Box::new(|f| {
                f.write("deep/er/still/file.txt", "deep\n");
                f.remove("a/x");
            }),
        ),
    ];
    for (step, change) in steps {
        change(&f);
        let expected = git_write_tree(&f, &git_dir);
        let in_process = f.store.checkpoint("s").unwrap();
        assert_eq!(in_process.tree, expected, "{step}: in process");
        let new_process = SnapshotStore::open(&f.data, &f.root)
            .unwrap()
            .checkpoint("s")
            .unwrap();
        assert_eq!(new_process.tree, expected, "{step}: new process");
        let fresh_data = f
            ._dir
            .path()
            .join(format!("fresh-{}", step.replace(' ', "-")));
        let fresh = SnapshotStore::open(&fresh_data, &f.root)
            .unwrap()
            .checkpoint("s")
            .unwrap();
        assert_eq!(fresh.tree, expected, "{step}: from scratch");
    }
}

#[test]
fn a_git_repository_is_byte_identical_after_a_whole_session() {
    let f = fixture();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&f.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    f.write("src/lib.rs", TEN_LINES);
    f.write("README.md", "readme\n");
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "first"]);
    git(&["stash", "list"]);
    let git_dir_state = || {
        let mut files = BTreeMap::new();
        collect_files(
            &f.root.join(".git"),
            &f.root.join(".git"),
            &mut files,
            false,
        );
        let mtimes: BTreeMap<String, SystemTime> = files
            .keys()
            .map(|p| {
                (
                    p.clone(),
                    fs::metadata(f.root.join(".git").join(p))
                        .unwrap()
                        .modified()
                        .unwrap(),
                )
            })
            .collect();
        (files, mtimes)
    };
    let before = git_dir_state();
    assert!(
        before.0.contains_key("index")
            && before.0.contains_key("HEAD")
            && before.0.contains_key("logs/HEAD")
    );

    f.store.checkpoint("s").unwrap();
    f.agent("s", &["src/lib.rs", "src/new.rs"], |f| {
        f.write("src/lib.rs", &TEN_LINES.replace("one", "ONE"));
        f.write("src/new.rs", "new\n");
    });
    f.agent("s", &["README.md"], |f| f.remove("README.md"));
    f.store.checkpoint("s").unwrap();
    f.undo("s");
    f.undo("s");
    f.redo("s");
    f.apply(f.store.restore_checkpoint("s", 1, &no_overlay).unwrap());
    cli::list(&f.store).unwrap();
    cli::diff(&f.store, 1).unwrap();
    f.store.prune(None).unwrap();

    assert_eq!(git_dir_state(), before, "the user's .git must not change");
}

#[test]
fn sessions_are_listed_and_the_cli_renders_changes() {
    let f = fixture();
    assert!(matches!(
        cli::list(&f.store),
        Err(SnapshotError::NoSession(_))
    ));
    f.write("a.txt", "old line\n");
    f.agent("first", &["a.txt"], |f| f.write("a.txt", "first\n"));
    std::thread::sleep(Duration::from_millis(20));
    f.agent("second", &["a.txt"], |f| f.write("a.txt", "new line\n"));
    let sessions = f.store.sessions().unwrap();
    assert_eq!(
        sessions.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["first", "second"]
    );
    assert_eq!(f.store.latest_session().unwrap().as_deref(), Some("second"));

    let list = cli::list(&f.store).unwrap();
    assert!(
        list.starts_with("session second: 1 change(s)") && list.contains("applied"),
        "{list}"
    );
    let show = cli::show(&f.store, 1).unwrap();
    assert!(show.contains("modified   a.txt"), "{show}");
    let diff = cli::diff(&f.store, 1).unwrap();
    assert!(
        diff.contains("-first\n") && diff.contains("+new line\n") && diff.contains("+++ b/a.txt"),
        "{diff}"
    );
    let undone = cli::undo(&f.store, None).unwrap();
    assert!(undone.contains("wrote   a.txt"), "{undone}");
    assert_eq!(f.read("a.txt").as_deref(), Some("first\n"));
    let refused = cli::undo(&f.store, Some(1)).unwrap_err().to_string();
    assert!(refused.contains("change 1 is undone"), "{refused}");
    cli::redo(&f.store).unwrap();
    assert_eq!(f.read("a.txt").as_deref(), Some("new line\n"));
    cli::undo(&f.store, Some(1)).unwrap();
    assert_eq!(f.read("a.txt").as_deref(), Some("first\n"));
    assert!(matches!(
        cli::show(&f.store, 9),
        Err(SnapshotError::UnknownChange { .. })
    ));
}

#[test]
fn prune_drops_expired_sessions_and_only_their_unreachable_objects() {
    let retention = Retention {
        max_age: Duration::ZERO,
        grace: Duration::ZERO,
        ..Retention::default()
    };
    let options = SnapshotOptions {
        retention,
        ..SnapshotOptions::default()
    };
    let f = fixture_with(options.clone());
    f.write("a.txt", "first\n");
    f.agent("old", &["a.txt"], |f| {
        f.write("a.txt", "only in the old session\n")
    });
    f.store.checkpoint("old").unwrap();
    f.write("a.txt", "user\n");
    std::thread::sleep(Duration::from_millis(20));
    f.agent("new", &["a.txt"], |f| f.write("a.txt", "new\n"));
    let old_change = f.store.changes("old").unwrap()[0].files[0].clone();
    let (old_before, old_after) = (old_change.before.unwrap(), old_change.after.unwrap());
    let new_after = f.store.changes("new").unwrap()[0].files[0]
        .after
        .clone()
        .unwrap();
    assert!(f.store.has_object(&old_before.blob).unwrap());

    let report = f.store.prune(None).unwrap();
    assert_eq!(report.sessions_removed, vec!["old".to_string()]);
    assert!(report.objects_removed > 0);
    assert!(!f.store.has_object(&old_before.blob).unwrap());
    // The checkpoint's stat cache still holds the old tree, so the old post-image stays
    // reachable through it; without the cache a prune removes it too.
    assert!(f.store.has_object(&old_after.blob).unwrap());
    fs::remove_file(f.store.store_dir().join("stat-cache")).unwrap();
    let reopened = SnapshotStore::open_with(&f.data, &f.root, options).unwrap();
    reopened.prune(None).unwrap();
    assert!(!reopened.has_object(&old_after.blob).unwrap());
    assert!(reopened.has_object(&new_after.blob).unwrap());
    f.undo("new");
    assert_eq!(f.read("a.txt").as_deref(), Some("user\n"));
}

#[test]
fn prune_drops_the_oldest_sessions_while_over_the_size_cap() {
    let retention = Retention {
        max_bytes: 0,
        grace: Duration::ZERO,
        ..Retention::default()
    };
    let f = fixture_with(SnapshotOptions {
        retention,
        ..SnapshotOptions::default()
    });
    for (i, session) in ["s1", "s2", "s3"].iter().enumerate() {
        let file = format!("{session}.txt");
        f.agent(session, &[file.as_str()], |f| {
            f.write(&file, &format!("{i} {session}\n"))
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = f.store.prune(Some("s1")).unwrap();
    assert_eq!(
        report.sessions_removed,
        vec!["s2".to_string()],
        "s1 is kept as asked, s3 is the newest"
    );
    assert!(report.bytes_after < report.bytes_before);
}

#[test]
fn prune_packs_loose_objects_and_a_dropped_sessions_objects_leave_the_pack() {
    let retention = Retention {
        max_age: Duration::ZERO,
        grace: Duration::ZERO,
        pack_after_loose: 20,
        ..Retention::default()
    };
    let f = fixture_with(SnapshotOptions {
        retention,
        ..SnapshotOptions::default()
    });
    for i in 0..15 {
        let file = format!("old{i}.txt");
        f.agent("old", &[file.as_str()], |f| {
            f.write(&file, &format!("old session {i}\n"))
        });
    }
    std::thread::sleep(Duration::from_millis(20));
    for i in 0..15 {
        let file = format!("new{i}.txt");
        f.agent("new", &[file.as_str()], |f| {
            f.write(&file, &format!("new session {i}\n").repeat(50))
        });
    }
    let old_blob = f.store.changes("old").unwrap()[3].files[0]
        .after
        .clone()
        .unwrap()
        .blob;
    let loose_count = |store: &SnapshotStore| {
        let objects = store.store_dir().join("objects.git/objects");
        fs::read_dir(&objects)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().len() == 2)
            .map(|e| fs::read_dir(e.path()).unwrap().count())
            .sum::<usize>()
    };
    assert!(loose_count(&f.store) >= 30);

    // Keep "old" this time: everything reachable is packed, the loose copies go.
    let report = f.store.prune(Some("old")).unwrap();
    assert!(report.sessions_removed.is_empty());
    assert!(report.objects_packed >= 30, "{report:?}");
    assert_eq!(loose_count(&f.store), 0);
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    assert_eq!(f.store.read_blob(&old_blob).unwrap(), b"old session 3\n");
    f.undo("new");
    assert_eq!(f.read("new14.txt"), None);

    // Drop "old": the repack leaves its objects out and removes the previous pack.
    let report = f.store.prune(None).unwrap();
    assert_eq!(report.sessions_removed, vec!["old".to_string()]);
    assert!(report.objects_packed > 0);
    assert!(matches!(
        f.store.read_blob(&old_blob),
        Err(SnapshotError::MissingObject(_))
    ));
    let packs = fs::read_dir(f.store.store_dir().join("objects.git/objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count();
    assert_eq!(packs, 1);
    f.undo("new");
    assert_eq!(f.read("new13.txt"), None);
    // A second handle (another process) reads through the new pack too.
    let other = SnapshotStore::open(&f.data, &f.root).unwrap();
    let new_blob = other.changes("new").unwrap()[0].files[0]
        .after
        .clone()
        .unwrap()
        .blob;
    assert_eq!(
        other.read_blob(&new_blob).unwrap(),
        "new session 0\n".repeat(50).into_bytes()
    );
}

#[test]
fn two_store_handles_in_two_threads_record_without_loss() {
    let f = fixture();
    let (root, data) = (f.root.clone(), f.data.clone());
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let (root, data) = (root.clone(), data.clone());
            std::thread::spawn(move || {
                let store = SnapshotStore::open(&data, &root).unwrap();
                for i in 0..25 {
                    let name = format!("w{worker}-{i}.txt");
                    let pending = store
                        .begin_change("shared", i, "t", &[PathBuf::from(&name)], &no_overlay)
                        .unwrap();
                    fs::write(root.join(&name), format!("{worker} {i}\n")).unwrap();
                    store.commit_change(pending, &no_overlay).unwrap();
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    assert_consistent(&f.store, "shared", 50);
}

/// Every change of `session` is committed, ids are 1..=expected, every stored object exists.
fn assert_consistent(store: &SnapshotStore, session: &str, expected: usize) {
    let changes = store.changes(session).unwrap();
    assert_eq!(changes.len(), expected);
    let ids: Vec<u32> = changes.iter().map(|c| c.id.0).collect();
    assert_eq!(ids, (1..=expected as u32).collect::<Vec<_>>());
    for change in &changes {
        assert!(change.committed, "change {} not committed", change.id);
        for file in &change.files {
            for version in [&file.before, &file.after].into_iter().flatten() {
                store.read_blob(&version.blob).unwrap();
            }
        }
    }
}

fn child_role() -> Option<String> {
    std::env::var("TACK_SNAPSHOT_CHILD").ok()
}

fn spawn_child(test: &str, vars: &[(&str, &str)]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("snapshots::tests::{test}"),
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_record_into_one_session_without_loss() {
    if let Some(worker) = child_role() {
        let root = PathBuf::from(std::env::var("TACK_SNAPSHOT_ROOT").unwrap());
        let data = PathBuf::from(std::env::var("TACK_SNAPSHOT_DATA").unwrap());
        let store = SnapshotStore::open(&data, &root).unwrap();
        for i in 0..40 {
            let name = format!("p{worker}-{}.txt", i % 5);
            let pending = store
                .begin_change("shared", i, "p", &[PathBuf::from(&name)], &no_overlay)
                .unwrap();
            fs::write(root.join(&name), format!("{worker} {i}\n")).unwrap();
            store.commit_change(pending, &no_overlay).unwrap();
            if i % 10 == 0 {
                store.checkpoint(&format!("cp{worker}")).unwrap();
            }
        }
        return;
    }
    let f = fixture();
    let (root, data) = (f.root.to_str().unwrap(), f.data.to_str().unwrap());
    let children: Vec<_> = ["0", "1"]
        .iter()
        .map(|worker| {
            spawn_child(
                "two_processes_record_into_one_session_without_loss",
                &[
                    ("TACK_SNAPSHOT_CHILD", worker),
                    ("TACK_SNAPSHOT_ROOT", root),
                    ("TACK_SNAPSHOT_DATA", data),
                ],
            )
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_consistent(&f.store, "shared", 80);
    assert_eq!(f.store.checkpoints("cp0").unwrap().len(), 4);
    assert_eq!(f.store.checkpoints("cp1").unwrap().len(), 4);
    // The shared stack still undoes cleanly, newest first.
    f.undo("shared");
    f.undo("shared");
}

#[test]
fn a_process_killed_mid_snapshot_leaves_a_consistent_store() {
    if child_role().is_some() {
        let root = PathBuf::from(std::env::var("TACK_SNAPSHOT_ROOT").unwrap());
        let data = PathBuf::from(std::env::var("TACK_SNAPSHOT_DATA").unwrap());
        let store = SnapshotStore::open(&data, &root).unwrap();
        for i in 0u32.. {
            let paths: Vec<PathBuf> = (0..8).map(|n| PathBuf::from(format!("f{n}.txt"))).collect();
            let pending = store
                .begin_change("victim", i, "loop", &paths, &no_overlay)
                .unwrap();
            for path in &paths {
                let line = format!("{i} {}\n", path.display());
                fs::write(root.join(path), line.repeat(2000)).unwrap();
            }
            store.commit_change(pending, &no_overlay).unwrap();
            if i % 7 == 0 {
                store.checkpoint("victim").unwrap();
            }
        }
        return;
    }
    let f = fixture();
    let (root, data) = (f.root.to_str().unwrap(), f.data.to_str().unwrap());
    let log = f.store.log_path("victim").unwrap();
    for round in 0..3 {
        let mut child = spawn_child(
            "a_process_killed_mid_snapshot_leaves_a_consistent_store",
            &[
                ("TACK_SNAPSHOT_CHILD", "1"),
                ("TACK_SNAPSHOT_ROOT", root),
                ("TACK_SNAPSHOT_DATA", data),
            ],
        );
        let lines_before = fs::read(&log)
            .map(|b| b.split(|&c| c == b'\n').count())
            .unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lines = fs::read(&log)
                .map(|b| b.split(|&c| c == b'\n').count())
                .unwrap_or(0);
            if lines > lines_before + 6 + round * 3 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // A new process (a fresh handle) reads a consistent store.
        let store = SnapshotStore::open(&f.data, &f.root).unwrap();
        let changes = store.changes("victim").unwrap();
        assert!(
            !changes.is_empty(),
            "round {round}: the child recorded nothing"
        );
        for change in &changes {
            for file in &change.files {
                let after = if change.committed {
                    file.after.as_ref()
                } else {
                    None
                };
                for version in [file.before.as_ref(), after].into_iter().flatten() {
                    store.read_blob(&version.blob).unwrap();
                }
            }
        }
        for checkpoint in store.checkpoints("victim").unwrap() {
            store
                .tree_entry(&checkpoint.tree, "f0.txt")
                .unwrap()
                .unwrap();
        }
        // Undo works on whatever the last change is (committed or cut off mid-step).
        let plan = store.undo("victim", &no_overlay).unwrap();
        assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
        store.apply(&plan).unwrap();
    }
}
