//! `tack survival`: which lines the agent wrote are still in HEAD after N days, which were
//! revised or deleted within 14 days of landing, the cost per durable line — and the same
//! figures for the human lines of the same repository, for comparison.
//!
//! The join: the ledger records, for every applied change, a hash per added line
//! ([`line_hash`](super::line_hash)) with its path and time. The repository's first-parent
//! history is read once, oldest commit first — git2's tree diffs (renames found) name the
//! changed files, and each one's new text is diffed by line against the text kept from the
//! commit before — keeping for every file the identity of each of its lines — blame computed forwards, which
//! gives every line's birth and death in one pass instead of a `git blame` per file per date.
//! A line added by a commit at or after an agent edit of the same path and hash is the
//! agent's; it *lands* at that commit. Within one commit, a removed line whose hash is added
//! again (anywhere) moved: it keeps its identity and is not counted as revised or deleted. A
//! removed line in a hunk that also adds lines was *revised*; otherwise *deleted*. Lines with
//! no letter or digit (blank lines, lone braces) are tracked but not counted. Merges count on
//! the first-parent line, at the merge.
//!
//! Judging: a line is judged at 14 days only when it landed at least 14 days ago, and for
//! "still in HEAD after N days" only when it landed at least N days ago; younger lines are
//! reported as too young. Human lines are those born in the same period (from the first agent
//! edit recorded for this repository on; the whole history when there is none). Agent edits
//! that were undone and not redone do not count.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::reader::session_files;
use super::record::{Line, fast_kind};
use super::stats::rate as share;
use super::time::DAY_MS;
use super::{LedgerError, LedgerSettings};

/// The window within which a revision or deletion counts as churn.
pub const CHURN_DAYS: u64 = 14;

/// The figures of one group (agent or human lines).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LineFigures {
    /// Counted lines that landed in a commit (in the period).
    pub landed: u64,
    /// Landed at least 14 days ago.
    pub judged_at_14_days: u64,
    pub revised_within_14_days: u64,
    pub deleted_within_14_days: u64,
    /// Moved (within or across files) within 14 days: kept, not counted as churn.
    pub moved_within_14_days: u64,
    /// Landed at least N days ago.
    pub judged_at_n_days: u64,
    /// Of those, still in HEAD.
    pub still_in_head: u64,
    /// Landed less than 14 (or N, whichever is larger) days ago.
    pub too_young: u64,
}

impl LineFigures {
    pub fn churn_share(&self) -> Option<f64> {
        share(
            self.revised_within_14_days + self.deleted_within_14_days,
            self.judged_at_14_days,
        )
    }

    pub fn survival_share(&self) -> Option<f64> {
        share(self.still_in_head, self.judged_at_n_days)
    }
}

/// What `tack survival` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurvivalReport {
    pub repository: String,
    pub head: Option<String>,
    pub commits: u64,
    pub days: u64,
    pub agent: LineFigures,
    pub human: LineFigures,
    /// Cost of the sessions whose lines were judged at N days, per line of theirs still in
    /// HEAD; `None` without a durable line or without prices.
    pub cost_per_durable_line_usd: Option<f64>,
    /// Agent lines of applied changes that no commit (on the first-parent line) added.
    pub agent_lines_not_committed: u64,
    /// Sessions of this repository in the ledger.
    pub sessions: u64,
}

/// One agent-written line from the ledger, waiting for the commit that lands it.
#[derive(Debug, Clone, Copy)]
struct AgentEdit {
    ts: u64,
    session: u32,
}

/// A line's identity as the history is read.
#[derive(Debug, Clone)]
struct LineInfo {
    born_ms: u64,
    agent: Option<u32>,
    counted: bool,
    died: Option<(u64, Fate)>,
    /// First move within 14 days of birth.
    moved_early: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Revised,
    Deleted,
}

/// The survival figures of the repository at (or above) `folder`, joined with the ledger.
pub fn survival(
    settings: &LedgerSettings,
    folder: &Path,
    days: u64,
    now_ms: u64,
) -> Result<SurvivalReport, LedgerError> {
    // A read-only pass over every commit: objects are not re-hashed on each read (libgit2's
    // default), as git itself does not. Process-wide: `tack survival` runs in its own process.
    git2::opts::strict_hash_verification(false);
    let repo = git2::Repository::discover(folder)?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| LedgerError::Usage("survival needs a repository with a work tree".into()))?;
    let workdir = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    let ledger = agent_edits(settings, &workdir)?;
    let mut pending = ledger.edits;
    let window_start = ledger.first_edit_ms.unwrap_or(0);

    let mut lines: Vec<LineInfo> = Vec::new();
    let mut files: HashMap<Vec<u8>, TrackedFile> = HashMap::new();
    let mut commits = 0u64;
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    if let Some(head) = &head {
        let mut walk = repo.revwalk()?;
        walk.push(head.id())?;
        walk.simplify_first_parent()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        let mut diff_options = git2::DiffOptions::new();
        diff_options.ignore_submodules(true);
        let mut find = git2::DiffFindOptions::new();
        find.renames(true);
        for oid in walk {
            let commit = repo.find_commit(oid?)?;
            commits += 1;
            let time_ms = u64::try_from(commit.time().seconds()).unwrap_or(0) * 1000;
            let tree = commit.tree()?;
            let parent_tree = match commit.parents().next() {
                Some(parent) => Some(parent.tree()?),
                None => None,
            };
            let mut diff =
                repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut diff_options))?;
            diff.find_similar(Some(&mut find))?;
            apply_commit(&repo, &diff, time_ms, &mut files, &mut lines, &mut pending)?;
        }
    }

    let judge_14 = now_ms.saturating_sub(CHURN_DAYS * DAY_MS);
    let judge_n = now_ms.saturating_sub(days * DAY_MS);
    let young = judge_14.min(judge_n);
    let mut agent = LineFigures::default();
    let mut human = LineFigures::default();
    let mut durable_by_session: HashMap<u32, u64> = HashMap::new();
    let mut judged_sessions: HashMap<u32, ()> = HashMap::new();
    for line in lines.iter().filter(|l| l.counted) {
        if line.agent.is_none() && line.born_ms < window_start {
            continue;
        }
        let figures = if line.agent.is_some() {
            &mut agent
        } else {
            &mut human
        };
        figures.landed += 1;
        if line.born_ms > young {
            figures.too_young += 1;
        }
        if line.born_ms <= judge_14 {
            figures.judged_at_14_days += 1;
            figures.moved_within_14_days += u64::from(line.moved_early);
            match line.died {
                Some((died, fate)) if died.saturating_sub(line.born_ms) <= CHURN_DAYS * DAY_MS => {
                    match fate {
                        Fate::Revised => figures.revised_within_14_days += 1,
                        Fate::Deleted => figures.deleted_within_14_days += 1,
                    }
                }
                _ => {}
            }
        }
        if line.born_ms <= judge_n {
            figures.judged_at_n_days += 1;
            if let Some(session) = line.agent {
                judged_sessions.insert(session, ());
            }
            if line.died.is_none() {
                figures.still_in_head += 1;
                if let Some(session) = line.agent {
                    *durable_by_session.entry(session).or_default() += 1;
                }
            }
        }
    }
    let durable: u64 = durable_by_session.values().sum();
    let costs: Vec<Option<f64>> = judged_sessions
        .keys()
        .map(|s| ledger.session_costs.get(*s as usize).copied().flatten())
        .collect();
    let cost_per_durable_line_usd = (durable > 0 && costs.iter().any(Option::is_some))
        .then(|| costs.iter().flatten().sum::<f64>() / durable as f64);
    Ok(SurvivalReport {
        repository: workdir.display().to_string(),
        head: head.map(|c| c.id().to_string()),
        commits,
        days,
        agent,
        human,
        cost_per_durable_line_usd,
        agent_lines_not_committed: pending.values().map(|v| v.len() as u64).sum(),
        sessions: ledger.session_costs.len() as u64,
    })
}

/// What the ledger says about one repository.
struct LedgerEdits {
    /// (repository-relative path, line hash) → the agent's edits of it, oldest first.
    edits: HashMap<(Vec<u8>, u64), Vec<AgentEdit>>,
    first_edit_ms: Option<u64>,
    /// Per session (index), its cost.
    session_costs: Vec<Option<f64>>,
}

/// The agent's added lines from every ledger session in the repository at `workdir`, without
/// changes that were undone and not redone, and without lines that count for nothing.
fn agent_edits(settings: &LedgerSettings, workdir: &Path) -> Result<LedgerEdits, LedgerError> {
    let mut out = LedgerEdits {
        edits: HashMap::new(),
        first_edit_ms: None,
        session_costs: Vec::new(),
    };
    for file in session_files(&settings.dir)? {
        // The first line says where the session ran: other workspaces' files are not read on.
        let bytes = std::fs::read(&file.path).map_err(|e| LedgerError::io(&file.path, e))?;
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let Some(workspace) = Line::parse(first)
            .ok()
            .filter(|l| l.kind() == "session_started")
            .and_then(|l| l.str("workspace").map(PathBuf::from))
        else {
            continue;
        };
        let Ok(prefix) = workspace.strip_prefix(workdir) else {
            continue;
        };
        let mut lines = Vec::new();
        super::reader::for_each_line(&file.path, |number, bytes| {
            let wanted = fast_kind(bytes).is_none_or(|kind| {
                matches!(
                    kind,
                    b"model_call" | b"edit_applied" | b"proposal_decided" | b"changes_restored"
                )
            });
            if wanted {
                match Line::parse(bytes) {
                    Ok(line) => lines.push(line),
                    Err(error) => super::reader::skipped(&file.path, number, &error),
                }
            }
        })?;
        let session = out.session_costs.len() as u32;
        let mut cost = None;
        // The applied changes, and the last restore of each change.
        let mut changes: Vec<AppliedChange> = Vec::new();
        let mut undone: HashMap<u64, bool> = HashMap::new();
        for line in &lines {
            match line.kind() {
                "model_call" => {
                    if let Some(usd) = line.get("cost")["usd"].as_f64() {
                        cost = Some(cost.unwrap_or(0.0) + usd);
                    }
                }
                "edit_applied" | "proposal_decided" => {
                    if line.kind() == "proposal_decided" && line.str("decision") != Some("applied")
                    {
                        continue;
                    }
                    let change = line.u64("change").unwrap_or(0);
                    let mut added = Vec::new();
                    for file in line.detail("files").as_array().into_iter().flatten() {
                        let Some(path) = file["path"].as_str() else {
                            continue;
                        };
                        for hunk in file["hunks"].as_array().into_iter().flatten() {
                            for hash in hunk["added"].as_array().into_iter().flatten() {
                                if let Some(hash) = hash.as_str().and_then(parse_hash) {
                                    added.push((path.to_owned(), hash));
                                }
                            }
                        }
                    }
                    changes.push((change, line.header.ts, added));
                }
                "changes_restored" => {
                    let undo = line.str("kind") == Some("undo");
                    for change in line.get("changes").as_array().into_iter().flatten() {
                        if let Some(change) = change.as_u64() {
                            undone.insert(change, undo);
                        }
                    }
                }
                _ => {}
            }
        }
        out.session_costs.push(cost);
        for (change, ts, added) in changes {
            if undone.get(&change) == Some(&true) {
                continue;
            }
            for (path, hash) in added {
                let relative = prefix.join(&path);
                let key = (relative.to_string_lossy().into_owned().into_bytes(), hash);
                out.edits
                    .entry(key)
                    .or_default()
                    .push(AgentEdit { ts, session });
                out.first_edit_ms = Some(out.first_edit_ms.map_or(ts, |first| first.min(ts)));
            }
        }
    }
    for edits in out.edits.values_mut() {
        edits.sort_by_key(|e| e.ts);
    }
    Ok(out)
}

/// An applied change of a session: its id, time, and added lines (path, hash).
type AppliedChange = (u64, u64, Vec<(String, u64)>);

/// A ledger line hash (16 hex digits) as a number.
fn parse_hash(hex: &str) -> Option<u64> {
    u64::from_str_radix(hex, 16).ok()
}

/// The same hash as [`line_hash`](super::line_hash), as a number.
fn hash_of(content: &[u8]) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(content.trim_ascii());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A line that counts: it has a letter or a digit.
fn counts(content: &[u8]) -> bool {
    match std::str::from_utf8(content) {
        Ok(text) => text.chars().any(char::is_alphanumeric),
        Err(_) => content.iter().any(u8::is_ascii_alphanumeric),
    }
}

/// A file as the history has it so far: its text and the identity of each of its lines.
#[derive(Default)]
struct TrackedFile {
    text: Vec<u8>,
    ids: Vec<u32>,
}

/// The lines of a text, each with its line break.
fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

/// How long the line diff of one file may take before it settles for a coarser answer.
const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);

/// One commit's changes applied to the tracked files: births (claimed by a waiting agent
/// edit when one matches), moves, and deaths. The tree diff (with renames) names the files;
/// each changed file's new text is diffed by line against the text kept from before, so
/// every blob is read once.
fn apply_commit(
    repo: &git2::Repository,
    diff: &git2::Diff<'_>,
    time_ms: u64,
    files: &mut HashMap<Vec<u8>, TrackedFile>,
    lines: &mut Vec<LineInfo>,
    pending: &mut HashMap<(Vec<u8>, u64), Vec<AgentEdit>>,
) -> Result<(), LedgerError> {
    // Removed lines of this commit by hash.
    let mut removed: HashMap<u64, Vec<u32>> = HashMap::new();
    // Added lines: (path, position in the new file, hash, counts).
    let mut added: Vec<(Vec<u8>, usize, u64, bool)> = Vec::new();
    // Per hunk, its removed lines (id, text) and added lines (index into `added`, text).
    let mut hunks: Vec<HunkLines> = Vec::new();
    for delta in diff.deltas() {
        let status = delta.status();
        let old_path = delta.old_file().path_bytes().map(<[u8]>::to_vec);
        let new_path = delta.new_file().path_bytes().map(<[u8]>::to_vec);
        let previous = match &old_path {
            Some(path) if status != git2::Delta::Added => files.remove(path).unwrap_or_default(),
            _ => TrackedFile::default(),
        };
        let new_text = if status == git2::Delta::Deleted {
            Vec::new()
        } else {
            let blob = repo.find_blob(delta.new_file().id())?;
            if blob.is_binary() {
                // Its lines are no longer known; they are not judged.
                continue;
            }
            blob.content().to_vec()
        };
        let old_lines = split_lines(&previous.text);
        let new_lines = split_lines(&new_text);
        let path = new_path.clone().unwrap_or_default();
        let ops = similar::capture_diff_slices_deadline(
            similar::Algorithm::Myers,
            &old_lines,
            &new_lines,
            Some(std::time::Instant::now() + DIFF_DEADLINE),
        );
        let mut next: Vec<u32> = Vec::with_capacity(new_lines.len());
        let mut hunk = HunkLines::default();
        for op in ops {
            let (old_range, new_range) = (op.old_range(), op.new_range());
            if let similar::DiffOp::Equal { .. } = op {
                if !hunk.removed.is_empty() || !hunk.added.is_empty() {
                    hunks.push(std::mem::take(&mut hunk));
                }
                next.extend(previous.ids.get(old_range).unwrap_or_default());
                continue;
            }
            for index in old_range {
                let (Some(&id), Some(text)) = (previous.ids.get(index), old_lines.get(index))
                else {
                    continue;
                };
                removed.entry(hash_of(text)).or_default().push(id);
                hunk.removed.push((id, text.to_vec()));
            }
            for index in new_range {
                let text = new_lines[index];
                hunk.added.push((added.len(), text.to_vec()));
                added.push((path.clone(), next.len(), hash_of(text), counts(text)));
                // A placeholder, given its identity once moves are known.
                next.push(u32::MAX);
            }
        }
        if !hunk.removed.is_empty() || !hunk.added.is_empty() {
            hunks.push(hunk);
        }
        if status != git2::Delta::Deleted
            && let Some(path) = new_path
        {
            files.insert(
                path,
                TrackedFile {
                    text: new_text,
                    ids: next,
                },
            );
        }
    }
    // Give every added line its identity: a removed line of the same hash moved here;
    // otherwise it is born (the agent's when a waiting edit matches).
    let mut placed: HashMap<Vec<u8>, Vec<(usize, u32)>> = HashMap::new();
    let mut moved_in: Vec<bool> = vec![false; added.len()];
    for (index, (path, position, hash, counted)) in added.into_iter().enumerate() {
        let id = match removed.get_mut(&hash).and_then(Vec::pop) {
            Some(id) => {
                moved_in[index] = true;
                let line = &mut lines[id as usize];
                if time_ms.saturating_sub(line.born_ms) <= CHURN_DAYS * DAY_MS {
                    line.moved_early = true;
                }
                id
            }
            None => {
                let agent = pending.get_mut(&(path.clone(), hash)).and_then(|edits| {
                    let at = edits.iter().position(|e| e.ts <= time_ms)?;
                    Some(edits.remove(at).session)
                });
                lines.push(LineInfo {
                    born_ms: time_ms,
                    agent,
                    counted,
                    died: None,
                    moved_early: false,
                });
                (lines.len() - 1) as u32
            }
        };
        placed.entry(path).or_default().push((position, id));
    }
    for (path, ids) in placed {
        if let Some(file) = files.get_mut(&path) {
            for (position, id) in ids {
                if let Some(slot) = file.ids.get_mut(position) {
                    *slot = id;
                }
            }
        }
    }
    // What was removed and not moved died: revised when its hunk added a similar line in its
    // place (each added line stands for one removed line at most), deleted otherwise.
    let dead: std::collections::HashSet<u32> = removed.into_values().flatten().collect();
    for hunk in hunks {
        let gone: Vec<&(u32, Vec<u8>)> = hunk
            .removed
            .iter()
            .filter(|(id, _)| dead.contains(id))
            .collect();
        let new: Vec<&(usize, Vec<u8>)> =
            hunk.added.iter().filter(|(i, _)| !moved_in[*i]).collect();
        let revised = revisions(&gone, &new);
        for (index, (id, _)) in gone.iter().enumerate() {
            let line = &mut lines[*id as usize];
            if line.died.is_none() {
                let fate = if revised.contains(&index) {
                    Fate::Revised
                } else {
                    Fate::Deleted
                };
                line.died = Some((time_ms, fate));
            }
        }
    }
    pending.retain(|_, edits| !edits.is_empty());
    Ok(())
}

/// The lines one hunk removed and added.
#[derive(Default)]
struct HunkLines {
    removed: Vec<(u32, Vec<u8>)>,
    added: Vec<(usize, Vec<u8>)>,
}

/// Similarity above which an added line is taken for a revision of a removed one.
const REVISION_SIMILARITY: f32 = 0.5;

/// Which removed lines (indices into `gone`) an added line of the same hunk revised: pairs
/// taken most similar first, each line in one pair at most. A hunk too large to compare
/// pair by pair counts its first removed lines as revised, one per added line.
fn revisions(gone: &[&(u32, Vec<u8>)], new: &[&(usize, Vec<u8>)]) -> Vec<usize> {
    if gone.is_empty() || new.is_empty() {
        return Vec::new();
    }
    if gone.len() * new.len() > 400 {
        return (0..gone.len().min(new.len())).collect();
    }
    let mut pairs = Vec::new();
    for (g, (_, old)) in gone.iter().enumerate() {
        let old = String::from_utf8_lossy(old);
        for (n, (_, text)) in new.iter().enumerate() {
            let text = String::from_utf8_lossy(text);
            let ratio = similar::TextDiff::from_chars(old.trim(), text.trim()).ratio();
            if ratio >= REVISION_SIMILARITY {
                pairs.push((ratio, g, n));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_gone, mut used_new) = (vec![false; gone.len()], vec![false; new.len()]);
    let mut revised = Vec::new();
    for (_, g, n) in pairs {
        if !used_gone[g] && !used_new[n] {
            used_gone[g] = true;
            used_new[n] = true;
            revised.push(g);
        }
    }
    revised
}

/// The report as a table.
pub fn render(report: &SurvivalReport) -> String {
    let pct =
        |share: Option<f64>| share.map_or_else(|| "-".to_owned(), |s| format!("{:.1}%", s * 100.0));
    let a = &report.agent;
    let h = &report.human;
    let mut out = format!(
        "survival in {} (HEAD {}, {} commit(s) on the first-parent line, {} session(s) in the ledger)\n",
        report.repository,
        report
            .head
            .as_deref()
            .map_or("none", |h| &h[..h.len().min(12)]),
        report.commits,
        report.sessions
    );
    let row =
        |name: &str, agent: String, human: String| format!("{name:<36} {agent:>10} {human:>10}\n");
    out.push_str(&row("", "agent".into(), "human".into()));
    out.push_str(&row(
        "lines landed",
        a.landed.to_string(),
        h.landed.to_string(),
    ));
    out.push_str(&row(
        "judged at 14 days",
        a.judged_at_14_days.to_string(),
        h.judged_at_14_days.to_string(),
    ));
    let of = |part: u64, whole: u64| pct(share(part, whole));
    out.push_str(&row(
        "  revised within 14 days",
        of(a.revised_within_14_days, a.judged_at_14_days),
        of(h.revised_within_14_days, h.judged_at_14_days),
    ));
    out.push_str(&row(
        "  deleted within 14 days",
        of(a.deleted_within_14_days, a.judged_at_14_days),
        of(h.deleted_within_14_days, h.judged_at_14_days),
    ));
    out.push_str(&row(
        "  revised or deleted",
        pct(a.churn_share()),
        pct(h.churn_share()),
    ));
    out.push_str(&row(
        "  moved (kept, not counted)",
        a.moved_within_14_days.to_string(),
        h.moved_within_14_days.to_string(),
    ));
    out.push_str(&row(
        &format!("judged at {} days", report.days),
        a.judged_at_n_days.to_string(),
        h.judged_at_n_days.to_string(),
    ));
    out.push_str(&row(
        "  still in HEAD",
        pct(a.survival_share()),
        pct(h.survival_share()),
    ));
    out.push_str(&row(
        "too young to judge",
        a.too_young.to_string(),
        h.too_young.to_string(),
    ));
    out.push_str(&row(
        "cost per durable line",
        report
            .cost_per_durable_line_usd
            .map_or_else(|| "-".to_owned(), |c| format!("${c:.4}")),
        "-".into(),
    ));
    if report.agent_lines_not_committed > 0 {
        out.push_str(&format!(
            "agent lines not in any commit (yet): {}\n",
            report.agent_lines_not_committed
        ));
    }
    out
}
