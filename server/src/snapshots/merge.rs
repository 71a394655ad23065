//! Line-based three-way merge (diff3) of text: "ours" is what the user has now, "base" what
//! the agent left, "theirs" what the restore wants. Changes on each side are found with a
//! Myers diff against the base; where the two sides changed the same or adjacent base lines
//! differently, the merge refuses and reports those lines of ours.

use std::ops::Range;

use similar::{Algorithm, DiffTag};

/// Lines `start..end` (0-based, end exclusive) of a file's current content. An empty range
/// marks the place where the user deleted lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LineRange {
    pub start: u32,
    pub end: u32,
}

/// A run of changed lines: base lines `base` became side lines `side`.
#[derive(Debug)]
struct Hunk {
    base: Range<usize>,
    side: Range<usize>,
}

impl Hunk {
    fn growth(&self) -> isize {
        self.side.len() as isize - self.base.len() as isize
    }
}

fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

fn hunks(base: &[&[u8]], side: &[&[u8]]) -> Vec<Hunk> {
    let mut hunks: Vec<Hunk> = Vec::new();
    for op in similar::capture_diff_slices(Algorithm::Myers, base, side) {
        let (tag, old, new) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            continue;
        }
        match hunks.last_mut() {
            Some(last) if last.base.end == old.start && last.side.end == new.start => {
                last.base.end = old.end;
                last.side.end = new.end;
            }
            _ => hunks.push(Hunk {
                base: old,
                side: new,
            }),
        }
    }
    hunks
}

fn to_line_range(range: Range<usize>) -> LineRange {
    LineRange {
        start: range.start as u32,
        end: range.end as u32,
    }
}

/// Merges the change base→theirs into ours. `Err` holds the conflicting line ranges of ours.
pub(super) fn merge3(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Vec<u8>, Vec<LineRange>> {
    let base_lines = split_lines(base);
    let our_lines = split_lines(ours);
    let their_lines = split_lines(theirs);
    let our_hunks = hunks(&base_lines, &our_lines);
    let their_hunks = hunks(&base_lines, &their_lines);

    let mut merged = Vec::with_capacity(ours.len().max(theirs.len()));
    let mut conflicts = Vec::new();
    let (mut next_ours, mut next_theirs) = (0, 0);
    let (mut our_shift, mut their_shift) = (0isize, 0isize);
    let mut copied_to = 0;
    loop {
        let start = match (our_hunks.get(next_ours), their_hunks.get(next_theirs)) {
            (None, None) => break,
            (Some(h), None) | (None, Some(h)) => h.base.start,
            (Some(a), Some(b)) => a.base.start.min(b.base.start),
        };
        // Grow the region over every hunk of either side that overlaps or touches it.
        let (first_ours, first_theirs) = (next_ours, next_theirs);
        let mut end = start;
        loop {
            let before = (next_ours, next_theirs);
            while let Some(h) = our_hunks.get(next_ours).filter(|h| h.base.start <= end) {
                end = end.max(h.base.end);
                next_ours += 1;
            }
            while let Some(h) = their_hunks.get(next_theirs).filter(|h| h.base.start <= end) {
                end = end.max(h.base.end);
                next_theirs += 1;
            }
            if (next_ours, next_theirs) == before {
                break;
            }
        }
        base_lines[copied_to..start]
            .iter()
            .for_each(|l| merged.extend_from_slice(l));
        let our_growth: isize = our_hunks[first_ours..next_ours]
            .iter()
            .map(Hunk::growth)
            .sum();
        let their_growth: isize = their_hunks[first_theirs..next_theirs]
            .iter()
            .map(Hunk::growth)
            .sum();
        let ours_range =
            (start as isize + our_shift) as usize..(end as isize + our_shift + our_growth) as usize;
        let theirs_range = (start as isize + their_shift) as usize
            ..(end as isize + their_shift + their_growth) as usize;
        let our_region = &our_lines[ours_range.clone()];
        let their_region = &their_lines[theirs_range];
        let ours_changed = next_ours > first_ours;
        let theirs_changed = next_theirs > first_theirs;
        let chosen = if !theirs_changed || our_region == their_region {
            Some(our_region)
        } else if !ours_changed {
            Some(their_region)
        } else {
            None
        };
        match chosen {
            Some(lines) => lines.iter().for_each(|l| merged.extend_from_slice(l)),
            None => conflicts.push(to_line_range(ours_range)),
        }
        our_shift += our_growth;
        their_shift += their_growth;
        copied_to = end;
    }
    base_lines[copied_to..]
        .iter()
        .for_each(|l| merged.extend_from_slice(l));
    if conflicts.is_empty() {
        Ok(merged)
    } else {
        Err(conflicts)
    }
}

/// The line ranges of `new` that differ from `old`.
pub(super) fn changed_ranges(old: &[u8], new: &[u8]) -> Vec<LineRange> {
    hunks(&split_lines(old), &split_lines(new))
        .into_iter()
        .map(|h| to_line_range(h.side))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn merge(base: &str, ours: &str, theirs: &str) -> Result<String, Vec<LineRange>> {
        merge3(base.as_bytes(), ours.as_bytes(), theirs.as_bytes())
            .map(|m| String::from_utf8(m).unwrap())
    }

    const BASE: &str = "a\nb\nc\nd\ne\nf\ng\n";

    #[test]
    fn edits_far_apart_merge() {
        let ours = "a\nB\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nd\ne\nF\ng\n";
        assert_eq!(merge(BASE, ours, theirs).unwrap(), "a\nB\nc\nd\ne\nF\ng\n");
    }

    #[test]
    fn insertions_and_deletions_far_apart_merge() {
        let ours = "new\na\nb\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nd\ne\ng\n";
        assert_eq!(
            merge(BASE, ours, theirs).unwrap(),
            "new\na\nb\nc\nd\ne\ng\n"
        );
    }

    #[test]
    fn edits_of_the_same_line_conflict_with_our_range() {
        let ours = "x\na\nb\nC-user\nd\ne\nf\ng\n";
        let theirs = "a\nb\nC-agent\nd\ne\nf\ng\n";
        assert_eq!(
            merge(BASE, ours, theirs).unwrap_err(),
            vec![LineRange { start: 3, end: 4 }]
        );
    }

    #[test]
    fn edits_of_adjacent_lines_conflict() {
        let ours = "a\nb\nC\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nD\ne\nf\ng\n";
        assert_eq!(
            merge(BASE, ours, theirs).unwrap_err(),
            vec![LineRange { start: 2, end: 4 }]
        );
    }

    #[test]
    fn the_same_edit_on_both_sides_merges() {
        let both = "a\nb\nSAME\nd\ne\nf\ng\n";
        assert_eq!(merge(BASE, both, both).unwrap(), both);
    }

    #[test]
    fn insertions_at_the_same_place_conflict() {
        let ours = "a\nours\nb\nc\nd\ne\nf\ng\n";
        let theirs = "a\ntheirs\nb\nc\nd\ne\nf\ng\n";
        assert_eq!(
            merge(BASE, ours, theirs).unwrap_err(),
            vec![LineRange { start: 1, end: 2 }]
        );
    }

    #[test]
    fn a_user_deletion_against_an_edit_conflicts_with_an_empty_range() {
        let ours = "a\nb\nd\ne\nf\ng\n";
        let theirs = "a\nb\nCC\nd\ne\nf\ng\n";
        assert_eq!(
            merge(BASE, ours, theirs).unwrap_err(),
            vec![LineRange { start: 2, end: 2 }]
        );
    }

    #[test]
    fn several_conflicts_are_all_listed() {
        let ours = "A1\nb\nc\nd\ne\nf\nG1\n";
        let theirs = "A2\nb\nc\nd\ne\nf\nG2\n";
        assert_eq!(
            merge(BASE, ours, theirs).unwrap_err(),
            vec![
                LineRange { start: 0, end: 1 },
                LineRange { start: 6, end: 7 }
            ]
        );
    }

    #[test]
    fn a_missing_final_newline_is_kept() {
        assert_eq!(merge("a\nb\nc", "a\nb\nc", "A\nb\nc").unwrap(), "A\nb\nc");
        assert_eq!(
            merge("a\nb\nc", "a\nb\nc\n", "A\nb\nc").unwrap(),
            "A\nb\nc\n"
        );
    }

    #[test]
    fn changed_ranges_are_lines_of_the_new_text() {
        assert_eq!(
            changed_ranges(BASE.as_bytes(), b"a\nb\nX\nY\nd\ne\nf\ng\n"),
            vec![LineRange { start: 2, end: 4 }]
        );
    }
}
